/**
 * A flow's `prefetch` paths are fetched into the cache when its run starts, so that the
 * task reading them finds them warm: the object is downloaded once, before any task reads it.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import { parseFlowText } from '../../src/define/load-yaml.js';
import type { TestS3 } from './s3rver.js';
import { S3_ENV, requestsFor, startS3 } from './s3rver.js';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});

describe('prefetch', () => {
  it('downloads a flow’s declared inputs into the cache when its run starts, once', async () => {
    const bucket = await s3.bucket('prefetch');
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'in/day=2024-01-02.csv', Body: 'a,b\n1,2\n' }));
    const dir = mkdtempSync(join(tmpdir(), 'baton-prefetch-'));
    try {
      mkdirSync(join(dir, 'flows'));
      writeFileSync(
        join(dir, 'baton.yaml'),
        [
          'data:',
          '  mounts:',
          `    lake: { kind: s3, bucket: ${bucket}, endpoint: "${s3.endpoint}", path_style: true, access_key_id_env: TEST_S3_KEY, secret_access_key_env: TEST_S3_SECRET, ttl: 1h }`,
          '',
        ].join('\n'),
      );
      writeFileSync(
        join(dir, 'flows', 'tasks.mjs'),
        [
          'export async function wait() { await new Promise((r) => setTimeout(r, 500)); }',
          'export async function read(ctx) { return ctx.data.readText(`data://lake/in/day=${ctx.params.day}.csv`); }',
          '',
        ].join('\n'),
      );
      writeFileSync(
        join(dir, 'flows', 'daily.yaml'),
        [
          'name: daily',
          'params: { day: { type: string } }',
          'prefetch: ["data://lake/in/day=${{ params.day }}.csv"]',
          'tasks:',
          '  wait: { kind: function, module: ./tasks.mjs, export: wait }',
          '  read: { kind: function, module: ./tasks.mjs, export: read, depends_on: [wait] }',
          '',
        ].join('\n'),
      );
      const rt = await openRuntime({ cwd: dir, env: S3_ENV });
      try {
        const flow = await rt.catalog.find(join(dir, 'flows', 'daily.yaml'));
        const { run } = await createRun(rt, flow, { params: { day: '2024-01-02' } });
        const engine = rt.createEngine();
        const finished = engine.execute(run.id);
        // While `wait` runs, nothing has read the object yet: the prefetch alone fetches it.
        const end = Date.now() + 5000;
        while ((await rt.data.cacheStats()).entries === 0 && Date.now() < end)
          await new Promise((r) => setTimeout(r, 20));
        expect((await rt.store.getTaskRuns(run.id)).find((t) => t.taskId === 'read')?.state).toBe('pending');
        expect((await rt.data.cacheStats()).entries).toBe(1);
        await finished;
        await engine.stop();
        expect((await rt.store.getTaskRuns(run.id)).find((t) => t.taskId === 'read')?.output).toBe('a,b\n1,2\n');
        expect(requestsFor(s3, 'GET', bucket, 'in/day=2024-01-02.csv')).toHaveLength(1);
      } finally {
        await rt.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a prefetch entry that is no data path, at load time, naming where', () => {
    const problems = (prefetch: string) =>
      parseFlowText(`name: f\nprefetch: [${prefetch}]\ntasks:\n  a: { run: "true" }\n`, { file: 'f.yaml' }).problems;
    expect(problems('"/etc/passwd"')[0]).toMatchObject({ location: { line: 2, path: 'prefetch[0]' } });
    expect(problems('"/etc/passwd"')[0]?.message).toContain('must be a data path');
    expect(problems('"data://lake/../x"')[0]?.message).toContain('".." segment');
    expect(problems('"data://lake/day=${{ params.day }}.csv"')).toEqual([]);
  });
});
