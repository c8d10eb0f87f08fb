import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, symlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { curlAvailable } from './helpers/curl.js';
import { spawnServer } from './helpers/process.js';
import { ADMIN_TOKEN, MASTER_KEY, tempDir } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The shell blocks of the README's tour, as a reader would paste them. */
function tourCommands(): string {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const start = readme.indexOf('## Five-minute tour');
  const end = readme.indexOf('\n## ', start + 1);
  assert.ok(start !== -1 && end !== -1, 'README has a tour section');
  const blocks = [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  // The token placeholder is the one line a reader fills in; the test provides the token itself.
  return blocks
    .join('\n')
    .split('\n')
    .filter((line) => !line.startsWith('export PORTCULLIS_ADMIN_TOKEN='))
    .join('\n');
}

test('the README tour works as written against a fresh server', async (t) => {
  if (!curlAvailable(t)) return;
  const dataDir = tempDir();
  const workDir = tempDir('portcullis-tour-');
  symlinkSync(`${ROOT}node_modules`, `${workDir}/node_modules`);
  const server = await spawnServer({ PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN, PORTCULLIS_MASTER_KEY: MASTER_KEY });
  try {
    const script = tourCommands().replaceAll('http://localhost:8080', server.url);
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'bash',
        ['-euo', 'pipefail', '-c', script],
        { cwd: workDir, env: { ...process.env, PORTCULLIS_URL: server.url, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN }, timeout: 120_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
      );
    });
    assert.equal(result.code, 0, `tour failed:\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /organization 1 "Acme" created/);
    assert.match(result.stdout, /"token_type":"Bearer","expires_in":900,"scope":"retail-media"/);
    assert.match(result.stdout, /\{"data":\{"type":"Application","attributes":\{"applicationId":1,"organizationId":1,"name":"Shop"/);
    assert.match(result.stdout, /renamed to "Troubleshooting Credentials"/);
    assert.match(result.stdout, /deleted; it keeps working until/);
    assert.ok(!/pcs_/.test(result.stdout), 'the secret went to the file, not the terminal');
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  }
});
