// `npm test`: runs the node:test suites given as arguments with PORTCULLIS_TEST_LOG_DIR set to a
// fresh directory (test servers log there at trace level and tests record every secret they
// see), then fails if any recorded secret appears in any log. One command, non-zero on failure.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkLogs } from './log-check.js';

const dir = mkdtempSync(path.join(tmpdir(), 'portcullis-test-logs-'));
const run = spawnSync(process.execPath, ['--test', ...process.argv.slice(2)], {
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
