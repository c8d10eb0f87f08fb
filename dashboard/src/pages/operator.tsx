import { type FormEvent, type ReactNode, useCallback, useEffect, useState } from 'react';
import { type App, type AuditEvent, api, formatDate, messageOf, plural } from '../api.js';
import { BusyButton, CopyButton, Dialog, ErrorMessage, Loading, PageTitle, useBusy } from '../components.js';
import { Link } from '../router.js';
import { useSession } from '../session.js';

interface Partner {
  id: number;
  name: string;
  require_token: boolean;
  rate_limit_per_minute: number | null;
  application_ids: number[];
}
interface StaticToken {
  id: number;
  partner_id: number;
  name: string;
  status: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}
interface OrgResult {
  id: number;
  name: string;
  created_at: string;
  applications: App[];
}
interface SigningKey {
  kid: string;
  alg: string;
  status: string;
  created_at: string;
  activates_at: string;
}
interface Route {
  id: number | null;
  source: string;
  prefix: string;
  upstream: string;
  scopes: string[];
}
interface RegisteredApi {
  id: number;
  identifier: string;
  name: string;
  scopes: string[];
  self_service_scopes: string[];
}
interface ApiGrant {
  api_id: number;
  identifier: string;
  name: string;
  scopes: string[];
}

const scopeWords = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

const SECTIONS: [string, string][] = [
  ['', 'Organizations and apps'],
  ['partners', 'Partners and static tokens'],
  ['keys', 'Signing keys'],
  ['gateway', 'Gateway routes'],
  ['apis', 'API registrations'],
  ['audit', 'Audit log'],
];

