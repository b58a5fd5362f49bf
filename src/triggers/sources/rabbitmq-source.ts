/**
 * RabbitMQ trigger: consumes `queue` (asserted durable; an existing queue of another type
 * is used as it is) with manual acks and a prefetch of `batch` (default 1). The messages
 * received together (up to `batch`, within a 1 s window) become one run whose `messages`
 * param lists them: `{ data, queue, exchange, routing_key, message_id?, headers? }`, `data`
 * being the parsed JSON body (unless the content type says otherwise) or else its UTF-8
 * text. The URL is `url`, else `BATON_RABBITMQ_URL`, else amqp://guest:guest@127.0.0.1:5672.
 *
 * Exactly one run per message needs an identity that a redelivery keeps, and RabbitMQ gives
 * a message none of its own (delivery tags are per channel). The identity is the message's
 * `messageId` property; publishers should set it (a UUID, or the business key). Without
 * one it is a SHA-256 of the body, exchange, routing key and the properties the publisher
 * set (timestamp, correlation id, headers other than the broker's x-death and
 * x-delivery-count): stable across redeliveries, but two messages that are equal in all of
 * these make one run. The dedupe key is `<trigger>:rabbitmq:<queue>:<identity>` (a batch:
 * `batch:<SHA-256 of the sorted identities>`).
 *
 * A message is acknowledged only after its run is committed. A crash in between closes
 * the connection; RabbitMQ requeues the unacknowledged messages at once (marked
 * redelivered), and their key finds the run. Redelivered messages are batched only with
 * each other, and at most `batch` messages are unacknowledged at a time, so a batch comes
 * back whole unless the crash fell between its acknowledgements.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { connect } from 'amqplib';
import { crashPointsFromEnv } from '../../engine/crash-points.js';
import type { EngineFaults } from '../../engine/engine.js';
import type { SourceContext, TriggerSource } from '../trigger-service.js';
import type { ReceivedMessage } from './stream-delivery.js';
import {
  batchEvent,
  brokerUrl,
  decodePayload,
  deliver,
  redactUrl,
  sha256,
  splitRedelivered,
  superviseSessions,
} from './stream-delivery.js';

export interface RabbitmqSourceOptions {
  readonly url: string;
  readonly queue: string;
  /** Messages received together into one run; also the prefetch. Default 1. */
  readonly batch?: number;
  /** How long a batch waits to fill after its first message. Default 1 s. */
  readonly lingerMs?: number;
  readonly faults?: EngineFaults;
}

/** Headers the broker adds or changes on redelivery or dead-lettering: not part of a message's identity. */
const BROKER_HEADERS = /^x-(death|delivery-count|first-death-|last-death-)/;

export async function createSource(context: SourceContext, env: NodeJS.ProcessEnv): Promise<TriggerSource> {
  const c = context.trigger.spec.config;
  const faults = crashPointsFromEnv(env);
  return startRabbitmqSource(context, {
    url: brokerUrl(c, env, 'BATON_RABBITMQ_URL', 'amqp://guest:guest@127.0.0.1:5672'),
    queue: c.queue as string,
    ...(typeof c.batch === 'number' ? { batch: c.batch } : {}),
    ...(faults ? { faults } : {}),
  });
}

/** Starts consuming; connection failures are retried in the background with backoff. */
export async function startRabbitmqSource(context: SourceContext, o: RabbitmqSourceOptions): Promise<TriggerSource> {
  let warned = false;
  const warnOnce = () => {
    if (warned) return;
    warned = true;
    context.diagnostic(
      `messages on queue ${o.queue} without a messageId are identified by a hash of their content: equal messages make one run; set messageId when publishing`,
    );
  };
  return superviseSessions(context, (signal) => session(context, o, signal, warnOnce));
}

/** A wake-up for the consuming loop: a message arrived, the channel closed, or stop. */
class Wakeup {
  private resolve: (() => void) | undefined;

  fire(): void {
    this.resolve?.();
  }

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.resolve = done;
    });
  }
}

