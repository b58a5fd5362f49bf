/**
 * A run's state as the run machine sees it, folded from its history: what faces need to
 * check a request before making it (is this task waiting for an approval? who may
 * decide?) and to show what a waiting task waits for.
 */
import { BatonError } from '../core/errors.js';
import type { RunState } from '../core/run-machine.js';
import { foldRun } from '../core/run-machine.js';
import type { RunRecord } from '../store/store.js';
import type { Runtime } from './runtime.js';

export async function loadRunState(rt: Runtime, runId: string): Promise<{ record: RunRecord; state: RunState }> {
  const record = await rt.store.getRun(runId);
  if (!record)
    throw new BatonError('RUN_NOT_FOUND', `no run with id ${runId}`, { hint: 'List runs with `baton runs`.' });
  const plan = await rt.catalog.plan(record.flow, record.version);
  const events = (await rt.store.readEvents(runId)).map((e) => e.event);
  return { record, state: foldRun(runId, plan, events) };
}
