// One process of the cross-process cache test: `node cache-reader.mjs <dist> <cache dir>
// <endpoint> <bucket> <key> <go file>`. Opens the built cache and an s3 mount, prints
// `ready`, waits for the go file, reads the object through the cache and prints
// `{"fetched","sha256"}` of what it got.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, cacheDir, endpoint, bucket, key, goFile] = process.argv.slice(2);
const load = (path) => import(pathToFileURL(join(dist, path)).href);
const { DiskCache } = await load('data/cache/disk-cache.js');
const { openS3Mount } = await load('data/s3-mount.js');

const mount = await openS3Mount(
  'lake',
  { kind: 's3', bucket, endpoint, path_style: true, access_key_id_env: 'KEY', secret_access_key_env: 'SECRET' },
  { root: cacheDir, env: { KEY: 'S3RVER', SECRET: 'S3RVER' } },
);
const cache = await DiskCache.open(cacheDir, { maxBytes: 2 ** 30 });
process.stdout.write('ready\n');
for (let i = 0; i < 4000 && !existsSync(goFile); i++) await new Promise((r) => setTimeout(r, 5));
const got = await cache.readThrough(mount, key);
const sha256 = createHash('sha256').update(readFileSync(got.file)).digest('hex');
process.stdout.write(`${JSON.stringify({ fetched: got.fetched, sha256 })}\n`);
await cache.close();
await mount.close();
