/**
 * Object-arrival triggers on both stores, against a real S3-protocol server (s3rver on a
 * free port of 127.0.0.1, data in a temp folder), with a real trigger service and an
 * engine running the runs: one run per new object under the prefix (params bucket, key,
 * etag), one more for an overwrite with new content, none for other prefixes, none twice
 * across a restart, and what arrived while the service was down is taken after it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import type { Runtime } from '../../src/app/runtime.js';
import { openRuntime } from '../../src/app/runtime.js';
import type { RunRecord } from '../../src/store/store.js';
import type { TriggerService } from '../../src/triggers/trigger-service.js';
import { createTestDatabase } from '../store/pg-helpers.js';

/** The part of s3rver's API used here (the package has no types). */
interface S3rverServer {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: { address: string; port: number; silent: boolean; directory: string }) => S3rverServer;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

const POLL_MS = 100;
const BUCKET = 'landing';
const KEYS = { S3_KEY: 'S3RVER', S3_SECRET: 'S3RVER' };

let server: S3rverServer;
let serverDir: string;
let endpoint: string;
let s3: S3Client;

beforeAll(async () => {
  serverDir = mkdtempSync(join(tmpdir(), 'baton-s3rver-'));
  server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: serverDir });
  const { port } = await server.run();
  endpoint = `http://127.0.0.1:${port}`;
  s3 = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: KEYS.S3_KEY, secretAccessKey: KEYS.S3_SECRET },
  });
});

