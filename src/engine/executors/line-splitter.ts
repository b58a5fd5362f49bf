/**
 * Splits a process's output stream into lines in constant memory: of each line at most
 * `keepBytes` bytes (its head) are held and the rest only counted, so that a line of a
 * gigabyte costs what a line of `keepBytes` does. Bytes are split, not text, so that a
 * character arriving in two chunks is decoded whole.
 *
 * Invariants
 * - Every line is reported once, in order, without its newline; a last line without a
 *   newline is reported by `end()`.
 * - A head never ends in a character cut in half.
 */

export interface StreamLine {
  /** The line's head: the whole line when `bytes` ≤ keepBytes. */
  readonly text: string;
  /** The whole line's length in bytes (its newline not counted). */
  readonly bytes: number;
  /** The line holds only whitespace (beyond its head, only ASCII whitespace). */
  readonly blank: boolean;
}

export interface LineSplitter {
  push(chunk: Buffer): void;
  end(): void;
}

export function createLineSplitter(keepBytes: number, onLine: (line: StreamLine) => void): LineSplitter {
  let parts: Buffer[] = [];
  let kept = 0;
  let bytes = 0;
  let started = false;
  /** Whether the bytes beyond the head seen so far are all whitespace. */
  let blankBeyond = true;

  const take = (segment: Buffer): void => {
    started = true;
    bytes += segment.length;
    const room = keepBytes - kept;
    if (room > 0 && segment.length > 0) {
      // Copied: a view would keep the whole chunk it comes from alive.
      const head = Buffer.from(segment.subarray(0, room));
      parts.push(head);
      kept += head.length;
    }
    if (blankBeyond && segment.length > room) blankBeyond = isAsciiWhitespace(segment, Math.max(0, room));
  };

  const report = (head: Buffer, total: number, beyondBlank: boolean): void => {
    const text = head.toString('utf8', 0, total > head.length ? completeUtf8(head) : head.length);
    onLine({ text, bytes: total, blank: beyondBlank && text.trim() === '' });
  };

  const flush = (): void => {
    report(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, kept), bytes, blankBeyond);
    parts = [];
    kept = 0;
    bytes = 0;
    started = false;
    blankBeyond = true;
  };

  return {
    push(chunk) {
      let start = 0;
      for (;;) {
        const newline = chunk.indexOf(10, start);
        if (newline < 0) break;
        if (!started && newline - start <= keepBytes) {
          // A whole short line inside this chunk: decoded in place, nothing copied.
          report(chunk.subarray(start, newline), newline - start, true);
        } else {
          take(chunk.subarray(start, newline));
          flush();
        }
        start = newline + 1;
      }
      if (start < chunk.length) take(chunk.subarray(start));
    },
    end() {
      if (started && bytes > 0) flush();
    },
  };
}

/** True when `bytes` from `from` on are all ASCII whitespace (space, tab, CR, LF, VT, FF). */
function isAsciiWhitespace(bytes: Buffer, from: number): boolean {
  for (let i = from; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b !== 32 && (b < 9 || b > 13)) return false;
  }
  return true;
}

/** The length of `bytes` without an incomplete UTF-8 sequence at its end. */
function completeUtf8(bytes: Buffer): number {
  let i = bytes.length - 1;
  // Continuation bytes (10xxxxxx) back to the lead byte of the last sequence, at most 3.
  while (i >= 0 && bytes.length - 1 - i < 3 && ((bytes[i] as number) & 0xc0) === 0x80) i--;
  if (i < 0) return bytes.length;
  const lead = bytes[i] as number;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return i + need > bytes.length ? i : bytes.length;
}
