/**
 * A real S3-protocol server for the data tests: s3rver in a process of its own on a free
 * port of 127.0.0.1 (see s3rver-process.mjs for why), its data in a temp folder, with a
 * client for setting up buckets and the log of the requests it received.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { MountContext, S3MountConfig } from '../../src/data/mount.js';

/** The keys s3rver accepts, in the variables a mount config names. */
export const S3_ENV = { TEST_S3_KEY: 'S3RVER', TEST_S3_SECRET: 'S3RVER' };

/** One request the server received. */
export interface ServerRequest {
  readonly method: string;
  readonly url: string;
}

export interface TestS3 {
  readonly endpoint: string;
  /** A client for setup and checks, with s3rver's keys. */
  readonly client: S3Client;
  /** Every request received so far, oldest first. */
  readonly requests: readonly ServerRequest[];
  /** A fresh bucket with a unique name. */
  bucket(label: string): Promise<string>;
  /** The config of an s3 mount on `bucket`, with the keys in S3_ENV. */
  config(bucket: string, extra?: Partial<S3MountConfig>): S3MountConfig;
  /** A mount context with S3_ENV (plus `env`). */
  context(env?: Record<string, string>): MountContext;
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL('./s3rver-process.mjs', import.meta.url));

export async function startS3(): Promise<TestS3> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-s3rver-data-'));
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', SCRIPT, dir], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const requests: ServerRequest[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('s3rver did not start within 20 s')), 20_000);
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const message = JSON.parse(line) as { port?: number } & Partial<ServerRequest>;
      if (message.port !== undefined) {
        clearTimeout(timer);
        resolve(message.port);
      } else requests.push({ method: message.method as string, url: message.url as string });
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ENV.TEST_S3_KEY, secretAccessKey: S3_ENV.TEST_S3_SECRET },
  });
  let n = 0;
  return {
    endpoint,
    client,
    requests,
    async bucket(label) {
      const name = `${label}-${process.pid}-${n++}`;
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    config(bucket, extra = {}) {
      return {
        kind: 's3',
        bucket,
        endpoint,
        path_style: true,
        access_key_id_env: 'TEST_S3_KEY',
        secret_access_key_env: 'TEST_S3_SECRET',
        ...extra,
      };
    },
    context(env = {}) {
      return { root: dir, env: { ...S3_ENV, ...env } };
    },
    async stop() {
      client.destroy();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end();
      if (child.exitCode === null) await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Requests for one object (`/<bucket>/<key>`), of one method, with or without a query. */
export function requestsFor(s3: TestS3, method: string, bucket: string, key: string): ServerRequest[] {
  const path = `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  return s3.requests.filter((r) => r.method === method && (r.url === path || r.url.startsWith(`${path}?`)));
}
