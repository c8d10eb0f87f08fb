import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { api, formatDate, type Invitation, type Member, messageOf, type Role } from '../api.js';
import { BusyButton, CopyButton, Dialog, ErrorMessage, Loading, PageTitle, useBusy } from '../components.js';
import { useSession } from '../session.js';
import { Breadcrumbs, OrgNav, useOrg } from './org-nav.js';

const ROLE_HELP: Record<Role, string> = {
  owner: 'Owner: everything, including members',
  admin: 'Admin: manages apps and keys',
  developer: 'Developer: sees apps and key details, cannot create or delete keys',
};

function RequireSecondFactor({ orgId, initial }: { orgId: number; initial: boolean }) {
  const [required, setRequired] = useState(initial);
  const [error, setError] = useState<string>();
  const [note, setNote] = useState<string>();
  const [busy, run] = useBusy();
  const change = (value: boolean) =>
    run(async () => {
      setError(undefined);
      try {
        const answer = await api<{ second_factor_required: boolean }>('PUT', `/orgs/${orgId}/policy`, { second_factor_required: value });
        setRequired(answer.second_factor_required);
        setNote(answer.second_factor_required ? 'Members now need two-factor authentication.' : 'Two-factor authentication is optional again.');
      } catch (err) {
        setError(messageOf(err));
      }
    });
  return (
    <section className="card" aria-labelledby="policy-heading">
      <h2 id="policy-heading">Security</h2>
      <p className="check">
        <input id="require-2fa" type="checkbox" checked={required} disabled={busy} onChange={(e) => void change(e.target.checked)} />
        <label htmlFor="require-2fa">Require two-factor authentication for every member</label>
      </p>
      <p className="hint">Members without it cannot open this organization until they turn it on in their account page.</p>
      <ErrorMessage message={error} />
      {note && <p role="status">{note}</p>}
    </section>
  );
}

