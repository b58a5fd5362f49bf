import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatonError } from '../../src/core/errors.js';
import { openHttpMount } from '../../src/data/http-mount.js';
import { rejection } from '../helpers/thrown.js';

let server: Server;
let base: string;
const seen: IncomingMessage[] = [];
const files: Record<string, { body: string; etag?: string }> = {
  '/site/data/orders.csv': { body: 'id,total\n1,10\n', etag: '"v1"' },
  '/site/data/100%25%20sure.txt': { body: 'encoded' },
};

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    if (req.url === '/site/private.txt') {
      if (req.headers.authorization !== 'Bearer s3cr3t-token') {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-length': '6' }).end(req.method === 'HEAD' ? undefined : 'hidden');
      return;
    }
    if (req.url === '/site/broken.csv') {
      res.writeHead(500, 'Boom').end();
      return;
    }
    const file = files[req.url ?? ''];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-length': String(Buffer.byteLength(file.body)),
      'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
      'content-type': 'text/csv',
      ...(file.etag ? { etag: file.etag } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/site`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('http mount', () => {
  it('stats with HEAD and reads with GET under its base URL', async () => {
    const mount = openHttpMount('web', { kind: 'http', url: base }, { root: '/', env: {} });
    expect(mount.remote).toBe(true);
    const info = await mount.stat('data/orders.csv');
    expect(info).toMatchObject({ key: 'data/orders.csv', size: 14, etag: '"v1"', contentType: 'text/csv' });
    expect(info?.modifiedAt).toBe(Date.parse('2024-01-01T00:00:00Z'));
    const { body } = await mount.read('data/orders.csv');
    let text = '';
    for await (const chunk of body) text += String(chunk);
    expect(text).toBe('id,total\n1,10\n');
    expect(seen.at(-1)?.method).toBe('GET');
    expect(await mount.stat('data/missing.csv')).toBeNull();
    expect((await rejection(mount.read('data/missing.csv'))).code).toBe('DATA_NOT_FOUND');
  });

  it('encodes each key segment, so that a key names a URL under the base only', async () => {
    const mount = openHttpMount('web', { kind: 'http', url: `${base}/` }, { root: '/', env: {} });
    const info = await mount.stat('data/100% sure.txt');
    expect(info?.size).toBe(7);
    // Without an ETag the length and time stand in for one.
    expect(info?.etag).toBe(`W/"7-${Date.parse('2024-01-01T00:00:00Z')}"`);
    await mount.stat('a?b#c');
    expect(seen.at(-1)?.url).toBe('/site/a%3Fb%23c');
  });

  it('sends headers from the environment and never shows their values', async () => {
    const env = { API_TOKEN: 'Bearer s3cr3t-token' };
    const mount = openHttpMount(
      'web',
      { kind: 'http', url: base, headers_env: { Authorization: 'API_TOKEN' } },
      { root: '/', env },
    );
    expect((await mount.stat('private.txt'))?.size).toBe(6);
    const anonymous = openHttpMount('web', { kind: 'http', url: base }, { root: '/', env: {} });
    const refused = await rejection(anonymous.read('private.txt'));
    expect(refused.code).toBe('DATA_IO');
    expect(refused.message).toContain('HTTP 401');
    const missing = (() => {
      try {
        openHttpMount(
          'web',
          { kind: 'http', url: base, headers_env: { Authorization: 'NOT_SET_ANYWHERE' } },
          { root: '/', env: {} },
        );
      } catch (error) {
        return error as BatonError;
      }
      throw new Error('expected CONFIG_INVALID');
    })();
    expect(missing.code).toBe('CONFIG_INVALID');
    expect(missing.message).toContain('NOT_SET_ANYWHERE');
    expect(JSON.stringify(refused.toJSON())).not.toContain('s3cr3t');
  });

  it('is read-only, cannot be listed, and reports server errors with their status', async () => {
    const mount = openHttpMount('web', { kind: 'http', url: base }, { root: '/', env: {} });
    expect((await rejection(mount.write('x.txt', 'x'))).code).toBe('DATA_UNSUPPORTED');
    expect((await rejection(mount.remove('x.txt'))).code).toBe('DATA_UNSUPPORTED');
    expect((await rejection(mount.list(''))).code).toBe('DATA_UNSUPPORTED');
    const broken = await rejection(mount.read('broken.csv'));
    expect(broken.code).toBe('DATA_IO');
    expect(broken.message).toContain('HTTP 500 Boom');
    // A port nobody listens on: one just let go of.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const down = openHttpMount('down', { kind: 'http', url: `http://127.0.0.1:${port}/x` }, { root: '/', env: {} });
    const refused = await rejection(down.stat('a.csv'));
    expect(refused.code).toBe('DATA_IO');
    expect(refused.message).toContain('ECONNREFUSED');
  });
});
