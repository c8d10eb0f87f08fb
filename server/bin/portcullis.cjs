#!/usr/bin/env -S node --max-semi-space-size=8 --compact-on-every-full-gc
// The `portcullis` command. CommonJS on purpose: it must set UV_THREADPOOL_SIZE before anything
// touches libuv's thread pool, and loading an ES module already does.
//
// The flags on the first line are how Portcullis runs; every launcher (npm start, the systemd unit,
// the container image, the benchmarks) passes the same ones, and a test keeps them equal. V8 reads
// heap sizes only at start (v8.setFlagsFromString in a running process changes nothing), so they
// cannot be set from here. --max-semi-space-size=8: the young generation commits at most 2 x 8 MiB
// instead of 2 x 16 MiB; measured: peak RSS under token load 11 MB lower, throughput the same
// within the bench's noise (bench/README.md). --compact-on-every-full-gc: every full GC (about one a
// minute under load) also moves the live objects out of fragmented old-space pages, so pages
// whose objects died scattered (cache entries evicted one by one) are given back instead of being
// kept committed (the soak's numbers are in bench/README.md).
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
