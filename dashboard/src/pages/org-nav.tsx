import { useEffect, useState } from 'react';
import { api, type Org } from '../api.js';
import { Link } from '../router.js';

/** Loads the organization (and the caller's role in it) for the pages below it. */
export function useOrg(orgId: number): { org: Org | undefined; error: string | undefined } {
  const [org, setOrg] = useState<Org>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    api<Org>('GET', `/orgs/${orgId}`).then(setOrg, (err: Error) => setError(err.message));
  }, [orgId]);
  return { org, error };
}

export function OrgNav({ org, current }: { org: Org; current: 'apps' | 'members' | 'audit' }) {
  const tabs: [typeof current, string, string][] = [
    ['apps', 'Apps', `/orgs/${org.id}`],
    ['members', 'Members', `/orgs/${org.id}/members`],
  ];
  if (org.role !== 'developer') tabs.push(['audit', 'Audit log', `/orgs/${org.id}/audit`]);
  return (
    <nav className="tabs" aria-label={`${org.name} sections`}>
      {tabs.map(([key, label, to]) => (
        <span key={key} className={key === current ? 'tab current' : 'tab'} aria-current={key === current ? 'page' : undefined}>
          <Link to={to}>{label}</Link>
        </span>
      ))}
      <span className="role-badge">Your role: {org.role}</span>
    </nav>
  );
}

export function Breadcrumbs({ items }: { items: [string, string | undefined][] }) {
  return (
    <nav aria-label="Breadcrumb" className="breadcrumbs">
      <ol>
        {items.map(([label, to]) => (
          <li key={label}>{to ? <Link to={to}>{label}</Link> : <span aria-current="page">{label}</span>}</li>
        ))}
      </ol>
    </nav>
  );
}
