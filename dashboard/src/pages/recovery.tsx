import { type FormEvent, useEffect, useState } from 'react';
import { api, messageOf } from '../api.js';
import { BusyButton, ErrorMessage, Loading, PageTitle, useBusy } from '../components.js';
import { Link, navigate } from '../router.js';
import { useSession } from '../session.js';

/**
 * The single-use token of a mailed link, read from the fragment (which browsers never send to a
 * server) and then removed from the address bar, so it stays out of history and logs.
 */
function useLinkToken(): string {
  const [token] = useState(() => new URLSearchParams(location.hash.slice(1)).get('token') ?? '');
  useEffect(() => {
    if (location.hash) history.replaceState(null, '', location.pathname);
  }, []);
  return token;
}

export function ForgotPasswordPage() {
  const { session } = useSession();
  const [email, setEmail] = useState('');
  const [error, setError] = useState<string>();
  const [sentTo, setSentTo] = useState<string>();
  const [busy, run] = useBusy();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      setError(undefined);
      try {
        await api('POST', '/password-reset', { email });
        setSentTo(email.trim());
      } catch (err) {
        setError(messageOf(err));
      }
    });
  };

  return (
    <div className="narrow card">
      <PageTitle>Reset your password</PageTitle>
      {sentTo === undefined ? (
        <form onSubmit={submit} noValidate>
          <p className="muted">Enter the address you signed up with. We will mail you a link to choose a new password.</p>
          <label htmlFor="email">Email address</label>
          <input id="email" type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} maxLength={254} required />
          <ErrorMessage message={error} />
          <BusyButton type="submit" busy={busy} busyLabel="Sending…">
            Send reset link
          </BusyButton>
        </form>
      ) : session.mail_delivers ? (
        <p className="notice" role="status">
          If an account exists for <strong>{sentTo}</strong>, we have mailed it a link to reset the password. The link works once, for one hour.
        </p>
      ) : (
        <p className="error" role="alert">
          No email was sent: this server has no mail server configured. Ask your operator for a reset link (they can run{' '}
          <code>portcullis admin users reset {sentTo}</code>).
        </p>
      )}
      <p>
        <Link to="/signin">Back to sign in</Link>
      </p>
    </div>
  );
}

export function ResetPasswordPage() {
  const { refresh } = useSession();
  const token = useLinkToken();
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string>();
  const [busy, run] = useBusy();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      setError(undefined);
      try {
        await api('POST', '/password-reset/confirm', { token, new_password: password });
        await refresh();
        navigate('/signin?notice=password-reset', true);
      } catch (err) {
        setError(messageOf(err));
      }
    });
  };

  return (
    <div className="narrow card">
      <PageTitle>Choose a new password</PageTitle>
      {!token ? (
        <p className="error" role="alert">
          This page needs the link from the password-reset email. <Link to="/forgot-password">Ask for a new link</Link>.
        </p>
      ) : (
        <form onSubmit={submit} noValidate>
          <label htmlFor="new-password">New password</label>
          <input
            id="new-password"
            type="password"
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-describedby="new-password-hint"
          />
          <p id="new-password-hint" className="hint">
            At least 12 characters. Every session of your account is signed out.
          </p>
          <ErrorMessage message={error} />
          <BusyButton type="submit" busy={busy} busyLabel="Saving…">
            Set new password
          </BusyButton>
        </form>
      )}
      <p>
        <Link to="/forgot-password">Ask for a new link</Link>
      </p>
    </div>
  );
}

// One request per token, even when React runs the page's effect twice.
const verifying = new Map<string, Promise<unknown>>();

export function VerifyEmailPage() {
  const { session, refresh } = useSession();
  const token = useLinkToken();
  const [state, setState] = useState<{ done?: string; error?: string }>({});

  useEffect(() => {
    if (!token) return;
    let call = verifying.get(token);
    if (!call) {
      call = api<{ email: string }>('POST', '/verify-email', { token });
      verifying.set(token, call);
    }
    call.then(
      (r) => {
        setState({ done: (r as { email: string }).email });
        void refresh();
      },
      (err) => setState({ error: messageOf(err) }),
    );
  }, [token, refresh]);

  return (
    <div className="narrow card">
      <PageTitle>Verify your email address</PageTitle>
      {!token && <ErrorMessage message="This page needs the link from the verification email." />}
      {token && !state.done && !state.error && <Loading />}
      <ErrorMessage message={state.error} />
      {state.done && (
        <p className="notice" role="status">
          <strong>{state.done}</strong> is verified. You can now create API keys and accept invitations.
        </p>
      )}
      <p>{session.user ? <Link to="/">Go to your organizations</Link> : <Link to="/signin">Sign in</Link>}</p>
    </div>
  );
}

/** Shown on every page while the signed-in account's address is not verified. */
export function VerifyBanner() {
  const { session } = useSession();
  const [busy, run] = useBusy();
  const [result, setResult] = useState<string>();
  const user = session.user;
  if (!user || user.email_verified) return null;
  const resend = () =>
    run(async () => {
      try {
        const r = await api<{ mail: string }>('POST', '/verification');
        setResult(r.mail === 'sent' ? `A new link is on its way to ${user.email}.` : 'No email was sent: this server has no mail server configured.');
      } catch (err) {
        setResult(messageOf(err));
      }
    });
  return (
    <section className="banner" aria-label="Email verification">
      {session.mail_delivers ? (
        <p>
          <strong>Verify your email address.</strong> We mailed a link to {user.email}; until you open it you cannot create API keys or accept invitations.{' '}
          <BusyButton className="link" busy={busy} busyLabel="Sending…" onClick={() => void resend()}>
            Send a new link
          </BusyButton>
        </p>
      ) : (
        <p>
          <strong>Your email address is not verified,</strong> and no email was sent: this server has no mail server configured. Until an operator verifies your
          account (<code>portcullis admin users verify {user.email}</code>) you cannot create API keys or accept invitations.
        </p>
      )}
      {result && <p role="status">{result}</p>}
    </section>
  );
}
