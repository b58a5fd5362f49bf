/**
 * Flow-to-flow triggers: a run of this flow starts when a run of another flow ends in one
 * of the given states (default: succeeded). The upstream run's id and its task outputs
 * become params (`upstream_run`, `upstream_outputs`). Finished runs are read from the
 * store in order of their end, after a cursor that moves in the same transaction as the
 * runs it caused; the dedupe key is the upstream run, so nothing fires twice.
 */
import type { SourceContext, TriggerEvent, TriggerSource } from '../trigger-service.js';
import type { Store } from '../../store/store.js';

interface FlowCursor {
  /** End time (ms) of the last upstream run handled. */
  readonly after: number;
}

export function createFlowSource(store: Store) {
  return async (context: SourceContext): Promise<TriggerSource> => {
    const config = context.trigger.spec.config as { flow: string; states: readonly string[]; pollMs?: number };
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const poll = async (): Promise<void> => {
      // While paused, upstream runs wait here rather than being recorded as skipped each poll.
      if (await context.paused()) return;
      const stored = await context.cursor();
      const cursor = (stored as FlowCursor | null) ?? { after: context.trigger.registeredAt };
      const finished = await store.finishedRuns(config.flow, cursor.after, 100);
      if (finished.length === 0) return;
      const events: TriggerEvent[] = [];
      for (const run of finished) {
        if (!config.states.includes(run.state)) continue;
        const outputs: Record<string, unknown> = {};
        for (const t of await store.getTaskRuns(run.id))
          if (t.state === 'succeeded') outputs[t.taskId] = t.output ?? null;
        events.push({
          dedupeKey: `${context.trigger.id}:flow:${run.id}`,
          params: { upstream_run: run.id, upstream_outputs: outputs },
          reason: `run ${run.id} of ${config.flow} ${run.state}`,
        });
      }
      const last = finished[finished.length - 1];
      const next = { after: last?.endedAt ?? cursor.after };
      if (events.length === 0) await context.setCursor(next, stored);
      else await context.emit(events, { cursor: next });
    };
    const loop = async () => {
      if (stopped) return;
      try {
        await poll();
      } catch (error) {
        context.diagnostic(`polling ${config.flow} failed: ${(error as Error).message}`);
      }
      if (!stopped) timer = setTimeout(() => void loop(), config.pollMs ?? 1000);
    };
    void loop();
    return {
      async stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  };
}
