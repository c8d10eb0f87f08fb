import { type FormEvent, useState } from 'react';
import { api, messageOf, type Session } from '../api.js';
import { ErrorMessage, PageTitle } from '../components.js';
import { useSession } from '../session.js';
import { Link, navigate } from '../router.js';

export function AuthPage({ mode }: { mode: 'signin' | 'signup' }) {
  const { signedIn } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const next = new URLSearchParams(location.search).get('next');
  const suffix = next ? `?next=${encodeURIComponent(next)}` : '';

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const session = await api<Session>('POST', mode === 'signin' ? '/signin' : '/signup', { email, password });
      signedIn(session);
      navigate(next?.startsWith('/') && !next.startsWith('//') ? next : '/', true);
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };

  return (
    <div className="narrow card">
      <PageTitle>{mode === 'signin' ? 'Sign in' : 'Create your account'}</PageTitle>
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
        {mode === 'signup' && (
          <p id="password-hint" className="hint">
            At least 12 characters. A few unrelated words make a strong password.
          </p>
        )}
        <ErrorMessage message={error} />
        <button type="submit" disabled={busy}>
          {mode === 'signin' ? 'Sign in' : 'Create account'}
        </button>
      </form>
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