afterAll(async () => {
  s3?.destroy();
  await server?.close();
  if (serverDir) rmSync(serverDir, { recursive: true, force: true });
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stores: Record<string, () => Promise<Record<string, string>>> = {
  sqlite: async () => ({}),
  postgres: async () => {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    return { BATON_DATABASE_URL: db.url };
  },
};

let buckets = 0;

/** A fresh bucket, and a project whose flow `objects` watches `incoming/` in it. */
async function project(store: string, env: Record<string, string> = KEYS): Promise<{ rt: Runtime; bucket: string }> {
  const bucket = `${BUCKET}-${store}-${buckets++}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const dir = mkdtempSync(join(tmpdir(), 'baton-s3-trig-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'baton.yaml'), 'lease: 2s\n');
  mkdirSync(join(dir, 'flows'));
  writeFileSync(
    join(dir, 'flows', 'objects.yaml'),
    [
      'name: objects',
      'triggers:',
      '  landed:',
      '    kind: s3',
      `    bucket: ${bucket}`,
      '    prefix: incoming/',
      `    endpoint: ${endpoint}`,
      '    force_path_style: true',
      '    access_key_id_env: S3_KEY',
      '    secret_access_key_env: S3_SECRET',
      `    poll: ${POLL_MS}ms`,
      'tasks:',
      '  show:',
      '    kind: shell',
      '    command: ["echo", "${{ params.key }}"]',
      '',
    ].join('\n'),
  );
  const rt = await openRuntime({
    cwd: dir,
    env: { ...(await (stores[store] as () => Promise<Record<string, string>>)()), ...env },
  });
  cleanups.push(() => rt.close());
  const engine = rt.createEngine({ pollMs: 50 });
  engine.startWorker();
  cleanups.push(() => engine.stop());
  return { rt, bucket };
}

async function startService(rt: Runtime): Promise<TriggerService> {
  const service = rt.createTriggerService({ tickMs: 100 });
  await service.start();
  cleanups.push(() => service.stop());
  return service;
}

function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000): Promise<T> {
  return waitFor(probe, { timeoutMs: ms, intervalMs: 50, what });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runCount(rt: Runtime, n: number): Promise<RunRecord[]> {
  return until(async () => {
    const runs = (await rt.store.listRuns({ flow: 'objects', limit: 1000 })).sort((a, b) => a.createdAt - b.createdAt);
    if (runs.length > n) throw new Error(`expected ${n} runs, found ${runs.length}`);
    return runs.length === n ? runs : undefined;
  }, `${n} run(s)`);
}

/** Checks, over several polls, that the flow still has exactly `n` runs. */
async function staysAt(rt: Runtime, n: number): Promise<void> {
  await pause(POLL_MS * 8);
  expect(await rt.store.listRuns({ flow: 'objects', limit: 1000 })).toHaveLength(n);
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

async function put(bucket: string, key: string, body: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

for (const store of Object.keys(stores)) {
  describe(`s3 triggers on ${store}`, () => {
    it('makes one run per new object version under the prefix, and none twice across a restart', async () => {
      const { rt, bucket } = await project(store);
      const service = await startService(rt);

      await put(bucket, 'incoming/a.csv', 'a1');
      await put(bucket, 'incoming/2024/b.csv', 'b1');
      await put(bucket, 'elsewhere/c.csv', 'c1');
      await put(bucket, 'incoming-not/d.csv', 'd1');
      const two = await runCount(rt, 2);
      expect(two.map((r) => r.params).sort((x, y) => String(x.key).localeCompare(String(y.key)))).toEqual([
        { bucket, key: 'incoming/2024/b.csv', etag: md5('b1') },
        { bucket, key: 'incoming/a.csv', etag: md5('a1') },
      ]);
      await until(
        async () => ((await rt.store.getRun(two[0]?.id ?? ''))?.state === 'succeeded' ? true : undefined),
        'the first run to succeed',
      );

      // The same content again has the same ETag: no run. New content: a new run.
      await put(bucket, 'incoming/a.csv', 'a1');
      await staysAt(rt, 2);
      await put(bucket, 'incoming/a.csv', 'a2');
      const three = await runCount(rt, 3);
      expect(three[2]?.params).toEqual({ bucket, key: 'incoming/a.csv', etag: md5('a2') });
      const [latest] = await rt.store.listFirings('objects/landed', 1);
      expect(latest?.dedupeKey).toBe(`objects/landed:s3:incoming/a.csv:${md5('a2')}`);
      expect(latest?.reason).toMatch(/overwritten/);

      const firings = (await rt.store.listFirings('objects/landed', 100)).length;
      await service.stop();
      await startService(rt);
      await staysAt(rt, 3);
      expect((await rt.store.listFirings('objects/landed', 100)).length).toBe(firings);
      await put(bucket, 'incoming/e.csv', 'e1');
      const four = await runCount(rt, 4);
      expect(four[3]?.params).toEqual({ bucket, key: 'incoming/e.csv', etag: md5('e1') });
    });

    it('takes what arrived or changed while the service was down, once', async () => {
      const { rt, bucket } = await project(store);
      const service = await startService(rt);
      await put(bucket, 'incoming/a.csv', 'a1');
      await put(bucket, 'incoming/b.csv', 'b1');
      await runCount(rt, 2);
      await staysAt(rt, 2);
      await service.stop();

      await put(bucket, 'incoming/b.csv', 'b2');
      await put(bucket, 'incoming/c.csv', 'c1');
      await startService(rt);
      const runs = await runCount(rt, 4);
      expect(
        runs
          .slice(2)
          .map((r) => `${r.params.key} ${r.params.etag}`)
          .sort(),
      ).toEqual([`incoming/b.csv ${md5('b2')}`, `incoming/c.csv ${md5('c1')}`]);
      await staysAt(rt, 4);
      const outcomes = (await rt.store.listFirings('objects/landed', 100)).map((f) => f.outcome);
      expect(outcomes).toEqual(['run', 'run', 'run', 'run']);
    });

    it('records why it could not start when a credential variable is missing', async () => {
      const { rt } = await project(store, { S3_KEY: 'S3RVER' });
      await startService(rt);
      const [firing] = await rt.store.listFirings('objects/landed', 1);
      expect(firing?.outcome).toBe('error');
      expect(firing?.reason).toBe(
        'could not start: trigger objects/landed: environment variable S3_SECRET (secret_access_key_env) is not set',
      );
    });
  });
}
