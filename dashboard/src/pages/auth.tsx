import { type FormEvent, useEffect, useState } from 'react';
import { ApiProblem, api, messageOf, type Session } from '../api.js';
import { BusyButton, ErrorMessage, PageTitle, useBusy } from '../components.js';
import { Link, match, navigate } from '../router.js';
import { useSession } from '../session.js';

/** Where to go after signing in: a path of this site only. */
const safeNext = (next: string | null) => (next?.startsWith('/') && !next.startsWith('//') ? next : '/');

export function AuthPage({ mode }: { mode: 'signin' | 'signup' }) {
  const { signedIn } = useSession();
  const next = new URLSearchParams(location.search).get('next');
  const notice = new URLSearchParams(location.search).get('notice');
  // Signing up from an invitation link: the invited address is filled in, and proven by the link.
  const invitation = next ? match('/invitations/:token', next)?.token : undefined;
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [needCode, setNeedCode] = useState(false);
  const [error, setError] = useState<string>();
  const [busy, run] = useBusy();
  const suffix = next ? `?next=${encodeURIComponent(next)}` : '';

  useEffect(() => {
    if (!invitation) return;
    api<{ email: string }>('GET', `/invitations/${encodeURIComponent(invitation)}`).then(
      (preview) => setEmail((old) => old || preview.email),
      () => {},
    );
  }, [invitation]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      setError(undefined);
      try {
        const body = mode === 'signup' && invitation ? { email, password, invitation } : needCode ? { email, password, code } : { email, password };
        const session = await api<Session & { verification?: string }>('POST', mode === 'signin' ? '/signin' : '/signup', body);
        signedIn(session);
        navigate(safeNext(next), true);
      } catch (err) {
        // The password was right and the account has a second factor: ask for its code.
        if (err instanceof ApiProblem && err.code === 'second-factor-required') {
          setNeedCode(true);
          setTimeout(() => document.getElementById('code')?.focus());
          return;
        }
        setError(messageOf(err));
      }
    });
  };

  return (
    <div className="narrow card">
      <PageTitle>{mode === 'signin' ? 'Sign in' : 'Create your account'}</PageTitle>
      {notice === 'password-reset' && (
        <p className="notice" role="status">
          Your password has been changed and every session signed out. Sign in with the new password.
        </p>
      )}
      <p className="muted">
        {mode === 'signin'
          ? 'Manage your organizations, apps and API keys.'
          : 'Create an account, then an organization and an app, and get your API keys in a minute.'}
      </p>
      <form onSubmit={submit} noValidate>
        <label htmlFor="email">Email address</label>
        <input id="email" type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} maxLength={254} required />
        <label htmlFor="password">Password</label>
        <input
          id="password"
          type="password"
          autoComplete={mode === 'signin' ? 'current-password' : 'new-password'}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          aria-describedby={mode === 'signup' ? 'password-hint' : undefined}
          required
        />
        {needCode && (
          <>
            <label htmlFor="code">Code from your authenticator app</label>
            <input
              id="code"
              autoComplete="one-time-code"
              inputMode="text"
              value={code}
              onChange={(e) => setCode(e.target.value)}
              maxLength={40}
              aria-describedby="code-hint"
            />
            <p id="code-hint" className="hint">
              Six digits from your app, or one of your recovery codes.
            </p>
          </>
        )}
        {mode === 'signup' && (
          <p id="password-hint" className="hint">
            At least 12 characters. A few unrelated words make a strong password.
          </p>
        )}
        <ErrorMessage message={error} />
        <BusyButton type="submit" busy={busy} busyLabel={mode === 'signin' ? 'Signing in…' : 'Creating account…'}>
          {mode === 'signin' ? 'Sign in' : 'Create account'}
        </BusyButton>
      </form>
      {mode === 'signin' && (
        <p>
          <Link to="/forgot-password">Forgot your password?</Link>
        </p>
      )}
      <p>
        {mode === 'signin' ? (
          <>
            New here? <Link to={`/signup${suffix}`}>Create an account</Link>
          </>
        ) : (
          <>
            Already have an account? <Link to={`/signin${suffix}`}>Sign in</Link>
          </>
        )}
      </p>
    </div>
  );
}
