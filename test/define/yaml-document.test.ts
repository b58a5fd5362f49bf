/**
 * The full parser of flow files within the loader's limits (yaml-document.ts): nesting
 * refused at the token that goes too deep, duplicate keys found with their key paths,
 * aliases counted without being expanded, and the plain value built as YAML reads it. The
 * limits as users meet them (codes, lines, hints) are tested through the loader and the CLI.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/core/limits.js';
import { parseYaml, toPlain } from '../../src/define/yaml-document.js';

const lineOf = (text: string, offset: number) => text.slice(0, offset).split('\n').length;

describe('parseYaml: nesting', () => {
  it('stops at the first token deeper than the limit, in flow and block collections alike', () => {
    const flow = `a: ${'['.repeat(5_000_000)}`;
    const stopped = parseYaml(flow);
    expect(stopped.doc).toBeUndefined();
    expect(stopped.over).toMatchObject({ limit: 'flow_depth', value: LIMITS.flow_depth.default + 1 });

    // Key k<i> is on line i + 1, in a map nested i + 1 deep: k64 is the first too deep.
    const block = `${Array.from({ length: 65 }, (_, i) => `${' '.repeat(2 * i)}k${i}:`).join('\n')} 1\n`;
    const over = parseYaml(block).over;
    expect(over).toMatchObject({ limit: 'flow_depth', value: 65, max: 64 });
    expect(lineOf(block, over?.offset ?? 0)).toBe(65);

    const dashes = `${'- '.repeat(200)}x\n`;
    expect(parseYaml(dashes).over?.limit).toBe('flow_depth');
  });

  it('takes nesting up to the limit', () => {
    const depth = LIMITS.flow_depth.default;
    const text = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    const parsed = parseYaml(text);
    expect(parsed.over).toBeUndefined();
    expect(parsed.errors).toEqual([]);
    let value = toPlain(parsed);
    for (let i = 0; i < depth; i++) value = (value as unknown[])[0];
    expect(value).toBe(1);
    expect(parseYaml(`[${text}]`).over?.limit).toBe('flow_depth');
  });
});

describe('parseYaml: duplicate keys', () => {
  it('names each later key with its key path and offset; the last value wins', () => {
    const text = 'a: 1\nb:\n  c: 1\n  c: 2\n  c: 3\ntasks:\n  - id: x\n    k: 1\n    k: 2\n';
    const parsed = parseYaml(text);
    expect(parsed.errors).toEqual([]);
    expect(parsed.duplicates.map((d) => [d.path, lineOf(text, d.offset)])).toEqual([
      [['b', 'c'], 4],
      [['b', 'c'], 5],
      [['tasks', 'x', 'k'], 9],
    ]);
    expect(toPlain(parsed)).toMatchObject({ b: { c: 3 } });
  });

  it('finds them among 200,000 keys of one map in one pass', () => {
    const keys = Array.from({ length: 200_000 }, (_, i) => `  k${i}: ${i}`);
    const text = `with:\n${keys.join('\n')}\n  k7: again\n`;
    const parsed = parseYaml(text);
    expect(parsed.duplicates).toEqual([{ offset: text.lastIndexOf('k7'), path: ['with', 'k7'] }]);
  });
});

describe('parseYaml: aliases', () => {
  it('counts what aliases add, and refuses a billion laughs at the alias that goes over', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const text = `${levels.join('\n')}\n`;
    const over = parseYaml(text).over;
    expect(over?.limit).toBe('flow_alias_nodes');
    expect(over?.value).toBeGreaterThan(LIMITS.flow_alias_nodes.default);
    // Levels a to e add 123,400 values; each alias of f adds 111,110 more: the eighth goes over.
    expect(lineOf(text, over?.offset ?? 0)).toBe(6);
    expect(over?.value).toBe(123_400 + 8 * 111_110);
  });

  it('shares the value of an anchor with its aliases, as the library does', () => {
    const parsed = parseYaml('base: &b { retry: 3 }\none: *b\ntwo: *b\nname: &n x\ncopy: *n\n');
    expect(parsed.errors).toEqual([]);
    const value = toPlain(parsed) as Record<string, unknown>;
    expect(value.one).toBe(value.base);
    expect(value.two).toEqual({ retry: 3 });
    expect(value.copy).toBe('x');
  });

  it('refuses an alias inside what it names, and one that names nothing', () => {
    expect(parseYaml('a: &a [1, *a]\n').errors.map((e) => e.code)).toContain('ALIAS_CYCLE');
    expect(parseYaml('a: *nothing\n').errors.map((e) => e.code)).toContain('ALIAS_UNKNOWN');
  });
});

describe('toPlain', () => {
  it('keeps __proto__ as an own key and gives keys their YAML values as names', () => {
    const value = toPlain(parseYaml('__proto__: { polluted: true }\n1.0: a\n~: b\ntrue: c\n')) as Record<
      string,
      unknown
    >;
    expect(Object.hasOwn(value, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(value['1']).toBe('a');
    expect(value['']).toBe('b');
    expect(value.true).toBe('c');
  });

  it('reports a second document', () => {
    expect(parseYaml('a: 1\n---\nb: 2\n').errors.map((e) => e.code)).toEqual(['MULTIPLE_DOCS']);
  });
});
