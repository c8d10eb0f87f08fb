import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund'], { cwd, timeout: 120_000 });

/** A consumer's strict TypeScript file: every entry point, every option a README example uses. */
const CONSUMER = `
import { createAuthorizedFetch, createTokenProvider, createVerifier, refusalFor, TokenEndpointError, TokenVerificationError, type VerifiedToken } from '@portcullis/client';
import { expressBearerAuth, requireScopes } from '@portcullis/client/express';
import express from 'express';

const tokens = createTokenProvider({ issuer: 'https://auth.example.com', clientId: 'id', clientSecret: 'secret', deadlineMs: 5000, scope: ['reports'] });
const api = createAuthorizedFetch(tokens);
const verifier = createVerifier({ issuer: 'https://auth.example.com', audience: 'https://auth.example.com', revocations: { intervalSeconds: 5 } });
const app = express();
app.use('/api', expressBearerAuth(verifier, { onRefused: (err: TokenVerificationError) => console.log(err.reason, err.status) }));
app.get('/api/reports', requireScopes('reports'), (req, res) => {
  const caller: VerifiedToken | undefined = req.portcullis;
  res.json({ client: caller?.clientId, scopes: caller?.scopes.join(' ') });
});

export async function call(): Promise<number> {
  try {
    const response = await api('https://api.example.com/reports');
    return response.status;
  } catch (err) {
    if (err instanceof TokenEndpointError && err.code === 'deadline_exceeded') return 0;
    throw err;
  }
}
export const answer: 401 | 403 | 503 = refusalFor(new TokenVerificationError('scope', 'no', { scopes: ['reports'] })).status;
// @ts-expect-error the verifier needs an audience: the types are real, not any
createVerifier({ issuer: 'https://auth.example.com' });
verifier.close();
`;

test('npm pack output installs offline in an empty project outside the repository, imports, and type-checks under --strict', async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'portcullis-package-'));
  try {
    const packed = path.join(work, 'packed');
    const project = path.join(work, 'consumer');
    await run('mkdir', ['-p', packed, project]);
    // The artifact of the current build (npm run build made it); the prepack build is not re-run here.
    await npm(['pack', '-w', 'client', '--ignore-scripts', '--pack-destination', packed], ROOT);
    // jose, the one dependency, comes from this repository's install: the test needs no registry.
    await npm(['pack', path.join(ROOT, 'node_modules/jose'), '--pack-destination', packed], work);
    const tarballs = readdirSync(packed);
    const client = tarballs.find((f) => f.startsWith('portcullis-client-'));
    const jose = tarballs.find((f) => f.startsWith('jose-'));
    assert.ok(client && jose, tarballs.join(', '));

    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await npm(['install', '--offline', path.join(packed, jose), path.join(packed, client)], project);
    const listed = readdirSync(path.join(project, 'node_modules/@portcullis/client'));
    assert.deepEqual(listed.sort(), ['README.md', 'dist', 'package.json', 'src']);

    const imported = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import('@portcullis/client'); const e = await import('@portcullis/client/express'); const f = await import('@portcullis/client/fastify');
         console.log(JSON.stringify([typeof m.createTokenProvider, typeof m.createAuthorizedFetch, typeof m.createVerifier, typeof e.expressBearerAuth, typeof f.fastifyBearerAuth, typeof f.requireScopes]));`,
      ],
      { cwd: project },
    );
    assert.deepEqual(JSON.parse(imported.stdout), Array(6).fill('function'));

    writeFileSync(path.join(project, 'consumer.ts'), CONSUMER);
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          esModuleInterop: true,
          // A consumer installs @types/node and @types/express; here they come from this repository's install.
          typeRoots: [path.join(ROOT, 'node_modules/@types')],
          types: ['node'],
          paths: { express: [path.join(ROOT, 'node_modules/@types/express/index.d.ts')] },
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    const checked = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project }).catch((err: { stdout?: string; stderr?: string }) => err);
    assert.equal(`${checked.stdout ?? ''}${checked.stderr ?? ''}`.trim(), '', 'no type errors');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
