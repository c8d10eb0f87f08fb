import { type ReactNode, StrictMode, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, type Session, setCsrfToken, whenSignedOut } from './api.js';
import { Loading, PageTitle } from './components.js';
import { AccountPage } from './pages/account.js';
import { AppPage } from './pages/app.js';
import { AuditPage } from './pages/audit.js';
import { AuthPage } from './pages/auth.js';
import { InvitationPage } from './pages/invitation.js';
import { MembersPage } from './pages/members.js';
import { OrgPage } from './pages/org.js';
import { OperatorPage } from './pages/operator.js';
import { OrgsPage } from './pages/orgs.js';
import { ForgotPasswordPage, ResetPasswordPage, VerifyBanner, VerifyEmailPage } from './pages/recovery.js';
import { Link, match, navigate, usePath } from './router.js';
import { SessionCtx } from './session.js';
import './styles.css';

const PUBLIC = ['/signin', '/signup', '/forgot-password'];
/** Pages of mailed links: they work signed in or not. */
const LINKS = ['/reset-password', '/verify-email'];

function Shell() {
  const [session, setSession] = useState<Session | null>(null);
  const [failed, setFailed] = useState(false);
  const path = usePath();

  const refresh = useCallback(async () => {
    try {
      const s = await api<Session>('GET', '/session');
      setCsrfToken(s.csrf_token);
      setSession(s);
      setFailed(false);
    } catch {
      setFailed(true);
    }
  }, []);

  useEffect(() => {
    whenSignedOut(() => {
      void refresh();
    });
    void refresh();
  }, [refresh]);

  const signedIn = useCallback((s: Session) => {
    setCsrfToken(s.csrf_token);
    setSession((old) => ({ ...s, deactivation_grace_seconds: s.deactivation_grace_seconds ?? old?.deactivation_grace_seconds ?? 900 }));
  }, []);

  if (failed) {
    return (
      <main className="narrow">
        <p className="error" role="alert">
          The portal could not reach the server. Check your connection, then reload the page.
        </p>
      </main>
    );
  }
  if (!session) return <Loading />;

  const invitation = match('/invitations/:token', path);
  let page: ReactNode;
  if (path === '/reset-password') {
    page = <ResetPasswordPage />;
  } else if (path === '/verify-email') {
    page = <VerifyEmailPage />;
  } else if (!session.user && !PUBLIC.includes(path) && !LINKS.includes(path) && !invitation) {
    const next = path === '/' ? '' : `?next=${encodeURIComponent(path)}`;
    queueMicrotask(() => navigate(`/signin${next}`, true));
    page = <Loading />;
  } else if (session.user && PUBLIC.includes(path)) {
    queueMicrotask(() => navigate(new URLSearchParams(location.search).get('next') ?? '/', true));
    page = <Loading />;
  } else if (path === '/forgot-password') {
    page = <ForgotPasswordPage />;
  } else if (path === '/signin' || path === '/signup') {
    page = <AuthPage key={path} mode={path === '/signin' ? 'signin' : 'signup'} />;
  } else if (invitation) {
    page = <InvitationPage token={invitation.token!} />;
  } else if (path === '/') {
    page = <OrgsPage />;
  } else if (path === '/account') {
    page = <AccountPage />;
  } else if (path === '/operator' || path.startsWith('/operator/')) {
    page = <OperatorPage key={path} section={path.slice('/operator/'.length)} />;
  } else {
    const app = match('/orgs/:orgId/apps/:appId', path);
    const members = match('/orgs/:orgId/members', path);
    const audit = match('/orgs/:orgId/audit', path);
    const org = match('/orgs/:orgId', path);
    if (app) page = <AppPage key={path} orgId={Number(app.orgId)} appId={Number(app.appId)} />;
    else if (members) page = <MembersPage key={path} orgId={Number(members.orgId)} />;
    else if (audit) page = <AuditPage key={path} orgId={Number(audit.orgId)} />;
    else if (org) page = <OrgPage key={path} orgId={Number(org.orgId)} />;
    else page = <NotFound />;
  }

  const signOut = async () => {
    try {
      await api('POST', '/signout');
    } finally {
      await refresh();
      navigate('/signin');
    }
  };

  return (
    <SessionCtx.Provider value={{ session, refresh, signedIn }}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          <span aria-hidden="true">▦</span> Portcullis <span className="brand-sub">Developer portal</span>
        </Link>
        {session.user && (
          <nav aria-label="Account">
            <Link to="/">Organizations</Link>
            {session.user.operator && <Link to="/operator">Operator console</Link>}
            <Link to="/account">{session.user.email}</Link>
            <button type="button" className="link" onClick={signOut}>
              Sign out
            </button>
          </nav>
        )}
      </header>
      <main id="main">
        <VerifyBanner />
        {page}
      </main>
    </SessionCtx.Provider>
  );
}

function NotFound() {
  return (
    <div className="narrow">
      <PageTitle>Page not found</PageTitle>
      <p>
        There is nothing at this address. <Link to="/">Go to your organizations</Link>.
      </p>
    </div>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Shell />
  </StrictMode>,
);
