#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=10 --compact-on-every-full-gc
// The `portcullis` command. CommonJS on purpose: it must set UV_THREADPOOL_SIZE before anything
// touches libuv's thread pool, and loading an ES module already does.
//
// The flags on the first line are how Portcullis runs; every launcher (npm start, the systemd unit,
// the container image, the benchmarks) passes the same ones, and a test keeps them equal. V8 reads
// heap sizes only at start, so they cannot be set from here. Together they keep the heap close to
// what is live (measurements in bench/README.md):
// --max-semi-space-size=2: the young generation commits at most 2 x 2 MiB (V8's default is up to
// 2 x 16). A request's objects die young, so a scavenge copies only the few still in flight
// however small the space, and a small space stays in the CPU's caches: the token endpoint was at
// least as fast as with 8 MiB, with a lower peak RSS.
// --heap-growing-percent=10: a full GC starts once the old generation has grown 10 % past what the
// last one left alive (V8's own factor is 1.1 to 4, from its GC and allocation speeds), so less
// dead memory is held between full GCs.
// --compact-on-every-full-gc: every full GC also moves the live objects out of fragmented
// old-space pages, so pages whose objects died scattered (cache entries evicted one by one) are
// given back; without it, committed old space grew 11 to 31 MB an hour under the soak's load while
// the live heap stayed flat. Its cost is a short rise of RSS while a GC moves the live heap; the
// other two flags lower the level that rise starts from.
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
