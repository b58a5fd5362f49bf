/**
 * The bodies a write accepts (bytes, text, a stream, an async iterable of chunks), as one
 * async iterable of byte chunks, hashed on the way through: every mount computes the
 * SHA-256 and size of what it stored the same way.
 */
import { createHash, type Hash } from 'node:crypto';
import type { WriteBody } from './mount.js';

/** Counts and hashes the chunks that pass through it. */
export class BodyDigest {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  add(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
  }

  /** The SHA-256 of everything added, hex; call once. */
  hex(): string {
    return this.hash.digest('hex');
  }
}

/** The body's chunks, each added to `digest` as it is handed on. */
export async function* chunksOf(body: WriteBody, digest: BodyDigest): AsyncGenerator<Uint8Array> {
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    digest.add(bytes);
    yield bytes;
    return;
  }
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    // A stream in text mode yields strings: they are written as UTF-8.
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    digest.add(bytes);
    yield bytes;
  }
}
