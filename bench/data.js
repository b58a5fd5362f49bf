// Group `data` of `npm run bench`: the read-through cache of remote mounts against a real
// S3-protocol server (s3rver on 127.0.0.1, in a process of its own, its data in a temp
// folder). A 200 MB object of random bytes is written through the s3 mount (a multipart
// upload), then read:
// - `sdk_read_ms`: GetObject with the SDK, streamed to a file: what the cache cannot beat cold;
// - `cache_cold_read_ms`: readThrough on an empty cache, until its file is ready;
// - `cache_warm_read_ms`: readThrough again (it validates the ETag with a HeadObject) plus
//   reading the cached file fully, as a task would;
// - `local_read_ms`: reading the same 200 MB from a local file with fs;
// - `cache_concurrent_fetches`: GetObject calls made by 50 concurrent readThrough calls of
//   another cold object (goal 1).
// `cache_warm_lookup_ms` is the readThrough part of a warm read. Each time is the median of
// RUNS; the ratios beside them carry the goals: warm at least 5x
// faster than cold, warm within 2x of local, cold within 1.5x of the SDK.
//
// Run as a script with `s3rver <dir>`, this file is the server process: it prints
// `{"port":N}` once listening.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomFillSync } from 'node:crypto';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const MB = 1024 * 1024;
const OBJECT_BYTES = 200 * MB;
const RUNS = 5;
const READ_HIGH_WATER = MB;

if (process.argv[2] === 's3rver') {
  const S3rver = createRequire(import.meta.url)('s3rver');
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: process.argv[3] });
  const { port } = await server.run();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

/** Starts the server process; resolves with its port and a stop function. */
async function startServer(dir) {
  const child = spawn(process.execPath, [self, 's3rver', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
    createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line).port));
  });
  return {
    port,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      if (child.exitCode === null) await exited;
    },
  };
}

/** A file of `bytes` random bytes. */
function randomFile(path, bytes) {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(8 * MB);
  try {
    for (let done = 0; done < bytes; done += chunk.length) {
      randomFillSync(chunk);
      writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a file to its end, as a task reading its input would, through one reused buffer:
 * the figures are then of the file's bytes reaching the reader, not of allocating a fresh
 * buffer per chunk (which costs as much as the read itself on some machines).
 */
async function readFully(path) {
  const handle = await open(path, 'r');
  const buffer = Buffer.allocUnsafe(READ_HIGH_WATER);
  try {
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return n;
      n += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A mount that counts its reads (each one a GetObject). */
function counting(mount) {
  const counter = { reads: 0 };
  const wrapped = Object.create(mount);
  wrapped.read = (key, options) => {
    counter.reads++;
    return mount.read(key, options);
  };
  return { mount: wrapped, counter };
}

export async function dataCacheBench(report) {
  const { DiskCache } = await import('../dist/data/cache/disk-cache.js');
  const { openS3Mount } = await import('../dist/data/s3-mount.js');
  const { S3Client, CreateBucketCommand, GetObjectCommand } = await import('@aws-sdk/client-s3');
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-data-'));
  const server = await startServer(join(dir, 's3'));
  const endpoint = `http://127.0.0.1:${server.port}`;
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  const mount = await openS3Mount(
    'bench',
    {
      kind: 's3',
      bucket: 'bench-data',
      endpoint,
      path_style: true,
      access_key_id_env: 'K',
      secret_access_key_env: 'S',
    },
    { root: dir, env: { K: credentials.accessKeyId, S: credentials.secretAccessKey } },
  );
  try {
    await client.send(new CreateBucketCommand({ Bucket: 'bench-data' }));
    const local = join(dir, 'local.bin');
    randomFile(local, OBJECT_BYTES);
    const t0 = performance.now();
    await mount.write('big.bin', createReadStream(local, { highWaterMark: READ_HIGH_WATER }));
    report('s3_write_mb_per_s', OBJECT_BYTES / MB / ((performance.now() - t0) / 1000), 'MB/s', 0, 'higher');
    await mount.write('other.bin', createReadStream(local, { start: 0, end: 32 * MB - 1 }));

    const cache = await DiskCache.open(join(dir, 'cache'), { maxBytes: 10 * 1024 * MB });
    try {
      // The four reads in turn, RUNS times, so that a slow spell of the machine weighs on all alike.
      const times = { sdk: [], cold: [], warm: [], lookup: [], local: [] };
      const timed = async (name, fn) => {
        const t0 = performance.now();
        await fn();
        times[name].push(performance.now() - t0);
      };
      for (let i = 0; i < RUNS; i++) {
        await timed('sdk', async () => {
          const got = await client.send(new GetObjectCommand({ Bucket: 'bench-data', Key: 'big.bin' }));
          await pipeline(got.Body, createWriteStream(join(dir, 'sdk.bin'), { highWaterMark: 4 * MB }));
        });
        rmSync(join(dir, 'sdk.bin'), { force: true });
        await cache.clear();
        // Cold and warm end at the same point: the reader has every byte, as a task would.
        await timed('cold', async () => {
          const got = await cache.readThrough(mount, 'big.bin');
          if (!got.fetched) throw new Error('cold read: the cache did not download');
          if ((await readFully(got.file)) !== OBJECT_BYTES) throw new Error('cold read: short file');
        });
        await timed('warm', async () => {
          const t0 = performance.now();
          const got = await cache.readThrough(mount, 'big.bin');
          times.lookup.push(performance.now() - t0);
          if (got.fetched) throw new Error('warm read: the cache downloaded again');
          if ((await readFully(got.file)) !== OBJECT_BYTES) throw new Error('warm read: short file');
        });
        await timed('local', async () => {
          if ((await readFully(local)) !== OBJECT_BYTES) throw new Error('local read: short file');
        });
      }
      const [sdkMs, coldMs, warmMs, lookupMs, localMs] = ['sdk', 'cold', 'warm', 'lookup', 'local'].map((name) =>
        median(times[name]),
      );
      const { mount: counted, counter } = counting(mount);
      await Promise.all(Array.from({ length: 50 }, () => cache.readThrough(counted, 'other.bin')));

      report('sdk_read_ms', sdkMs, 'ms', 0, 'lower');
      report('cache_cold_read_ms', coldMs, 'ms', 0, 'lower');
      report('cache_warm_read_ms', warmMs, 'ms', 0, 'lower');
      report('local_read_ms', localMs, 'ms', 0, 'lower');
      report('cache_warm_lookup_ms', lookupMs, 'ms', 0, 'lower');
      report('cache_warm_speedup', coldMs / warmMs, 'x', 5, 'higher');
      report('cache_warm_vs_local', warmMs / localMs, 'x', 2, 'lower');
      report('cache_cold_vs_sdk', coldMs / sdkMs, 'x', 1.5, 'lower');
      report('cache_concurrent_fetches', counter.reads, 'calls', 1, 'lower');
    } finally {
      await cache.close();
    }
  } finally {
    await mount.close();
    client.destroy();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
