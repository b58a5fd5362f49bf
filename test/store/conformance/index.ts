/**
 * The store conformance suite, one file per port: a store implementation passes when every
 * function listed here passes on it.
 */
import { assetsConformance } from './assets.js';
import { backfillsConformance } from './backfills.js';
import { dataObjectsConformance } from './data-objects.js';
import { leadershipConformance } from './leadership.js';
import { lifecycleConformance } from './lifecycle.js';
import { logsConformance } from './logs.js';
import { retentionConformance } from './retention.js';
import { runLogConformance } from './run-log.js';
import { runRequestsConformance } from './run-requests.js';
import type { StoreFactory } from './shared.js';
import { taskQueueConformance } from './task-queue.js';
import { triggersConformance } from './triggers.js';

export type { StoreFactory } from './shared.js';
export {
  assetsConformance,
  backfillsConformance,
  dataObjectsConformance,
  leadershipConformance,
  lifecycleConformance,
  logsConformance,
  retentionConformance,
  runLogConformance,
  runRequestsConformance,
  taskQueueConformance,
  triggersConformance,
};

/** Every port's conformance tests, in the order of src/store/store.ts's composition. */
export const PORT_CONFORMANCE: readonly ((factory: StoreFactory) => void)[] = [
  lifecycleConformance,
  runLogConformance,
  runRequestsConformance,
  taskQueueConformance,
  leadershipConformance,
  triggersConformance,
  backfillsConformance,
  logsConformance,
  retentionConformance,
  dataObjectsConformance,
  assetsConformance,
];
