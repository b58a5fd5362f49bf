import { StrictMode, lazy, Suspense, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { createBrowserRouter, RouterProvider } from 'react-router';
import { Layout, NotFound } from './components/Layout';
import { HomePage } from './pages/HomePage';
import { RunsPage } from './pages/RunsPage';
import { TriggersPage } from './pages/TriggersPage';
import { BackfillsPage } from './pages/BackfillsPage';
import { AssetsPage } from './pages/AssetsPage';
import './styles.css';

// The pages that draw graphs pull in elkjs and React Flow: load them on demand.
const RunPage = lazy(() => import('./pages/RunPage'));
const FlowPage = lazy(() => import('./pages/FlowPage'));
const AssetPage = lazy(() => import('./pages/AssetPage'));

const loading = (page: ReactNode) => <Suspense fallback={<div className="muted pad">Loading…</div>}>{page}</Suspense>;

const router = createBrowserRouter([
  {
    element: <Layout />,
    children: [
      { path: '/', element: <HomePage /> },
      { path: '/flows/:flow', element: loading(<FlowPage />) },
      { path: '/runs', element: <RunsPage /> },
      { path: '/runs/:runId', element: loading(<RunPage />) },
      { path: '/triggers', element: <TriggersPage /> },
      { path: '/backfills', element: <BackfillsPage /> },
      { path: '/assets', element: <AssetsPage /> },
      { path: '/assets/*', element: loading(<AssetPage />) },
      { path: '*', element: <NotFound /> },
    ],
  },
]);

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <RouterProvider router={router} />
    </StrictMode>,
  );
}
