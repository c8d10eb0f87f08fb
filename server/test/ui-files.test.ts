import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { useApiErrors } from '../src/http/errors.js';
import { acceptedCodings, builtFiles, dashboardRoutes } from '../src/portal/ui.js';
import { tempDir } from './helpers/server.js';

describe('the web UI files', () => {
  test('Accept-Encoding: named codings with q > 0, x-gzip as gzip, * for the rest unless refused', () => {
    const codings = (header?: string) => [...acceptedCodings(header)].sort();
    assert.deepEqual(codings(undefined), []);
    assert.deepEqual(codings(''), []);
    assert.deepEqual(codings('gzip, deflate, br'), ['br', 'deflate', 'gzip']);
    assert.deepEqual(codings('br;q=0, gzip;q=0.5'), ['gzip']);
    assert.deepEqual(codings('BR ; Q=1.0'), ['br']);
    assert.deepEqual(codings('x-gzip'), ['gzip']);
    assert.deepEqual(codings('*'), ['br', 'gzip']);
    assert.deepEqual(codings('*, br;q=0'), ['gzip']);
    assert.deepEqual(codings('*;q=0'), []);
    assert.deepEqual(codings('identity'), ['identity']);
  });

  test('every built file but index.html is listed by URL, with its compressed copies first and its type', () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'index.html'), '<html></html>');
    writeFileSync(path.join(dir, 'index.html.gz'), 'x');
    writeFileSync(path.join(dir, 'favicon.svg'), '<svg/>');
    writeFileSync(path.join(dir, 'odd:name*.txt'), 'a route parameter and a wildcard');
    mkdirSync(path.join(dir, '.vite'));
    writeFileSync(path.join(dir, '.vite', 'manifest.json'), '{}');
    writeFileSync(path.join(dir, '.hidden.js'), '');
    writeFileSync(path.join(dir, 'assets', 'app-1a2b.js'), 'console.log(1)');
    writeFileSync(path.join(dir, 'assets', 'app-1a2b.js.br'), 'b');
    writeFileSync(path.join(dir, 'assets', 'app-1a2b.js.gz'), 'gz');
    const files = builtFiles(dir);
    assert.deepEqual([...files.keys()].sort(), ['/assets/app-1a2b.js', '/favicon.svg']);
    const js = files.get('/assets/app-1a2b.js');
    assert.equal(js?.type, 'text/javascript; charset=utf-8');
    assert.equal(js?.immutable, true);
    assert.deepEqual(
      js?.encodings.map((e) => [e.coding, e.size]),
      [
        ['br', 1],
        ['gzip', 2],
        ['identity', 14],
      ],
    );
    const icon = files.get('/favicon.svg');
    assert.equal(icon?.type, 'image/svg+xml');
    assert.equal(icon?.immutable, false);
    assert.deepEqual(
      icon?.encodings.map((e) => e.coding),
      ['identity'],
    );
  });

  test('a file removed after start is a JSON 404, and the files left are still served', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'index.html'), '<div id="root"></div>');
    writeFileSync(path.join(dir, 'assets', 'a.js'), 'a()');
    writeFileSync(path.join(dir, 'assets', 'b.css'), 'b{}');
    const app = Fastify();
    useApiErrors(app);
    await app.register(dashboardRoutes, { dir });
    try {
      rmSync(path.join(dir, 'assets', 'a.js'));
      const gone = await app.inject({ method: 'GET', url: '/assets/a.js' });
      assert.equal(gone.statusCode, 404);
      assert.equal(Number(gone.headers['content-length']), Buffer.byteLength(gone.body));
      assert.ok(gone.json().errors);
      const css = await app.inject({ method: 'GET', url: '/assets/b.css' });
      assert.equal(css.statusCode, 200);
      assert.equal(css.body, 'b{}');
      assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    } finally {
      await app.close();
    }
  });
});
