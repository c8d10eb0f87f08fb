import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { acceptedCodings, builtFiles } from '../src/portal/ui.js';
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
});
