/** `baton server`: the UI, the API and the webhooks on one port, over either store. */
import { openRuntime } from '../../app/runtime.js';
import type { CliContext } from '../context.js';
import { stopSignal } from '../stop-signal.js';

export async function serverCommand(ctx: CliContext, flags: { port?: number; host?: string }): Promise<number> {
  const say = (m: string) => ctx.stderr(`baton server: ${m}`);
  const rt = await openRuntime(ctx.runtime);
  // Loaded here so that other commands never load the HTTP stack.
  const { startServer } = await import('../../server/server.js');
  const service = rt.createTriggerService({ onDiagnostic: say });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    // Record the definitions the flows have now, so that the listings and webhooks are current.
    await service.sync();
    server = await startServer({
      rt,
      host: flags.host ?? '127.0.0.1',
      port: flags.port ?? 8420,
      portOption: '--port <n>',
      webhooks: { service, env: ctx.runtime.env },
    });
    const stopped = stopSignal();
    say(`UI and API on ${server.url}`);
    if (!rt.config.databaseUrl) say('serving only: runs execute in `baton worker` or `baton dev`');
    say(`${await stopped}, stopping`);
  } finally {
    await server?.close();
    await service.stop();
    await rt.close();
  }
  return 0;
}
