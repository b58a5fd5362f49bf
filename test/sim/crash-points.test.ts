/**
 * The engine's invariants under a fault at every commit, on a virtual clock, with bodies
 * run by the engine itself (local mode). For each seed, a run without faults is the
 * reference; then the same flow runs once per commit index and fault kind (a failed
 * commit, a crash before or after the commit is written, a freeze that wakes up as a
 * zombie). Each run must end as the reference did, with every body started after its
 * `task_started` was committed, every timer and wait still firing after a takeover, no
 * write of a superseded owner accepted, and no success recorded twice.
 *
 * `SIM_SEED=<n>` runs one seed, `SIM_SEEDS=<count>` more seeds, `SIM_FAULT=<kind>@<index>`
 * one fault; every failure names the seed and the fault.
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

describe('simulation, local mode: a fault at every commit', () => {
  faultSuite({ mode: 'local', seeds: [1, 2], seedBase: 0, store: () => sim.store });
});
