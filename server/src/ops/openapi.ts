/**
 * The OpenAPI 3.1 document of the public API and the operator API, served at GET /openapi.json.
 * test/openapi.test.ts keeps it in step with the routes the app registers: a route added
 * without a path here (or a path here without its route) fails the build.
 */

type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ 'application/json': { schema } });
const answer = (description: string, schema?: Json, headers?: Json) => ({
  description,
  ...(schema ? { content: json(schema) } : {}),
  ...(headers ? { headers } : {}),
});
const pathParam = (name: string, description: string, schema: Json = { type: 'integer', minimum: 1 }) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema,
});
const query = (name: string, description: string, schema: Json = { type: 'string' }, required = false) => ({
  name,
  in: 'query',
  required,
  description,
  schema,
});

const ORG = pathParam('orgId', 'organization id');
const APP = pathParam('appId', 'application id (the application_id)');
const CLIENT = pathParam('clientId', 'client_id of the credential', { type: 'string' });
const PARTNER = pathParam('partnerId', 'partner id (criteo-partner-id)');

const operatorErrors = {
  '400': answer('The request is not valid', ref('ApiErrors')),
  '401': answer('No or a wrong operator token', ref('ApiErrors')),
  '404': answer('Not found', ref('ApiErrors')),
  '503': answer('The database is unreachable; retry after Retry-After seconds', ref('ApiErrors')),
};

/** An operator API operation: bearer operator token, JSON in and out, errors in the reference shape. */
function operator(summary: string, ok: Json, extra: { status?: string; body?: Json; parameters?: unknown[]; description?: string; more?: Json } = {}): Json {
  return {
    tags: ['operator'],
    summary,
    ...(extra.description ? { description: extra.description } : {}),
    security: [{ operatorToken: [] }],
    ...(extra.parameters ? { parameters: extra.parameters } : {}),
    ...(extra.body ? { requestBody: { required: true, content: json(extra.body) } } : {}),
    responses: { [extra.status ?? '200']: answer('Success', ok), ...operatorErrors, ...(extra.more ?? {}) },
  };
}

const bearerProtected = (summary: string, ok: Json, parameters: unknown[] = []) => ({
  tags: ['resource'],
  summary,
  security: [{ accessToken: [] }],
  ...(parameters.length ? { parameters } : {}),
  responses: { '200': answer('The calling application', ok), '401': answer('No, or an invalid, expired or revoked token', ref('Unauthorized')) },
});

const identityHeaders = {
  'x-portcullis-application': { schema: { type: 'string' }, description: 'application_id of the caller' },
  'x-portcullis-organization': { schema: { type: 'string' }, description: 'organization_id of the caller' },
  'x-portcullis-client': { schema: { type: 'string' }, description: 'client_id of the caller' },
  'x-portcullis-scopes': { schema: { type: 'string' }, description: 'the token’s scopes, space-separated' },
};

/** The decision endpoint, for every method a proxy forwards. */
function decision(withPath: boolean): Record<string, Json> {
  const operation = (method: string) => ({
    tags: ['resource'],
    summary: `Access decision for a proxied ${method} (nginx auth_request, Envoy ext_authz)`,
    description:
      'The original method and URI come from X-Original-Method and X-Original-URI (nginx), or from this request’s method and the path after /decision (Envoy). The gateway routes’ rules decide.',
    security: [{ accessToken: [] }],
    parameters: [
      { name: 'X-Original-Method', in: 'header', required: false, schema: { type: 'string' } },
      { name: 'X-Original-URI', in: 'header', required: false, schema: { type: 'string' } },
      ...(withPath ? [pathParam('path', 'the original path, for Envoy’s path_prefix', { type: 'string' })] : []),
    ],
    responses: {
      '200': { description: 'Allowed; the caller’s identity is in the headers', headers: identityHeaders },
      '401': answer('No, or an invalid, expired or revoked token', ref('Unauthorized')),
      '403': answer('insufficient_scope, or no gateway route declares the path', anyObject),
    },
  });
  return Object.fromEntries(['get', 'post', 'put', 'patch', 'delete', 'options'].map((m) => [m, operation(m.toUpperCase())]));
}

