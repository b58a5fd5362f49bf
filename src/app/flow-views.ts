/**
 * Read models of the project's flows for the server: every flow file with its problems,
 * triggers and recent runs, and one flow in full.
 */
import { BatonError } from '../core/errors.js';
import type { Problem } from '../core/errors.js';
import type { RunRecord, TriggerRecord } from '../store/store.js';
import type { LoadedFlow } from './flow-catalog.js';
import type { Runtime } from './runtime.js';

/** Recent runs listed with each flow. */
export const RECENT_RUNS = 25;

/** A flow file: the flow it defines (absent when invalid), its problems, triggers and newest runs. */
export interface FlowView {
  readonly name: string;
  readonly path: string;
  readonly flow: LoadedFlow | null;
  readonly problems: readonly Problem[];
  readonly triggers: readonly TriggerRecord[];
  readonly recentRuns: readonly RunRecord[];
}

/** A flow file's name without its folder and extension: what names an invalid flow. */
function fileStem(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? path;
  return base.replace(/\.[^.]+$/, '');
}

/** The project's flows: those with problems first, then by name. */
export async function listFlowViews(rt: Runtime): Promise<FlowView[]> {
  const entries = await rt.catalog.list();
  const triggers = await rt.store.listTriggers();
  const views: FlowView[] = [];
  for (const entry of entries) {
    const name = entry.flow?.spec.name ?? fileStem(entry.path);
    views.push({
      name,
      path: entry.path,
      flow: entry.flow ?? null,
      problems: entry.problems,
      triggers: triggers.filter((t) => t.flow === name),
      recentRuns: entry.flow ? await rt.store.listRuns({ flow: name, limit: RECENT_RUNS }) : [],
    });
  }
  return views.sort(
    (a, b) => Number(b.problems.length > 0) - Number(a.problems.length > 0) || a.name.localeCompare(b.name),
  );
}

/** One flow by name; FLOW_NOT_FOUND when no flow file defines it. */
export async function getFlowView(rt: Runtime, name: string): Promise<FlowView> {
  const view = (await listFlowViews(rt)).find((v) => v.name === name);
  if (!view) {
    throw new BatonError('FLOW_NOT_FOUND', `no flow named ${name}`, {
      hint: 'List the flows with `baton flows` (GET /api/v1/flows).',
    });
  }
  return view;
}

/** Most runs read to find a flow's versions. */
const VERSION_SCAN = 10_000;

/**
 * The versions of a flow that runs were made of, newest first, each with the time of its
 * first run (of the newest VERSION_SCAN runs); FLOW_NOT_FOUND when no flow file defines it.
 */
export async function listFlowVersions(
  rt: Runtime,
  name: string,
): Promise<{ readonly version: string; readonly createdAt: number }[]> {
  await getFlowView(rt, name);
  const first = new Map<string, number>();
  for (const run of await rt.store.listRuns({ flow: name, limit: VERSION_SCAN })) {
    const seen = first.get(run.version);
    if (seen === undefined || run.createdAt < seen) first.set(run.version, run.createdAt);
  }
  return [...first].map(([version, createdAt]) => ({ version, createdAt })).sort((a, b) => b.createdAt - a.createdAt);
}
