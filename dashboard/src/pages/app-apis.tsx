import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { api, messageOf } from '../api.js';
import { BusyButton, ErrorMessage, Loading, useBusy } from '../components.js';

/** An API published to the portal, with the scopes self-service apps may take. */
interface PublishedApi {
  /** `default`: the platform's own audience (tokens without resource), whose scopes are the app's own. */
  id: number | 'default';
  identifier: string;
  name: string;
  scopes: string[];
}
interface ApiGrant {
  api_id: number | 'default';
  identifier: string;
  name: string;
  scopes: string[];
}

/**
 * The app's APIs (each its own token audience) and, for owners and admins, a picker of the
 * published APIs' self-service scopes. Developers see the list only.
 */
export function AppApis({ orgId, appId, canManage }: { orgId: number; appId: number; canManage: boolean }) {
  const [grants, setGrants] = useState<ApiGrant[]>();
  const [published, setPublished] = useState<PublishedApi[]>();
  const [apiId, setApiId] = useState('');
  const [picked, setPicked] = useState<string[]>([]);
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const [busy, run] = useBusy();
  const path = `/orgs/${orgId}/apps/${appId}/apis`;

  const load = useCallback(async () => {
    try {
      setGrants(await api<ApiGrant[]>('GET', path));
    } catch (err) {
      setError(messageOf(err));
    }
  }, [path]);
  useEffect(() => {
    void load();
    if (canManage) api<PublishedApi[]>('GET', '/apis').then(setPublished, (err) => setError(messageOf(err)));
  }, [load, canManage]);

  const chosen = published?.find((a) => String(a.id) === apiId) ?? published?.[0];
  const current = grants?.find((g) => g.api_id === chosen?.id);
  useEffect(() => {
    // The picker starts from what the app already has of the chosen API.
    setPicked(chosen ? chosen.scopes.filter((s) => current?.scopes.includes(s)) : []);
  }, [chosen, current]);

  const attempt = (work: () => Promise<void>) =>
    run(async () => {
      setError(undefined);
      setNotice(undefined);
      try {
        await work();
        await load();
      } catch (err) {
        setError(messageOf(err));
      }
    });
  const save = (event: FormEvent) => {
    event.preventDefault();
    if (!chosen) return;
    void attempt(async () => {
      await api('PUT', `${path}/${chosen.id}`, { scopes: picked });
      setNotice(picked.length > 0 ? `The app may now ask tokens for ${chosen.identifier} with ${picked.join(' ')}.` : `Removed ${chosen.identifier}.`);
    });
  };
  const remove = (g: ApiGrant) =>
    attempt(async () => {
      await api('DELETE', `${path}/${g.api_id}`);
      setNotice(`Removed the self-service scopes of ${g.identifier}.`);
    });
  const toggle = (scope: string, on: boolean) => setPicked((list) => (on ? [...list, scope] : list.filter((s) => s !== scope)));

  return (
    <section aria-labelledby="apis-heading">
      <h2 id="apis-heading">APIs</h2>
      <p className="muted">
        Each API is its own token audience: ask for a token with <code>resource=&lt;identifier&gt;</code> to call it. The app's own scopes (“This platform”)
        come with tokens asked for without <code>resource</code>.
      </p>
      <ErrorMessage message={error} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {!grants && !error && <Loading />}
      {grants && grants.length === 0 && <p className="empty">This app has no APIs yet.</p>}
      {grants && grants.length > 0 && (
        <ul className="plain">
          {grants.map((g) => (
            <li key={g.api_id}>
              <strong>{g.name}</strong> <code>{g.identifier}</code> with {g.scopes.length > 0 ? g.scopes.join(' ') : 'no scopes'}{' '}
              {canManage && (
                <button type="button" className="danger small" disabled={busy} aria-label={`Remove ${g.identifier}`} onClick={() => void remove(g)}>
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {!canManage && <p className="muted">An owner or admin of the organization can add APIs to this app.</p>}
      {canManage && published && published.length === 0 && <p className="muted">No API is published for self-service yet; an operator can grant one.</p>}
      {canManage && chosen && (
        <form onSubmit={save} className="card" noValidate>
          <h3>Add an API or change its scopes</h3>
          <label htmlFor="app-api">API</label>
          <select id="app-api" value={String(chosen.id)} onChange={(e) => setApiId(e.target.value)}>
            {published?.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name} ({a.identifier})
              </option>
            ))}
          </select>
          <fieldset>
            <legend>Scopes</legend>
            {chosen.scopes.map((scope) => (
              <p key={scope} className="check">
                <input id={`app-api-scope-${scope}`} type="checkbox" checked={picked.includes(scope)} onChange={(e) => toggle(scope, e.target.checked)} />{' '}
                <label htmlFor={`app-api-scope-${scope}`} className="inline">
                  <code>{scope}</code>
                </label>
              </p>
            ))}
          </fieldset>
          <BusyButton type="submit" busy={busy} busyLabel="Saving…">
            Save scopes
          </BusyButton>
        </form>
      )}
    </section>
  );
}
