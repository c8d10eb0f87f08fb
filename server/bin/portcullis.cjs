#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=10 --no-parallel-scavenge --compact-on-every-full-gc
// The `portcullis` command. CommonJS on purpose: it must set UV_THREADPOOL_SIZE before anything
// touches libuv's thread pool, and loading an ES module already does.
//
// The flags on the first line are how Portcullis runs; every launcher (npm start, the systemd unit,
// the container image, the benchmarks) passes the same ones, and a test keeps them equal. V8 reads
// heap sizes only at start (v8.setFlagsFromString in a running process changes nothing), so they
// cannot be set from here. They were weighed on the token bench against the bare signer and on
// GET /me with two processes of each set (bench/README.md):
// --max-semi-space-size=2: the young generation commits at most 2 x 2 MiB (V8's default ceiling is
//   2 x 16 MiB); a scavenge copies only what is in flight, so a smaller space costs more
//   scavenges, not more copying.
// --no-parallel-scavenge: with so small a young generation each scavenge copies a few hundred KB;
//   one thread does it sooner than waking V8's helper threads for it (measured: token CPU
//   per request and p99 lower, /me unchanged).
// --heap-growing-percent=10: the next full GC comes after the old generation grows by 10 % (V8
//   still allows at least 8 MB), so less garbage is held when it runs.
// --compact-on-every-full-gc: every full GC also moves the live objects out of fragmented
//   old-space pages, so pages whose objects died scattered (cache entries evicted one by one) are
//   given back instead of being kept committed (the soak's numbers are in bench/README.md).
'use strict';
const { existsSync } = require('node:fs');
const { availableParallelism } = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

// Token signing runs on the thread pool. One thread per core lets a process sign on every core
// without more threads than cores (the default is 4 whatever the machine), which measured lower
// tail latency on the token endpoint. An operator's own value wins.
process.env.UV_THREADPOOL_SIZE ||= String(Math.max(2, availableParallelism()));

const cli = path.join(__dirname, '..', 'dist', 'src', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write('portcullis: not built yet; run `npm run build` in the repository root\n');
  process.exit(1);
}
import(pathToFileURL(cli).href)
  .then(({ main }) => main(process.argv.slice(2)))
  .then((code) => {
    process.exitCode = code;
  });
