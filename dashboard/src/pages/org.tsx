import { type FormEvent, useEffect, useState } from 'react';
import { type App, api, formatDate, messageOf } from '../api.js';
import { ErrorMessage, Loading, PageTitle } from '../components.js';
import { Link, navigate } from '../router.js';
import { Breadcrumbs, OrgNav, useOrg } from './org-nav.js';

export function OrgPage({ orgId }: { orgId: number }) {
  const { org, error: orgError } = useOrg(orgId);
  const [apps, setApps] = useState<App[]>();
  const [error, setError] = useState<string>();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [formError, setFormError] = useState<string>();

  useEffect(() => {
    api<App[]>('GET', `/orgs/${orgId}/apps`).then(setApps, (err) => setError(messageOf(err)));
  }, [orgId]);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setFormError(undefined);
    try {
      const app = await api<App>('POST', `/orgs/${orgId}/apps`, { name, description });
      navigate(`/orgs/${orgId}/apps/${app.id}`);
    } catch (err) {
      setFormError(messageOf(err));
    }
  };

  if (orgError) return <ErrorMessage message={orgError} />;
  if (!org) return <Loading />;
  const canManage = org.role !== 'developer';
  return (
    <div className="page">
      <Breadcrumbs
        items={[
          ['Organizations', '/'],
          [org.name, undefined],
        ]}
      />
      <PageTitle>{org.name}</PageTitle>
      <OrgNav org={org} current="apps" />
      <ErrorMessage message={error} />
      {!apps && !error && <Loading />}
      {apps && apps.length === 0 && (
        <div className="empty">
          <p>
            <strong>No apps yet.</strong>
          </p>
          <p>
            {canManage
              ? 'An app is what calls the APIs. Create one to generate its API keys.'
              : 'An owner or admin of this organization can create the first app.'}
          </p>
        </div>
      )}
      {apps && apps.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Apps of {org.name}</caption>
            <thead>
              <tr>
                <th scope="col">App</th>
                <th scope="col">Application ID</th>
                <th scope="col">Description</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {apps.map((a) => (
                <tr key={a.id}>
                  <td>
                    <Link to={`/orgs/${orgId}/apps/${a.id}`}>{a.name}</Link>
                  </td>
                  <td>
                    <code>{a.id}</code>
                  </td>
                  <td>{a.description || <span className="muted">—</span>}</td>
                  <td>{formatDate(a.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {canManage && (
        <section className="card" aria-labelledby="new-app">
          <h2 id="new-app">Create an app</h2>
          <form onSubmit={create} className="stack-form" noValidate>
            <label htmlFor="app-name">App name</label>
            <input id="app-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} placeholder="e.g. Shop integration" />
            <label htmlFor="app-description">Description (optional)</label>
            <input id="app-description" value={description} onChange={(e) => setDescription(e.target.value)} maxLength={500} />
            <ErrorMessage message={formError} />
            <button type="submit">Create app</button>
          </form>
        </section>
      )}
    </div>
  );
}
