/**
 * What the stream sources (nats, redis, rabbitmq) share: a received message as an element
 * of the run's `messages` param, a batch of messages as one event whose dedupe key comes
 * from the messages' identities, the emit-then-acknowledge step, and the session loop that
 * reconnects with backoff.
 *
 * Invariants
 * - A batch is acknowledged only after `emit` returned for it, i.e. after its run (or the
 *   firing that refused it) is committed. A crash before the acknowledgement makes the
 *   broker deliver the messages again; their identities, and so the dedupe key, are the
 *   same, and `emit` finds the run instead of creating a second one.
 * - Redelivered messages are never batched with fresh ones, so that a batch that comes back
 *   after a crash comes back as it was the first time (see each source for what the broker
 *   guarantees about that).
 * - A paused trigger, or a store that is away, holds the batch unacknowledged and retries;
 *   the broker keeps the messages meanwhile. A batch that the flow's overlap policy skips,
 *   or whose params are refused for good, is acknowledged: the trigger's firing history
 *   says why it made no run.
 */
import { createHash } from 'node:crypto';
import type { EngineFaults } from '../../engine/engine.js';
import type { SourceContext, TriggerEvent, TriggerSource } from '../trigger-service.js';

/** One message as received, broker-agnostic. */
export interface ReceivedMessage {
  /** Stable across redeliveries: stream sequence, entry id, message id or content hash. */
  readonly identity: string;
  /** The element of the run's `messages` param: payload and metadata. */
  readonly param: Readonly<Record<string, unknown>>;
  /** The broker says it delivered this message before. */
  readonly redelivered: boolean;
}

/**
 * A payload as a param value: parsed JSON when it is JSON (and the content type, if any,
 * says JSON), else the text as UTF-8.
 */
