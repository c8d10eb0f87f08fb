import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { api, formatDate, messageOf, plural, type Session } from '../api.js';
import { BusyButton, CopyButton, ErrorMessage, PageTitle, useBusy } from '../components.js';
import { useSession } from '../session.js';

interface SessionRow {
  id: string;
  current: boolean;
  ip: string | null;
  user_agent: string | null;
  created_at: string;
  last_seen_at: string;
}

/** A short name for a browser from its user-agent string. */
const browserName = (ua: string | null) => {
  if (!ua) return 'Unknown browser';
  const found = /(Edg|Firefox|Chrome|Chromium|Safari)\/[\d.]+/.exec(ua)?.[0] ?? ua.slice(0, 40);
  const os = /Windows|Mac OS X|Android|iPhone|Linux/.exec(ua)?.[0];
  return os ? `${found} on ${os}` : found;
};

function TwoFactor() {
  const { session, refresh } = useSession();
  const [status, setStatus] = useState<{ enabled: boolean; recovery_codes_left: number }>();
  const [setup, setSetup] = useState<{ secret: string; otpauth_uri: string }>();
  const [recovery, setRecovery] = useState<string[]>();
  const [code, setCode] = useState('');
  const [error, setError] = useState<string>();
  const [busy, run] = useBusy();
  const load = useCallback(
    () => api<{ enabled: boolean; recovery_codes_left: number }>('GET', '/second-factor').then(setStatus, (err) => setError(messageOf(err))),
    [],
  );
  useEffect(() => {
    void load();
  }, [load]);
  const act = (work: () => Promise<void>) =>
    run(async () => {
      setError(undefined);
      try {
        await work();
        setCode('');
        await load();
        await refresh();
      } catch (err) {
        setError(messageOf(err));
      }
    });
  const begin = () => act(async () => setSetup(await api('POST', '/second-factor/setup')));
  const enable = (event: FormEvent) => {
    event.preventDefault();
    void act(async () => {
      const answer = await api<{ recovery_codes: string[] }>('POST', '/second-factor/enable', { code });
      setRecovery(answer.recovery_codes);
      setSetup(undefined);
    });
  };
  const disable = (event: FormEvent) => {
    event.preventDefault();
    void act(async () => {
      await api('POST', '/second-factor/disable', { code });
      setRecovery(undefined);
    });
  };
  return (
    <section aria-labelledby="second-factor-heading">
      <h2 id="second-factor-heading">Two-factor authentication</h2>
      <ErrorMessage message={error} />
      {recovery && (
        <div className="notice" role="status">
          <p>
            <strong>Two-factor authentication is on.</strong> Save these recovery codes now: each signs you in once if you lose your phone, and they are not
            shown again.
          </p>
          <ul className="codes">
            {recovery.map((c) => (
              <li key={c}>
                <code>{c}</code>
              </li>
            ))}
          </ul>
          <CopyButton value={recovery.join('\n')} label="Copy the recovery codes" />
        </div>
      )}
      {status && !status.enabled && !setup && (
        <>
          <p>Sign-ins then need a code from an authenticator app as well as your password.</p>
          <BusyButton busy={busy} busyLabel="Starting…" onClick={() => void begin()}>
            Set up two-factor authentication
          </BusyButton>
        </>
      )}
      {setup && (
        <form onSubmit={enable} noValidate>
          <p>
            Add this key to your authenticator app (or open the link on your phone), then enter the code it shows. Key:{' '}
            <code className="secret-key">{setup.secret.replace(/(.{4})/g, '$1 ').trim()}</code>
          </p>
          <p>
            <a href={setup.otpauth_uri}>Open in an authenticator app</a>
          </p>
          <label htmlFor="totp-code">Code from the app</label>
          <input id="totp-code" autoComplete="one-time-code" inputMode="numeric" value={code} onChange={(e) => setCode(e.target.value)} maxLength={10} />
          <BusyButton type="submit" busy={busy} busyLabel="Checking…">
            Turn on
          </BusyButton>
        </form>
      )}
      {status?.enabled && (
        <form onSubmit={disable} noValidate>
          <p>
            On for {session.user?.email}; {plural(status.recovery_codes_left, 'recovery code')} left.
          </p>
          <label htmlFor="totp-off-code">Code from the app, or a recovery code</label>
          <input id="totp-off-code" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} maxLength={40} />
          <BusyButton type="submit" className="secondary" busy={busy} busyLabel="Turning off…">
            Turn off
          </BusyButton>
        </form>
      )}
    </section>
  );
}

function Sessions() {
  const [rows, setRows] = useState<SessionRow[]>();
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const [busy, run] = useBusy();
  const load = useCallback(() => api<SessionRow[]>('GET', '/sessions').then(setRows, (err) => setError(messageOf(err))), []);
  useEffect(() => {
    void load();
  }, [load]);
  const end = (row: SessionRow) =>
    run(async () => {
      try {
        await api('DELETE', `/sessions/${row.id}`);
        setNotice(`Signed out ${browserName(row.user_agent)}.`);
        await load();
      } catch (err) {
        setError(messageOf(err));
      }
    });
  return (
    <section aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Where you are signed in</h2>
      <ErrorMessage message={error} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {rows && (
        <ul className="plain">
          {rows.map((r) => (
            <li key={r.id}>
              <strong>{browserName(r.user_agent)}</strong> from {r.ip ?? 'an unknown address'}, signed in {formatDate(r.created_at)}, last active{' '}
              {formatDate(r.last_seen_at)}{' '}
              {r.current ? (
                <span className="muted">(this browser)</span>
              ) : (
                <BusyButton className="secondary small" busy={busy} busyLabel="Signing out…" onClick={() => void end(r)}>
                  Sign out
                </BusyButton>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function AccountPage() {
  const { session, signedIn } = useSession();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [error, setError] = useState<string>();
  const [done, setDone] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    setDone(false);
    try {
      signedIn(await api<Session>('POST', '/password', { current_password: current, new_password: next }));
      setCurrent('');
      setNext('');
      setDone(true);
    } catch (err) {
      setError(messageOf(err));
    }
  };

  return (
    <div className="narrow card">
      <PageTitle>Your account</PageTitle>
      <p>
        Signed in as <strong>{session.user?.email}</strong> ({session.user?.email_verified ? 'verified' : 'not verified yet'}).
      </p>
      <h2>Change password</h2>
      <form onSubmit={submit} noValidate>
        <label htmlFor="current-password">Current password</label>
        <input id="current-password" type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />
        <label htmlFor="new-password">New password</label>
        <input
          id="new-password"
          type="password"
          autoComplete="new-password"
          value={next}
          onChange={(e) => setNext(e.target.value)}
          aria-describedby="new-password-hint"
        />
        <p id="new-password-hint" className="hint">
          At least 12 characters. Your other sessions are signed out.
        </p>
        <ErrorMessage message={error} />
        {done && (
          <p className="notice" role="status">
            Your password has been changed.
          </p>
        )}
        <button type="submit">Change password</button>
      </form>
      <TwoFactor />
      <Sessions />
    </div>
  );
}
