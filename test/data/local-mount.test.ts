import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLocalMount } from '../../src/data/local-mount.js';
import type { DataMount } from '../../src/data/mount.js';
import { rejection } from '../helpers/thrown.js';

let root: string;
let mount: DataMount;

async function text(m: DataMount, key: string): Promise<string> {
  const { body } = await m.read(key);
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'baton-local-mount-'));
  mount = await openLocalMount('raw', { kind: 'local', path: 'lake' }, { root, env: {} });
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('local mount', () => {
  it('writes, stats, reads, lists and removes objects under its folder', async () => {
    const written = await mount.write('orders/2024/01.csv', 'id,total\n1,10\n');
    expect(written.size).toBe(14);
    expect(written.sha256).toBe(createHash('sha256').update('id,total\n1,10\n').digest('hex'));
    expect(readFileSync(join(root, 'lake', 'orders', '2024', '01.csv'), 'utf8')).toBe('id,total\n1,10\n');
    const info = await mount.stat('orders/2024/01.csv');
    expect(info).toMatchObject({ key: 'orders/2024/01.csv', size: 14 });
    expect(info?.etag).toMatch(/^"14-\d+"$/);
    expect(await text(mount, 'orders/2024/01.csv')).toBe('id,total\n1,10\n');
    await mount.write('orders/2024/02.csv', Readable.from([Buffer.from('id\n'), Buffer.from('2\n')]));
    await mount.write('readme.txt', new Uint8Array([104, 105]));
    expect((await mount.list('')).map((e) => [e.key, e.folder === true])).toEqual([
      ['orders', true],
      ['readme.txt', false],
    ]);
    expect((await mount.list('orders', { recursive: true })).map((e) => e.key)).toEqual([
      'orders/2024/01.csv',
      'orders/2024/02.csv',
    ]);
    expect((await mount.list('', { recursive: true, limit: 2 })).length).toBe(2);
    expect(await mount.remove('readme.txt')).toBe(true);
    expect(await mount.remove('readme.txt')).toBe(false);
    expect(await mount.stat('readme.txt')).toBeNull();
    expect(await mount.list('missing')).toEqual([]);
  });

  it('hashes what it writes', async () => {
    const { createHash } = await import('node:crypto');
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const written = await mount.write('big.bin', Readable.from([body.subarray(0, 1000), body.subarray(1000)]));
    expect(written.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(written.size).toBe(body.length);
  });

  it('says what is missing', async () => {
    const missing = await rejection(mount.read('nope.csv'));
    expect(missing.code).toBe('DATA_NOT_FOUND');
    expect(missing.message).toContain('data://raw/nope.csv');
    await mount.write('folder/a.txt', 'a');
    expect((await rejection(mount.read('folder'))).code).toBe('DATA_NOT_FOUND');
    expect((await rejection(mount.write('folder', 'x'))).code).toBe('DATA_UNSUPPORTED');
  });

  it('refuses a symbolic link on the way, inside the mount or out of it', async () => {
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), 'secret');
    symlinkSync(outside, join(root, 'lake', 'out'));
    symlinkSync(join(outside, 'secret.txt'), join(root, 'lake', 'secret.txt'));
    await mount.write('inside/real.txt', 'real');
    symlinkSync(join(root, 'lake', 'inside'), join(root, 'lake', 'alias'));
    for (const attempt of [
      () => mount.read('out/secret.txt'),
      () => mount.stat('out/secret.txt'),
      () => mount.read('secret.txt'),
      () => mount.write('out/planted.txt', 'x'),
      () => mount.write('secret.txt', 'overwrite'),
      () => mount.remove('secret.txt'),
      () => mount.read('alias/real.txt'),
    ]) {
      expect((await rejection(attempt())).code).toBe('DATA_PATH_ESCAPE');
    }
    expect(existsSync(join(outside, 'planted.txt'))).toBe(false);
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
    // Listings pass links by.
    expect((await mount.list('')).map((e) => e.key)).toEqual(['inside']);
  });

  it('follows a link that is the mount folder itself', async () => {
    const real = join(root, 'real-lake');
    mkdirSync(real);
    symlinkSync(real, join(root, 'linked'));
    const linked = await openLocalMount('l', { kind: 'local', path: 'linked' }, { root, env: {} });
    await linked.write('a.txt', 'through the link');
    expect(readFileSync(join(real, 'a.txt'), 'utf8')).toBe('through the link');
  });

  it('leaves the old object whole when a write fails midway, and no part file in listings', async () => {
    await mount.write('report.csv', 'old\n');
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('new partial');
      throw new Error('source broke');
    }
    await expect(mount.write('report.csv', failing())).rejects.toThrow(/source broke/);
    expect(await text(mount, 'report.csv')).toBe('old\n');
    expect(readdirSync(join(root, 'lake')).filter((n) => n.endsWith('.baton-part'))).toEqual([]);
    const aborted = new AbortController();
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('x');
      aborted.abort();
      yield Buffer.from('y');
    }
    await expect(mount.write('report.csv', slow(), { signal: aborted.signal })).rejects.toThrow();
    expect(await text(mount, 'report.csv')).toBe('old\n');
  });

  it('never shows half an object when the writing process is killed with SIGKILL', async () => {
    // A child process writes 64 MiB slowly over an existing object; it is killed midway.
    const dist = join(process.cwd(), 'dist', 'data', 'local-mount.js');
    await mount.write('big.bin', Buffer.alloc(1024, 1));
    const script = `
      import { openLocalMount } from ${JSON.stringify(dist)};
      const m = await openLocalMount('raw', { kind: 'local', path: 'lake' }, { root: ${JSON.stringify(root)}, env: {} });
      async function* body() {
        for (let i = 0; i < 64; i++) {
          if (i === 4) process.stdout.write('midway\\n');
          yield Buffer.alloc(1024 * 1024, 2);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await m.write('big.bin', body());
      process.stdout.write('done\\n');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the writer never got midway')), 20_000);
      child.stdout.on('data', (d: Buffer) => {
        if (String(d).includes('midway')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const after = readFileSync(join(root, 'lake', 'big.bin'));
    expect(after.length).toBe(1024);
    expect(after.every((b) => b === 1)).toBe(true);
    // The part file of the killed writer is there, but hidden.
    expect(readdirSync(join(root, 'lake')).some((n) => n.endsWith('.baton-part'))).toBe(true);
    expect((await mount.list('')).map((e) => e.key)).toEqual(['big.bin']);
  }, 30_000);
});