export function decodePayload(bytes: Uint8Array | string, contentType?: string): unknown {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString();
  if (contentType && !/json/i.test(contentType)) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function sha256(...parts: readonly (string | Uint8Array)[]): string {
  const hash = createHash('sha256');
  // A length prefix per part, so that ("ab", "c") and ("a", "bc") differ.
  for (const part of parts) hash.update(`${Buffer.byteLength(part)}:`).update(part);
  return hash.digest('hex');
}

/** `<first>..<last>` for brokers whose identities are ordered (sequences, entry ids). */
export const rangeKey = (ids: readonly string[]): string =>
  ids.length === 1 ? (ids[0] as string) : `${ids[0]}..${ids[ids.length - 1]}`;

/** The event of a batch: one run whose `messages` param lists the messages in order. */
export function batchEvent(
  keyPrefix: string,
  messages: readonly ReceivedMessage[],
  batchKey: (ids: readonly string[]) => string,
  what: string,
): TriggerEvent {
  const ids = messages.map((m) => m.identity);
  const key = batchKey(ids);
  return {
    dedupeKey: `${keyPrefix}:${key}`,
    params: { messages: messages.map((m) => m.param) },
    reason: messages.length === 1 ? `${what} ${key}` : `${messages.length} messages (${what} ${rangeKey(ids)})`,
  };
}

/** Splits a fetched batch so that redelivered messages never share a run with fresh ones. */
export function splitRedelivered<T extends { readonly redelivered: boolean }>(items: readonly T[]): T[][] {
  const groups: T[][] = [];
  for (const item of items) {
    const last = groups[groups.length - 1];
    if (last && (last[0] as T).redelivered === item.redelivered) last.push(item);
    else groups.push([item]);
  }
  return groups;
}

/** Waits `ms`, or less if the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential backoff with full jitter: attempt 0 waits up to `initialMs`, then doubling up to `maxMs`. */
export function backoffMs(attempt: number, initialMs = 250, maxMs = 30_000): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** What to do with a batch after delivering it. */
export type Disposition = 'ack' | 'release';

export interface DeliverOptions {
  readonly context: SourceContext;
  readonly faults: EngineFaults | undefined;
  /** Stop retrying (the batch is released). */
  readonly signal: AbortSignal;
  /** Called every `keepAliveMs` while the batch is held (NATS: in progress, so that the ack wait does not lapse). */
  readonly keepAlive?: () => void;
  readonly keepAliveMs?: number;
  /** Tries before a batch that cannot be delivered is released to the broker. Default 20 (~8 min). */
  readonly maxAttempts?: number;
}

/** Holds a batch that could not become a run yet: how often and how long to retry. */
const HOLD_MAX_ATTEMPTS = 20;
const HOLD_MAX_WAIT_MS = 30_000;

type Emitted = 'done' | 'paused';

/**
 * Emits the messages as one run; when together they are over the params limit, as runs
 * of halves (the halves of a batch are the same on every try, so their keys are too).
 * Messages refused for good (bad params, one message over the limit) are recorded as an
 * error firing by the trigger service, reported here, and count as done: keeping them
 * would block the stream forever.
 */
async function emitBatch(
  o: DeliverOptions,
  messages: readonly ReceivedMessage[],
  toEvent: (messages: readonly ReceivedMessage[]) => TriggerEvent,
  depth = 0,
): Promise<Emitted> {
  const event = toEvent(messages);
  const [result] = await o.context.emit([event]);
  if (!result || result.outcome !== 'refused') return 'done';
  const code = result.error?.code;
  // The trigger service refuses the events of a paused trigger with USAGE.
  if (code === 'USAGE') return 'paused';
  if (code === 'PAYLOAD_TOO_LARGE' && messages.length > 1 && depth < 16) {
    const half = Math.ceil(messages.length / 2);
    const first = await emitBatch(o, messages.slice(0, half), toEvent, depth + 1);
    if (first === 'paused') return first;
    return emitBatch(o, messages.slice(half), toEvent, depth + 1);
  }
  o.context.diagnostic(
    `${event.reason} refused, acknowledged without a run (see the trigger's history): ${result.error?.message ?? code}`,
  );
  return 'done';
}

/**
 * Turns a batch into a run and says what to do with its messages: `ack` once the run is
 * committed, `release` when it could not be (trigger paused, store away) after the
 * retries or when stopping. The crash point `after_emit` sits between the two: a fault
 * that throws there propagates, and the caller abandons the batch as a crash would.
 */
export async function deliver(
  o: DeliverOptions,
  messages: readonly ReceivedMessage[],
  toEvent: (messages: readonly ReceivedMessage[]) => TriggerEvent,
): Promise<Disposition> {
  const timer = o.keepAlive ? setInterval(o.keepAlive, o.keepAliveMs ?? 5000) : undefined;
  try {
    const attempts = o.maxAttempts ?? HOLD_MAX_ATTEMPTS;
    for (let attempt = 0; attempt < attempts; attempt++) {
      let emitted: Emitted | 'failed';
      try {
        emitted = await emitBatch(o, messages, toEvent);
      } catch (error) {
        o.context.diagnostic(`could not create the run for ${messages.length} message(s): ${(error as Error).message}`);
        emitted = 'failed';
      }
      if (emitted === 'done') {
        o.faults?.crashPoint('after_emit');
        return 'ack';
      }
      // The first try happens even while stopping, so that a fetched batch is not wasted.
      if (o.signal.aborted) return 'release';
      await sleep(backoffMs(attempt, 500, HOLD_MAX_WAIT_MS), o.signal);
      if (o.signal.aborted) return 'release';
    }
    return 'release';
  } finally {
    clearInterval(timer);
  }
}

/**
 * Runs `session` (connect, consume, close) until stopped; when it fails (connection lost,
 * broker away, stream missing), reports why and starts a new one after a backoff. A session
 * returns when the signal aborts. The loop ends with stop(); each turn is bounded by the
 * session's own bounded waits plus at most 30 s of backoff.
 */
export function superviseSessions(
  context: SourceContext,
  session: (signal: AbortSignal) => Promise<void>,
  options: { readonly stopTimeoutMs?: number } = {},
): TriggerSource {
  const controller = new AbortController();
  const { signal } = controller;
  const loop = (async () => {
    let failures = 0;
    while (!signal.aborted) {
      const began = Date.now();
      try {
        await session(signal);
        if (!signal.aborted) throw new Error('the connection ended');
      } catch (error) {
        if (signal.aborted) break;
        // A session that ran for a while before failing starts the backoff afresh.
        failures = Date.now() - began > 60_000 ? 0 : failures + 1;
        const wait = backoffMs(failures);
        context.diagnostic(`${(error as Error).message}; reconnecting in ${wait} ms`);
        await sleep(wait, signal);
      }
    }
  })();
  return {
    async stop() {
      controller.abort();
      const limit = options.stopTimeoutMs ?? 15_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        loop.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), limit))),
      ]);
      clearTimeout(timer);
      if (timedOut) context.diagnostic(`did not stop within ${limit} ms; its connection is left to close`);
    },
  };
}

/** `url` from the trigger's config, else the environment variable, else the local default. */
export function brokerUrl(
  config: Readonly<Record<string, unknown>>,
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: string,
): string {
  const given = config.url;
  if (typeof given === 'string' && given !== '') return given;
  return env[name] || fallback;
}

/** Where a URL points, without its credentials, for diagnostics: Baton's one redaction. */
export { redactUrl } from '../../core/redact-url.js';
