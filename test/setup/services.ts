/**
 * Global setup of both test suites: before any test file loads, checks that the services
 * the suites talk to are reachable, and stops the run with one message naming what is
 * missing and how to point the tests at it, instead of hundreds of ECONNREFUSED failures.
 */
import { connect } from 'node:net';

/** A service the suites use, where they look for it, and the variable that moves it. */
export interface TestService {
  readonly name: string;
  readonly variable: string;
  readonly url: string;
}

/** The services of the suites, read from the same variables the tests read. */
export function testServices(env: NodeJS.ProcessEnv = process.env): TestService[] {
  return [
    {
      name: 'PostgreSQL',
      variable: 'BATON_TEST_PG_URL',
      url: env.BATON_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    },
    { name: 'Redis', variable: 'BATON_TEST_REDIS_URL', url: env.BATON_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    {
      name: 'NATS with JetStream',
      variable: 'BATON_TEST_NATS_URL',
      url: env.BATON_TEST_NATS_URL ?? 'nats://127.0.0.1:4222',
    },
    {
      name: 'RabbitMQ',
      variable: 'BATON_TEST_RABBITMQ_URL',
      url: env.BATON_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    },
  ];
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { postgres: 5432, redis: 6379, nats: 4222, amqp: 5672 };

function endpoint(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  const scheme = parsed.protocol.replace(/:$/, '').replace(/ql$/, '');
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : (DEFAULT_PORTS[scheme] ?? 0),
  };
}

/** Resolves with why a TCP connection to the service fails, or null when it opens. */
function probe(url: string, timeoutMs: number): Promise<string | null> {
  const { host, port } = endpoint(url);
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (why: string | null) => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer in ${timeoutMs} ms`));
    socket.once('connect', () => done(null));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}

/** The message for unreachable services, or null when all answer. */
export async function missingServicesMessage(services: readonly TestService[]): Promise<string | null> {
  const results = await Promise.all(services.map(async (s) => ({ s, why: await probe(s.url, 3000) })));
  const missing = results.filter((r) => r.why !== null);
  if (missing.length === 0) return null;
  const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  return [
    `The tests need ${missing.length === 1 ? 'a service' : 'services'} that cannot be reached:`,
    ...missing.map(({ s, why }) => `  - ${s.name} at ${redact(s.url)} (${why}); set ${s.variable} to use another`),
    'Start what is missing (`.ci/run` starts the local services when they are down), or point the tests at a running',
    'one with the variable shown, e.g. BATON_TEST_PG_URL=postgres://user@host:5432/postgres npm test.',
  ].join('\n');
}

export default async function setup(): Promise<void> {
  const message = await missingServicesMessage(testServices());
  if (message) {
    // One plain message: vitest prints a thrown error's stack, which would bury it.
    process.stderr.write(`\n${message}\n\n`);
    process.exit(1);
  }
}