/** An RFC 6749 form endpoint authenticated with client_secret_post or client_secret_basic. */
function oauthForm(summary: string, fields: Json, required: string[], ok: Json, description: string): Json {
  return {
    tags: ['oauth'],
    summary,
    description,
    security: [{ clientBasic: [] }, {}],
    requestBody: {
      required: true,
      content: {
        'application/x-www-form-urlencoded': {
          schema: {
            type: 'object',
            required,
            properties: {
              ...fields,
              client_id: { type: 'string', description: 'client_secret_post (or use HTTP Basic)' },
              client_secret: { type: 'string', description: 'client_secret_post (or use HTTP Basic)' },
            },
          },
        },
      },
    },
    responses: {
      '200': answer('Success', ok),
      '400': answer('invalid_request, unsupported_grant_type or invalid_scope', ref('OAuthError')),
      '401': answer('invalid_client (with WWW-Authenticate when HTTP Basic was used)', ref('OAuthError')),
      '413': answer('The body is larger than 16 KiB', ref('OAuthError')),
      '429': answer('Too many requests or failed authentications; see Retry-After', ref('OAuthError')),
      '503': answer('temporarily_unavailable: the credential store is unreachable', ref('OAuthError')),
    },
  };
}

const str = { type: 'string' };
const nullableStr = { type: ['string', 'null'] };
const int = { type: 'integer' };
const time = { type: 'string', format: 'date-time' };
const nullableTime = { type: ['string', 'null'], format: 'date-time' };
const obj = (properties: Json, required: string[] = Object.keys(properties)) => ({ type: 'object', required, properties });

