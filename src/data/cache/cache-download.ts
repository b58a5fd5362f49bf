/**
 * Streaming an object's bytes into a file of the cache and onto the disk. The bytes go
 * straight from the body to the file (large writes, no copy of the whole); while they
 * arrive, what is already written is flushed in the background, so that the final flush,
 * which a reader must wait for before the file is renamed into place, has little left to do.
 */
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Write buffer: few large writes rather than one per network chunk. */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;
/** Flush in the background each time this many more bytes are written. */
const FLUSH_EVERY_BYTES = 16 * 1024 * 1024;
/** How often (ms) the bytes written are looked at. */
const FLUSH_CHECK_MS = 20;

/** Writes `body` to a new file at `path` and flushes it to disk; returns its size. */
export async function downloadToFile(body: Readable, path: string, signal: AbortSignal): Promise<number> {
  // Creates the file; the stream writes through a descriptor of its own (and closes it),
  // this one flushes: a flush covers the file's bytes whichever descriptor wrote them.
  const handle = await open(path, 'w');
  let flushedAt = 0;
  let flushing: Promise<void> | null = null;
  try {
    const out = createWriteStream(path, { flags: 'r+', highWaterMark: WRITE_HIGH_WATER });
    const timer = setInterval(() => {
      if (flushing !== null || out.bytesWritten - flushedAt < FLUSH_EVERY_BYTES) return;
      flushedAt = out.bytesWritten;
      // A failed background flush is found again by the final one.
      flushing = handle
        .datasync()
        .catch(() => undefined)
        .finally(() => {
          flushing = null;
        });
    }, FLUSH_CHECK_MS);
    try {
      await pipeline(body, out, { signal });
    } finally {
      clearInterval(timer);
      await flushing;
    }
    await handle.sync();
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}
