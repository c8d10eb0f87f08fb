import { UNAUTHORIZED_BODY } from '../http/bearer.js';
import { DECISION_PATH } from './decision.js';

/** A route as the operator API lists it (GET /admin/v1/gateway/routes). */
export interface NginxRoute {
  prefix: string;
  upstream: string;
}

export interface NginxOptions {
  /** Where nginx listens: HOST:PORT (or [IPv6]:PORT). */
  listen: string;
  /** The Portcullis server nginx asks for decisions and sends every other path to, such as http://127.0.0.1:8080. */
  portcullis: string;
  routes: NginxRoute[];
  /** How long nginx keeps a decision (seconds); revocation holds within this time. */
  decisionCacheSeconds: number;
}

/** The first line of the http-level part, so a reader can find what to paste. */
export const HTTP_PART_START = '# --- portcullis: http-level part (paste inside http { }) ---';
export const SERVER_PART_START = '# --- portcullis: server-level part (paste inside your server { }) ---';

const LISTEN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** The problem with a --listen value, or undefined. */
export function listenProblem(listen: string): string | undefined {
  const m = LISTEN.exec(listen);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return '--listen must be HOST:PORT, such as 127.0.0.1:8081 or [::1]:8081';
  return undefined;
}

// Characters that would need nginx quoting or variable escapes; such prefixes and upstream paths are refused, not quoted.
const NGINX_SPECIAL = /[\s;{}"'$\\#]/;

/** The routes nginx cannot express literally, with why; empty when all are fine. */
export function nginxRouteProblems(routes: NginxRoute[]): string[] {
  return routes
    .filter((r) => NGINX_SPECIAL.test(r.prefix) || NGINX_SPECIAL.test(new URL(r.upstream).pathname))
    .map((r) => `route ${r.prefix}: its prefix or upstream path holds a character nginx would read as syntax (space ; { } quotes $ \\ #)`);
}

function upstreamBlock(name: string, url: URL, keepalive: number, extra: string[] = []): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return [`upstream ${name} {`, `    server ${url.hostname}:${port};`, `    keepalive ${keepalive};`, ...extra.map((l) => `    ${l}`), '}'].join('\n');
}

/**
 * A complete nginx configuration (usable with `nginx -p DIR -c FILE`): each route's prefix
 * proxied to its upstream over keep-alive connections after an auth_request to the decision
 * endpoint, the caller's identity passed on from the decision's headers, decisions cached briefly
 * keyed on the Authorization header, the reference 401 body, and every other path sent to Portcullis.
 */
