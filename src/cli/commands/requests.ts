/**
 * Commands that wake waiting tasks: signal (an event), approve and reject (a decision on
 * an approval task). They resolve the run reference (`last`, an id prefix) to its full id,
 * check the request against the run, apply it (or leave it for the process that owns the
 * run and wait for it), and say what it did.
 */
import { BatonError } from '../../core/errors.js';
import type { Delivery, RunView } from '../../app/run-requests.js';
import { decideApproval, defaultActor, sendSignal } from '../../app/run-requests.js';
import { resolveRunRef } from '../../app/run-refs.js';
import type { Runtime } from '../../app/runtime.js';
import { openRuntime } from '../../app/runtime.js';
import type { CliContext } from '../context.js';

export interface SignalFlags {
  readonly data?: string;
  readonly key?: string;
  readonly by?: string;
  readonly id?: string;
  readonly json?: boolean;
}

function parseData(text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new BatonError('SIGNAL_INVALID', `--data is not valid JSON: ${(error as Error).message}`, {
      hint: `Quote the JSON for the shell, e.g. --data '{"amount": 12}'; a plain string needs its quotes: --data '"yes"'.`,
    });
  }
}

/** A diagnostic for a run that nothing executes at the moment, though it has work to do. */
function stalledNote(ctx: CliContext, rt: Runtime, runId: string, view: RunView, stalled: boolean): void {
  if (!stalled) return;
  const what = view.record.state === 'queued' ? 'is queued' : 'has tasks ready to start';
  const who =
    rt.store.dialect === 'postgres'
      ? `the leading \`baton scheduler\` continues it (or \`baton resume ${runId}\`)`
      : `\`baton resume ${runId}\` (or a \`baton worker\`) continues it`;
  ctx.stderr(`baton: run ${runId} ${what} and no process is executing it; ${who}`);
}

function deliveredBy(delivery: Delivery): string {
  return delivery === 'owner' ? ' (applied by the process executing the run)' : '';
}

export async function signalCommand(ctx: CliContext, ref: string, event: string, flags: SignalFlags): Promise<number> {
  const data = parseData(flags.data);
  const rt = await openRuntime(ctx.runtime);
  try {
    const runId = (await resolveRunRef(rt, ref)).id;
    const result = await sendSignal(rt, runId, {
      event,
      key: flags.key ?? null,
      data,
      by: flags.by ?? defaultActor(ctx.runtime.env),
      ...(flags.id !== undefined ? { id: flags.id } : {}),
    });
    const runState = result.after.record.state;
    if (flags.json) {
      ctx.stdout(
        JSON.stringify(
          {
            run: runId,
            event,
            key: result.key,
            id: result.id,
            woke: result.woke,
            kept: result.kept,
            duplicate: result.duplicate,
            run_state: runState,
          },
          null,
          2,
        ),
      );
    } else {
      const named = `signal ${event}${result.key === null ? '' : ` (key ${result.key})`}`;
      if (result.duplicate) {
        ctx.stdout(`run ${runId} received ${named} with id ${result.id} before; nothing changed`);
      }
      if (result.woke.length > 0) {
        ctx.stdout(`${named} woke ${result.woke.join(', ')} in run ${runId}${deliveredBy(result.delivery)}`);
      } else if (result.kept) {
        ctx.stdout(`${named} is kept by run ${runId} until a task waits for it${deliveredBy(result.delivery)}`);
      }
      ctx.stdout(`run ${runId} is ${runState}`);
    }
    stalledNote(ctx, rt, runId, result.after, result.stalled);
    return 0;
  } finally {
    await rt.close();
  }
}

export interface DecisionFlags {
  readonly comment?: string;
  readonly by?: string;
  readonly json?: boolean;
}

export async function decisionCommand(
  ctx: CliContext,
  ref: string,
  task: string,
  approved: boolean,
  flags: DecisionFlags,
): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  try {
    const runId = (await resolveRunRef(rt, ref)).id;
    const by = flags.by ?? defaultActor(ctx.runtime.env);
    const result = await decideApproval(rt, runId, task, {
      approved,
      by,
      comment: flags.comment ?? null,
    });
    if (flags.json) {
      ctx.stdout(
        JSON.stringify(
          {
            run: runId,
            task,
            approved,
            by,
            comment: flags.comment ?? null,
            task_state: result.taskState,
            task_error: result.taskError,
            run_state: result.runState,
          },
          null,
          2,
        ),
      );
    } else {
      const verb = approved ? 'approved' : 'rejected';
      const failure = result.taskError ? ` (${result.taskError.code}: ${result.taskError.message})` : '';
      ctx.stdout(
        `${task} ${verb} by ${by}${deliveredBy(result.delivery)}: ${task} is ${result.taskState}${failure}; run ${runId} is ${result.runState}`,
      );
    }
    stalledNote(ctx, rt, runId, result.after, result.stalled);
    return 0;
  } finally {
    await rt.close();
  }
}
