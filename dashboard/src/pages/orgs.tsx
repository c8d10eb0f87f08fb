import { type FormEvent, useEffect, useState } from 'react';
import { api, messageOf, type Org } from '../api.js';
import { ErrorMessage, Loading, PageTitle } from '../components.js';
import { Link, navigate } from '../router.js';

export function OrgsPage() {
  const [orgs, setOrgs] = useState<Org[]>();
  const [error, setError] = useState<string>();
  const [name, setName] = useState('');
  const [formError, setFormError] = useState<string>();

  useEffect(() => {
    api<Org[]>('GET', '/orgs').then(setOrgs, (err) => setError(messageOf(err)));
  }, []);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setFormError(undefined);
    try {
      const org = await api<Org>('POST', '/orgs', { name });
      navigate(`/orgs/${org.id}`);
    } catch (err) {
      setFormError(messageOf(err));
    }
  };

  return (
    <div className="page">
      <PageTitle>Your organizations</PageTitle>
      <ErrorMessage message={error} />
      {!orgs && !error && <Loading />}
      {orgs && orgs.length === 0 && (
        <div className="empty">
          <p>
            <strong>You are not in any organization yet.</strong>
          </p>
          <p>An organization holds your apps and their API keys. Create one below, or ask a colleague to invite you to theirs.</p>
        </div>
      )}
      {orgs && orgs.length > 0 && (
        <ul className="cards">
          {orgs.map((o) => (
            <li key={o.id} className="card">
              <Link to={`/orgs/${o.id}`}>{o.name}</Link>
              <span className="muted"> · {o.role}</span>
            </li>
          ))}
        </ul>
      )}
      <section className="card" aria-labelledby="new-org">
        <h2 id="new-org">Create an organization</h2>
        <form onSubmit={create} className="inline-form" noValidate>
          <div>
            <label htmlFor="org-name">Organization name</label>
            <input id="org-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} placeholder="e.g. Acme Retail" />
          </div>
          <button type="submit">Create organization</button>
        </form>
        <ErrorMessage message={formError} />
      </section>
    </div>
  );
}
