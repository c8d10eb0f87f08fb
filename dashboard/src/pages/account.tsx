import { type FormEvent, useState } from 'react';
import { api, messageOf, type Session } from '../api.js';
import { ErrorMessage, PageTitle } from '../components.js';
import { useSession } from '../session.js';

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
        Signed in as <strong>{session.user?.email}</strong>.
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
    </div>
  );
}
