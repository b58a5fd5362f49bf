/**
 * Run references: how users name a run. Wherever a run id is expected, a face may take
 * `last` (the newest run, or the newest of one flow) or any prefix of an id that only one
 * run has. The reference is resolved here once, to the run's record, so that every command
 * goes on with the full id and says it.
 *
 * Invariants:
 * - A whole id always names its run, even when it is also the prefix of longer ids.
 * - A prefix that several runs share is an error listing them, never a guess.
 * - Each lookup is one bounded, indexed store query (`runsByIdPrefix`, `listRuns`).
 */
import { BatonError } from '../core/errors.js';
import type { RunRecord, Store } from '../store/store.js';

/** The reference that names the newest run. */
export const LAST_RUN = 'last';

/** Runs listed at most in the error for an ambiguous prefix. */
export const AMBIGUOUS_SHOWN = 10;

/** Newest runs looked through for `last` before it falls back to the root of the newest one. */
const LAST_SCAN = 100;

export interface RunRefOptions {
  /** With `last`: the newest run of this flow (child runs included) rather than of the project. */
  readonly flow?: string;
  /** How the option is spelled where the reference was given, for messages. Default `--flow`. */
  readonly flowOption?: string;
}

/** One run an ambiguous prefix matches, as the error's details list it. */
export interface RunCandidate {
  readonly id: string;
  readonly flow: string;
  readonly state: string;
  readonly created_at: string;
}

/**
 * The run a reference names: `last`, a whole run id, or a prefix of one run id.
 *
 * `last` is the newest top-level run (child runs of subflows are passed over, so that it
 * names the run a user started rather than one its subflow made); with `options.flow` it is
 * the newest run of that flow, child or not.
 *
 * Throws RUN_NOT_FOUND when nothing matches (or there is no run yet for `last`),
 * RUN_AMBIGUOUS when a prefix matches several runs (details.candidates lists up to ten),
 * and USAGE for an empty reference or a flow given with anything but `last`.
 *
 * @example
 *   const run = await resolveRunRef(rt, 'r0m3xk');  // the one run whose id starts so
 *   const latest = await resolveRunRef(rt, 'last', { flow: 'etl' });
 */
export async function resolveRunRef(
  rt: { readonly store: Store },
  ref: string,
  options: RunRefOptions = {},
): Promise<RunRecord> {
  const flowOption = options.flowOption ?? '--flow';
  const wanted = ref.trim();
  if (wanted === '') {
    throw new BatonError('USAGE', 'the run reference is empty', {
      hint: 'Give a run id, a unique prefix of one, or `last`.',
    });
  }
  if (wanted === LAST_RUN) return lastRun(rt.store, options.flow);
  if (options.flow !== undefined) {
    throw new BatonError('USAGE', `${flowOption} ${options.flow} applies only to the run reference \`last\``, {
      hint: `Pass \`last ${flowOption} ${options.flow}\` for the newest run of that flow, or drop ${flowOption}.`,
    });
  }
  const exact = await rt.store.getRun(wanted);
  if (exact) return exact;
  const matches = await rt.store.runsByIdPrefix(wanted, AMBIGUOUS_SHOWN + 1);
  const [only] = matches;
  if (matches.length === 1 && only) return only;
  if (matches.length === 0) {
    throw new BatonError('RUN_NOT_FOUND', `no run with id ${wanted}, and none whose id starts with it`, {
      hint: 'List runs with `baton runs`; `last` names the newest run.',
    });
  }
  const shown = matches.slice(0, AMBIGUOUS_SHOWN);
  const candidates: RunCandidate[] = shown.map((r) => ({
    id: r.id,
    flow: r.flow,
    state: r.state,
    created_at: new Date(r.createdAt).toISOString(),
  }));
  const more = matches.length > AMBIGUOUS_SHOWN;
  const width = (key: 'id' | 'flow' | 'state') => Math.max(...candidates.map((c) => c[key].length));
  const lines = candidates.map(
    (c) =>
      `  ${c.id.padEnd(width('id'))}  ${c.flow.padEnd(width('flow'))}  ${c.state.padEnd(width('state'))}  created ${c.created_at}`,
  );
  throw new BatonError(
    'RUN_AMBIGUOUS',
    `run id prefix ${wanted} matches ${more ? `more than ${AMBIGUOUS_SHOWN}` : matches.length} runs:\n${lines.join('\n')}${more ? '\n  …' : ''}`,
    {
      hint: 'Give more characters of the run id, up to the whole id.',
      details: { prefix: wanted, candidates, more },
    },
  );
}

async function lastRun(store: Store, flow: string | undefined): Promise<RunRecord> {
  if (flow !== undefined) {
    const [newest] = await store.listRuns({ flow, limit: 1 });
    if (newest) return newest;
    throw new BatonError('RUN_NOT_FOUND', `flow ${flow} has no runs yet, so \`last\` names none`, {
      hint: `Start one with \`baton run ${flow}\`; \`baton runs\` lists the runs of every flow.`,
    });
  }
  const newest = await store.listRuns({ limit: LAST_SCAN });
  const topLevel = newest.find((r) => r.parentRunId === null);
  if (topLevel) return topLevel;
  const [first] = newest;
  if (!first) {
    throw new BatonError('RUN_NOT_FOUND', 'there are no runs yet, so `last` names none', {
      hint: 'Start one with `baton run <flow>`; `baton flows` lists the flows of this project.',
    });
  }
  // The newest runs are all children (a parent busy with many subflows): name their root.
  let run = first;
  for (let depth = 0; run.parentRunId !== null && depth < LAST_SCAN; depth++) {
    const parent = await store.getRun(run.parentRunId);
    if (!parent) break;
    run = parent;
  }
  return run;
}
