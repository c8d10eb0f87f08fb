// The after-run check behind `npm test` (scripts/run-tests.ts): it must find a recorded secret
// wherever it appears in a log line, JSON-escaped or not, and ignore a spawned server's
// non-log prints (the operator token shown once at first start).
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { checkLogs } from '../scripts/log-check.js';
import { tempDir } from './helpers/server.js';

test('the log check finds every recorded secret in any log line, and counts what it checked', () => {
  const dir = tempDir('portcullis-log-check-');
  try {
    const secret = `pcs_${'Q'.repeat(43)}`;
    const password = 'a "quoted" passphrase\\x';
    writeFileSync(`${dir}/secrets.txt`, `${secret}\n${password}\nnever-logged-secret-value\n`);
    writeFileSync(`${dir}/server-1-1.log`, `{"msg":"incoming request"}\n{"msg":"oops","body":"client_secret=${secret}"}\n`);
    writeFileSync(`${dir}/server-1-2.log`, `${JSON.stringify({ msg: 'sign in', password })}\n`);
    writeFileSync(`${dir}/process-1-1.log`, `Operator API token (shown once):\n  never-logged-secret-value\n{"msg":"listening"}\n`);
    const result = checkLogs(dir);
    assert.equal(result.secrets, 3);
    assert.equal(result.files, 3);
    assert.equal(result.lines, 4);
    assert.deepEqual(
      result.leaks.map((l) => `${l.file}:${l.line}`),
      ['server-1-1.log:2', 'server-1-2.log:1'],
    );
    assert.ok(
      result.leaks.every((l) => !l.secret.includes(secret)),
      'the report does not repeat the secret',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
