import { type FormEvent, type KeyboardEvent, useCallback, useEffect, useRef, useState } from 'react';
import { type App, api, formatDate, type Key, messageOf, type NewKey } from '../api.js';
import { CopyButton, Dialog, ErrorMessage, Loading, PageTitle, useNow } from '../components.js';
import { useSession } from '../session.js';
import { Breadcrumbs, OrgNav, useOrg } from './org-nav.js';
import { UsageChart } from './usage.js';

const MAX_KEYS = 5;

/** The file the browser saves when a key is created, as the reference portal does. */
function downloadCredentials(app: App, key: NewKey): void {
  const text = [
    `# Portcullis API credentials for the app "${app.name}" (application_id ${app.id})`,
    `# Key name: ${key.name}; created ${key.created_at}`,
    '# Keep this file secret: the secret cannot be shown again.',
    `client_id=${key.client_id}`,
    `client_secret=${key.client_secret}`,
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
  const save = async (event?: FormEvent) => {
    event?.preventDefault();
    try {
      await onRename(value);
      setEditing(false);
      setTimeout(() => button.current?.focus());
    } catch (err) {
      setError(messageOf(err));
    }
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
      <button type="submit" className="small">
        Save
      </button>
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
  const [notice, setNotice] = useState<string>();

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

  if (orgError) return <ErrorMessage message={orgError} />;
  if (error && !app) return <ErrorMessage message={error} />;
  if (!org || !app) return <Loading />;
  const canManage = org.role !== 'developer';
  const active = (keys ?? []).filter((k) => k.status === 'active').length;
  const graceMinutes = Math.round(session.deactivation_grace_seconds / 60);
  const grace =
    session.deactivation_grace_seconds >= 60 ? `${graceMinutes} minute${graceMinutes === 1 ? '' : 's'}` : `${session.deactivation_grace_seconds} seconds`;

  const createKey = async (event: FormEvent) => {
    event.preventDefault();
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
  };

  const rename = async (key: Key, newName: string) => {
    await api('PATCH', `/orgs/${orgId}/apps/${appId}/credentials/${key.client_id}`, { name: newName });
    setNotice(`Renamed to “${newName.trim()}”.`);
    await load();
  };

  const confirmDelete = async () => {
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
  };

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
            <table className="keys">
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
                      <td>
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
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {canManage && (
          <form onSubmit={createKey} className="inline-form card" noValidate>
            <div>
              <label htmlFor="key-name">New key name</label>
              <input id="key-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} placeholder="e.g. Production Credentials" />
            </div>
            <button type="submit">Create key</button>
            <p className="hint">
              {active} of {MAX_KEYS} active keys{deactivating.length > 0 ? `, and ${deactivating.length} deactivating` : ''}.
            </p>
            <ErrorMessage message={formError} />
          </form>
        )}
      </section>

      <section aria-labelledby="usage-heading">
        <h2 id="usage-heading">Tokens issued, last 30 days</h2>
        <UsageChart orgId={orgId} appId={appId} />
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
              <button type="button" className="danger" onClick={confirmDelete}>
                Delete key
              </button>
            </div>
          </>
        )}
      </Dialog>
    </div>
  );
}
