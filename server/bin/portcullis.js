#!/usr/bin/env node
// The published command: runs the compiled CLI (built by `npm install` through the root `prepare` script).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('portcullis: not built yet; run `npm run build` in the repository root\n');
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
