// GET /openapi.json describes the public API and the operator API, and stays in step with the
// routes: every route the app registers is documented (or is one of the portal's routes listed
// below), and every documented operation exists as a route.
import { DASHBOARD_PAGES } from '../src/portal/ui.js';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { registeredRoutes } from '../src/ops/routes.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
/** Fastify's `:param` in OpenAPI's `{param}` form, and a trailing wildcard as `{path}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}').replace(/\/\*$/, '/{path}');

/**
 * Routes that are not part of the public or operator API: the developer portal's JSON API (its
 * web UI's private interface), the web UI's pages and files, and the gateway's catch-all (its
 * paths are the operator's gateway routes, defined at run time).
 */
function undocumented(method: string, url: string): boolean {
  if (url.startsWith('/portal/api')) return true;
  if (method === 'GET' && DASHBOARD_PAGES.includes(url)) return true;
  if (method === 'GET' && /^\/[^:*{}]*\.[a-z0-9]+$/i.test(url) && !url.startsWith('/.well-known/') && url !== '/openapi.json') return true;
  return url === '/*';
}

async function documentFromServer() {
  const res = await fetch(`${server.url}/openapi.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  return (await res.json()) as { openapi: string; servers: { url: string }[]; paths: Record<string, Record<string, unknown>>; components: any };
}

test('GET /openapi.json is an OpenAPI 3.1 document naming the issuer as its server', async () => {
  const doc = await documentFromServer();
  assert.equal(doc.openapi, '3.1.0');
  assert.equal(doc.servers[0]?.url, 'http://portcullis.test');
  for (const path of [
    '/oauth2/token',
    '/oauth2/revoke',
    '/oauth2/introspect',
    '/.well-known/jwks.json',
    '/me',
    '/{version}/{service}/me',
    '/delivery/retailmedia',
    '/healthz',
    '/readyz',
    '/metrics',
    '/admin/v1/organizations',
  ]) {
    assert.ok(doc.paths[path], `${path} is documented`);
  }
});

test('every public and operator route the app registers is in the document', async () => {
  const doc = await documentFromServer();
  const routes = registeredRoutes(server.app).filter((r) => r.method !== 'HEAD' && !undocumented(r.method, r.url));
  assert.ok(routes.length > 40, `routes seen: ${routes.length}`);
  const missing = routes.filter((r) => doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()] === undefined).map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(missing, [], 'routes without an operation in the OpenAPI document');
});

test('every documented operation is a route the app registered', async () => {
  const doc = await documentFromServer();
  const registered = new Set(registeredRoutes(server.app).map((r) => `${r.method} ${openApiPath(r.url)}`));
  const ghosts: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item).filter((m) => METHODS.includes(m))) {
      if (!registered.has(`${method.toUpperCase()} ${path}`)) ghosts.push(`${method.toUpperCase()} ${path}`);
    }
  }
  assert.deepEqual(ghosts, [], 'documented operations without a route');
});

test('every path parameter of the document is declared, and every $ref resolves', async () => {
  const doc = await documentFromServer();
  for (const [path, item] of Object.entries(doc.paths)) {
    const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    for (const [method, op] of Object.entries(item) as [string, any][]) {
      const declared = (op.parameters ?? [])
        .filter((p: any) => p.in === 'path')
        .map((p: any) => p.name)
        .sort();
      assert.deepEqual(declared, inPath, `${method.toUpperCase()} ${path}: path parameters`);
      assert.ok(op.responses && Object.keys(op.responses).length > 0, `${method.toUpperCase()} ${path}: responses`);
    }
  }
  const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1] as string);
  assert.ok(refs.length > 0);
  for (const name of refs) assert.ok(doc.components.schemas[name], `schema ${name} exists`);
});

test('the operator API is documented behind the operator token, the token endpoint behind client authentication', async () => {
  const doc = await documentFromServer();
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith('/admin/v1/')) continue;
    for (const op of Object.values(item) as any[]) assert.deepEqual(op.security, [{ operatorToken: [] }], path);
  }
  const token = doc.paths['/oauth2/token']?.post as any;
  assert.ok(token.requestBody.content['application/x-www-form-urlencoded']);
  assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['accessToken', 'clientBasic', 'metricsToken', 'operatorToken', 'staticToken']);
});
