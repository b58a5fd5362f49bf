/**
 * The registry of event sources by trigger kind. Time triggers (cron, interval) are
 * evaluated by the trigger service itself and webhooks arrive through the HTTP listener;
 * every other kind has a module under ./sources exporting `createSource`, loaded only
 * when a trigger of that kind exists (so that a project without streams never loads a
 * broker client).
 */
import type { Store } from '../store/store.js';
import { createAssetSource } from './sources/asset-source.js';
import { createFlowSource } from './sources/flow-source.js';
import type { SourceContext, TriggerSource, TriggerSourceFactory } from './trigger-service.js';

const SOURCE_MODULES: Readonly<Record<string, string>> = {
  file: './sources/file-source.js',
  s3: './sources/s3-source.js',
  nats: './sources/nats-source.js',
  redis: './sources/redis-source.js',
  rabbitmq: './sources/rabbitmq-source.js',
};

/** What a source module exports. */
export interface SourceModule {
  createSource(context: SourceContext, env: NodeJS.ProcessEnv): Promise<TriggerSource>;
}

/** Sources available in this build; each reads its secrets from `env`. */
export function triggerSources(env: NodeJS.ProcessEnv, store: Store): Map<string, TriggerSourceFactory> {
  const out = new Map<string, TriggerSourceFactory>([
    ['flow', createFlowSource(store)],
    ['asset', createAssetSource(store)],
  ]);
  for (const [kind, path] of Object.entries(SOURCE_MODULES)) {
    out.set(kind, async (context) => {
      const mod = (await import(path)) as SourceModule;
      return mod.createSource(context, env);
    });
  }
  return out;
}