const schemas: Json = {
  OAuthError: obj({ error: str, error_description: str }),
  Unauthorized: obj({ 'Status Message': { const: 'Unauthorized' } }),
  ApiErrors: obj({
    errors: { type: 'array', items: obj({ traceId: str, type: str, code: str, title: str, detail: str }) },
  }),
  TokenResponse: obj(
    {
      access_token: { type: 'string', description: 'a signed JWT (RFC 9068)' },
      token_type: { const: 'Bearer' },
      expires_in: { type: 'integer', example: 900 },
      scope: { type: 'string', description: 'the granted scopes, space-separated, when there are any' },
    },
    ['access_token', 'token_type', 'expires_in'],
  ),
  Introspection: {
    type: 'object',
    required: ['active'],
    properties: { active: { type: 'boolean' }, token_type: str, client_id: str, scope: str, exp: int, iat: int, sub: str, aud: str, iss: str, jti: str },
  },
  Me: obj({
    data: obj({
      type: { const: 'Application' },
      attributes: obj(
        {
          applicationId: int,
          organizationId: int,
          name: str,
          description: nullableStr,
          criteoService: nullableStr,
          clientId: { type: 'string', description: 'only on /me' },
          scopes: { type: 'array', items: str, description: 'only on /me' },
        },
        ['applicationId', 'organizationId', 'name', 'description', 'criteoService'],
      ),
    }),
    errors: { type: 'array' },
    warnings: { type: 'array' },
  }),
  Organization: obj({ id: int, name: str, created_at: time }),
  Application: obj({ id: int, organization_id: int, name: str, description: nullableStr, scopes: { type: 'array', items: str }, created_at: time }),
  Credential: obj(
    {
      client_id: str,
      name: str,
      application_id: int,
      status: { enum: ['active', 'deactivating'] },
      created_at: time,
      last_used_at: nullableTime,
      deactivates_at: nullableTime,
    },
    ['client_id', 'name', 'status', 'created_at'],
  ),
  NewCredential: obj({
    client_id: str,
    client_secret: { type: 'string', description: 'pcs_…; shown only in this answer' },
    name: str,
    application_id: int,
    status: { const: 'active' },
    created_at: time,
  }),
  SigningKey: obj({
    kid: str,
    alg: { enum: ['RS256', 'ES256', 'EdDSA'] },
    status: { enum: ['pending', 'active', 'retiring', 'expired'] },
    created_at: time,
    activates_at: time,
  }),
  AuditEvent: obj({
    id: int,
    occurred_at: time,
    actor: str,
    ip: nullableStr,
    action: str,
    target_type: str,
    target_id: str,
    organization_id: { type: ['integer', 'null'] },
    details: {},
  }),
  PortalUser: obj({
    id: int,
    email: str,
    created_at: time,
    email_verified_at: nullableTime,
    disabled_at: nullableTime,
    operator_since: nullableTime,
  }),
  AuthFailure: obj({
    day: { type: 'string', format: 'date' },
    client_id: nullableStr,
    reason: { enum: ['unknown_client', 'bad_secret', 'deactivated'] },
    count: int,
  }),
  Partner: {
    type: 'object',
    required: ['id', 'name', 'require_token', 'rate_limit_per_minute', 'required_scope', 'application_ids'],
    properties: {
      id: int,
      name: str,
      require_token: { type: 'boolean' },
      rate_limit_per_minute: { type: ['integer', 'null'] },
      required_scope: { type: 'string', description: 'the scope a dynamic token needs for this partner (retail-media unless set)' },
      application_ids: { type: 'array', items: int },
    },
  },
  StaticToken: obj({
    id: int,
    name: str,
    partner_id: int,
    status: { enum: ['active', 'expired'] },
    created_at: time,
    expires_at: nullableTime,
    last_used_at: nullableTime,
  }),
  NewStaticToken: {
    type: 'object',
    required: ['id', 'token', 'name', 'partner_id', 'status', 'created_at'],
    properties: {
      id: int,
      token: { type: 'string', description: 'pct_…; shown only in this answer' },
      name: str,
      partner_id: int,
      status: str,
      created_at: time,
      expires_at: nullableTime,
      last_used_at: nullableTime,
    },
  },
  Placement: {
    type: 'object',
    required: ['format'],
    properties: { format: str, products: { type: 'array', items: { type: 'object' } }, rendering: { type: 'object' } },
  },
  Api: {
    type: 'object',
    required: ['identifier', 'name'],
    properties: {
      id: { type: 'integer', readOnly: true },
      identifier: { type: 'string', format: 'uri', description: 'absolute http(s) URI without fragment; the aud of its tokens' },
      name: str,
      scopes: { type: 'array', items: str },
      self_service_scopes: {
        type: 'array',
        items: str,
        description: 'the scopes an organization owner or admin may grant its own apps in the developer portal (default none)',
      },
      created_at: { type: 'string', format: 'date-time', readOnly: true },
    },
  },
  DefaultAudience: {
    type: 'object',
    properties: { audience: str, self_service_scopes: { type: 'array', items: str } },
  },
  ApiGrant: {
    type: 'object',
    properties: { api_id: { type: 'integer' }, identifier: str, name: str, scopes: { type: 'array', items: str } },
  },
  GatewayRoute: {
    type: 'object',
    required: ['prefix', 'upstream'],
    properties: {
      id: int,
      prefix: str,
      upstream: { type: 'string', format: 'uri' },
      scopes: { type: 'array', items: str },
      timeout_ms: int,
      source: { enum: ['api', 'file'] },
      rules: { type: 'array', items: obj({ methods: { type: 'array', items: str }, scopes: { type: 'array', items: str } }) },
      rate_limit_per_minute: { type: ['integer', 'null'] },
      cors: {
        type: ['object', 'null'],
        properties: {
          origins: { type: 'array', items: str },
          headers: { type: 'array', items: str },
          expose_headers: { type: 'array', items: str },
          credentials: { type: 'boolean' },
          max_age_seconds: int,
        },
      },
      audience: { type: ['string', 'null'] },
    },
  },
  RateLimit: obj({ per_minute: { type: ['integer', 'null'] } }),
};

