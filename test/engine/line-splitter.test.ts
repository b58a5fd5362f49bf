/**
 * The line splitter of process output: lines across chunks, characters across chunks,
 * long lines held to their head but measured whole, blank lines told apart, and the log
 * form of a long line with its marker.
 */
import { describe, expect, it } from 'vitest';
import type { StreamLine } from '../../src/engine/executors/line-splitter.js';
import { createLineSplitter } from '../../src/engine/executors/line-splitter.js';
import { logLine } from '../../src/engine/executors/shell.js';

function split(chunks: readonly (string | Buffer)[], keep: number): StreamLine[] {
  const lines: StreamLine[] = [];
  const splitter = createLineSplitter(keep, (l) => lines.push(l));
  for (const c of chunks) splitter.push(typeof c === 'string' ? Buffer.from(c) : c);
  splitter.end();
  return lines;
}

describe('createLineSplitter', () => {
  it('reports each line once, in order, across chunks, and a last line without a newline', () => {
    const lines = split(['one\ntw', 'o\n\nthr', 'ee'], 100);
    expect(lines.map((l) => l.text)).toEqual(['one', 'two', '', 'three']);
    expect(lines.map((l) => l.blank)).toEqual([false, false, true, false]);
    expect(split(['x\n'], 100).map((l) => l.text)).toEqual(['x']);
  });

  it('decodes a character split across chunks whole', () => {
    const euro = Buffer.from('€\n');
    expect(split([euro.subarray(0, 1), euro.subarray(1, 2), euro.subarray(2)], 100)).toEqual([
      { text: '€', bytes: 3, blank: false },
    ]);
  });

  it('holds the head of a long line and counts the rest, never half a character', () => {
    const chunks = Array.from({ length: 100 }, () => 'é'.repeat(500));
    const [line, next] = split([...chunks, '\nafter\n'], 1001);
    expect(line?.bytes).toBe(100 * 1000);
    expect(line?.text).toBe('é'.repeat(500));
    expect(next?.text).toBe('after');
  });

  it('tells a long line of spaces from one with content', () => {
    expect(split([' '.repeat(50), ' '.repeat(50), '\n'], 10)[0]?.blank).toBe(true);
    expect(split([' '.repeat(50), 'x', '\n'], 10)[0]?.blank).toBe(false);
  });
});

describe('logLine', () => {
  it('keeps a line within the limit, and cuts a longer one with a marker giving its size', () => {
    expect(logLine({ text: 'short', bytes: 5, blank: false }, 1024)).toBe('short');
    const cut = logLine({ text: 'y'.repeat(2000), bytes: 50_000_000, blank: false }, 1024);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(1024);
    expect(cut).toMatch(
      /^y+ … \[line truncated: 50000000 bytes, at most the first 1024 kept \(limits\.log_line_bytes\)\]$/,
    );
  });
});
