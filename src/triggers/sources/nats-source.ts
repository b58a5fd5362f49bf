/**
 * NATS JetStream trigger: a durable pull consumer (`durable`) on `stream`, optionally
 * filtered by `subject`, fetching up to `batch` messages at a time (default 1). Each fetch
 * becomes one run whose `messages` param lists the messages in stream order:
 * `{ data, subject, stream, seq, time, headers? }`, `data` being the parsed JSON payload or
 * else its UTF-8 text.
 *
 * The consumer is created if missing (explicit ack, ack wait 10 s, delivering everything
 * the stream holds); an existing one is used as it is, so an operator may create it with
 * another start position. The URL is `url`, else `BATON_NATS_URL`, else
 * nats://127.0.0.1:4222.
 *
 * Exactly one run per message: the dedupe key is `<trigger>:nats:<stream>:<seq>` (a batch:
 * `<first seq>..<last seq>`), and each message is acknowledged only after its run is
 * committed. A crash in between leaves it unacknowledged; JetStream delivers it again
 * after the ack wait and the key finds the existing run. JetStream redelivers the
 * unacknowledged messages of a batch after the same ack wait and in stream order, and
 * redelivered messages are batched only with each other, so a batch comes back whole; a
 * crash in the middle of acknowledging a batch can split it, and the rest then makes a run
 * of its own (at least once, never lost).
 */
import type { ConsumerMessages, JsMsg, NatsConnection, NatsError } from 'nats';
import { AckPolicy, DeliverPolicy, connect, millis, nanos } from 'nats';
import { crashPointsFromEnv } from '../../engine/crash-points.js';
import type { EngineFaults } from '../../engine/engine.js';
import type { SourceContext, TriggerSource } from '../trigger-service.js';
import type { ReceivedMessage } from './stream-delivery.js';
import {
  batchEvent,
  brokerUrl,
  decodePayload,
  deliver,
  rangeKey,
  redactUrl,
  splitRedelivered,
  superviseSessions,
} from './stream-delivery.js';

export interface NatsSourceOptions {
  readonly url: string;
  readonly stream: string;
  readonly subject?: string;
  readonly durable: string;
  /** Messages fetched together into one run. Default 1. */
  readonly batch?: number;
  /** Ack wait of a consumer this source creates. Default 10 s. */
  readonly ackWaitMs?: number;
  /** How long one fetch waits for messages (the batching window). Default 1 s, the client's minimum. */
  readonly fetchExpiresMs?: number;
  readonly faults?: EngineFaults;
}

const DEFAULT_ACK_WAIT_MS = 10_000;
/** JetStream API error code for "consumer not found". */
const CONSUMER_NOT_FOUND = 10014;

export async function createSource(context: SourceContext, env: NodeJS.ProcessEnv): Promise<TriggerSource> {
  const c = context.trigger.spec.config;
  const faults = crashPointsFromEnv(env);
  return startNatsSource(context, {
    url: brokerUrl(c, env, 'BATON_NATS_URL', 'nats://127.0.0.1:4222'),
    stream: c.stream as string,
    durable: c.durable as string,
    ...(typeof c.subject === 'string' ? { subject: c.subject } : {}),
    ...(typeof c.batch === 'number' ? { batch: c.batch } : {}),
    ...(faults ? { faults } : {}),
  });
}

/** Starts consuming; connection failures are retried in the background with backoff. */
export async function startNatsSource(context: SourceContext, o: NatsSourceOptions): Promise<TriggerSource> {
  return superviseSessions(context, (signal) => session(context, o, signal));
}

