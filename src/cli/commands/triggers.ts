/**
 * `baton dev` (one process: runs, triggers, webhooks) and `baton triggers` (list, pause,
 * resume, history).
 */
import { BatonError } from '../../core/errors.js';
import { openRuntime } from '../../app/runtime.js';
import type { Runtime } from '../../app/runtime.js';
import { WebhookServer } from '../../triggers/webhook-server.js';
import type { CliContext } from '../context.js';
import { table, time } from '../render.js';

export async function devCommand(
  ctx: CliContext,
  flags: { port?: number; host?: string; webhooks?: boolean },
): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  const engine = rt.createEngine({ onDiagnostic: (m) => ctx.stderr(`baton dev: ${m}`) });
  engine.startWorker();
  const triggers = rt.createTriggerService({ onDiagnostic: (m) => ctx.stderr(`baton dev: ${m}`) });
  await triggers.start();
  let webhooks: WebhookServer | undefined;
  if (flags.webhooks !== false) {
    webhooks = new WebhookServer({
      store: rt.store,
      service: triggers,
      env: ctx.runtime.env,
      port: flags.port ?? 8787,
      host: flags.host ?? '127.0.0.1',
    });
    const port = await webhooks.start();
    ctx.stderr(`baton dev: webhooks on http://${flags.host ?? '127.0.0.1'}:${port}/hooks/<trigger>`);
  }
  const count = (await rt.store.listTriggers()).length;
  ctx.stderr(
    `baton dev: executing runs and ${count} trigger(s) from ${rt.config.databaseUrl ? 'PostgreSQL' : rt.config.databasePath}`,
  );
  await new Promise<void>((resolve) => {
    const onSignal = (signal: string) => {
      ctx.stderr(`baton dev: ${signal}, stopping`);
      resolve();
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  await webhooks?.stop();
  await triggers.stop();
  await engine.drain();
  await rt.close();
  return 0;
}

async function withTriggers<T>(ctx: CliContext, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = await openRuntime(ctx.runtime);
  try {
    // Record the definitions the flows have now, so that the listing is current.
    await rt.createTriggerService().sync();
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

export async function triggersListCommand(ctx: CliContext, flags: { json?: boolean }): Promise<number> {
  return withTriggers(ctx, async (rt) => {
    const rows = [];
    for (const t of await rt.store.listTriggers()) {
      const [last] = await rt.store.listFirings(t.id, 1);
      rows.push({ t, last });
    }
    if (flags.json) {
      ctx.stdout(
        JSON.stringify(
          rows.map(({ t, last }) => ({
            id: t.id,
            flow: t.flow,
            name: t.name,
            kind: t.kind,
            paused: t.paused,
            next_fire_at: t.nextFireAt === null ? null : new Date(t.nextFireAt).toISOString(),
            last_firing: last
              ? { at: new Date(last.at).toISOString(), outcome: last.outcome, reason: last.reason, run_id: last.runId }
              : null,
          })),
          null,
          2,
        ),
      );
    } else if (rows.length === 0) {
      ctx.stdout('no triggers');
    } else {
      ctx.stdout(
        table(
          ['TRIGGER', 'KIND', 'STATE', 'NEXT', 'LAST'],
          rows.map(({ t, last }) => [
            t.id,
            t.kind,
            t.paused ? 'paused' : 'active',
            time(t.nextFireAt),
            last ? `${time(last.at)} ${last.outcome}${last.runId ? ` ${last.runId}` : ''}` : '-',
          ]),
        ),
      );
    }
    return 0;
  });
}

export async function triggersPauseCommand(ctx: CliContext, id: string, paused: boolean): Promise<number> {
  return withTriggers(ctx, async (rt) => {
    const known = await rt.store.listTriggers();
    const match = known.filter((t) => t.id === id || t.name === id);
    if (match.length !== 1) {
      throw new BatonError(
        match.length === 0 ? 'FLOW_NOT_FOUND' : 'USAGE',
        `${match.length === 0 ? 'no' : 'several'} trigger(s) named ${id}`,
        {
          hint: `Triggers: ${known.map((t) => t.id).join(', ') || 'none'}. Use the full id <flow>/<trigger>.`,
        },
      );
    }
    const trigger = match[0] as (typeof match)[number];
    await rt.store.setTriggerPaused(trigger.id, paused);
    ctx.stdout(`${trigger.id} ${paused ? 'paused' : 'resumed'}`);
    return 0;
  });
}

export async function triggersHistoryCommand(
  ctx: CliContext,
  id: string,
  flags: { limit?: number; json?: boolean },
): Promise<number> {
  return withTriggers(ctx, async (rt) => {
    const trigger = (await rt.store.listTriggers()).find((t) => t.id === id || t.name === id);
    if (!trigger)
      throw new BatonError('FLOW_NOT_FOUND', `no trigger named ${id}`, { hint: 'List them with baton triggers.' });
    const firings = await rt.store.listFirings(trigger.id, flags.limit ?? 50);
    if (flags.json) {
      ctx.stdout(
        JSON.stringify(
          firings.map((f) => ({
            at: new Date(f.at).toISOString(),
            outcome: f.outcome,
            reason: f.reason,
            run_id: f.runId,
            dedupe_key: f.dedupeKey,
          })),
          null,
          2,
        ),
      );
    } else {
      ctx.stdout(
        firings.length === 0
          ? 'no firings yet'
          : table(
              ['AT', 'OUTCOME', 'RUN', 'REASON'],
              firings.map((f) => [time(f.at), f.outcome, f.runId ?? '-', f.reason]),
            ),
      );
    }
    return 0;
  });
}
