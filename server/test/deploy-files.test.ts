import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestServer } from './helpers/server.js';

/** Runs the health-check command without blocking this process, whose event loop serves the test server. */
function runCheck(args: string[], port: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, args, { env: { ...process.env, PORT: port }, timeout: 10_000 });
    child.on('exit', (code) => resolve(code));
  });
}

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = path.join(ROOT, 'deploy');
const read = (file: string) => readFileSync(path.join(DEPLOY, file), 'utf8');
const UNITS = ['portcullis.service', 'portcullis-backup.service', 'portcullis-backup.timer'];
const FILES = [...UNITS, 'portcullis.env.example', 'Containerfile', 'kubernetes/portcullis.yaml'];
// Read by Node or the launcher rather than by config.ts.
const NOT_IN_CONFIG = new Set(['NODE_ENV', 'UV_THREADPOOL_SIZE']);

function systemdAnalyze(): string | undefined {
  for (const candidate of ['/usr/bin/systemd-analyze', '/bin/systemd-analyze']) if (existsSync(candidate)) return candidate;
  return undefined;
}

describe('deployment files', () => {
  test('the systemd units pass systemd-analyze verify', (t) => {
    const analyze = systemdAnalyze();
    if (!analyze) {
      if (process.env.CI === 'true') assert.fail('systemd-analyze is needed (apt package systemd)');
      t.skip('systemd-analyze is not installed (apt package systemd)');
      return;
    }
    const result = spawnSync(analyze, ['verify', ...UNITS.map((u) => path.join(DEPLOY, u))], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr.trim(), '', 'no warnings');
  });

  test('every variable the deployment files set is one the server reads', () => {
    const config = readFileSync(path.join(ROOT, 'server/src/config.ts'), 'utf8');
    const reads = (name: string) =>
      NOT_IN_CONFIG.has(name) ||
      new RegExp(`\\b${name}\\b`).test(config) ||
      (name.endsWith('_FILE') && config.includes(`secretKey(env, '${name.slice(0, -5)}')`));
    for (const file of FILES) {
      const names = new Set(
        [...read(file).matchAll(/(?:^|[\s"=[{-])((?:PORTCULLIS|LOG|DATABASE|REDIS|NODE|UV)_[A-Z_]+|HOST|PORT)(?==|"?:|\b)/gm)].map((m) => m[1] as string),
      );
      assert.ok(names.size > 0 || file.endsWith('.timer'), `${file} names no variable`);
      for (const name of names) assert.ok(reads(name), `${file} sets ${name}, which the server does not read`);
    }
  });

  test("the probes' paths and the image's HEALTHCHECK command answer on a real server", async () => {
    const manifest = read('kubernetes/portcullis.yaml');
    const paths = [...manifest.matchAll(/httpGet: \{ path: (\/\S+),/g)].map((m) => m[1] as string);
    assert.deepEqual([...new Set(paths)].sort(), ['/healthz', '/readyz']);
    const healthcheck = /HEALTHCHECK[^\n]*\\\n\s+CMD (\[.*\])/.exec(read('Containerfile'))?.[1];
    assert.ok(healthcheck, 'the Containerfile has a HEALTHCHECK in exec form');
    const [command, ...args] = JSON.parse(healthcheck) as string[];
    assert.equal(command, 'node');

    const server = await startTestServer();
    try {
      for (const probe of paths) assert.equal((await fetch(server.url + probe)).status, 200, probe);
      const port = new URL(server.url).port;
      assert.equal(await runCheck(args, port), 0);
    } finally {
      await server.stop();
    }
    // Nothing listens there any more: the same check must report unhealthy.
    assert.equal(await runCheck(args, '1'), 1);
  });

  test('every launcher runs Node with the flags on the first line of the portcullis command', () => {
    const shebang = readFileSync(path.join(ROOT, 'server/bin/portcullis.cjs'), 'utf8').split('\n', 1)[0] ?? '';
    const match = /^#!\/usr\/bin\/env -S node (.+)$/.exec(shebang);
    assert.ok(match, `the command names its Node flags: ${shebang}`);
    const flags = (match[1] as string).split(' ');
    for (const flag of ['--max-semi-space-size=2', '--heap-growing-percent=10', '--no-parallel-scavenge', '--compact-on-every-full-gc']) {
      assert.ok(flags.includes(flag), `${flag} in ${shebang}`);
    }
    const words = (line: string) => line.split(/[\s",[\]]+/).filter(Boolean);
    const launchers: Record<string, string[]> = {
      'npm start': words(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start),
      'portcullis.service': words(/^ExecStart=(.*)$/m.exec(read('portcullis.service'))?.[1] ?? ''),
      Containerfile: words(/^ENTRYPOINT (.*)$/m.exec(read('Containerfile'))?.[1] ?? ''),
    };
    for (const [name, command] of Object.entries(launchers)) {
      const node = command.findIndex((w) => w === 'node' || w.endsWith('/node'));
      const script = command.findIndex((w) => w.endsWith('server/bin/portcullis.cjs'));
      assert.ok(node !== -1 && script > node, `${name} runs the command with node: ${command.join(' ')}`);
      assert.deepEqual(command.slice(node + 1, script), flags, `${name} passes the command's flags`);
    }
  });

  test('the image runs as a non-root user and the pods may not become root', () => {
    const containerfile = read('Containerfile');
    const user = [...containerfile.matchAll(/^USER (\S+)/gm)].at(-1)?.[1];
    assert.ok(user && !/^(0|root)(:|$)/.test(user), `final USER is ${user}`);
    const manifest = read('kubernetes/portcullis.yaml');
    assert.match(manifest, /runAsNonRoot: true/);
    assert.match(manifest, /allowPrivilegeEscalation: false/);
    assert.doesNotMatch(manifest, /name: PORTCULLIS_MASTER_KEY\n/, 'the master key comes from a mounted Secret file, not a plain variable');
  });
});
