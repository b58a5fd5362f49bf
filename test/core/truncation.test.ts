/**
 * Cutting recorded values to their limits: byte counts of UTF-8 match Node's, a cut never
 * splits a character and stays within the limit with its marker, JSON is measured while
 * it is written and refused early when far over, and what JSON would drop is named.
 */
import { describe, expect, it } from 'vitest';
import {
  boundDetails,
  boundTaskError,
  boundedJson,
  cutText,
  utf8Length,
  utf8Prefix,
} from '../../src/core/truncation.js';

const SAMPLES = ['', 'plain', 'é', '€uro', '😀 smile', 'a\uD800b', '\uDC00', 'mixed é€😀 text'];

describe('utf8Length and utf8Prefix', () => {
  it('count bytes as Node encodes them', () => {
    for (const s of SAMPLES) expect(utf8Length(s), JSON.stringify(s)).toBe(Buffer.byteLength(s));
  });

  it('keep the longest head within the bytes, never half a character', () => {
    const text = 'aé€😀'.repeat(50);
    for (let max = 0; max <= 60; max++) {
      const head = utf8Prefix(text, max);
      expect(Buffer.byteLength(head)).toBeLessThanOrEqual(max);
      expect(text.startsWith(head)).toBe(true);
      // One more character would not have fitted.
      const next = text.slice(head.length, head.length + (text.codePointAt(head.length)! > 0xffff ? 2 : 1));
      expect(Buffer.byteLength(head + next)).toBeGreaterThan(max);
    }
  });
});

describe('cutText', () => {
  const marker = (n: number) => ` … [cut: ${n} bytes]`;

  it('returns text within the limit as it is', () => {
    expect(cutText('short', 1024, marker)).toBe('short');
    const exact = 'é'.repeat(512);
    expect(cutText(exact, 1024, marker)).toBe(exact);
  });

  it('cuts longer text to the limit, the marker included, and says how large it was', () => {
    const text = '€'.repeat(1000);
    const cut = cutText(text, 1024, marker);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(cut)).toBeGreaterThan(1024 - 3);
    expect(cut).toMatch(/^€+ … \[cut: 3000 bytes\]$/);
  });

  it('cuts after a whole line when asked', () => {
    const stack = ['Error: boom', ...Array.from({ length: 100 }, (_, i) => `    at f${i} (file.js:${i}:1)`)].join('\n');
    const cut = cutText(stack, 512, (n) => `\n    [cut: ${n}]`, { atLineBreak: true });
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(512);
    const lines = cut.split('\n');
    expect(lines.slice(1, -1).every((l) => /^ {4}at f\d+ \(file\.js:\d+:1\)$/.test(l))).toBe(true);
    expect(lines.at(-1)).toBe(`    [cut: ${Buffer.byteLength(stack)}]`);
  });
});

describe('boundedJson', () => {
  it('writes JSON within the limit, with its size', () => {
    expect(boundedJson({ a: [1, 'é'] }, 100, { strict: true })).toEqual({ ok: true, text: '{"a":[1,"é"]}', bytes: 14 });
  });

  it('stops early on a value far over the limit, and gives the size of one just over', () => {
    expect(boundedJson({ rows: ['x'.repeat(10_000)] }, 1000, { strict: false })).toEqual({
      ok: false,
      reason: 'too_large',
      bytes: null,
    });
    // Escapes make the text longer than the lower bound kept while writing.
    expect(boundedJson('\n'.repeat(600), 1000, { strict: false })).toEqual({
      ok: false,
      reason: 'too_large',
      bytes: 1202,
    });
  });

  it('when strict, names what JSON would drop or mangle, and where', () => {
    const strict = (v: unknown) => boundedJson(v, 10_000, { strict: true, root: 'output' });
    expect(strict(() => 1)).toMatchObject({ reason: 'invalid', path: 'output', message: 'output is a function' });
    expect(strict({ a: { b: [1, Symbol('s')] } })).toMatchObject({ path: 'output.a.b[1]' });
    expect(strict({ 'odd key': 1n })).toMatchObject({ path: 'output["odd key"]' });
    expect(strict({ m: new Map([[1, 2]]) })).toMatchObject({ path: 'output.m' });
    expect(strict({ s: new Set([1]) })).toMatchObject({ path: 'output.s' });
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(strict(cycle)).toMatchObject({ ok: false, reason: 'invalid' });
    // JSON's own rules for what has a JSON form: a Date is a string, undefined is dropped.
    expect(strict({ at: new Date(0), gone: undefined })).toMatchObject({
      ok: true,
      text: '{"at":"1970-01-01T00:00:00.000Z"}',
    });
  });

  it('when lenient, follows JSON and refuses only what JSON cannot write', () => {
    expect(boundedJson({ f: () => 1, m: new Map() }, 100, { strict: false })).toMatchObject({
      ok: true,
      text: '{"m":{}}',
    });
    expect(boundedJson({ n: 1n }, 100, { strict: false })).toMatchObject({ ok: false, reason: 'invalid' });
  });
});

describe('boundTaskError', () => {
  it('cuts message, hint and stack each to the limit with a marker naming the setting', () => {
    const error = boundTaskError(
      {
        code: 'X',
        message: 'm'.repeat(5000),
        hint: 'h'.repeat(5000),
        stack: `Error\n${'    at f (a.js:1:1)\n'.repeat(500)}`,
        source: 'user',
      },
      1024,
    );
    for (const field of [error.message, error.hint ?? '', error.stack ?? '']) {
      expect(Buffer.byteLength(field)).toBeLessThanOrEqual(1024);
      expect(field).toMatch(/truncated: \d+ bytes, at most the first 1024 kept \(limits\.error_bytes\)\]$/);
    }
    expect(error.message).toMatch(/^m+ … \[message truncated: 5000 bytes/);
  });

  it('cuts a code of absurd length, and leaves a small error as it was', () => {
    const code = boundTaskError({ code: 'C'.repeat(1000), message: 'm' }, 1024).code;
    expect(code).toMatch(/^C+…$/);
    expect(Buffer.byteLength(code)).toBe(256);
    const small = { code: 'X', kind: 'transient', message: 'm', details: { exitCode: 3 }, source: 'user' as const };
    expect(boundTaskError(small, 1024)).toEqual(small);
  });

  it('replaces details over the limit, or without JSON form, with a marker object', () => {
    expect(boundDetails({ rows: 'r'.repeat(5000) }, 1024)).toEqual({
      truncated: true,
      limit: 1024,
      setting: 'limits.error_bytes',
    });
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(boundDetails(cycle, 1024)).toMatchObject({ unserializable: expect.stringMatching(/circular/) });
  });
});
