import { type FormEvent, useEffect, useState } from 'react';
import { type AuditEvent, api, messageOf } from '../api.js';
import { BusyButton, ErrorMessage, Loading, PageTitle, useBusy } from '../components.js';
import { Breadcrumbs, OrgNav, useOrg } from './org-nav.js';

const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

/** An audit event in words, naming apps, keys and people rather than their ids. */
function describe(e: AuditEvent): string {
  const d = e.details;
  const name = e.target_name ?? e.target_id;
  switch (e.action) {
    case 'organization.created':
      return `created the organization “${str(d.name)}”`;
    case 'organization.second_factor_required':
      return 'required two-factor authentication of every member';
    case 'organization.second_factor_optional':
      return 'made two-factor authentication optional';
    case 'application.created':
      return `created the app “${str(d.name)}” (application_id ${e.target_id})`;
    case 'application.updated':
      return `changed the app “${name}”`;
    case 'credential.created':
      return `created the key “${str(d.name)}” (${e.target_id})`;
    case 'credential.renamed':
      return `renamed the key ${e.target_id} from “${str(d.from)}” to “${str(d.to)}”`;
    case 'credential.deleted':
      return `deleted the key “${name}”; it deactivates at ${formatTime(str(d.deactivates_at))}`;
    case 'credential.revoked':
      return `revoked the key “${name}” immediately`;
    case 'member.invited':
      return `invited ${str(d.email)} as ${str(d.role)}`;
    case 'member.joined':
      return `joined as ${str(d.role)}`;
    case 'member.role_changed':
      return `changed the role of ${name} from ${str(d.from)} to ${str(d.to)}`;
    case 'member.removed':
      return `removed ${name}`;
    case 'invitation.revoked':
      return `revoked the invitation for ${str(d.email)}`;
    case 'user.signed_in':
      return 'signed in';
    case 'user.sign_in_failed':
      return `failed to sign in as ${name} (wrong password or code)`;
    case 'user.sign_in_locked':
      return `was refused signing in as ${name}: too many failures, locked for now`;
    case 'partner.application_linked':
      return `linked application ${str(d.application_id)} to partner “${name}”`;
    case 'partner.application_unlinked':
      return `unlinked application ${str(d.application_id)} from partner “${name}”`;
    case 'application.rate_limit_set':
      return `set the rate limit of “${name}” to ${str(d.per_minute)} a minute`;
    default:
      return `${e.action} on ${e.target_type} ${name}`;
  }
}

/** A time to the second, with its time zone. */
const formatTime = (iso: string) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'long' }) : '');

const ACTIONS: [string, string][] = [
  ['', 'Any action'],
  ['credential', 'Keys'],
  ['application', 'Apps'],
  ['member', 'Members'],
  ['invitation', 'Invitations'],
  ['user', 'Sign-ins and lockouts'],
  ['organization', 'Organization settings'],
  ['partner', 'Partner links'],
];
const PAGE = 50;

export function AuditPage({ orgId }: { orgId: number }) {
  const { org, error: orgError } = useOrg(orgId);
  const [events, setEvents] = useState<AuditEvent[]>();
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string>();
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [applied, setApplied] = useState<Record<string, string>>({});
  const [busy, run] = useBusy();

  const query = (extra: Record<string, string>) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...applied, ...extra })) if (v) q.set(k, v);
    return q.toString();
  };
  const load = (filters: Record<string, string>, before?: number) =>
    run(async () => {
      setError(undefined);
      try {
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries({ ...filters, limit: String(PAGE), ...(before ? { before: String(before) } : {}) })) if (v) q.set(k, v);
        const page = await api<AuditEvent[]>('GET', `/orgs/${orgId}/audit?${q}`);
        setEvents((old) => (before && old ? [...old, ...page] : page));
        setMore(page.length === PAGE);
      } catch (err) {
        setError(messageOf(err));
      }
    });

  // Loads the first page once per organization; filters reload it from the form.
  // biome-ignore lint/correctness/useExhaustiveDependencies: load is rebuilt every render; orgId is what changes the page
  useEffect(() => {
    void load({});
  }, [orgId]);

  const filter = (event: FormEvent) => {
    event.preventDefault();
    const filters = { actor: actor.trim(), action, from, to };
    setApplied(filters);
    setEvents(undefined);
    void load(filters);
  };

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
      <form className="filters" onSubmit={filter} noValidate aria-label="Filter the audit log">
        <div>
          <label htmlFor="audit-actor">Who (email address)</label>
          <input id="audit-actor" type="email" value={actor} onChange={(e) => setActor(e.target.value)} maxLength={254} />
        </div>
        <div>
          <label htmlFor="audit-action">What</label>
          <select id="audit-action" value={action} onChange={(e) => setAction(e.target.value)}>
            {ACTIONS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="audit-from">From (UTC day)</label>
          <input id="audit-from" type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
        </div>
        <div>
          <label htmlFor="audit-to">To (UTC day)</label>
          <input id="audit-to" type="date" value={to} onChange={(e) => setTo(e.target.value)} />
        </div>
        <button type="submit">Filter</button>
        <a className="button secondary" href={`/portal/api/orgs/${orgId}/audit.csv?${query({})}`} download>
          Download CSV
        </a>
      </form>
      <ErrorMessage message={error} />
      {!events && !error && <Loading />}
      {events && events.length === 0 && <p className="empty">No events match.</p>}
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
                  <td data-label="When">
                    <time dateTime={e.occurred_at}>{formatTime(e.occurred_at)}</time>
                  </td>
                  <td data-label="Who">{e.actor === 'anonymous' ? 'Someone' : e.actor}</td>
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
      {events && more && (
        <p>
          <BusyButton className="secondary" busy={busy} busyLabel="Loading…" onClick={() => void load(applied, events[events.length - 1]?.id)}>
            Show older events
          </BusyButton>
        </p>
      )}
    </div>
  );
}
