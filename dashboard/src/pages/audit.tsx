import { useEffect, useState } from 'react';
import { type AuditEvent, api, formatDate, messageOf } from '../api.js';
import { ErrorMessage, Loading, PageTitle } from '../components.js';
import { Breadcrumbs, OrgNav, useOrg } from './org-nav.js';

const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

/** An audit event in words. */
function describe(e: AuditEvent): string {
  const d = e.details;
  switch (e.action) {
    case 'organization.created':
      return `created the organization “${str(d.name)}”`;
    case 'application.created':
      return `created the app “${str(d.name)}” (${e.target_id})`;
    case 'application.updated':
      return `changed the app ${e.target_id}`;
    case 'credential.created':
      return `created the key “${str(d.name)}” (${e.target_id}) for app ${str(d.application_id)}`;
    case 'credential.renamed':
      return `renamed the key ${e.target_id} from “${str(d.from)}” to “${str(d.to)}”`;
    case 'credential.deleted':
      return `deleted the key ${e.target_id}; it deactivates at ${formatDate(str(d.deactivates_at))}`;
    case 'credential.revoked':
      return `revoked the key ${e.target_id} immediately`;
    case 'member.invited':
      return `invited ${str(d.email)} as ${str(d.role)}`;
    case 'member.joined':
      return `joined as ${str(d.role)}`;
    case 'member.role_changed':
      return `changed the role of member ${e.target_id} from ${str(d.from)} to ${str(d.to)}`;
    case 'member.removed':
      return `removed member ${e.target_id}`;
    case 'invitation.revoked':
      return `revoked the invitation for ${str(d.email)}`;
    default:
      return `${e.action} on ${e.target_type} ${e.target_id}`;
  }
}

export function AuditPage({ orgId }: { orgId: number }) {
  const { org, error: orgError } = useOrg(orgId);
  const [events, setEvents] = useState<AuditEvent[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    api<AuditEvent[]>('GET', `/orgs/${orgId}/audit?limit=200`).then(setEvents, (err) => setError(messageOf(err)));
  }, [orgId]);
  if (orgError) return <ErrorMessage message={orgError} />;
  if (!org) return <Loading />;
  return (
    <div className="page">
      <Breadcrumbs
        items={[
          ['Organizations', '/'],
          [org.name, `/orgs/${orgId}`],
          ['Audit log', undefined],
        ]}
      />
      <PageTitle>Audit log of {org.name}</PageTitle>
      <OrgNav org={org} current="audit" />
      <ErrorMessage message={error} />
      {!events && !error && <Loading />}
      {events && events.length === 0 && <p className="empty">Nothing has happened in this organization yet.</p>}
      {events && events.length > 0 && (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a region that may scroll sideways must take focus, so keyboard users can scroll it
        <section className="table-wrap" tabIndex={0} aria-label="Audit events">
          <table className="stack">
            <caption className="visually-hidden">Audit events, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">What</th>
                <th scope="col">From IP</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => (
                <tr key={e.id}>
                  <td data-label="When">{formatDate(e.occurred_at)}</td>
                  <td data-label="Who">{e.actor}</td>
                  <td data-label="What">{describe(e)}</td>
                  <td data-label="From IP">
                    <code className="nowrap">{e.ip ?? '—'}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </div>
  );
}
