import { NavLink, Outlet, useNavigate } from 'react-router';
import { useConnectionState } from '../lib/events';
import { useGlobalShortcuts } from '../lib/keyboard';
import { useTheme } from '../lib/theme';

/** The app shell: navigation, theme toggle, the connection banner and the page. */
export function Layout() {
  const navigate = useNavigate();
  const [theme, toggleTheme] = useTheme();
  const connection = useConnectionState();
  useGlobalShortcuts(navigate);
  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <NavLink to="/" className="brand" end>
          baton
        </NavLink>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Flows
          </NavLink>
          <NavLink to="/runs">Runs</NavLink>
          <NavLink to="/triggers">Triggers</NavLink>
          <NavLink to="/backfills">Backfills</NavLink>
          <NavLink to="/assets">Assets</NavLink>
        </nav>
        <span className="spacer" />
        <span className="muted small" title="Keyboard: / search, j/k move, g r runs, g h home">
          <kbd>/</kbd> <kbd>j</kbd>
          <kbd>k</kbd> <kbd>g r</kbd>
        </span>
        <button
          type="button"
          className="theme-toggle"
          data-testid="theme-toggle"
          onClick={toggleTheme}
          aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
          title="Theme"
        >
          {theme === 'dark' ? '☀ light' : '☾ dark'}
        </button>
      </header>
      {connection === 'lost' ? (
        <div className="banner" role="status" data-testid="connection-lost">
          Connection to the server lost — live updates paused, reconnecting…
        </div>
      ) : null}
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}

/** The page for a URL that matches no route. */
export function NotFound() {
  return (
    <div className="empty">
      <h1>Not found</h1>
      <p>
        No page at this address. <NavLink to="/">Go to the flows</NavLink>.
      </p>
    </div>
  );
}
