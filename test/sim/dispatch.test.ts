/**
 * The same faults at every commit with bodies run by a worker from the task queue
 * (dispatch mode). The simulated worker also reports every attempt under a stale fencing
 * token first, which the store must refuse, and a second time after its report, which it
 * must refuse too: a success is recorded once, whatever a late worker says.
 *
 * `SIM_SEED`, `SIM_SEEDS` and `SIM_FAULT` as in crash-points.test.ts.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { openSimStore } from './sim-harness.js';
import { faultSuite } from './fault-suite.js';

let sim: ReturnType<typeof openSimStore>;
beforeAll(() => {
  sim = openSimStore();
});
afterAll(async () => {
  await sim.close();
});

describe('simulation, dispatch mode: a fault at every commit', () => {
  faultSuite({ mode: 'dispatch', seeds: [103, 105], seedBase: 100, store: () => sim.store });
});
