import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Actor } from '../directory/service.js';
import { ApiError } from '../domain/errors.js';
import { problem, sendApiError, useApiErrors } from '../http/errors.js';
import { jsonObject, pathId } from '../http/json-body.js';
import type { PortalSession } from '../store/portal-sessions.js';
import type { PortalUser } from '../store/portal-users.js';
import type { Accounts } from './accounts.js';
import { type OperatorConsoleOptions, operatorConsoleRoutes } from './operator-console.js';
import type { SecondFactor } from './second-factor.js';
import type { Portal } from './service.js';
import { useSecurityHeaders } from './ui.js';
import { CSRF_HEADER, PRESESSION_COOKIE, randomToken, SESSION_COOKIE, type Sessions, sameToken, sha256 } from './sessions.js';

export interface PortalRouteOptions {
  portal: Portal;
  accounts: Accounts;
  sessions: Sessions;
  secondFactor: SecondFactor;
  /** The public base URL of the portal, for invitation links. */
  baseUrl: string;
  /** How long a deleted key keeps working, shown in the page. */
  graceSeconds: number;
  /** The services the operator console calls. */
  operator: Omit<OperatorConsoleOptions, 'portal'>;
}

type Ids = { orgId: string; appId: string; clientId: string; userId: string; invitationId: string; token: string; apiId: string };

/** What the session list shows as a session's id: derived from the row id, so it is not the row id itself. */
const publicSessionId = (rowId: string) => sha256(`session-list:${rowId}`).slice(0, 24);

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const notSignedIn = () => problem('notSignedIn', 'your session has ended; sign in to continue');
const staleCsrf = () => problem('csrfTokenInvalid', "this page's security token is out of date; reload the page and try again");

/**
 * The developer portal's JSON API under /portal/api: cookie sessions, a CSRF token on every
 * state-changing request, and a role check in the organization before every call.
 */
