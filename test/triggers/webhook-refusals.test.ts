/**
 * A webhook call refused before its body is read (wrong method, unknown route, body over
 * the limit) still gets its answer while the client is sending a large body on a
 * connection it asked to close. Answering and closing at once would leave unread bytes on
 * the server's socket; the kernel then resets the connection and the client loses the
 * answer it had already received (EPIPE, no status).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { openRuntime } from '../../src/app/runtime.js';
import type { TriggerService } from '../../src/triggers/trigger-service.js';
import { WebhookServer } from '../../src/triggers/webhook-server.js';

const BODY_BYTES = 3 * 1024 * 1024;
const ROUNDS = 15;

let dir: string;
let rt: Runtime;
let service: TriggerService;
let server: WebhookServer;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'baton-hook-refusals-'));
  mkdirSync(join(dir, 'flows'));
  writeFileSync(
    join(dir, 'flows', 'ingest.yaml'),
    'name: ingest\ntriggers:\n  incoming: { kind: webhook }\ntasks:\n  load:\n    kind: shell\n    command: ["true"]\n',
  );
  rt = await openRuntime({ cwd: dir, env: {} });
  service = rt.createTriggerService({ tickMs: 100 });
  await service.start();
  server = new WebhookServer({ store: rt.store, service, env: {}, port: 0, limits: { bodyBytes: 1024 } });
  port = await server.start();
});

afterAll(async () => {
  await server?.stop();
  await service?.stop();
  await rt?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The client, run on its own thread so that it writes while the server answers and
 * closes, as a remote client does: sends the whole call on a raw socket and posts the
 * status of the answer, or the socket's error.
 */
const CLIENT = `
const { createConnection } = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const { port, method, path, size } = workerData;
const socket = createConnection({ host: '127.0.0.1', port });
const chunks = [];
let done = false;
const finish = (outcome) => {
  if (done) return;
  done = true;
  socket.destroy();
  const status = /^HTTP\\/1\\.1 (\\d{3})/.exec(Buffer.concat(chunks).toString('latin1'));
  parentPort.postMessage(status ? status[1] : outcome || 'closed without an answer');
};
socket.on('data', (chunk) => chunks.push(chunk));
socket.on('close', () => finish());
socket.on('error', (error) => finish(error.code || error.message));
const head = [method + ' ' + path + ' HTTP/1.1', 'Host: 127.0.0.1:' + port, 'Connection: close',
  'Content-Type: application/json', 'Content-Length: ' + size].join('\\r\\n');
socket.on('connect', () => socket.end(Buffer.concat([Buffer.from(head + '\\r\\n\\r\\n'), Buffer.alloc(size, '[')])));
`;

function call(method: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(CLIENT, { eval: true, workerData: { port, method, path, size: BODY_BYTES } });
    worker.once('message', (status: string) => {
      resolve(status);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

it('answers refused calls with a large body in flight on a closing connection, every time', async () => {
  const seen: string[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    seen.push(await call('GET', '/hooks/incoming'));
    seen.push(await call('POST', '/elsewhere'));
    seen.push(await call('POST', '/hooks/incoming'));
  }
  const expected = Array.from({ length: ROUNDS }, () => ['405', '404', '413']).flat();
  expect(seen).toEqual(expected);
});