export function MembersPage({ orgId }: { orgId: number }) {
  const { session } = useSession();
  const { org, error: orgError } = useOrg(orgId);
  const [members, setMembers] = useState<Member[]>();
  const [invitations, setInvitations] = useState<Invitation[]>([]);
  const [error, setError] = useState<string>();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('developer');
  const [formError, setFormError] = useState<string>();
  const [link, setLink] = useState<Invitation>();
  const [removing, setRemoving] = useState<Member>();
  const [pendingRoles, setPendingRoles] = useState<Record<number, Role>>({});
  const [removeError, setRemoveError] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const [inviting, runInvite] = useBusy();
  const [removingBusy, runRemove] = useBusy();
  const [acting, runAct] = useBusy();
  const isOwner = org?.role === 'owner';

  const load = useCallback(async () => {
    try {
      setMembers(await api<Member[]>('GET', `/orgs/${orgId}/members`));
      if (isOwner) setInvitations(await api<Invitation[]>('GET', `/orgs/${orgId}/invitations`));
    } catch (err) {
      setError(messageOf(err));
    }
  }, [orgId, isOwner]);

  useEffect(() => {
    if (org) void load();
  }, [org, load]);

  const invite = (event: FormEvent) => {
    event.preventDefault();
    void runInvite(async () => {
      setFormError(undefined);
      try {
        const created = await api<Invitation>('POST', `/orgs/${orgId}/invitations`, { email, role });
        setLink(created);
        setEmail('');
        await load();
      } catch (err) {
        setFormError(messageOf(err));
      }
    });
  };

  const act = (fn: () => Promise<unknown>, done: string) =>
    runAct(async () => {
      setError(undefined);
      try {
        await fn();
        setNotice(done);
        await load();
      } catch (err) {
        setError(messageOf(err));
      }
    });

  const confirmRemove = () =>
    runRemove(async () => {
      if (!removing) return;
      setRemoveError(undefined);
      try {
        await api('DELETE', `/orgs/${orgId}/members/${removing.user_id}`);
        setNotice(`${removing.email} was removed from ${org?.name ?? 'the organization'}.`);
        setRemoving(undefined);
        await load();
      } catch (err) {
        setRemoveError(messageOf(err));
      }
    });

  if (orgError) return <ErrorMessage message={orgError} />;
  if (!org) return <Loading />;
  return (
    <div className="page">
      <Breadcrumbs
        items={[
          ['Organizations', '/'],
          [org.name, `/orgs/${orgId}`],
          ['Members', undefined],
        ]}
      />
      <PageTitle>Members of {org.name}</PageTitle>
      <OrgNav org={org} current="members" />
      <p className="visually-hidden" aria-live="polite">
        {notice}
      </p>
      {notice && <p className="notice">{notice}</p>}
      <ErrorMessage message={error} />
      {!members && !error && <Loading />}
      {members && (
        <div className="table-wrap">
          <table className="stack">
            <caption className="visually-hidden">Members</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Joined</th>
                {isOwner && (
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {members.map((m) => (
                <tr key={m.user_id}>
                  <td data-label="Email">
                    {m.email}
                    {m.user_id === session.user?.id ? <span className="muted"> (you)</span> : null}
                  </td>
                  <td data-label="Role">
                    {isOwner ? (
                      <>
                        <label htmlFor={`role-${m.user_id}`} className="visually-hidden">
                          Role of {m.email}
                        </label>
                        {/* Arrow keys move through the options without saving; the button saves the choice. */}
                        <select
                          id={`role-${m.user_id}`}
                          value={pendingRoles[m.user_id] ?? m.role}
                          onChange={(e) => setPendingRoles((old) => ({ ...old, [m.user_id]: e.target.value as Role }))}
                        >
                          <option value="owner">Owner</option>
                          <option value="admin">Admin</option>
                          <option value="developer">Developer</option>
                        </select>
                        {pendingRoles[m.user_id] !== undefined && pendingRoles[m.user_id] !== m.role && (
                          <BusyButton
                            className="small"
                            busy={acting}
                            busyLabel="Saving…"
                            label={`Save role of ${m.email}`}
                            onClick={() => {
                              const to = pendingRoles[m.user_id]!;
                              void act(async () => {
                                await api('PATCH', `/orgs/${orgId}/members/${m.user_id}`, { role: to });
                                setPendingRoles(({ [m.user_id]: _, ...rest }) => rest);
                              }, `${m.email} is now ${to}.`);
                            }}
                          >
                            Save role
                          </BusyButton>
                        )}
                      </>
                    ) : (
                      m.role
                    )}
                  </td>
                  <td data-label="Joined">{formatDate(m.joined_at)}</td>
                  {isOwner && (
                    <td data-label="Actions">
                      {m.user_id !== session.user?.id && (
                        <button
                          type="button"
                          className="danger small"
                          aria-label={`Remove ${m.email}`}
                          onClick={() => {
                            setRemoveError(undefined);
                            setRemoving(m);
                          }}
                        >
                          Remove
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

      {isOwner && <RequireSecondFactor orgId={orgId} initial={org.second_factor_required === true} />}

      {isOwner && (
        <section className="card" aria-labelledby="invite-heading">
          <h2 id="invite-heading">Invite someone</h2>
          <form onSubmit={invite} className="inline-form" noValidate>
            <div>
              <label htmlFor="invite-email">Email address</label>
              <input id="invite-email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} maxLength={254} />
            </div>
            <div>
              <label htmlFor="invite-role">Role</label>
              <select id="invite-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
                <option value="developer">Developer</option>
                <option value="admin">Admin</option>
                <option value="owner">Owner</option>
              </select>
            </div>
            <BusyButton type="submit" busy={inviting} busyLabel="Inviting…">
              Create invitation
            </BusyButton>
          </form>
          <p className="hint">{ROLE_HELP[role]}.</p>
          <ErrorMessage message={formError} />
          {link?.link && (
            <div className="notice" role="status">
              <p>
                {link.mail === 'sent' ? (
                  <>
                    Invitation mailed to <strong>{link.email}</strong>. You can also send them this link yourself (it works once, until{' '}
                    {formatDate(link.expires_at)}):
                  </>
                ) : (
                  <>
                    Invitation for <strong>{link.email}</strong> created, but <strong>no email was sent</strong> (this server has no mail server configured).
                    Send them this link yourself (it works once, until {formatDate(link.expires_at)}):
                  </>
                )}
              </p>
              <div className="copy-row">
                <label htmlFor="invite-link" className="visually-hidden">
                  Invitation link
                </label>
                <input id="invite-link" readOnly value={link.link} onFocus={(e) => e.target.select()} />
                <CopyButton value={link.link} label="Copy invitation link" />
              </div>
            </div>
          )}
          {invitations.length > 0 && (
            <>
              <h3>Pending invitations</h3>
              <ul className="plain">
                {invitations.map((i) => (
                  <li key={i.id}>
                    {i.email} as {i.role}, until {formatDate(i.expires_at)}{' '}
                    <button
                      type="button"
                      className="secondary small"
                      aria-label={`Revoke the invitation for ${i.email}`}
                      disabled={acting}
                      onClick={() => void act(() => api('DELETE', `/orgs/${orgId}/invitations/${i.id}`), `The invitation for ${i.email} was revoked.`)}
                    >
                      Revoke
                    </button>
                  </li>
                ))}
              </ul>
            </>
          )}
        </section>
      )}

      <Dialog title="Remove this member?" open={removing !== undefined} onClose={() => setRemoving(undefined)}>
        {removing && (
          <>
            <p>
              <strong>{removing.email}</strong> ({removing.role}) loses access to {org.name} and its apps at once. Keys they created keep working; revoke them
              on the app's page if needed. You can invite them again later.
            </p>
            <ErrorMessage message={removeError} />
            <div className="dialog-actions">
              <button type="button" className="secondary" onClick={() => setRemoving(undefined)}>
                Cancel
              </button>
              <BusyButton className="danger" busy={removingBusy} busyLabel="Removing…" onClick={() => void confirmRemove()}>
                Remove member
              </BusyButton>
            </div>
          </>
        )}
      </Dialog>
    </div>
  );
}