async function session(context: SourceContext, o: NatsSourceOptions, signal: AbortSignal): Promise<void> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: o.url,
      name: `baton ${context.trigger.id}`,
      // The client reconnects by itself while connected; the session loop covers the rest.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      timeout: 5000,
    });
  } catch (error) {
    throw new Error(`NATS ${redactUrl(o.url)}: ${(error as Error).message}`, { cause: error });
  }
  const closed = nc.closed();
  try {
    const ackWaitMs = await ensureConsumer(nc, o);
    const consumer = await nc.jetstream().consumers.get(o.stream, o.durable);
    const batch = o.batch ?? 1;
    const prefix = `${context.trigger.id}:nats:${o.stream}`;
    const toEvent = (messages: readonly ReceivedMessage[]) => batchEvent(prefix, messages, rangeKey, 'message');
    // Bounded by stop(); each turn waits at most `fetchExpiresMs` for messages.
    while (!signal.aborted) {
      if (nc.isClosed()) throw new Error(`NATS ${redactUrl(o.url)}: the connection closed`);
      const fetched: ConsumerMessages = await consumer.fetch({
        max_messages: batch,
        expires: o.fetchExpiresMs ?? 1000,
      });
      const got: JsMsg[] = [];
      for await (const m of fetched) got.push(m);
      for (const group of splitRedelivered(got.map((m) => ({ m, redelivered: m.info.deliveryCount > 1 })))) {
        const msgs = group.map((g) => g.m);
        const disposition = await deliver(
          {
            context,
            faults: o.faults,
            signal,
            // Tell JetStream the batch is being worked on, so that its ack wait does not lapse while held.
            keepAlive: () => msgs.forEach((m) => m.working()),
            keepAliveMs: Math.max(500, Math.floor(ackWaitMs / 3)),
          },
          msgs.map(received),
          toEvent,
        );
        if (disposition === 'ack') {
          // Confirmed acks: a message whose ack is lost is delivered again, which the dedupe key absorbs.
          await Promise.all(msgs.map((m) => m.ackAck({ timeout: 5000 })));
        } else {
          msgs.forEach((m) => m.nak());
        }
      }
    }
  } finally {
    if (!nc.isClosed()) await nc.close().catch(() => undefined);
    await closed.catch(() => undefined);
  }
}

/** Creates the durable consumer if missing; returns its ack wait in ms. */
async function ensureConsumer(nc: NatsConnection, o: NatsSourceOptions): Promise<number> {
  const jsm = await nc.jetstreamManager();
  try {
    const info = await jsm.consumers.info(o.stream, o.durable);
    if (info.config.ack_policy !== AckPolicy.Explicit) {
      throw new Error(
        `NATS consumer ${o.durable} on stream ${o.stream} has ack policy ${info.config.ack_policy}; a trigger needs explicit acks (delete the consumer, Baton creates it)`,
      );
    }
    if (o.subject && info.config.filter_subject && info.config.filter_subject !== o.subject) {
      throw new Error(
        `NATS consumer ${o.durable} on stream ${o.stream} filters ${info.config.filter_subject}, but the trigger says subject ${o.subject}`,
      );
    }
    return info.config.ack_wait ? millis(info.config.ack_wait) : DEFAULT_ACK_WAIT_MS;
  } catch (error) {
    if ((error as NatsError).api_error?.err_code !== CONSUMER_NOT_FOUND) throw error;
  }
  const ackWaitMs = o.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  const batch = o.batch ?? 1;
  await jsm.consumers.add(o.stream, {
    durable_name: o.durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(ackWaitMs),
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: Math.max(1000, batch * 2),
    ...(o.subject ? { filter_subject: o.subject } : {}),
  });
  return ackWaitMs;
}

function received(m: JsMsg): ReceivedMessage {
  const headers: Record<string, string> = {};
  let contentType: string | undefined;
  for (const [key, values] of m.headers ?? []) {
    headers[key] = values.join(', ');
    if (key.toLowerCase() === 'content-type') contentType = values[0];
  }
  return {
    identity: String(m.info.streamSequence),
    redelivered: m.info.deliveryCount > 1,
    param: {
      data: decodePayload(m.data, contentType),
      subject: m.subject,
      stream: m.info.stream,
      seq: m.info.streamSequence,
      time: new Date(Math.floor(m.info.timestampNanos / 1e6)).toISOString(),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    },
  };
}
