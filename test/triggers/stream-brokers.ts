/**
 * The brokers of the machine as the stream trigger tests drive them: for each kind, a fresh
 * stream, queue or group with a unique name, the trigger keys that read it, a publisher,
 * and what the broker still holds unacknowledged. `close()` removes what was created.
 */
import { randomBytes } from 'node:crypto';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { connect as amqpConnect } from 'amqplib';
import { Redis } from 'ioredis';
import type { JetStreamManager, NatsConnection } from 'nats';
import { connect as natsConnect } from 'nats';
import type { EngineFaults } from '../../src/engine/engine.js';
import { startNatsSource } from '../../src/triggers/sources/nats-source.js';
import { startRabbitmqSource } from '../../src/triggers/sources/rabbitmq-source.js';
import { startRedisSource } from '../../src/triggers/sources/redis-source.js';
import type { TriggerSourceFactory } from '../../src/triggers/trigger-service.js';

export const NATS_URL = process.env.BATON_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
export const REDIS_URL = process.env.BATON_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const RABBITMQ_URL = process.env.BATON_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export const BROKER_KINDS = ['nats', 'redis', 'rabbitmq'] as const;
export type BrokerKind = (typeof BROKER_KINDS)[number];

export interface Broker {
  readonly kind: BrokerKind;
  /** The trigger's keys in a flow file. */
  readonly trigger: Record<string, unknown>;
  /** Publishes in order; a payload is sent as JSON unless it is a string. */
  publish(payloads: readonly unknown[]): Promise<void>;
  /**
   * Messages published and not yet acknowledged, as the broker sees them: not yet
   * delivered, or delivered and unacknowledged (RabbitMQ counts the latter only once their
   * consumer's connection is gone).
   */
  outstanding(): Promise<number>;
  /** A source with test options (a fault hook, a short ack wait), as the trigger service starts one. */
  source(faults: EngineFaults): TriggerSourceFactory;
  /** The metadata a message param carries besides `data`. */
  readonly metadata: readonly string[];
  close(): Promise<void>;
}

const unique = (kind: string) => `baton_${kind}_${process.pid}_${randomBytes(4).toString('hex')}`;
const encode = (p: unknown) => Buffer.from(typeof p === 'string' ? p : JSON.stringify(p));

async function natsBroker(batch: number): Promise<Broker> {
  const stream = unique('nats');
  const subject = `${stream}.in`;
  const durable = 'baton';
  const nc: NatsConnection = await natsConnect({ servers: NATS_URL });
  const jsm: JetStreamManager = await nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  const js = nc.jetstream();
  // Something else on the stream, which the subject filter must keep out.
  await js.publish(`${stream}.other`, encode({ ignore: true }));
  return {
    kind: 'nats',
    trigger: { kind: 'nats', url: NATS_URL, stream, subject, durable, batch },
    metadata: ['subject', 'stream', 'seq', 'time'],
    async publish(payloads) {
      for (const p of payloads) await js.publish(subject, encode(p));
    },
    async outstanding() {
      const info = await jsm.consumers.info(stream, durable).catch(() => null);
      if (!info) return Number.NaN;
      return info.num_ack_pending + info.num_pending;
    },
    source: (faults) => (context) =>
      startNatsSource(context, { url: NATS_URL, stream, subject, durable, batch, ackWaitMs: 2000, faults }),
    async close() {
      await jsm.streams.delete(stream).catch(() => undefined);
      await nc.close();
    },
  };
}

async function redisBroker(batch: number): Promise<Broker> {
  const stream = unique('redis');
  const group = 'baton';
  const redis = new Redis(REDIS_URL);
  return {
    kind: 'redis',
    trigger: { kind: 'redis', url: REDIS_URL, stream, group, batch },
    metadata: ['stream', 'id', 'time'],
    async publish(payloads) {
      for (const p of payloads) await redis.xadd(stream, '*', 'data', encode(p).toString());
    },
    async outstanding() {
      const groups = (await redis.call('XINFO', 'GROUPS', stream).catch(() => [])) as unknown[][];
      const row = groups[0];
      if (!row) return Number.NaN;
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < row.length; i += 2) info.set(String(row[i]), row[i + 1]);
      return Number(info.get('pending')) + Number(info.get('lag'));
    },
    source: (faults) => (context) => startRedisSource(context, { url: REDIS_URL, stream, group, batch, faults }),
    async close() {
      await redis.del(stream);
      redis.disconnect();
    },
  };
}

async function rabbitmqBroker(batch: number): Promise<Broker> {
  const queue = unique('rabbitmq');
  const conn: ChannelModel = await amqpConnect(RABBITMQ_URL);
  const channel: ConfirmChannel = await conn.createConfirmChannel();
  // The queue must exist before anything is published to it: RabbitMQ drops what no queue takes.
  await channel.assertQueue(queue, { durable: true });
  let sent = 0;
  return {
    kind: 'rabbitmq',
    trigger: { kind: 'rabbitmq', url: RABBITMQ_URL, queue, batch },
    metadata: ['queue', 'exchange', 'routing_key', 'message_id'],
    async publish(payloads) {
      for (const p of payloads) {
        channel.sendToQueue(queue, encode(p), {
          messageId: `m${sent++}`,
          persistent: true,
          contentType: typeof p === 'string' ? 'text/plain' : 'application/json',
        });
      }
      await channel.waitForConfirms();
    },
    async outstanding() {
      return (await channel.checkQueue(queue)).messageCount;
    },
    source: (faults) => (context) => startRabbitmqSource(context, { url: RABBITMQ_URL, queue, batch, faults }),
    async close() {
      await channel.deleteQueue(queue).catch(() => undefined);
      await conn.close();
    },
  };
}

const FACTORIES: Record<BrokerKind, (batch: number) => Promise<Broker>> = {
  nats: natsBroker,
  redis: redisBroker,
  rabbitmq: rabbitmqBroker,
};

export function createBroker(kind: BrokerKind, batch = 1): Promise<Broker> {
  return FACTORIES[kind](batch);
}
