/**
 * The s3 mount against a real S3-protocol server (s3rver on 127.0.0.1): stat, listings
 * (folders, recursive, limits over several pages, isolation of the mount's prefix), reads,
 * atomic writes (one PutObject, or a multipart upload past 8 MiB that a failure or an abort
 * leaves invisible), removals, and errors that name the server's answer but never a key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BatonError } from '../../src/core/errors.js';
import type { DataMount } from '../../src/data/mount.js';
import { openS3Mount, PART_BYTES } from '../../src/data/s3-mount.js';
import type { TestS3 } from './s3rver.js';
import { requestsFor, startS3 } from './s3rver.js';
import { rejection } from '../helpers/thrown.js';

let s3: TestS3;
const open: DataMount[] = [];

beforeAll(async () => {
  s3 = await startS3();
});

afterAll(async () => {
  await s3?.stop();
});

afterEach(async () => {
  for (const m of open.splice(0)) await m.close();
});

async function mount(bucket: string, prefix?: string, env?: Record<string, string>): Promise<DataMount> {
  const m = await openS3Mount('lake', s3.config(bucket, prefix ? { prefix } : {}), s3.context(env));
  open.push(m);
  return m;
}

async function put(bucket: string, key: string, body: string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

async function bucketKeys(bucket: string): Promise<string[]> {
  const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (page.Contents ?? []).map((o) => o.Key as string);
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('s3 mount', () => {
  it('is a writable remote mount of kind s3', async () => {
    const m = await mount(await s3.bucket('kind'));
    expect([m.name, m.kind, m.writable, m.remote]).toEqual(['lake', 's3', true, true]);
  });

  it('writes, stats, reads and removes an object', async () => {
    const bucket = await s3.bucket('rw');
    const m = await mount(bucket, 'data');
    const written = await m.write('orders/2024.csv', 'id,total\n1,9\n', { contentType: 'text/csv' });
    expect(written).toMatchObject({ key: 'orders/2024.csv', size: 13, sha256: sha256('id,total\n1,9\n') });
    expect(written.etag).toMatch(/^[0-9a-f]{32}$/);
    expect(await bucketKeys(bucket)).toEqual(['data/orders/2024.csv']);

    const info = await m.stat('orders/2024.csv');
    expect(info).toMatchObject({ key: 'orders/2024.csv', size: 13, etag: written.etag, contentType: 'text/csv' });
    expect(info?.modifiedAt).toBeGreaterThan(Date.now() - 60_000);
    expect(await m.stat('orders/2025.csv')).toBeNull();
    expect(await m.stat('orders')).toBeNull();

    const { info: readInfo, body } = await m.read('orders/2024.csv');
    expect(readInfo).toMatchObject({ key: 'orders/2024.csv', size: 13, etag: written.etag });
    expect(await text(body)).toBe('id,total\n1,9\n');

    const missing = await rejection(m.read('orders/2025.csv'));
    expect(missing.code).toBe('DATA_NOT_FOUND');
    expect(missing.message).toContain('lake');
    expect(missing.message).toContain('orders/2025.csv');

    expect(await m.remove('orders/2024.csv')).toBe(true);
    expect(await m.remove('orders/2024.csv')).toBe(false);
    expect(await m.stat('orders/2024.csv')).toBeNull();
    expect(await bucketKeys(bucket)).toEqual([]);
  });

  it('writes bytes and streams of up to 8 MiB as one object, with their SHA-256', async () => {
    const m = await mount(await s3.bucket('small'));
    const bytes = randomBytes(PART_BYTES);
    const fromBytes = await m.write('bytes.bin', bytes);
    expect(fromBytes).toMatchObject({ size: PART_BYTES, sha256: sha256(bytes) });
    const fromStream = await m.write('stream.bin', Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]));
    expect(fromStream).toMatchObject({ size: PART_BYTES, sha256: sha256(bytes) });
    // A single PutObject's ETag is the MD5 of the bytes; a multipart one ends in -<parts>.
    expect(fromStream.etag).toBe(createHash('md5').update(bytes).digest('hex'));
    const empty = await m.write('empty.txt', '');
    expect(empty).toMatchObject({ size: 0, sha256: sha256('') });
    expect((await m.stat('empty.txt'))?.size).toBe(0);
  });

  it('writes a stream over 8 MiB as a multipart upload', async () => {
    const bucket = await s3.bucket('multi');
    const m = await mount(bucket, 'big');
    const bytes = randomBytes(2 * PART_BYTES + 12345);
    const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) =>
      bytes.subarray(i * 65536, (i + 1) * 65536),
    );
    const written = await m.write('blob.bin', Readable.from(chunks));
    expect(written).toMatchObject({ key: 'blob.bin', size: bytes.length, sha256: sha256(bytes) });
    const uploads = requestsFor(s3, 'PUT', bucket, 'big/blob.bin').filter((r) => r.url.includes('partNumber='));
    expect(uploads).toHaveLength(3);
    expect(requestsFor(s3, 'POST', bucket, 'big/blob.bin').filter((r) => r.url.includes('uploads'))).toHaveLength(1);
    expect((await m.stat('blob.bin'))?.size).toBe(bytes.length);
    const { body } = await m.read('blob.bin');
    const back: Buffer[] = [];
    for await (const chunk of body) back.push(chunk as Buffer);
    expect(sha256(Buffer.concat(back))).toBe(sha256(bytes));
  });

  it('leaves nothing visible when a multipart write is aborted or its body fails', async () => {
    const bucket = await s3.bucket('abort');
    const m = await mount(bucket);
    await m.write('kept.txt', 'old');

    // Two parts' worth, then the body stalls until the write is aborted.
    const controller = new AbortController();
    let stalled = false;
    async function* stalling(): AsyncGenerator<Uint8Array> {
      yield randomBytes(PART_BYTES);
      yield randomBytes(PART_BYTES + 10);
      stalled = true;
      await new Promise(() => undefined);
    }
    const aborted = m.write('kept.txt', stalling(), { signal: controller.signal });
    for (let i = 0; i < 200 && !stalled; i++) await new Promise((r) => setTimeout(r, 10));
    expect(stalled).toBe(true);
    controller.abort();
    const abortError = await rejection(aborted);
    expect(abortError.code).toBe('DATA_IO');
    expect(abortError.message).toContain('kept.txt');

    async function* failing(): AsyncGenerator<Uint8Array> {
      yield randomBytes(PART_BYTES);
      yield randomBytes(PART_BYTES);
      throw new Error('the source went away');
    }
    const failed = await rejection(m.write('new.bin', failing()));
    expect(failed.code).toBe('DATA_IO');
    expect(failed.message).toContain('the source went away');

    expect(await m.stat('new.bin')).toBeNull();
    // Both uploads were aborted (s3rver refuses AbortMultipartUpload, but the parts stay invisible).
    const aborts = (key: string) =>
      requestsFor(s3, 'DELETE', bucket, key).filter((r) => r.url.includes('uploadId=')).length;
    expect([aborts('kept.txt'), aborts('new.bin')]).toEqual([1, 1]);
    expect(await text((await m.read('kept.txt')).body)).toBe('old');
    expect(await bucketKeys(bucket)).toEqual(['kept.txt']);
  });

  it('lists direct children with folders, or everything when recursive, in key order', async () => {
    const bucket = await s3.bucket('list');
    for (const key of ['data/b/d/e.txt', 'data/z.txt', 'data/a.txt', 'data/b/c.txt', 'data/b-side.txt']) {
      await put(bucket, key, key);
    }
    // Outside the mount's prefix: a sibling folder, a key that shares its first letters, a folder marker.
    for (const key of ['other/x.txt', 'database.txt', 'root.txt', 'data/b/']) await put(bucket, key, 'x');
    const m = await mount(bucket, 'data');

    expect(await m.list('')).toEqual([
      expect.objectContaining({ key: 'a.txt', size: 10 }),
      { key: 'b', size: 0, folder: true },
      expect.objectContaining({ key: 'b-side.txt', size: 15 }),
      expect.objectContaining({ key: 'z.txt', size: 10 }),
    ]);
    const listed = await m.list('');
    expect(listed[0]?.etag).toMatch(/^[0-9a-f]{32}$/);
    expect((await m.list('b')).map((e) => [e.key, e.folder ?? false])).toEqual([
      ['b/c.txt', false],
      ['b/d', true],
    ]);
    expect((await m.list('', { recursive: true })).map((e) => e.key)).toEqual([
      'a.txt',
      'b-side.txt',
      'b/c.txt',
      'b/d/e.txt',
      'z.txt',
    ]);
    expect((await m.list('b', { recursive: true })).map((e) => e.key)).toEqual(['b/c.txt', 'b/d/e.txt']);
    expect((await m.list('b', { recursive: true, limit: 1 })).map((e) => e.key)).toEqual(['b/c.txt']);
    expect(await m.list('', { limit: 2 })).toHaveLength(2);
    expect(await m.list('nothing')).toEqual([]);

    const whole = await mount(bucket);
    expect((await whole.list('')).map((e) => e.key)).toEqual(['data', 'database.txt', 'other', 'root.txt']);
  });

  it('pages through listings of more than 1000 keys, up to the limit', async () => {
    const bucket = await s3.bucket('pages');
    const keys = Array.from({ length: 1100 }, (_, i) => `many/k${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((k) => put(bucket, k, 'x')));
    }
    const m = await mount(bucket);
    const all = await m.list('many');
    expect(all).toHaveLength(1100);
    expect(all.map((e) => e.key)).toEqual(keys);
    const some = await m.list('many', { limit: 1050 });
    expect(some.map((e) => e.key)).toEqual(keys.slice(0, 1050));
  });

  it('reads credentials from the variables the config names, and never shows them', async () => {
    const bucket = await s3.bucket('secret');
    const id = 'AKIAIDNOTKNOWN4711';
    const secret = 'SuperSecretValue/0815+abc';
    const m = await mount(bucket, undefined, { TEST_S3_KEY: id, TEST_S3_SECRET: secret });
    const errors: BatonError[] = [
      await rejection(m.stat('a.txt')),
      await rejection(m.read('a.txt')),
      await rejection(m.list('')),
      await rejection(m.write('a.txt', 'x')),
      await rejection(m.write('big.bin', Readable.from([randomBytes(PART_BYTES + 1)]))),
    ];
    for (const e of errors) {
      expect(e.code).toBe('DATA_IO');
      expect(e.message).toContain('lake');
      // The SDK's error carries the access key id the server echoed (AWSAccessKeyId): it is not the cause.
      const cause = e.cause as Error;
      const shown = [e.message, e.hint, JSON.stringify(e.toJSON()), cause.message, JSON.stringify({ ...cause })].join(
        '\n',
      );
      expect(shown).not.toContain(id);
      expect(shown).not.toContain(secret);
    }
    expect(errors[0]?.message).toMatch(/403/);
    expect(errors[1]?.message).toContain('InvalidAccessKeyId');
  });

  it('names the mount, the key and the server error when the bucket is missing', async () => {
    const m = await mount('no-such-bucket-here');
    const e = await rejection(m.read('reports/q1.csv'));
    expect(e.code).toBe('DATA_IO');
    expect(e.message).toContain('mount lake');
    expect(e.message).toContain('reports/q1.csv');
    expect(e.message).toContain('NoSuchBucket');
    expect(e.details).toMatchObject({ mount: 'lake', key: 'reports/q1.csv', serverCode: 'NoSuchBucket' });
  });

  it('refuses a config whose credential variables are unset or half given', async () => {
    const bucket = await s3.bucket('config');
    const unset = await rejection(
      openS3Mount('lake', s3.config(bucket, { access_key_id_env: 'NOT_SET_KEY' }), s3.context()),
    );
    expect(unset.code).toBe('CONFIG_INVALID');
    expect(unset.message).toContain('NOT_SET_KEY');
    expect(unset.message).toContain('data.mounts.lake');
    const half = await rejection(
      openS3Mount('lake', { ...s3.config(bucket), secret_access_key_env: undefined }, s3.context()),
    );
    expect(half.code).toBe('CONFIG_INVALID');
    expect(half.message).toContain('access_key_id_env is set but not its pair');
  });
});
