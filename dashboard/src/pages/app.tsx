import { type FormEvent, type KeyboardEvent, useCallback, useEffect, useRef, useState } from 'react';
import { type App, api, formatDate, type Key, type Member, messageOf, type NewKey, plural } from '../api.js';
import { BusyButton, CopyButton, Dialog, ErrorMessage, Loading, PageTitle, useBusy, useNow } from '../components.js';
import { useSession } from '../session.js';
import { AppApis } from './app-apis.js';
import { Breadcrumbs, OrgNav, useOrg } from './org-nav.js';
import { UsageChart } from './usage.js';

const MAX_KEYS = 5;

/** The file the browser saves when a key is created, as the reference portal does. */
function downloadCredentials(app: App, key: NewKey): void {
  const text = [
    `# Portcullis API credentials for the app "${app.name}" (application_id ${app.id})`,
    `# Key name: ${key.name}; created ${key.created_at}`,
    '# Keep this file secret: the secret cannot be shown again. Load it with: set -a; . ./this-file; set +a',
    `CLIENT_ID=${key.client_id}`,
    `CLIENT_SECRET=${key.client_secret}`,
    '',
  ].join('\n');
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `portcullis-credentials-${key.client_id.slice(0, 8)}.txt`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const countdown = (ms: number) => {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${m}:${String(s).padStart(2, '0')}`;
};

function KeyName({ keyItem, canEdit, onRename }: { keyItem: Key; canEdit: boolean; onRename: (name: string) => Promise<void> }) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(keyItem.name);
  const [error, setError] = useState<string>();
  const [busy, run] = useBusy();
  const button = useRef<HTMLButtonElement>(null);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (editing) input.current?.select();
  }, [editing]);
  if (!canEdit || keyItem.status !== 'active') return <span>{keyItem.name}</span>;
  if (!editing) {
    return (
      <button
        ref={button}
        type="button"
        className="editable"
        title="Click to rename"
        aria-label={`Rename ${keyItem.name}`}
        onClick={() => {
          setValue(keyItem.name);
          setError(undefined);
          setEditing(true);
        }}
      >
        {keyItem.name} <span aria-hidden="true">✎</span>
      </button>
    );
  }
  const save = (event?: FormEvent) => {
    event?.preventDefault();
    void run(async () => {
      try {
        await onRename(value);
        setEditing(false);
        setTimeout(() => button.current?.focus());
      } catch (err) {
        setError(messageOf(err));
      }
    });
  };
  const onKey = (event: KeyboardEvent) => {
    if (event.key === 'Escape') {
      setEditing(false);
      setTimeout(() => button.current?.focus());
    }
  };
  return (
    <form onSubmit={save} className="rename">
      <label htmlFor={`rename-${keyItem.client_id}`} className="visually-hidden">
        New name for {keyItem.name}
      </label>
      <input id={`rename-${keyItem.client_id}`} ref={input} value={value} onChange={(e) => setValue(e.target.value)} onKeyDown={onKey} maxLength={100} />
      <BusyButton type="submit" className="small" busy={busy} busyLabel="Saving…">
        Save
      </BusyButton>
      <button
        type="button"
        className="secondary small"
        onClick={() => {
          setEditing(false);
          setTimeout(() => button.current?.focus());
        }}
      >
        Cancel
      </button>
      <ErrorMessage message={error} />
    </form>
  );
}

export function AppPage({ orgId, appId }: { orgId: number; appId: number }) {
  const { session } = useSession();
  const { org, error: orgError } = useOrg(orgId);
  const [app, setApp] = useState<App>();
  const [keys, setKeys] = useState<Key[]>();
  const [error, setError] = useState<string>();
  const [name, setName] = useState('');
  const [formError, setFormError] = useState<string>();
  const [created, setCreated] = useState<NewKey>();
  const [deleting, setDeleting] = useState<Key>();
  const [deleteError, setDeleteError] = useState<string>();
  const [revoking, setRevoking] = useState<Key>();
  const [revokeError, setRevokeError] = useState<string>();
  const [typed, setTyped] = useState('');
  const [notice, setNotice] = useState<string>();
  const [managers, setManagers] = useState<Member[]>();
  const [usageKey, setUsageKey] = useState('');
  const [creatingKey, runCreate] = useBusy();
  const [deletingKey, runDelete] = useBusy();
  const [revokingKey, runRevoke] = useBusy();

  const load = useCallback(async () => {
    try {
      setKeys(await api<Key[]>('GET', `/orgs/${orgId}/apps/${appId}/credentials`));
    } catch (err) {
      setError(messageOf(err));
    }
  }, [orgId, appId]);

  useEffect(() => {
    api<App>('GET', `/orgs/${orgId}/apps/${appId}`).then(setApp, (err) => setError(messageOf(err)));
    void load();
  }, [orgId, appId, load]);

  const deactivating = (keys ?? []).filter((k) => k.status === 'deactivating');
  const now = useNow(deactivating.length > 0);
  const nextEnd = Math.min(...deactivating.map((k) => Date.parse(k.deactivates_at ?? '')));
  useEffect(() => {
    // When a countdown ends, the key is gone: reload the list.
    if (Number.isFinite(nextEnd) && now >= nextEnd) void load();
  }, [now, nextEnd, load]);

  const role = org?.role;
  useEffect(() => {
    // A developer is told whom to ask for keys.
    if (role !== 'developer') return;
    api<Member[]>('GET', `/orgs/${orgId}/members`).then(
      (all) => setManagers(all.filter((m) => m.role !== 'developer')),
      () => {},
    );
  }, [role, orgId]);

  if (orgError) return <ErrorMessage message={orgError} />;
  if (error && !app) return <ErrorMessage message={error} />;
  if (!org || !app) return <Loading />;
  const canManage = org.role !== 'developer';
  const verified = session.user?.email_verified === true;
  const active = (keys ?? []).filter((k) => k.status === 'active').length;
  const graceMinutes = Math.round(session.deactivation_grace_seconds / 60);
  const grace =
    session.deactivation_grace_seconds >= 60 ? `${graceMinutes} minute${graceMinutes === 1 ? '' : 's'}` : `${session.deactivation_grace_seconds} seconds`;

  const createKey = (event: FormEvent) => {
    event.preventDefault();
    void runCreate(async () => {
      setFormError(undefined);
      try {
        const key = await api<NewKey>('POST', `/orgs/${orgId}/apps/${appId}/credentials`, { name });
        downloadCredentials(app, key);
        setCreated(key);
        setName('');
        await load();
      } catch (err) {
        setFormError(messageOf(err));
      }
    });
  };

  const rename = async (key: Key, newName: string) => {
    await api('PATCH', `/orgs/${orgId}/apps/${appId}/credentials/${key.client_id}`, { name: newName });
    setNotice(`Renamed to “${newName.trim()}”.`);
    await load();
  };

  const confirmDelete = () =>
    runDelete(async () => {
      if (!deleting) return;
      setDeleteError(undefined);
      try {
        await api('DELETE', `/orgs/${orgId}/apps/${appId}/credentials/${deleting.client_id}`);
        setFormError(undefined);
        setNotice(`“${deleting.name}” is deactivating: it keeps working for ${grace}, then stops.`);
        setDeleting(undefined);
        await load();
      } catch (err) {
        setDeleteError(messageOf(err));
      }
    });

  const confirmRevoke = (event: FormEvent) => {
    event.preventDefault();
    void runRevoke(async () => {
      if (!revoking) return;
      setRevokeError(undefined);
      if (typed.trim() !== revoking.name) {
        setRevokeError(`Type the key's name, “${revoking.name}”, to confirm.`);
        return;
      }
      try {
        await api('DELETE', `/orgs/${orgId}/apps/${appId}/credentials/${revoking.client_id}?immediately=true`);
        setNotice(`“${revoking.name}” is revoked: it and every token issued from it stopped working.`);
        setRevoking(undefined);
        await load();
      } catch (err) {
        setRevokeError(messageOf(err));
      }
    });
  };
  const tokenUrl = session.token_url;
  const sampleId = keys?.find((k) => k.status === 'active')?.client_id ?? created?.client_id ?? 'YOUR_CLIENT_ID';

  return (
    <div className="page">
      <Breadcrumbs
        items={[
          ['Organizations', '/'],
          [org.name, `/orgs/${orgId}`],
          [app.name, undefined],
        ]}
      />
      <PageTitle>{app.name}</PageTitle>
      <OrgNav org={org} current="apps" />
      <p className="muted">
        Application ID <code>{app.id}</code>
        {app.description ? ` · ${app.description}` : ''}
      </p>

      <section aria-labelledby="keys-heading">
        <h2 id="keys-heading">API keys</h2>
        <p className="muted">
          Each key is a client_id and a client_secret for <code>POST /oauth2/token</code>. An app can have up to {MAX_KEYS} keys; a deleted key keeps working
          for {grace}.
        </p>
        <p className="visually-hidden" aria-live="polite">
          {notice}
        </p>
        {notice && <p className="notice">{notice}</p>}
        <ErrorMessage message={error} />
        {!keys && !error && <Loading />}
        {keys && keys.length === 0 && (
          <div className="empty">
            <p>
              <strong>This app has no API keys yet.</strong>
            </p>
            <p>{canManage ? 'Create one below: the secret downloads as a file and is shown once.' : 'An owner or admin can create keys for this app.'}</p>
          </div>
        )}
        {keys && keys.length > 0 && (
          <div className="table-wrap">
            <table className="keys stack">
              <caption className="visually-hidden">API keys of {app.name}</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Client ID</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Status</th>
                  {canManage && (
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {keys.map((k) => (
                  <tr key={k.client_id} data-client-id={k.client_id}>
                    <td data-label="Name">
                      <KeyName keyItem={k} canEdit={canManage} onRename={(n) => rename(k, n)} />
                    </td>
                    <td data-label="Client ID">
                      <code>{k.client_id}</code>
                    </td>
                    <td data-label="Created">{formatDate(k.created_at)}</td>
                    <td data-label="Last used">{formatDate(k.last_used_at)}</td>
                    <td data-label="Status">
                      {k.status === 'active' ? (
                        <span className="status active">Active</span>
                      ) : (
                        <span className="status deactivating">
                          Deactivating <span className="countdown">{countdown(Date.parse(k.deactivates_at ?? '') - now)}</span>
                        </span>
                      )}
                    </td>
                    {canManage && (
                      <td className="actions" data-label="Actions">
                        {k.status === 'active' && (
                          <button
                            type="button"
                            className="danger small"
                            onClick={() => {
                              setDeleteError(undefined);
                              setDeleting(k);
                            }}
                            aria-label={`Delete ${k.name}`}
                          >
                            Delete
                          </button>
                        )}
                        <button
                          type="button"
                          className="danger small"
                          onClick={() => {
                            setRevokeError(undefined);
                            setTyped('');
                            setRevoking(k);
                          }}
                          aria-label={`Revoke now: ${k.name}`}
                        >
                          Revoke now
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {!canManage && (
          <div className="explain" role="note">
            <p>
              <strong>Your role in {org.name} is developer:</strong> you can see this app and its keys, but only an owner or an admin can create, revoke or
              delete keys.
            </p>
            {managers && managers.length > 0 && (
              <p>
                Ask{' '}
                {managers.map((m, i) => (
                  <span key={m.user_id}>
                    {i > 0 ? (i === managers.length - 1 ? ' or ' : ', ') : ''}
                    <a href={`mailto:${m.email}`}>{m.email}</a> ({m.role})
                  </span>
                ))}{' '}
                to create a key for you, or to make you an admin.
              </p>
            )}
          </div>
        )}
        {canManage && !verified && (
          <p className="explain" role="note">
            Verify your email address before creating keys: open the link we mailed you
            {session.mail_delivers ? '' : ', or ask your operator to verify your account'}.
          </p>
        )}
        {canManage && (
          <form onSubmit={createKey} className="inline-form card" noValidate>
            <div>
              <label htmlFor="key-name">New key name</label>
              <input id="key-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} placeholder="e.g. Production Credentials" />
            </div>
            <BusyButton type="submit" busy={creatingKey} busyLabel="Creating key…">
              Create key
            </BusyButton>
            <p className="hint">
              {active} of {plural(MAX_KEYS, 'active key')}
              {deactivating.length > 0 ? `, and ${deactivating.length} deactivating` : ''}.
            </p>
            <ErrorMessage message={formError} />
          </form>
        )}
      </section>

      <AppApis orgId={orgId} appId={appId} canManage={canManage} />
      <section aria-labelledby="quickstart-heading">
        <h2 id="quickstart-heading">Quickstart</h2>
        <p>
          Get a token from <code>{tokenUrl}</code> with a key's client ID and secret (the downloaded file holds both as <code>CLIENT_ID</code> and{' '}
          <code>CLIENT_SECRET</code>). Tokens live 15 minutes; get a new one before it expires.
        </p>
        <label htmlFor="quickstart-curl">With curl</label>
        <div className="copy-row">
          <textarea
            id="quickstart-curl"
            readOnly
            rows={3}
            value={`curl -X POST '${tokenUrl}' --data-urlencode 'grant_type=client_credentials' --data-urlencode 'client_id=${sampleId}' --data-urlencode "client_secret=$CLIENT_SECRET"`}
          />
          <CopyButton
            value={`curl -X POST '${tokenUrl}' --data-urlencode 'grant_type=client_credentials' --data-urlencode 'client_id=${sampleId}' --data-urlencode "client_secret=$CLIENT_SECRET"`}
            label="Copy the curl command"
          />
        </div>
        <label htmlFor="quickstart-sdk">
          In Node.js with <code>@portcullis/client</code>
        </label>
        <div className="copy-row">
          <textarea
            id="quickstart-sdk"
            readOnly
            rows={8}
            value={`import { createTokenProvider } from '@portcullis/client';\n\nconst tokens = createTokenProvider({\n  tokenUrl: '${tokenUrl}',\n  clientId: process.env.CLIENT_ID ?? '${sampleId}',\n  clientSecret: process.env.CLIENT_SECRET!,\n});\nconst token = await tokens.getToken(); // cached and renewed for you`}
          />
          <CopyButton
            value={`import { createTokenProvider } from '@portcullis/client';\n\nconst tokens = createTokenProvider({\n  tokenUrl: '${tokenUrl}',\n  clientId: process.env.CLIENT_ID ?? '${sampleId}',\n  clientSecret: process.env.CLIENT_SECRET!,\n});\nconst token = await tokens.getToken(); // cached and renewed for you`}
            label="Copy the Node.js snippet"
          />
        </div>
      </section>

      <section aria-labelledby="usage-heading">
        <h2 id="usage-heading">Tokens issued, last 30 days</h2>
        {keys && keys.length > 0 && (
          <p>
            <label htmlFor="usage-key">Show</label>
            <select id="usage-key" value={usageKey} onChange={(e) => setUsageKey(e.target.value)}>
              <option value="">All keys of the app</option>
              {keys.map((k) => (
                <option key={k.client_id} value={k.client_id}>
                  {k.name} ({k.client_id.slice(0, 8)}…)
                </option>
              ))}
            </select>
          </p>
        )}
        <UsageChart orgId={orgId} appId={appId} {...(usageKey ? { clientId: usageKey } : {})} />
      </section>

      <Dialog title="Your new API key" open={created !== undefined} onClose={() => setCreated(undefined)}>
        {created && (
          <>
            <p>
              <strong>Copy the secret now: you will not see this again.</strong> A file with the client ID and secret has also been downloaded to your computer;
              keep it somewhere safe.
            </p>
            <label htmlFor="new-client-id">Client ID</label>
            <div className="copy-row">
              <input id="new-client-id" readOnly value={created.client_id} onFocus={(e) => e.target.select()} />
              <CopyButton value={created.client_id} label="Copy client ID" />
            </div>
            <label htmlFor="new-client-secret">Client secret</label>
            <div className="copy-row">
              <input id="new-client-secret" readOnly value={created.client_secret} onFocus={(e) => e.target.select()} />
              <CopyButton value={created.client_secret} label="Copy client secret" />
            </div>
            <div className="dialog-actions">
              <button type="button" onClick={() => setCreated(undefined)}>
                I have saved the secret
              </button>
            </div>
          </>
        )}
      </Dialog>

      <Dialog title="Delete this key?" open={deleting !== undefined} onClose={() => setDeleting(undefined)}>
        {deleting && (
          <>
            <p>
              “{deleting.name}” (<code>{deleting.client_id}</code>) keeps getting tokens for {grace}, then stops working. This cannot be undone.
            </p>
            <ErrorMessage message={deleteError} />
            <div className="dialog-actions">
              <button type="button" className="secondary" onClick={() => setDeleting(undefined)}>
                Cancel
              </button>
              <BusyButton className="danger" busy={deletingKey} busyLabel="Deleting…" onClick={() => void confirmDelete()}>
                Delete key
              </BusyButton>
            </div>
          </>
        )}
      </Dialog>

      <Dialog title="Revoke this key now?" open={revoking !== undefined} onClose={() => setRevoking(undefined)}>
        {revoking && (
          <form onSubmit={confirmRevoke} noValidate>
            <p>
              “{revoking.name}” (<code>{revoking.client_id}</code>) <strong>stops at once</strong>: its secret is refused and every token already issued from it
              stops working. Use this when a secret has leaked. This cannot be undone.
            </p>
            <label htmlFor="revoke-confirm">
              Type the key's name, <strong>{revoking.name}</strong>, to confirm
            </label>
            <input id="revoke-confirm" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" />
            <ErrorMessage message={revokeError} />
            <div className="dialog-actions">
              <button type="button" className="secondary" onClick={() => setRevoking(undefined)}>
                Cancel
              </button>
              <BusyButton type="submit" className="danger" busy={revokingKey} busyLabel="Revoking…">
                Revoke now
              </BusyButton>
            </div>
          </form>
        )}
      </Dialog>
    </div>
  );
}
