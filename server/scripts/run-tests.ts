// `npm test`: runs the node:test suites given as arguments with PORTCULLIS_TEST_LOG_DIR set to a
// fresh directory (test servers log there at trace level and tests record every secret they
// see), then fails if any recorded secret appears in any log. One command, non-zero on failure.
// A folder given is run as the *.test.js files below it: node --test would otherwise load every
// .js file there, helpers included, and count each as a passing test.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkLogs } from './log-check.js';

/** A folder's *.test.js files, depth first in name order; any other argument as it is. */
function testFiles(arg: string): string[] {
  if (arg.startsWith('-') || !statSync(arg, { throwIfNoEntry: false })?.isDirectory()) return [arg];
  return readdirSync(arg, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const file = path.join(arg, entry.name);
      if (entry.isDirectory()) return testFiles(file);
      return entry.name.endsWith('.test.js') ? [file] : [];
    });
}

const args = process.argv.slice(2).flatMap(testFiles);
// With no file at all node --test would search the working directory for tests of its own choosing.
if (!args.some((arg) => !arg.startsWith('-'))) {
  process.stderr.write(`no *.test.js file in ${process.argv.slice(2).join(' ') || '(no arguments)'}: build first (npm run build)\n`);
  process.exit(2);
}
const dir = mkdtempSync(path.join(tmpdir(), 'portcullis-test-logs-'));
const run = spawnSync(process.execPath, ['--test', ...args], {
  stdio: 'inherit',
  env: { ...process.env, PORTCULLIS_TEST_LOG_DIR: dir },
});
const testsPassed = run.status === 0;

const check = checkLogs(dir);
const summary = `${check.secrets} secrets against ${check.lines} log lines in ${check.files} files`;
let logsClean = true;
if (check.leaks.length > 0) {
  logsClean = false;
  process.stderr.write(`\nlog check FAILED: ${check.leaks.length} secret(s) found in the logs of this run (${summary}; logs kept in ${dir}):\n`);
  for (const leak of check.leaks.slice(0, 50)) process.stderr.write(`  ${leak.file}:${leak.line}  ${leak.secret}\n`);
} else if (check.secrets === 0 || check.lines === 0) {
  logsClean = false;
  process.stderr.write(`\nlog check FAILED: nothing to check (${summary}); the test servers did not log or record secrets\n`);
} else {
  process.stdout.write(`\nlog check: no secret in the logs (${summary})\n`);
}
if (logsClean && !process.env.PORTCULLIS_KEEP_TEST_LOGS) rmSync(dir, { recursive: true, force: true });
process.exit(testsPassed && logsClean ? 0 : (run.status ?? 1) || 1);