export function nginxConfig(opts: NginxOptions): string {
  const portcullis = new URL(opts.portcullis);
  const routes = [...opts.routes].sort((a, b) => b.prefix.length - a.prefix.length);
  const upstreams = routes.map((r, i) => upstreamBlock(`portcullis_route_${i + 1}`, new URL(r.upstream), 64));
  const http = [
    HTTP_PART_START,
    'proxy_cache_path decision_cache levels=1 keys_zone=portcullis_decisions:10m max_size=64m inactive=60s use_temp_path=off;',
    // Idle connections are closed here before Portcullis closes them (PORTCULLIS_KEEPALIVE_TIMEOUT, 60 s by default).
    upstreamBlock('portcullis_decision', portcullis, 32, ['keepalive_timeout 30s;']),
    ...upstreams,
    '# --- end of the http-level part ---',
  ];
  const ownHeaders = [
    'proxy_http_version 1.1;',
    'proxy_set_header Connection "";',
    'proxy_set_header Host $http_host;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    'proxy_set_header X-Forwarded-Host $http_host;',
  ];
  const server = [
    SERVER_PART_START,
    `location = /_portcullis_decision {`,
    '    internal;',
    `    proxy_pass http://portcullis_decision${DECISION_PATH};`,
    '    proxy_http_version 1.1;',
    '    proxy_set_header Connection "";',
    '    proxy_method GET;',
    '    proxy_pass_request_body off;',
    '    proxy_set_header Content-Length "";',
    '    proxy_set_header Content-Type "";',
    '    proxy_set_header X-Original-Method $request_method;',
    '    proxy_set_header X-Original-URI $request_uri;',
    '    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    // The same token, method and route get the same answer: cache it briefly, so a revocation holds within this time.
    '    proxy_cache portcullis_decisions;',
    '    proxy_cache_methods GET HEAD POST;',
    '    proxy_cache_key "$http_authorization|$request_method|$portcullis_route";',
    `    proxy_cache_valid 200 401 403 ${opts.decisionCacheSeconds}s;`,
    '    proxy_ignore_headers Cache-Control Expires Set-Cookie Vary;',
    // An expired decision is asked again by one request in the background while the others keep the
    // one they have for those few milliseconds, instead of every request at that moment asking Portcullis.
    '    proxy_cache_use_stale updating;',
    '    proxy_cache_background_update on;',
    // A hit then costs one read of the cached answer: its file stays open (nginx reopens it once the
    // cache entry is replaced, since the entry records which file it is).
    '    open_file_cache max=10000 inactive=60s;',
    '    open_file_cache_valid 60s;',
    '}',
    'location @portcullis_unauthorized {',
    '    default_type application/json;',
    '    add_header WWW-Authenticate \'Bearer realm="portcullis", error="invalid_token"\' always;',
    '    add_header Cache-Control no-store always;',
    `    return 401 '${UNAUTHORIZED_BODY}';`,
    '}',
    'location @portcullis_forbidden {',
    '    default_type application/json;',
    '    add_header WWW-Authenticate $portcullis_www_authenticate always;',
    '    add_header Cache-Control no-store always;',
    `    return 403 '{"Status Message":"Forbidden"}';`,
    '}',
  ];
  routes.forEach((route, i) => {
    const upstream = new URL(route.upstream);
    const base = upstream.pathname.replace(/\/$/, '');
    const body = [
      `    set $portcullis_route ${route.prefix};`,
      '    auth_request /_portcullis_decision;',
      '    auth_request_set $portcullis_application $upstream_http_x_portcullis_application;',
      '    auth_request_set $portcullis_organization $upstream_http_x_portcullis_organization;',
      '    auth_request_set $portcullis_client $upstream_http_x_portcullis_client;',
      '    auth_request_set $portcullis_scopes $upstream_http_x_portcullis_scopes;',
      '    auth_request_set $portcullis_www_authenticate $upstream_http_www_authenticate;',
      '    error_page 401 = @portcullis_unauthorized;',
      '    error_page 403 = @portcullis_forbidden;',
      // The token stays here, the portal's CSRF header too; the identity replaces anything the client sent under those names.
      '    proxy_set_header Authorization "";',
      '    proxy_set_header X-CSRF-Token "";',
      '    proxy_set_header X-Portcullis-Application $portcullis_application;',
      '    proxy_set_header X-Portcullis-Organization $portcullis_organization;',
      '    proxy_set_header X-Portcullis-Client $portcullis_client;',
      '    proxy_set_header X-Portcullis-Scopes $portcullis_scopes;',
      '    proxy_http_version 1.1;',
      '    proxy_set_header Connection "";',
      `    proxy_set_header Host ${upstream.host};`,
      '    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
      '    proxy_set_header X-Forwarded-Proto $scheme;',
      '    proxy_set_header X-Forwarded-Host $http_host;',
      ...(upstream.protocol === 'https:' ? ['    proxy_ssl_server_name on;', `    proxy_ssl_name ${upstream.hostname};`] : []),
    ];
    const name = `portcullis_route_${i + 1}`;
    server.push(`# ${route.prefix} -> ${route.upstream}`);
    server.push(`location = ${route.prefix} {`, ...body, `    proxy_pass ${upstream.protocol}//${name}${base || '/'};`, '}');
    server.push(`location ^~ ${route.prefix}/ {`, ...body, `    proxy_pass ${upstream.protocol}//${name}${base}/;`, '}');
  });
  server.push('# Everything else (token endpoint, JWKS, portal, operator API) is Portcullis itself.');
  server.push('location / {', `    proxy_pass http://portcullis_decision;`, ...ownHeaders.map((l) => `    ${l}`), '}');
  server.push('# --- end of the server-level part ---');

  const indent = (lines: string[], by: string) => lines.flatMap((l) => l.split('\n')).map((l) => (l === '' ? l : by + l));
  return [
    '# nginx configuration generated by `portcullis nginx-config`; run with: nginx -p DIR -c THIS_FILE',
    '# (nginx creates its temporary and cache directories in DIR; every path below is relative to it).',
    'worker_processes auto;',
    'pid nginx.pid;',
    'error_log stderr warn;',
    'events { worker_connections 4096; }',
    'http {',
    '    access_log off;',
    '    client_body_temp_path client_body_temp;',
    '    proxy_temp_path proxy_temp;',
    '    fastcgi_temp_path fastcgi_temp;',
    '    uwsgi_temp_path uwsgi_temp;',
    '    scgi_temp_path scgi_temp;',
    '    keepalive_requests 10000;',
    ...indent(http, '    '),
    '    server {',
    `        listen ${opts.listen};`,
    ...indent(server, '        '),
    '    }',
    '}',
    '',
  ].join('\n');
}