const anyObject = { type: 'object' };
const listOf = (name: string) => ({ type: 'array', items: ref(name) });
const BEACON_PARAMS = [
  pathParam('impression', 'the signed impression (one per delivery response, with its expiry)', str),
  pathParam('beacon', 'the signed beacon', str),
];
const BEACON_ANSWERS = {
  '204': { description: 'Counted, or a replay (counted before for this impression)' },
  '404': answer('Not a beacon this server signed', ref('ApiErrors')),
  '410': answer('The impression has expired (code beacon-expired)', ref('ApiErrors')),
};
const PAGE_PARAMS = [
  { name: 'limit', in: 'query', required: false, description: 'at most this many items (default 100, at most 1000)', schema: { type: 'integer', minimum: 1 } },
  {
    name: 'cursor',
    in: 'query',
    required: false,
    description: 'the X-Next-Cursor header of the previous page: items after it',
    schema: { type: 'integer', minimum: 1 },
  },
];

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'a retry with the same key and operator token within 24 hours gets the first answer again (Idempotent-Replayed: true)',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};

/** Every operator POST accepts Idempotency-Key (admin/idempotency.ts applies it to all of them). */
function withIdempotencyKeys(paths: Record<string, Record<string, Json>>): Record<string, Record<string, Json>> {
  for (const [path, operations] of Object.entries(paths)) {
    const post = operations.post as { parameters?: unknown[]; responses: Record<string, unknown> } | undefined;
    if (!path.startsWith('/admin/v1/') || !post) continue;
    post.parameters = [...(post.parameters ?? []), IDEMPOTENCY_KEY];
    post.responses['409'] ??= answer('idempotency-key-in-use or idempotency-outcome-unknown (or the operation’s own conflict)', ref('ApiErrors'));
    post.responses['422'] = answer('idempotency-key-reused: the key was sent with another request', ref('ApiErrors'));
  }
  return paths;
}