/** The file saved when a static token is issued: shown once, like an API key's secret. */
function downloadStaticToken(partner: Partner, token: StaticToken & { token: string }): void {
  const text = [
    `# Portcullis static token "${token.name}" for partner ${partner.id} (${partner.name})`,
    '# Keep this file secret: the token cannot be shown again. Send it as Authorization: Bearer $STATIC_TOKEN',
    `PARTNER_ID=${partner.id}`,
    `STATIC_TOKEN=${token.token}`,
    '',
  ].join('\n');
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `portcullis-static-token-${partner.id}-${token.id}.txt`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function OperatorPage({ section }: { section: string }) {
  const { session } = useSession();
  if (!session.user?.operator) {
    return (
      <div className="narrow card">
        <PageTitle>Operator console</PageTitle>
        <p>
          The operator console is for accounts granted the operator role. An operator can grant it with{' '}
          <code>portcullis admin operators grant {session.user?.email}</code>.
        </p>
      </div>
    );
  }
  const title = SECTIONS.find(([path]) => path === section)?.[1] ?? 'Not found';
  let body: ReactNode;
  if (section === '') body = <Organizations />;
  else if (section === 'partners') body = <Partners />;
  else if (section === 'keys') body = <Keys />;
  else if (section === 'gateway') body = <Gateway />;
  else if (section === 'apis') body = <Apis />;
  else if (section === 'audit') body = <Audit />;
  else body = <p>There is no such section of the operator console.</p>;
  return (
    <div className="page">
      <PageTitle>Operator console: {title}</PageTitle>
      <nav aria-label="Operator console" className="tabs">
        {SECTIONS.map(([path, label]) => (
          <span key={path} aria-current={path === section ? 'page' : undefined}>
            <Link to={`/operator${path ? `/${path}` : ''}`}>{label}</Link>
          </span>
        ))}
      </nav>
      <p className="muted">Every change here is recorded in the audit log under your name, {session.user.email}.</p>
      {body}
    </div>
  );
}

/** Loads a list, and reloads it on demand. */
function useList<T>(path: string): { items: T[] | undefined; error: string | undefined; reload: () => Promise<void> } {
  const [items, setItems] = useState<T[]>();
  const [error, setError] = useState<string>();
  const reload = useCallback(async () => {
    try {
      setItems(await api<T[]>('GET', path));
      setError(undefined);
    } catch (err) {
      setError(messageOf(err));
    }
  }, [path]);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { items, error, reload };
}

function Organizations() {
  const [search, setSearch] = useState('');
  const [query, setQuery] = useState('');
  const { items, error } = useList<OrgResult>(`/operator/organizations?search=${encodeURIComponent(query)}`);
  return (
    <section aria-labelledby="orgs-heading">
      <h2 id="orgs-heading">Organizations and apps</h2>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery(search);
        }}
      >
        <div>
          <label htmlFor="org-search">Search by name or application_id</label>
          <input id="org-search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} maxLength={100} />
        </div>
        <button type="submit">Search</button>
      </form>
      <ErrorMessage message={error} />
      {!items && !error && <Loading />}
      {items && items.length === 0 && <p className="empty">No organization or app matches “{query}”.</p>}
      {items && items.length > 0 && (
        <ul className="plain results">
          {items.map((o) => (
            <li key={o.id} className="card">
              <h3>
                {o.name} <span className="muted">(organization {o.id})</span>
              </h3>
              {o.applications.length === 0 ? (
                <p className="muted">No apps.</p>
              ) : (
                <ul>
                  {o.applications.map((a) => (
                    <li key={a.id}>
                      {a.name} — application_id <code>{a.id}</code>
                    </li>
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function PartnerForm({ onSaved }: { onSaved: (p: Partner) => Promise<void> }) {
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const [requireToken, setRequireToken] = useState(true);
  const [limit, setLimit] = useState('');
  const [error, setError] = useState<string>();
  const [busy, run] = useBusy();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      setError(undefined);
      if (!/^[1-9]\d{0,15}$/.test(id.trim())) {
        setError('Partner ID must be a positive whole number (the criteo-partner-id).');
        return;
      }
      if (limit.trim() !== '' && !/^\d+$/.test(limit.trim())) {
        setError('Rate limit must be a whole number of calls per minute, or empty for the default.');
        return;
      }
      try {
        const body = { name, require_token: requireToken, rate_limit_per_minute: limit.trim() === '' ? null : Number(limit.trim()) };
        await onSaved(await api<Partner>('PUT', `/operator/partners/${id.trim()}`, body));
        setId('');
        setName('');
        setLimit('');
      } catch (err) {
        setError(messageOf(err));
      }
    });
  };
  return (
    <form onSubmit={submit} className="card" noValidate>
      <h3>Create or update a partner</h3>
      <div className="inline-form">
        <div>
          <label htmlFor="partner-id">Partner ID (criteo-partner-id)</label>
          <input id="partner-id" inputMode="numeric" value={id} onChange={(e) => setId(e.target.value)} maxLength={16} />
        </div>
        <div>
          <label htmlFor="partner-name">Partner name</label>
          <input id="partner-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} />
        </div>
        <div>
          <label htmlFor="partner-limit">Rate limit per minute (optional)</label>
          <input id="partner-limit" inputMode="numeric" value={limit} onChange={(e) => setLimit(e.target.value)} maxLength={9} />
        </div>
      </div>
      <p className="check">
        <input id="partner-require" type="checkbox" checked={requireToken} onChange={(e) => setRequireToken(e.target.checked)} />{' '}
        <label htmlFor="partner-require" className="inline">
          Require a token for every delivery call
        </label>
      </p>
      <ErrorMessage message={error} />
      <BusyButton type="submit" busy={busy} busyLabel="Saving…">
        Save partner
      </BusyButton>
    </form>
  );
}

function PartnerPanel({ partner, onChanged }: { partner: Partner; onChanged: (note: string) => Promise<void> }) {
  const tokens = useList<StaticToken>(`/operator/partners/${partner.id}/static-tokens`);
  const [appId, setAppId] = useState('');
  const [tokenName, setTokenName] = useState('');
  const [error, setError] = useState<string>();
  const [issued, setIssued] = useState<StaticToken & { token: string }>();
  const [linking, runLink] = useBusy();
  const [issuing, runIssue] = useBusy();
  const [acting, runAct] = useBusy();

  const link = (event: FormEvent) => {
    event.preventDefault();
    void runLink(async () => {
      setError(undefined);
      try {
        await api('POST', `/operator/partners/${partner.id}/applications`, { application_id: Number(appId.trim()) || appId.trim() });
        await onChanged(`Application ${appId.trim()} is linked to partner ${partner.id}: its dynamic tokens may call this partner.`);
        setAppId('');
      } catch (err) {
        setError(messageOf(err));
      }
    });
  };
  const issue = (event: FormEvent) => {
    event.preventDefault();
    void runIssue(async () => {
      setError(undefined);
      try {
        const created = await api<StaticToken & { token: string }>('POST', `/operator/partners/${partner.id}/static-tokens`, { name: tokenName });
        downloadStaticToken(partner, created);
        setIssued(created);
        setTokenName('');
        await tokens.reload();
      } catch (err) {
        setError(messageOf(err));
      }
    });
  };
  const act = (work: () => Promise<unknown>, note: string) =>
    runAct(async () => {
      setError(undefined);
      try {
        await work();
        await tokens.reload();
        await onChanged(note);
      } catch (err) {
        setError(messageOf(err));
      }
    });

  return (
    <section className="card" aria-labelledby={`partner-${partner.id}`}>
      <h3 id={`partner-${partner.id}`}>
        Partner {partner.id}: {partner.name}
      </h3>
      <ErrorMessage message={error} />
      <h4>Linked applications</h4>
      {partner.application_ids.length === 0 ? (
        <p className="muted">No application is linked: only static tokens can call this partner.</p>
      ) : (
        <ul className="plain">
          {partner.application_ids.map((id) => (
            <li key={id}>
              application_id <code>{id}</code>{' '}
              <button
                type="button"
                className="secondary small"
                aria-label={`Unlink application ${id}`}
                onClick={() => void act(() => api('DELETE', `/operator/partners/${partner.id}/applications/${id}`), `Application ${id} was unlinked.`)}
              >
                Unlink
              </button>
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={link} className="inline-form" noValidate>
        <div>
          <label htmlFor={`link-${partner.id}`}>application_id to link</label>
          <input id={`link-${partner.id}`} inputMode="numeric" value={appId} onChange={(e) => setAppId(e.target.value)} maxLength={16} />
        </div>
        <BusyButton type="submit" busy={linking} busyLabel="Linking…">
          Link application
        </BusyButton>
      </form>
      <h4>Static tokens</h4>
      {tokens.items && tokens.items.length === 0 && <p className="muted">No static tokens.</p>}
      {tokens.items && tokens.items.length > 0 && (
        <ul className="plain">
          {tokens.items.map((t) => (
            <li key={t.id}>
              <strong>{t.name}</strong> (#{t.id}) · {t.status} · issued {formatDate(t.created_at)} · last used {formatDate(t.last_used_at)}{' '}
              {t.status === 'active' && (
                <button
                  type="button"
                  className="danger small"
                  aria-label={`Revoke static token ${t.name}`}
                  onClick={() =>
                    void act(() => api('DELETE', `/operator/partners/${partner.id}/static-tokens/${t.id}`), `Static token “${t.name}” was revoked.`)
                  }
                >
                  Revoke
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={issue} className="inline-form" noValidate>
        <div>
          <label htmlFor={`token-${partner.id}`}>New static token name</label>
          <input id={`token-${partner.id}`} value={tokenName} onChange={(e) => setTokenName(e.target.value)} maxLength={100} />
        </div>
        <BusyButton type="submit" busy={issuing} busyLabel="Issuing…">
          Issue static token
        </BusyButton>
      </form>
      {acting && <p className="muted">Saving…</p>}
      <Dialog title="Your new static token" open={issued !== undefined} onClose={() => setIssued(undefined)}>
        {issued && (
          <>
            <p>
              <strong>Hand this token over now: it is never shown again.</strong> A file with it has also been downloaded.
            </p>
            <label htmlFor="new-static-token">Static token</label>
            <div className="copy-row">
              <input id="new-static-token" readOnly value={issued.token} onFocus={(e) => e.target.select()} />
              <CopyButton value={issued.token} label="Copy static token" />
            </div>
            <div className="dialog-actions">
              <button type="button" onClick={() => setIssued(undefined)}>
                I have saved the token
              </button>
            </div>
          </>
        )}
      </Dialog>
    </section>
  );
}

function Partners() {
  const { items, error, reload } = useList<Partner>('/operator/partners');
  const [notice, setNotice] = useState<string>();
  const changed = async (note: string) => {
    setNotice(note);
    await reload();
  };
  return (
    <section aria-labelledby="partners-heading">
      <h2 id="partners-heading">Partners</h2>
      <p className="visually-hidden" aria-live="polite">
        {notice}
      </p>
      {notice && <p className="notice">{notice}</p>}
      <ErrorMessage message={error} />
      {!items && !error && <Loading />}
      {items && items.length === 0 && <p className="empty">No partners yet.</p>}
      <PartnerForm onSaved={(p) => changed(`Partner ${p.id} “${p.name}” saved; tokens ${p.require_token ? 'required' : 'optional'}.`)} />
      {items?.map((p) => (
        <div key={p.id}>
          <p>
            <strong>{p.name}</strong> (partner {p.id}): tokens {p.require_token ? 'required' : 'optional'}, rate limit{' '}
            {p.rate_limit_per_minute === null ? 'default' : `${p.rate_limit_per_minute} a minute`}, {plural(p.application_ids.length, 'linked application')}.
          </p>
          <PartnerPanel partner={p} onChanged={changed} />
        </div>
      ))}
    </section>
  );
}

function Keys() {
  const { items, error, reload } = useList<SigningKey>('/operator/keys');
  const [notice, setNotice] = useState<string>();
  const [failure, setFailure] = useState<string>();
  const [busy, run] = useBusy();
  const rotate = () =>
    run(async () => {
      setFailure(undefined);
      try {
        const key = await api<SigningKey>('POST', '/operator/keys/rotate', {});
        setNotice(`New ${key.alg} key ${key.kid} is published now and signs from ${formatDate(key.activates_at)}.`);
        await reload();
      } catch (err) {
        setFailure(messageOf(err));
      }
    });
  return (
    <section aria-labelledby="keys-heading">
      <h2 id="keys-heading">Signing keys</h2>
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <ErrorMessage message={error ?? failure} />
      {items && (
        <ul className="plain">
          {items.map((k) => (
            <li key={k.kid}>
              <code>{k.kid}</code> · {k.alg} · {k.status} · created {formatDate(k.created_at)} · signs from {formatDate(k.activates_at)}
            </li>
          ))}
        </ul>
      )}
      <BusyButton busy={busy} busyLabel="Rotating…" onClick={() => void rotate()}>
        Rotate signing key
      </BusyButton>
    </section>
  );
}

function Gateway() {
  const { items, error, reload } = useList<Route>('/operator/gateway/routes');
  const [prefix, setPrefix] = useState('');
  const [upstream, setUpstream] = useState('');
  const [scopes, setScopes] = useState('');
  const [failure, setFailure] = useState<string>();
  const [busy, run] = useBusy();
  const add = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      setFailure(undefined);
      try {
        const list = scopes
          .split(/[\s,]+/)
          .map((s) => s.trim())
          .filter(Boolean);
        await api('POST', '/operator/gateway/routes', { prefix, upstream, scopes: list });
        setPrefix('');
        setUpstream('');
        setScopes('');
        await reload();
      } catch (err) {
        setFailure(messageOf(err));
      }
    });
  };
  const remove = (r: Route) =>
    run(async () => {
      try {
        await api('DELETE', `/operator/gateway/routes/${r.id}`);
        await reload();
      } catch (err) {
        setFailure(messageOf(err));
      }
    });
  return (
    <section aria-labelledby="gateway-heading">
      <h2 id="gateway-heading">Gateway routes</h2>
      <ErrorMessage message={error ?? failure} />
      {items && items.length === 0 && <p className="empty">No gateway routes.</p>}
      {items && items.length > 0 && (
        <ul className="plain">
          {items.map((r) => (
            <li key={`${r.source}-${r.prefix}`}>
              <code>{r.prefix}</code> → <code>{r.upstream}</code> {r.scopes.length > 0 ? `(scopes ${r.scopes.join(' ')})` : ''} · {r.source}{' '}
              {r.id !== null && (
                <button type="button" className="danger small" aria-label={`Delete the route ${r.prefix}`} onClick={() => void remove(r)}>
                  Delete
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={add} className="inline-form card" noValidate>
        <div>
          <label htmlFor="route-prefix">Path prefix</label>
          <input id="route-prefix" value={prefix} onChange={(e) => setPrefix(e.target.value)} placeholder="/api/orders" />
        </div>
        <div>
          <label htmlFor="route-upstream">Upstream URL</label>
          <input id="route-upstream" value={upstream} onChange={(e) => setUpstream(e.target.value)} placeholder="http://orders.internal:8080" />
        </div>
        <div>
          <label htmlFor="route-scopes">Scopes needed (optional)</label>
          <input id="route-scopes" value={scopes} onChange={(e) => setScopes(e.target.value)} />
        </div>
        <BusyButton type="submit" busy={busy} busyLabel="Adding…">
          Add route
        </BusyButton>
      </form>
    </section>
  );
}

function Apis() {
  const { items, error, reload } = useList<RegisteredApi>('/operator/apis');
  const [identifier, setIdentifier] = useState('');
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState('');
  const [selfService, setSelfService] = useState('');
  const [failure, setFailure] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const [busy, run] = useBusy();
  const attempt = (work: () => Promise<void>) =>
    run(async () => {
      setFailure(undefined);
      setNotice(undefined);
      try {
        await work();
      } catch (err) {
        setFailure(messageOf(err));
      }
    });
  const create = (event: FormEvent) => {
    event.preventDefault();
    void attempt(async () => {
      await api('POST', '/operator/apis', { identifier, name, scopes: scopeWords(scopes), self_service_scopes: scopeWords(selfService) });
      setNotice(`Registered ${identifier}.`);
      setIdentifier('');
      setName('');
      setScopes('');
      setSelfService('');
      await reload();
    });
  };
  const remove = (a: RegisteredApi) =>
    attempt(async () => {
      if (!window.confirm(`Delete the API ${a.identifier} and every application's grant of it?`)) return;
      await api('DELETE', `/operator/apis/${a.id}`);
      setNotice(`Deleted ${a.identifier}.`);
      await reload();
    });
  const toggleSelfService = (a: RegisteredApi, scope: string, open: boolean) =>
    attempt(async () => {
      const next = a.scopes.filter((s) => (s === scope ? open : a.self_service_scopes.includes(s)));
      await api('PATCH', `/operator/apis/${a.id}`, { self_service_scopes: next });
      await reload();
    });
  return (
    <section aria-labelledby="apis-heading">
      <h2 id="apis-heading">API registrations</h2>
      <p className="muted">
        A token asked for with <code>resource=&lt;identifier&gt;</code> carries the identifier as its audience. Scopes marked “self-service” are the ones
        organization owners and admins may give their own apps in the portal.
      </p>
      <ErrorMessage message={error ?? failure} />
      {notice && (
        <p role="status" className="notice">
          {notice}
        </p>
      )}
      {!items && !error && <Loading />}
      {items && items.length === 0 && <p className="empty">No APIs registered.</p>}
      {items && items.length > 0 && (
        <ul className="plain">
          {items.map((a) => (
            <li key={a.id} className="card">
              <strong>{a.name}</strong> <code>{a.identifier}</code> (id {a.id}){' '}
              <button type="button" className="danger small" aria-label={`Delete the API ${a.identifier}`} disabled={busy} onClick={() => void remove(a)}>
                Delete
              </button>
              {a.scopes.length === 0 ? (
                <p className="muted">No scopes.</p>
              ) : (
                <fieldset>
                  <legend>Scopes (checked: self-service)</legend>
                  {a.scopes.map((scope) => (
                    <p key={scope} className="check">
                      <input
                        id={`self-service-${a.id}-${scope}`}
                        type="checkbox"
                        checked={a.self_service_scopes.includes(scope)}
                        disabled={busy}
                        onChange={(e) => void toggleSelfService(a, scope, e.target.checked)}
                      />{' '}
                      <label htmlFor={`self-service-${a.id}-${scope}`} className="inline">
                        <code>{scope}</code>
                      </label>
                    </p>
                  ))}
                </fieldset>
              )}
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={create} className="inline-form card" noValidate>
        <div>
          <label htmlFor="api-identifier">Identifier (URI)</label>
          <input id="api-identifier" value={identifier} onChange={(e) => setIdentifier(e.target.value)} placeholder="https://api.example.com/orders" />
        </div>
        <div>
          <label htmlFor="api-name">Name</label>
          <input id="api-name" value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <div>
          <label htmlFor="api-scopes">Scopes it defines</label>
          <input id="api-scopes" value={scopes} onChange={(e) => setScopes(e.target.value)} placeholder="orders:read orders:write" />
        </div>
        <div>
          <label htmlFor="api-self-service">Self-service scopes (optional)</label>
          <input id="api-self-service" value={selfService} onChange={(e) => setSelfService(e.target.value)} />
        </div>
        <BusyButton type="submit" busy={busy} busyLabel="Registering…">
          Register API
        </BusyButton>
      </form>
      <DefaultAudience />
      <ApiGrants apis={items ?? []} />
    </section>
  );
}

/** The scopes of the default audience (tokens without resource) that apps created in the portal may take as their own. */
function DefaultAudience() {
  const [audience, setAudience] = useState<string>();
  const [scopes, setScopes] = useState('');
  const [failure, setFailure] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const [busy, run] = useBusy();
  useEffect(() => {
    api<{ audience: string; self_service_scopes: string[] }>('GET', '/operator/default-audience').then(
      (d) => {
        setAudience(d.audience);
        setScopes(d.self_service_scopes.join(' '));
      },
      (err) => setFailure(messageOf(err)),
    );
  }, []);
  const save = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      setFailure(undefined);
      setNotice(undefined);
      try {
        const d = await api<{ self_service_scopes: string[] }>('PATCH', '/operator/default-audience', { self_service_scopes: scopeWords(scopes) });
        setNotice(
          d.self_service_scopes.length > 0 ? `Portal apps may take ${d.self_service_scopes.join(' ')}.` : 'Portal apps may take no scope of their own.',
        );
      } catch (err) {
        setFailure(messageOf(err));
      }
    });
  };
  return (
    <form onSubmit={save} className="card" noValidate>
      <h3>The platform's own audience</h3>
      <p className="muted">
        Tokens asked for without <code>resource</code> carry <code>{audience ?? '…'}</code> and the app's own scopes. Owners and admins may give their apps
        these scopes in the portal:
      </p>
      <ErrorMessage message={failure} />
      {notice && (
        <p role="status" className="notice">
          {notice}
        </p>
      )}
      <label htmlFor="default-self-service">Self-service scopes of the platform</label>
      <input id="default-self-service" value={scopes} onChange={(e) => setScopes(e.target.value)} placeholder="retail-media" />
      <BusyButton type="submit" busy={busy} busyLabel="Saving…">
        Save
      </BusyButton>
    </form>
  );
}

/** Grants and revokes an API for an application, by its application_id. */
function ApiGrants({ apis }: { apis: RegisteredApi[] }) {
  const [applicationId, setApplicationId] = useState('');
  const [apiId, setApiId] = useState('');
  const [scopes, setScopes] = useState('');
  const [grants, setGrants] = useState<ApiGrant[]>();
  const [failure, setFailure] = useState<string>();
  const [busy, run] = useBusy();
  const chosen = apiId || String(apis[0]?.id ?? '');
  const attempt = (work: () => Promise<void>) =>
    run(async () => {
      setFailure(undefined);
      try {
        await work();
        setGrants(await api<ApiGrant[]>('GET', `/operator/applications/${encodeURIComponent(applicationId.trim())}/apis`));
      } catch (err) {
        setFailure(messageOf(err));
      }
    });
  const grant = (event: FormEvent) => {
    event.preventDefault();
    void attempt(async () => {
      const list = scopeWords(scopes);
      await api('PUT', `/operator/applications/${encodeURIComponent(applicationId.trim())}/apis/${chosen}`, list.length > 0 ? { scopes: list } : {});
    });
  };
  const revoke = (g: ApiGrant) => attempt(() => api('DELETE', `/operator/applications/${encodeURIComponent(applicationId.trim())}/apis/${g.api_id}`));
  return (
    <div className="card">
      <h3>Grant an API to an application</h3>
      <ErrorMessage message={failure} />
      <form onSubmit={grant} className="inline-form" noValidate>
        <div>
          <label htmlFor="grant-app">application_id</label>
          <input id="grant-app" inputMode="numeric" value={applicationId} onChange={(e) => setApplicationId(e.target.value)} />
        </div>
        <div>
          <label htmlFor="grant-api">API</label>
          <select id="grant-api" value={chosen} onChange={(e) => setApiId(e.target.value)}>
            {apis.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name} ({a.identifier})
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="grant-scopes">Scopes (blank: all of the API's)</label>
          <input id="grant-scopes" value={scopes} onChange={(e) => setScopes(e.target.value)} />
        </div>
        <BusyButton type="submit" busy={busy} busyLabel="Granting…">
          Grant
        </BusyButton>
        <button type="button" disabled={busy || applicationId.trim() === ''} onClick={() => void attempt(async () => {})}>
          Show grants
        </button>
      </form>
      {grants && grants.length === 0 && <p className="empty">Application {applicationId} is granted no API.</p>}
      {grants && grants.length > 0 && (
        <ul className="plain">
          {grants.map((g) => (
            <li key={g.api_id}>
              <code>{g.identifier}</code> with {g.scopes.length > 0 ? g.scopes.join(' ') : 'no scopes'}{' '}
              <button type="button" className="danger small" disabled={busy} aria-label={`Revoke ${g.identifier}`} onClick={() => void revoke(g)}>
                Revoke
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Audit() {
  const { items, error } = useList<AuditEvent & { organization_id: number | null }>('/operator/audit?limit=200');
  return (
    <section aria-labelledby="audit-heading">
      <h2 id="audit-heading">Audit log, every organization</h2>
      <ErrorMessage message={error} />
      {!items && !error && <Loading />}
      {items && (
        <ul className="plain">
          {items.map((e) => (
            <li key={e.id}>
              <time dateTime={e.occurred_at}>{new Date(e.occurred_at).toISOString().replace('T', ' ').slice(0, 19)} UTC</time> · <strong>{e.actor}</strong>{' '}
              {e.action} {e.target_type} {e.target_id}
              {e.organization_id !== null ? ` (organization ${e.organization_id})` : ''}
              {e.ip ? ` from ${e.ip}` : ''}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
