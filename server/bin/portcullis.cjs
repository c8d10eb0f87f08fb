#!/usr/bin/env node
// The `portcullis` command. CommonJS on purpose: it must set UV_THREADPOOL_SIZE before anything
// touches libuv's thread pool, and loading an ES module already does.
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