export function openApiDocument(serverUrl: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Portcullis',
      version: '0.1.0',
      description:
        'OAuth 2.0 client-credentials token service, token verification, the retail-media delivery API and the operator API. The developer portal’s own JSON API (/portal/api) is used by its web UI and not described here; gateway routes are defined by the operator at run time.',
    },
    servers: [{ url: serverUrl }],
    tags: [
      { name: 'oauth', description: 'Tokens (RFC 6749 §4.4, RFC 7009, RFC 7662), keys and metadata' },
      { name: 'resource', description: 'Endpoints that check a bearer token' },
      { name: 'operations', description: 'Health, readiness, metrics and this document' },
      { name: 'operator', description: 'The operator API, with Authorization: Bearer $PORTCULLIS_ADMIN_TOKEN' },
    ],
    components: {
      securitySchemes: {
        clientBasic: { type: 'http', scheme: 'basic', description: 'client_secret_basic: client_id and client_secret' },
        accessToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'an access token from POST /oauth2/token' },
        staticToken: { type: 'http', scheme: 'bearer', description: 'a partner’s static token (pct_…)' },
        operatorToken: { type: 'http', scheme: 'bearer', description: 'PORTCULLIS_ADMIN_TOKEN' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'PORTCULLIS_METRICS_TOKEN, when it is set' },
      },
      schemas,
    },
    paths: withIdempotencyKeys({
      '/oauth2/token': {
        post: oauthForm(
          'Get an access token (client credentials)',
          {
            grant_type: { const: 'client_credentials' },
            scope: { type: 'string', description: 'space-separated subset of the application’s scopes (of its grant of the API, with resource)' },
            resource: {
              type: 'string',
              format: 'uri',
              description:
                'RFC 8707: the identifier of a registered API the application is granted; the token’s aud is then that identifier (else invalid_target)',
            },
          },
          ['grant_type'],
          ref('TokenResponse'),
          'Form body only; a parameter sent twice is invalid_request. The answer carries Cache-Control: no-store.',
        ),
      },
      '/oauth2/revoke': {
        post: oauthForm(
          'Revoke one of the client’s own access tokens (RFC 7009)',
          { token: str },
          ['token'],
          anyObject,
          'Always 200 for an authenticated client, whatever the token.',
        ),
      },
      '/oauth2/introspect': {
        post: oauthForm(
          'Introspect one of the client’s own access tokens (RFC 7662)',
          { token: str },
          ['token'],
          ref('Introspection'),
          'Tokens of other clients are reported as not active.',
        ),
      },
      '/oauth2/revocations': {
        get: {
          tags: ['oauth'],
          summary: 'The revocation feed: revoked jtis and credentials revoked now, for resource servers',
          description:
            'Public, like the JWKS. Poll with If-None-Match: 304 when unchanged. tokens: refuse a token with that jti until exp; credentials: refuse every token of client_id issued at or before revoked_at, until exp (seconds since the epoch).',
          parameters: [{ name: 'If-None-Match', in: 'header', required: false, schema: str }],
          responses: {
            '200': answer('The current list', anyObject, { ETag: { schema: str } }),
            '304': answer('Unchanged since the ETag sent'),
          },
        },
      },
      '/.well-known/jwks.json': {
        get: {
          tags: ['oauth'],
          summary: 'The published public keys (RFC 7517)',
          responses: { '200': { description: 'JWK set', content: { 'application/jwk-set+json': { schema: anyObject } } } },
        },
      },
      '/.well-known/oauth-authorization-server': {
        get: { tags: ['oauth'], summary: 'Authorization server metadata (RFC 8414)', responses: { '200': answer('Metadata', anyObject) } },
      },
      '/me': { get: bearerProtected('The calling application, with its client_id and scopes', ref('Me')) },
      '/{version}/{service}/me': {
        get: bearerProtected('The calling application, in the reference product’s shape', ref('Me'), [
          pathParam('version', 'API version: YYYY-MM or preview', { type: 'string', pattern: '^(\\d{4}-\\d{2}|preview)$' }),
          pathParam('service', 'service name, e.g. retail-media', { type: 'string', pattern: '^[a-z][a-z0-9-]{0,63}$' }),
        ]),
      },
      '/decision': decision(false),
      '/decision/{path}': decision(true),
      '/delivery/retailmedia': {
        get: {
          tags: ['resource'],
          summary: 'Retail-media delivery: the partner’s placements for a page event',
          description:
            'Parameters come from the query string or a form-urlencoded GET body (a repeat is a 400). A token is needed when the partner requires one, and is always checked when sent.',
          security: [{ accessToken: [] }, { staticToken: [] }, {}],
          parameters: [
            query('criteo-partner-id', 'partner id', { type: 'integer' }, true),
            query('retailer-visitor-id', 'the shopper’s visitor id', str, true),
            query('event-type', 'viewHome, viewSearchResult, viewCategory, viewItem, viewSearchBar, …', str, true),
            query('page-id', 'the page', str, true),
            query('keywords', 'for viewSearchResult'),
            query('category', 'for viewCategory'),
            query('page-uid', 'for viewSearchBar'),
            query('item', 'for viewItem'),
            query('customer-id', 'optional'),
            query('environment', 'optional'),
            query('page-number', 'optional', int),
            query('list-size', 'optional', int),
          ],
          responses: {
            '200': answer('Placements with signed beacon URLs', anyObject, {
              'x-ratelimit-limit': { schema: int },
              'x-ratelimit-remaining': { schema: int },
              'x-ratelimit-reset': { schema: int },
            }),
            '400': answer('A missing, repeated or invalid parameter', ref('ApiErrors')),
            '401': answer('A token is needed, or the one sent is not valid for this partner', ref('Unauthorized')),
            '403': answer('A dynamic token without the partner’s scope (retail-media unless the partner names another): insufficient_scope', anyObject),
            '429': answer('Over the rate limit; see Retry-After', anyObject),
          },
        },
      },
      '/delivery/beacons/{impression}/{beacon}': {
        get: {
          tags: ['resource'],
          summary: 'Count a load, view or click beacon handed out by the delivery API (once per impression; a replay is 204 and counts nothing)',
          parameters: BEACON_PARAMS,
          responses: BEACON_ANSWERS,
        },
        post: {
          tags: ['resource'],
          summary: 'Count a beacon (POST, as navigator.sendBeacon does)',
          parameters: BEACON_PARAMS,
          responses: BEACON_ANSWERS,
        },
      },
      '/healthz': {
        get: { tags: ['operations'], summary: 'Liveness', responses: { '200': answer('The process is alive', obj({ status: { const: 'ok' } })) } },
      },
      '/readyz': {
        get: {
          tags: ['operations'],
          summary: 'Readiness for load balancers: 200 while the node can serve, 503 when it cannot or is draining; each dependency in the body',
          responses: {
            '200': answer(
              'ready, or degraded (a dependency is away and the node serves from its caches)',
              obj({ status: { enum: ['ready', 'degraded'] }, database: anyObject, redis: anyObject, signing_key: str, caches: anyObject }, [
                'status',
                'database',
              ]),
            ),
            '503': answer('draining after SIGTERM, or unavailable (no signing key)', anyObject),
          },
        },
      },
      '/metrics': {
        get: {
          tags: ['operations'],
          summary: 'Prometheus metrics (text exposition format)',
          description: 'Served to direct loopback callers, or to any caller with PORTCULLIS_METRICS_TOKEN as a bearer token when that is set.',
          security: [{ metricsToken: [] }, {}],
          responses: {
            '200': { description: 'Metrics', content: { 'text/plain': { schema: str } } },
            '401': answer('PORTCULLIS_METRICS_TOKEN is set and was not sent', anyObject),
            '403': answer('Not a loopback caller and no metrics token configured', anyObject),
          },
        },
      },
      '/openapi.json': { get: { tags: ['operations'], summary: 'This document', responses: { '200': answer('OpenAPI 3.1', anyObject) } } },

      '/admin/v1/organizations': {
        get: operator('List organizations, a page at a time (X-Next-Cursor)', listOf('Organization'), { parameters: PAGE_PARAMS }),
        post: operator('Create an organization', ref('Organization'), { status: '201', body: obj({ name: str }) }),
      },
      '/admin/v1/organizations/{orgId}': { get: operator('Read an organization', ref('Organization'), { parameters: [ORG] }) },
      '/admin/v1/organizations/{orgId}/applications': {
        get: operator('List an organization’s applications, a page at a time (X-Next-Cursor)', listOf('Application'), { parameters: [ORG, ...PAGE_PARAMS] }),
        post: operator('Create an application', ref('Application'), {
          status: '201',
          parameters: [ORG],
          body: obj({ name: str, description: nullableStr, scopes: { type: 'array', items: str } }, ['name']),
        }),
      },
      '/admin/v1/applications/{appId}': {
        get: operator('Read an application', ref('Application'), { parameters: [APP] }),
        patch: operator('Change an application’s name, description or scopes', ref('Application'), {
          parameters: [APP],
          body: obj({ name: str, description: nullableStr, scopes: { type: 'array', items: str } }, []),
        }),
      },
      '/admin/v1/applications/{appId}/credentials': {
        get: operator('The application’s live credentials, without secrets', listOf('Credential'), { parameters: [APP] }),
        post: operator('Create a credential: the only time its secret is shown', ref('NewCredential'), {
          status: '201',
          parameters: [APP],
          body: obj({ name: str }),
          more: { '409': answer('The application already has 5 active credentials', ref('ApiErrors')) },
        }),
      },
      '/admin/v1/applications/{appId}/credentials/{clientId}': {
        get: operator('Read a credential', ref('Credential'), { parameters: [APP, CLIENT] }),
        patch: operator('Rename a credential', ref('Credential'), { parameters: [APP, CLIENT], body: obj({ name: str }) }),
        delete: operator(
          'Delete a credential: tokens keep coming for the grace period, or stop at once with immediately=true',
          obj({ client_id: str, status: { enum: ['deactivating', 'revoked'] }, deactivates_at: nullableTime }),
          { parameters: [APP, CLIENT, query('immediately', 'revoke now and invalidate tokens already issued', { enum: ['true', 'false'] })] },
        ),
      },
      '/admin/v1/applications/{appId}/rate-limit': {
        get: operator('The application’s own calls per minute (null: the default)', ref('RateLimit'), { parameters: [APP] }),
        put: operator('Set the application’s own calls per minute', ref('RateLimit'), { parameters: [APP], body: ref('RateLimit') }),
      },
      '/admin/v1/keys': { get: operator('Every signing key with its status', listOf('SigningKey')) },
      '/admin/v1/keys/rotate': {
        post: operator(
          'Create a new signing key, published now, signing after the pre-publication delay. An activation sooner than the JWKS cache lifetime is refused (400 activation-sooner-than-jwks-cache) unless force is true, and then the answer carries warnings; rotations asked for within 10 s with the same activation return one key',
          obj({ kid: str, alg: str, created_at: time, activates_at: time, warnings: { type: 'array', items: str } }, [
            'kid',
            'alg',
            'created_at',
            'activates_at',
          ]),
          { body: obj({ activate_after_seconds: { type: 'integer', minimum: 0, maximum: 604800 }, force: { type: 'boolean' } }, []) },
        ),
      },
      '/admin/v1/audit-events': {
        get: operator('Who changed what, when, from which IP', listOf('AuditEvent'), {
          parameters: [
            query('organization_id', 'only this organization', int),
            query('limit', 'at most this many (default 100, at most 1000)', int),
            query('before', 'events with an id below this', int),
          ],
        }),
      },
      '/admin/v1/auth-failures': { get: operator('Failed client authentications per day, client and reason (last 30 days)', listOf('AuthFailure')) },
      '/admin/v1/portal-users': {
        get: operator('A portal account by email address', ref('PortalUser'), {
          parameters: [{ name: 'email', in: 'query', required: true, schema: str }],
        }),
      },
      '/admin/v1/portal-users/verify': {
        post: operator('Mark the account’s email address verified (the person could not receive mail)', ref('PortalUser'), { body: obj({ email: str }) }),
      },
      '/admin/v1/portal-users/reset': {
        post: operator(
          'Start a password reset: answers a single-use reset link to hand over (also mailed when mail is configured)',
          { allOf: [ref('PortalUser'), obj({ reset_link: str, mail: { type: 'string', enum: ['sent', 'not-sent'] } })] },
          { body: obj({ email: str }) },
        ),
      },
      '/admin/v1/portal-users/disable': {
        post: operator('Disable an account: it cannot sign in, and its sessions end at once', ref('PortalUser'), { body: obj({ email: str }) }),
      },
      '/admin/v1/portal-users/enable': { post: operator('Enable a disabled account', ref('PortalUser'), { body: obj({ email: str }) }) },
      '/admin/v1/operators/grant': {
        post: operator('Grant a portal account the operator role (the operator console)', ref('PortalUser'), { body: obj({ email: str }) }),
      },
      '/admin/v1/operators/revoke': { post: operator('Take back the operator role', ref('PortalUser'), { body: obj({ email: str }) }) },
      '/admin/v1/partners': {
        get: operator('List partners and their linked applications, a page at a time (X-Next-Cursor)', listOf('Partner'), { parameters: PAGE_PARAMS }),
      },
      '/admin/v1/partners/{partnerId}': {
        get: operator('Read a partner', ref('Partner'), { parameters: [PARTNER] }),
        put: operator('Create (201) or replace (200) a partner', ref('Partner'), {
          parameters: [PARTNER],
          body: obj(
            {
              name: str,
              require_token: { type: 'boolean' },
              rate_limit_per_minute: { type: ['integer', 'null'] },
              required_scope: { type: ['string', 'null'] },
            },
            ['name'],
          ),
          more: { '201': answer('Created', ref('Partner')) },
        }),
      },
      '/admin/v1/partners/{partnerId}/applications': {
        post: operator('Link an application: its dynamic tokens may call the partner (201, or 200 if already linked)', ref('Partner'), {
          status: '201',
          parameters: [PARTNER],
          body: obj({ application_id: int }),
        }),
      },
      '/admin/v1/partners/{partnerId}/applications/{appId}': {
        delete: operator('Unlink an application, effective at once', ref('Partner'), { parameters: [PARTNER, APP] }),
      },
      '/admin/v1/partners/{partnerId}/static-tokens': {
        get: operator('The partner’s static tokens, without the token, a page at a time (X-Next-Cursor)', listOf('StaticToken'), {
          parameters: [PARTNER, ...PAGE_PARAMS],
        }),
        post: operator('Create a static token: the only time the pct_… token is shown', ref('NewStaticToken'), {
          status: '201',
          parameters: [PARTNER],
          body: obj({ name: str, expires_at: nullableTime }, ['name']),
        }),
      },
      '/admin/v1/partners/{partnerId}/static-tokens/{tokenId}': {
        delete: operator('Revoke a static token at once', anyObject, { parameters: [PARTNER, pathParam('tokenId', 'static token id')] }),
      },
      '/admin/v1/partners/{partnerId}/placements': {
        get: operator(
          'The partner’s placement catalogue, a page at a time (X-Next-Cursor)',
          { type: 'array', items: anyObject },
          { parameters: [PARTNER, ...PAGE_PARAMS] },
        ),
      },
      '/admin/v1/partners/{partnerId}/placements/{eventType}/{slot}': {
        put: operator('Set a slot of a page type with its products', anyObject, {
          parameters: [PARTNER, pathParam('eventType', 'page event type', str), pathParam('slot', 'slot name', str)],
          body: ref('Placement'),
        }),
        delete: operator('Remove a slot', anyObject, {
          parameters: [PARTNER, pathParam('eventType', 'page event type', str), pathParam('slot', 'slot name', str)],
        }),
      },
      '/admin/v1/partners/{partnerId}/beacon-counts': {
        get: operator('Load, view and click counts per placement and product', { type: 'array', items: anyObject }, { parameters: [PARTNER] }),
      },
      '/admin/v1/gateway/routes': {
        get: operator('Gateway routes (those from PORTCULLIS_ROUTES have source "file")', listOf('GatewayRoute')),
        post: operator('Add a gateway route', ref('GatewayRoute'), { status: '201', body: ref('GatewayRoute') }),
      },
      '/admin/v1/apis': {
        get: operator('APIs with their own audience (RFC 8707 resource identifiers)', listOf('Api')),
        post: operator('Register an API: its identifier URI, name and the scopes it defines', ref('Api'), {
          status: '201',
          body: ref('Api'),
          more: { '409': answer('An API with this identifier exists', ref('ApiErrors')) },
        }),
      },
      '/admin/v1/apis/{apiId}': {
        patch: operator('Set which of the API’s scopes apps created in the developer portal may take', ref('Api'), {
          parameters: [pathParam('apiId', 'API id')],
          body: { type: 'object', required: ['self_service_scopes'], properties: { self_service_scopes: { type: 'array', items: str } } },
        }),
        delete: operator('Delete an API and every grant of it', anyObject, { parameters: [pathParam('apiId', 'API id')] }),
      },
      '/admin/v1/default-audience': {
        get: operator('The default audience (tokens without resource) and its scopes apps created in the portal may take', ref('DefaultAudience')),
        patch: operator('Set which scopes of the default audience apps created in the portal may take (their own scopes)', ref('DefaultAudience'), {
          body: { type: 'object', required: ['self_service_scopes'], properties: { self_service_scopes: { type: 'array', items: str } } },
        }),
      },
      '/admin/v1/applications/{appId}/apis': {
        get: operator('The APIs an application is granted, with their scopes', { type: 'array', items: ref('ApiGrant') }, { parameters: [APP] }),
      },
      '/admin/v1/applications/{appId}/apis/{apiId}': {
        put: operator('Grant an application an API, with some of its scopes (all when scopes is absent)', ref('ApiGrant'), {
          parameters: [APP, pathParam('apiId', 'API id')],
          body: { type: 'object', properties: { scopes: { type: 'array', items: str } } },
        }),
        delete: operator('Revoke an application’s grant of an API', anyObject, { parameters: [APP, pathParam('apiId', 'API id')] }),
      },
      '/admin/v1/gateway/routes/{id}': {
        delete: operator('Remove a gateway route (not one from the file)', anyObject, { parameters: [pathParam('id', 'route id')] }),
      },
    }),
  };
}