async function session(
  context: SourceContext,
  o: RabbitmqSourceOptions,
  signal: AbortSignal,
  warnOnce: () => void,
): Promise<void> {
  let conn: ChannelModel;
  try {
    conn = await connect(o.url, {
      timeout: 5000,
      clientProperties: { connection_name: `baton ${context.trigger.id}` },
    });
  } catch (error) {
    throw new Error(`RabbitMQ ${redactUrl(o.url)}: ${(error as Error).message}`, { cause: error });
  }
  const wakeup = new Wakeup();
  let closed: Error | undefined;
  const onClose = (reason: string) => (error?: Error) => {
    closed ??= new Error(`RabbitMQ ${redactUrl(o.url)}: ${reason}${error ? `: ${error.message}` : ''}`);
    wakeup.fire();
  };
  conn.on('error', () => undefined);
  conn.on('close', onClose('the connection closed'));
  const onAbort = () => wakeup.fire();
  signal.addEventListener('abort', onAbort);
  try {
    const channel = await openChannel(conn, o.queue);
    channel.on('close', onClose('the channel closed'));
    const batch = o.batch ?? 1;
    await channel.prefetch(batch);
    const buffer: ConsumeMessage[] = [];
    await channel.consume(
      o.queue,
      (msg) => {
        // null: the broker cancelled the consumer (queue deleted).
        if (msg === null) onClose(`the consumer of queue ${o.queue} was cancelled`)();
        else buffer.push(msg);
        wakeup.fire();
      },
      { noAck: false },
    );
    const prefix = `${context.trigger.id}:rabbitmq:${o.queue}`;
    const batchKey = (ids: readonly string[]) =>
      ids.length === 1 ? (ids[0] as string) : `batch:${sha256(...[...ids].sort())}`;
    // Bounded by stop() and by the channel's life; each turn waits at most 1 s.
    while (!signal.aborted) {
      if (closed) throw closed;
      if (buffer.length === 0) {
        await wakeup.wait(1000);
        continue;
      }
      const lingerUntil = Date.now() + (o.lingerMs ?? 1000);
      while (buffer.length < batch && !closed && !signal.aborted && Date.now() < lingerUntil) {
        await wakeup.wait(lingerUntil - Date.now());
      }
      if (closed) throw closed;
      const taken = buffer.splice(0, batch);
      for (const group of splitRedelivered(taken.map((m) => ({ m, redelivered: m.fields.redelivered })))) {
        const msgs = group.map((g) => g.m);
        const received = msgs.map((m) => receive(o.queue, m, warnOnce));
        const disposition = await deliver({ context, faults: o.faults, signal }, received, (ms) =>
          batchEvent(prefix, ms, batchKey, 'message'),
        );
        for (const m of msgs) {
          if (disposition === 'ack') channel.ack(m);
          else channel.nack(m, false, true);
        }
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Closing requeues whatever is still unacknowledged.
    if (!closed) await conn.close().catch(() => undefined);
  }
}

/** A channel on which the queue exists: asserted durable, or, if it exists with other arguments, as it is. */
async function openChannel(conn: ChannelModel, queue: string): Promise<Channel> {
  const channel = await conn.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.assertQueue(queue, { durable: true });
    return channel;
  } catch {
    // PRECONDITION_FAILED closed that channel: the queue exists with other settings (a quorum queue, say).
    const second = await conn.createChannel();
    second.on('error', () => undefined);
    await second.checkQueue(queue);
    return second;
  }
}

function receive(queue: string, m: ConsumeMessage, warnOnce: () => void): ReceivedMessage {
  const p = m.properties;
  const headers: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(p.headers ?? {})) {
    if (!BROKER_HEADERS.test(key)) headers[key] = Buffer.isBuffer(value) ? value.toString() : (value as unknown);
  }
  const messageId = typeof p.messageId === 'string' && p.messageId !== '' ? p.messageId : undefined;
  let identity = messageId;
  if (identity === undefined) {
    warnOnce();
    const stable = JSON.stringify([
      p.contentType,
      p.contentEncoding,
      p.correlationId,
      p.timestamp,
      p.type,
      p.appId,
      p.userId,
      Object.entries(headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    ]);
    identity = `sha256:${sha256(m.fields.exchange, m.fields.routingKey, stable, m.content)}`;
  }
  return {
    identity,
    redelivered: m.fields.redelivered,
    param: {
      data: decodePayload(m.content, typeof p.contentType === 'string' ? p.contentType : undefined),
      queue,
      exchange: m.fields.exchange,
      routing_key: m.fields.routingKey,
      ...(messageId !== undefined ? { message_id: messageId } : {}),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    },
  };
}
