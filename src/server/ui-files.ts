/**
 * The web UI's files (Vite's build in dist/ui), held in memory and served from there: a
 * few megabytes, read once when the server starts, so that serving one takes no disk
 * access and answers whatever the client does with its side of the connection (a client
 * that half-closes after its request still gets its answer).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { FastifyReply } from 'fastify';

/** One file of the UI, ready to send. */
export interface UiFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
  readonly cacheControl: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Vite names what it builds under assets/ by content hash: such a file never changes. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** The files under `dir` by URL path (`/index.html`, `/assets/index-1a2b.js`). */
export function loadUiFiles(dir: string): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        walk(path);
        continue;
      }
      if (!entry.isFile()) continue;
      const url = `/${relative(dir, path).split(sep).join('/')}`;
      const body = readFileSync(path);
      files.set(url, {
        body,
        type: TYPES[extname(entry.name).toLowerCase()] ?? 'application/octet-stream',
        etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
        cacheControl: url.startsWith('/assets/') ? IMMUTABLE : 'no-cache',
      });
    }
  };
  walk(dir);
  return files;
}

/** Sends a UI file; 304 when the client holds this version already. */
export function sendUiFile(reply: FastifyReply, file: UiFile, ifNoneMatch: string | undefined): FastifyReply {
  reply.header('etag', file.etag).header('cache-control', file.cacheControl);
  if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => tag.trim() === file.etag)) {
    return reply.code(304).send();
  }
  return reply.type(file.type).send(file.body);
}
