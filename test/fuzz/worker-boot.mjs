// Worker threads do not get the test runner's TypeScript transform: the case worker
// (case-worker.ts) is loaded through tsx, as Baton loads TypeScript flows.
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

await tsImport(workerData.entry, import.meta.url);