export async function portalRoutes(app: FastifyInstance, opts: PortalRouteOptions): Promise<void> {
  const { portal, accounts, sessions } = opts;
  useApiErrors(app);
  useSecurityHeaders(app);
  await app.register(cookie);

  const signedIn = new WeakMap<FastifyRequest, { session: PortalSession; user: PortalUser }>();
  const secure = (request: FastifyRequest) => request.protocol === 'https' || opts.baseUrl.startsWith('https:');

  const setSessionCookie = (request: FastifyRequest, reply: FastifyReply, token: string) =>
    reply.setCookie(SESSION_COOKIE, token, { path: '/', httpOnly: true, sameSite: 'lax', secure: secure(request), maxAge: sessions.maxAgeSeconds });
  const clearSessionCookie = (request: FastifyRequest, reply: FastifyReply) =>
    reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'lax', secure: secure(request) });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('cache-control', 'no-store');
    const session = await sessions.find(request.cookies[SESSION_COOKIE]);
    const found = session && (await accounts.user(session.userId));
    // A disabled account's sessions are ended when it is disabled; this covers a race with that.
    const user = found && found.disabledAt === null ? found : undefined;
    if (session && user) signedIn.set(request, { session, user });
    if (!STATE_CHANGING.has(request.method)) return;
    // Double submit: the header must carry the token the page read from GET /session, which is
    // bound to the session (or, before sign-in, to the visitor's own HttpOnly cookie).
    const sent = request.headers[CSRF_HEADER];
    const expected = session && user ? session.csrfToken : request.cookies[PRESESSION_COOKIE];
    if (typeof sent !== 'string' || !sameToken(sent, expected)) return sendApiError(reply, request, staleCsrf());
  });

  const current = (request: FastifyRequest) => {
    const found = signedIn.get(request);
    if (!found) throw notSignedIn();
    return found;
  };
  const actor = (request: FastifyRequest): Actor => ({ actor: `user:${current(request).user.id}`, ip: request.ip });
  const userView = (u: PortalUser) => ({
    id: u.id,
    email: u.email,
    created_at: new Date(u.createdAt).toISOString(),
    email_verified: u.emailVerifiedAt !== null,
    operator: u.operatorSince !== null,
    second_factor: u.totpEnabledAt !== null,
  });
  const sessionView = (user: PortalUser | null, csrf: string) => ({
    user: user && userView(user),
    csrf_token: csrf,
    deactivation_grace_seconds: opts.graceSeconds,
    mail_delivers: accounts.mailDelivers,
    token_url: `${opts.baseUrl}/oauth2/token`,
  });

  /** Starts a fresh session (a new token every sign-in) and ends the one the request came with. */
  const startSession = async (request: FastifyRequest, reply: FastifyReply, user: PortalUser) => {
    const old = signedIn.get(request);
    if (old) await sessions.end(old.session);
    const seen = { ip: request.ip, userAgent: request.headers['user-agent'] ?? '' };
    const { token, session } = await sessions.create(user.id, seen);
    setSessionCookie(request, reply, token);
    return sessionView(user, session.csrfToken);
  };

  app.get('/session', async (request, reply) => {
    const found = signedIn.get(request);
    if (found) return sessionView(found.user, found.session.csrfToken);
    let token = request.cookies[PRESESSION_COOKIE];
    if (!token || token.length > 100) {
      token = randomToken();
      reply.setCookie(PRESESSION_COOKIE, token, { path: '/portal/api', httpOnly: true, sameSite: 'lax', secure: secure(request) });
    }
    if (request.cookies[SESSION_COOKIE]) clearSessionCookie(request, reply);
    return sessionView(null, token);
  });

  app.post('/signup', async (request, reply) => {
    const body = jsonObject(request.body, ['email', 'password', 'invitation'], ['email', 'password']);
    // An invitation link reached this address (or its owner vouched for it): no second mail needed.
    let invited = false;
    if (body.invitation !== undefined) {
      if (typeof body.invitation !== 'string') throw ApiError.validation('invalid-invitation', 'invitation must be the token of an invitation link');
      const invitation = await portal.members.openInvitation(body.invitation);
      invited = typeof body.email === 'string' && invitation.email === body.email.trim().toLowerCase();
    }
    const user = await accounts.signUp({ email: body.email, password: body.password }, request.ip, invited);
    const verification = invited ? 'verified' : await accounts.sendVerification(user);
    return reply.code(201).send({ ...(await startSession(request, reply, user)), verification });
  });

  app.post('/signin', async (request, reply) => {
    const body = jsonObject(request.body, ['email', 'password', 'code'], ['email', 'password']);
    const user = await accounts.signIn({ email: body.email, password: body.password }, request.ip).catch(async (err: unknown) => {
      const code = err instanceof ApiError ? err.code : '';
      if (code === 'invalid-credentials' || code === 'too-many-attempts') {
        await accounts.recordSignIn(body.email, code === 'invalid-credentials' ? 'user.sign_in_failed' : 'user.sign_in_locked', request.ip);
      }
      throw err;
    });
    if (user.totpEnabledAt !== null) {
      // The password was right; without the second factor no session starts.
      if (body.code === undefined || body.code === '') {
        throw new ApiError(
          401,
          'authentication',
          'second-factor-required',
          'Code needed',
          'enter the 6-digit code from your authenticator app, or a recovery code',
        );
      }
      if (typeof body.code !== 'string' || !(await opts.secondFactor.check(user, body.code))) {
        await accounts.secondFactorFailed(user.email, request.ip);
        await accounts.recordSignIn(user.email, 'user.sign_in_failed', request.ip);
        throw new ApiError(
          401,
          'authentication',
          'wrong-code',
          'Sign-in failed',
          'the code is wrong or was used already; enter the current code from your app',
        );
      }
    }
    const known = (await sessions.list(user.id)).some((s) => s.ip === request.ip && s.userAgent === (request.headers['user-agent'] ?? '').slice(0, 300));
    const answer = await startSession(request, reply, user);
    await accounts.recordSignIn(user.email, 'user.signed_in', request.ip);
    if (!known) void accounts.notifySignIn(user, request.ip, request.headers['user-agent'] ?? '');
    return reply.send(answer);
  });

  app.post('/verification', async (request, reply) => {
    const { user } = current(request);
    if (user.emailVerifiedAt !== null) throw ApiError.conflict('already-verified', 'your email address is already verified');
    return reply.code(202).send({ mail: await accounts.sendVerification(user) });
  });

  app.post('/verify-email', async (request) => {
    const body = jsonObject(request.body, ['token'], ['token']);
    const user = await accounts.verifyEmail(body.token);
    return { email: user.email, email_verified: true };
  });

  app.post('/password-reset', async (request, reply) => {
    const body = jsonObject(request.body, ['email'], ['email']);
    await accounts.requestPasswordReset(body.email);
    return reply.code(202).send({ mail: accounts.mailDelivers ? 'sent-if-registered' : 'not-configured' });
  });

  app.post('/password-reset/confirm', async (request, reply) => {
    const body = jsonObject(request.body, ['token', 'new_password'], ['token', 'new_password']);
    const user = await accounts.resetPassword(body.token, body.new_password);
    // Every session of the account ended, this browser's too if it had one.
    signedIn.delete(request);
    if (request.cookies[SESSION_COOKIE]) clearSessionCookie(request, reply);
    return { email: user.email };
  });

  app.post('/second-factor/setup', async (request) => opts.secondFactor.begin(current(request).user));

  app.post('/second-factor/enable', async (request) => {
    const body = jsonObject(request.body, ['code'], ['code']);
    return { recovery_codes: await opts.secondFactor.enable(current(request).user, body.code) };
  });

  app.post('/second-factor/disable', async (request, reply) => {
    const body = jsonObject(request.body, ['code'], ['code']);
    await opts.secondFactor.disable(current(request).user, body.code);
    return reply.code(204).send();
  });

  app.get('/second-factor', async (request) => {
    const { user } = current(request);
    return {
      enabled: user.totpEnabledAt !== null,
      recovery_codes_left: user.totpEnabledAt === null ? 0 : await opts.secondFactor.unusedRecoveryCodes(user.id),
    };
  });

  app.put<{ Params: Ids }>('/orgs/:orgId/policy', async (request) => {
    const orgId = pathId(request.params.orgId, 'orgId');
    const { user } = current(request);
    await portal.members.access(orgId, user.id, 'manageMembers');
    const body = jsonObject(request.body, ['second_factor_required'], ['second_factor_required']);
    return { second_factor_required: await portal.members.requireSecondFactor(orgId, user, body.second_factor_required, actor(request)) };
  });

  app.get('/sessions', async (request) => {
    const { user, session } = current(request);
    return (await sessions.list(user.id)).map((s) => ({
      id: publicSessionId(s.id),
      current: s.id === session.id,
      ip: s.ip,
      user_agent: s.userAgent,
      created_at: new Date(s.createdAt).toISOString(),
      last_seen_at: new Date(s.lastSeenAt).toISOString(),
    }));
  });

  app.delete<{ Params: { sessionId: string } }>('/sessions/:sessionId', async (request, reply) => {
    const { user, session } = current(request);
    const target = (await sessions.list(user.id)).find((s) => publicSessionId(s.id) === request.params.sessionId);
    if (!target) throw ApiError.notFound(`session ${request.params.sessionId.slice(0, 40)}`);
    await sessions.end(target);
    if (target.id === session.id) clearSessionCookie(request, reply);
    return reply.code(204).send();
  });

  app.post('/signout', async (request, reply) => {
    const found = signedIn.get(request);
    if (found) await sessions.end(found.session);
    clearSessionCookie(request, reply);
    return reply.code(204).send();
  });

  app.post('/password', async (request, reply) => {
    const { user } = current(request);
    const body = jsonObject(request.body, ['current_password', 'new_password'], ['current_password', 'new_password']);
    await accounts.changePassword(user.id, { current_password: body.current_password, new_password: body.new_password });
    // Every other session of the account ends; this one is replaced by a new token.
    await sessions.endOthers(user.id);
    signedIn.delete(request);
    return reply.send(await startSession(request, reply, user));
  });

  app.get('/orgs', async (request) => portal.organizations(current(request).user.id));

  app.post('/orgs', async (request, reply) => {
    const body = jsonObject(request.body, ['name'], ['name']);
    return reply.code(201).send(await portal.createOrganization(current(request).user.id, { name: body.name }, actor(request)));
  });

  app.get<{ Params: Ids }>('/orgs/:orgId', async (request) => portal.organization(pathId(request.params.orgId, 'orgId'), current(request).user.id));

  app.get<{ Params: Ids }>('/orgs/:orgId/apps', async (request) => portal.applications(pathId(request.params.orgId, 'orgId'), current(request).user.id));

  app.post<{ Params: Ids }>('/orgs/:orgId/apps', async (request, reply) => {
    const orgId = pathId(request.params.orgId, 'orgId');
    const { user } = current(request);
    const body = jsonObject(request.body, ['name', 'description'], ['name']);
    return reply.code(201).send(await portal.createApplication(orgId, user.id, { name: body.name, description: body.description }, actor(request)));
  });

  app.get<{ Params: Ids }>('/orgs/:orgId/apps/:appId', async (request) =>
    portal.getApplication(pathId(request.params.orgId, 'orgId'), pathId(request.params.appId, 'appId'), current(request).user.id),
  );

  app.patch<{ Params: Ids }>('/orgs/:orgId/apps/:appId', async (request) => {
    const { user } = current(request);
    const body = jsonObject(request.body, ['name', 'description']);
    return portal.updateApplication(pathId(request.params.orgId, 'orgId'), pathId(request.params.appId, 'appId'), user.id, body, actor(request));
  });

  // `default` names the default audience: the app's own scopes, for tokens asked for without resource.
  const apiIds = (p: Ids) =>
    [pathId(p.orgId, 'orgId'), pathId(p.appId, 'appId'), p.apiId === 'default' ? ('default' as const) : pathId(p.apiId, 'apiId')] as const;
  app.get('/apis', async (request) => {
    current(request);
    return portal.publishedApis();
  });

  app.get<{ Params: Ids }>('/orgs/:orgId/apps/:appId/apis', async (request) =>
    portal.applicationApis(pathId(request.params.orgId, 'orgId'), pathId(request.params.appId, 'appId'), current(request).user.id),
  );

  app.put<{ Params: Ids }>('/orgs/:orgId/apps/:appId/apis/:apiId', async (request) => {
    const body = jsonObject(request.body, ['scopes'], ['scopes']);
    return portal.grantApi(...apiIds(request.params), current(request).user.id, body, actor(request));
  });

  app.delete<{ Params: Ids }>('/orgs/:orgId/apps/:appId/apis/:apiId', async (request) => {
    return portal.grantApi(...apiIds(request.params), current(request).user.id, { scopes: [] }, actor(request));
  });

  app.get<{ Params: Ids }>('/orgs/:orgId/apps/:appId/credentials', async (request) =>
    portal.credentials(pathId(request.params.orgId, 'orgId'), pathId(request.params.appId, 'appId'), current(request).user.id),
  );

  app.post<{ Params: Ids }>('/orgs/:orgId/apps/:appId/credentials', async (request, reply) => {
    const { user } = current(request);
    const body = jsonObject(request.body, ['name'], ['name']);
    const created = await portal.createCredential(
      pathId(request.params.orgId, 'orgId'),
      pathId(request.params.appId, 'appId'),
      user.id,
      { name: body.name },
      actor(request),
    );
    return reply.code(201).send(created);
  });

  app.patch<{ Params: Ids }>('/orgs/:orgId/apps/:appId/credentials/:clientId', async (request) => {
    const { user } = current(request);
    const body = jsonObject(request.body, ['name'], ['name']);
    return portal.renameCredential(
      pathId(request.params.orgId, 'orgId'),
      pathId(request.params.appId, 'appId'),
      request.params.clientId,
      user.id,
      { name: body.name },
      actor(request),
    );
  });

  app.delete<{ Params: Ids; Querystring: Record<string, string | string[]> }>('/orgs/:orgId/apps/:appId/credentials/:clientId', async (request) => {
    const { user } = current(request);
    const immediately = request.query.immediately;
    if (immediately !== undefined && immediately !== 'true' && immediately !== 'false') {
      throw ApiError.validation('invalid-immediately', 'immediately must be true or false');
    }
    if (immediately === 'true') {
      return portal.revokeCredential(
        pathId(request.params.orgId, 'orgId'),
        pathId(request.params.appId, 'appId'),
        request.params.clientId,
        user,
        actor(request),
      );
    }
    return portal.deleteCredential(
      pathId(request.params.orgId, 'orgId'),
      pathId(request.params.appId, 'appId'),
      request.params.clientId,
      user.id,
      actor(request),
    );
  });

  app.get<{ Params: Ids }>('/orgs/:orgId/apps/:appId/usage', async (request) =>
    portal.usage(pathId(request.params.orgId, 'orgId'), pathId(request.params.appId, 'appId'), current(request).user.id),
  );

  type AuditQuery = { limit?: string; before?: string; actor?: string; action?: string; from?: string; to?: string };
  const auditQuery = (q: AuditQuery, maxLimit: number) => {
    const day = (value: string | undefined, name: string, end: boolean) => {
      if (value === undefined || value === '') return undefined;
      const ms = /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(`${value}T00:00:00Z`) : Number.NaN;
      if (Number.isNaN(ms)) throw ApiError.validation(`invalid-${name}`, `${name} must be a date such as 2030-01-31`);
      return end ? ms + 86_400_000 : ms;
    };
    const action = q.action === undefined || q.action === '' ? undefined : String(q.action);
    if (action !== undefined && !/^[a-z_]+(\.[a-z_]+)?$/.test(action)) {
      throw ApiError.validation('invalid-action', 'action must be an action such as credential.created, or a family such as credential');
    }
    const from = day(q.from, 'from', false);
    const to = day(q.to, 'to', true);
    return {
      limit: q.limit === undefined ? 100 : Math.min(maxLimit, pathId(String(q.limit), 'limit')),
      ...(q.before !== undefined && q.before !== '' ? { before: pathId(String(q.before), 'before') } : {}),
      ...(q.actor !== undefined && q.actor !== '' ? { actor: String(q.actor).slice(0, 300) } : {}),
      ...(action !== undefined ? { action } : {}),
      ...(from !== undefined ? { from } : {}),
      ...(to !== undefined ? { to } : {}),
    };
  };

  app.get<{ Params: Ids }>('/orgs/:orgId/apps/:appId/credentials/:clientId/usage', async (request) =>
    portal.keyUsage(pathId(request.params.orgId, 'orgId'), pathId(request.params.appId, 'appId'), request.params.clientId, current(request).user.id),
  );

  app.get<{ Params: Ids; Querystring: AuditQuery }>('/orgs/:orgId/audit', async (request) => {
    const { user } = current(request);
    return portal.audit(pathId(request.params.orgId, 'orgId'), user.id, auditQuery(request.query, 500));
  });

  // The same events as a CSV file (a plain link: GET needs no CSRF token, the cookie proves who asks).
  app.get<{ Params: Ids; Querystring: AuditQuery }>('/orgs/:orgId/audit.csv', async (request, reply) => {
    const { user } = current(request);
    const orgId = pathId(request.params.orgId, 'orgId');
    const events = await portal.audit(orgId, user.id, auditQuery({ limit: '10000', ...request.query }, 10_000));
    const cell = (v: unknown) => {
      const text = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
      // A leading = + - @ would make a spreadsheet run it as a formula.
      const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
      return `"${safe.replace(/"/g, '""')}"`;
    };
    const rows = [['occurred_at', 'actor', 'action', 'target_type', 'target_id', 'target_name', 'ip', 'details']];
    for (const e of events)
      rows.push([e.occurred_at, e.actor, e.action, e.target_type, e.target_id, e.target_name ?? '', e.ip ?? '', JSON.stringify(e.details)]);
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="audit-organization-${orgId}.csv"`)
      .send(`${rows.map((r) => r.map(cell).join(',')).join('\r\n')}\r\n`);
  });

  app.get<{ Params: Ids }>('/orgs/:orgId/members', async (request) => {
    const orgId = pathId(request.params.orgId, 'orgId');
    await portal.members.access(orgId, current(request).user.id, 'view');
    return portal.members.list(orgId);
  });

  app.patch<{ Params: Ids }>('/orgs/:orgId/members/:userId', async (request) => {
    const orgId = pathId(request.params.orgId, 'orgId');
    await portal.members.access(orgId, current(request).user.id, 'manageMembers');
    const body = jsonObject(request.body, ['role'], ['role']);
    await portal.members.changeRole(orgId, pathId(request.params.userId, 'userId'), { role: body.role }, actor(request));
    return portal.members.list(orgId);
  });

  app.delete<{ Params: Ids }>('/orgs/:orgId/members/:userId', async (request, reply) => {
    const orgId = pathId(request.params.orgId, 'orgId');
    await portal.members.access(orgId, current(request).user.id, 'manageMembers');
    await portal.members.remove(orgId, pathId(request.params.userId, 'userId'), actor(request));
    return reply.code(204).send();
  });

  app.get<{ Params: Ids }>('/orgs/:orgId/invitations', async (request) => {
    const orgId = pathId(request.params.orgId, 'orgId');
    await portal.members.access(orgId, current(request).user.id, 'manageMembers');
    return portal.members.pending(orgId);
  });

  app.post<{ Params: Ids }>('/orgs/:orgId/invitations', async (request, reply) => {
    const orgId = pathId(request.params.orgId, 'orgId');
    const { user } = current(request);
    await portal.members.access(orgId, user.id, 'manageMembers');
    const org = await portal.organization(orgId, user.id);
    const body = jsonObject(request.body, ['email', 'role'], ['email', 'role']);
    const { invitation, link, mail } = await portal.members.invite(orgId, org.name, user, { email: body.email, role: body.role }, opts.baseUrl, actor(request));
    return reply.code(201).send({ ...invitation, link, mail });
  });

  app.delete<{ Params: Ids }>('/orgs/:orgId/invitations/:invitationId', async (request, reply) => {
    const orgId = pathId(request.params.orgId, 'orgId');
    await portal.members.access(orgId, current(request).user.id, 'manageMembers');
    await portal.members.revoke(orgId, pathId(request.params.invitationId, 'invitationId'), actor(request));
    return reply.code(204).send();
  });

  operatorConsoleRoutes(app, { ...opts.operator, portal }, current);

  // Anyone holding the link may see what it is for; accepting needs the invited account.
  app.get<{ Params: Ids }>('/invitations/:token', async (request) => {
    const invitation = await portal.members.openInvitation(request.params.token);
    const org = await portal.store.organizations.get(invitation.organizationId);
    return { organization: { id: invitation.organizationId, name: org?.name ?? '' }, email: invitation.email, role: invitation.role };
  });

  app.post<{ Params: Ids }>('/invitations/:token/accept', async (request) => {
    const { user } = current(request);
    const joined = await portal.members.accept(request.params.token, user, actor(request));
    return { organization_id: joined.organizationId, role: joined.role };
  });
}
