import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

// The UI is built into dist/ui of the package, which the server serves at `/`.
const uiDir = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: uiDir,
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    // elkjs (about 1.4 MB) and React Flow are reached only through lazy imports (DagView),
    // so they land in chunks loaded by the pages that draw a graph.
    chunkSizeWarningLimit: 1800,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8420' } },
});
