import { useEffect, useState } from 'react';
import { api, messageOf, type Role } from '../api.js';
import { ErrorMessage, Loading, PageTitle } from '../components.js';
import { Link, navigate } from '../router.js';
import { useSession } from '../session.js';

interface Preview {
  organization: { id: number; name: string };
  email: string;
  role: Role;
}

export function InvitationPage({ token }: { token: string }) {
  const { session } = useSession();
  const [preview, setPreview] = useState<Preview>();
  const [error, setError] = useState<string>();
  const [acceptError, setAcceptError] = useState<string>();
  const here = `/invitations/${encodeURIComponent(token)}`;

  useEffect(() => {
    api<Preview>('GET', `/invitations/${encodeURIComponent(token)}`).then(setPreview, (err) => setError(messageOf(err)));
  }, [token]);

  const accept = async () => {
    setAcceptError(undefined);
    try {
      const joined = await api<{ organization_id: number }>('POST', `/invitations/${encodeURIComponent(token)}/accept`);
      navigate(`/orgs/${joined.organization_id}`);
    } catch (err) {
      setAcceptError(messageOf(err));
    }
  };

  return (
    <div className="narrow card">
      <PageTitle>Invitation</PageTitle>
      <ErrorMessage message={error} />
      {!preview && !error && <Loading />}
      {preview && (
        <>
          <p>
            You are invited to join <strong>{preview.organization.name}</strong> as <strong>{preview.role}</strong>. The invitation is for{' '}
            <strong>{preview.email}</strong>.
          </p>
          {session.user ? (
            <>
              <ErrorMessage message={acceptError} />
              <button type="button" onClick={accept}>
                Join {preview.organization.name}
              </button>
            </>
          ) : (
            <p>
              <Link to={`/signup?next=${encodeURIComponent(here)}`}>Create an account</Link> or{' '}
              <Link to={`/signin?next=${encodeURIComponent(here)}`}>sign in</Link> with {preview.email} to accept it.
            </p>
          )}
        </>
      )}
    </div>
  );
}
