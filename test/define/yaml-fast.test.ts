/**
 * The fast reader of flow files (yaml-fast.ts) against the full parser (yaml-document.ts):
 * whatever text the fast reader takes, it must give the value the full parser gives, the
 * full parser must find nothing wrong in it, and a problem at any key path must point at
 * the same line and column. Texts are generated from a seed (so that a
 * failure names the seed that reproduces it): documents in the subset with tricky scalars,
 * mutated at random, and soups of YAML's significant tokens.
 */
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { KeyPath } from '../../src/define/flow-schema.js';
import { Reporter } from '../../src/define/load-yaml.js';
import { parseYaml, toPlain } from '../../src/define/yaml-document.js';
import { parseSimpleYaml } from '../../src/define/yaml-fast.js';

/** The full parser's value, or a description of what it found wrong. */
function fullValue(text: string): unknown {
  const parsed = parseYaml(text);
  if (parsed.errors.length > 0 || parsed.duplicates.length > 0 || parsed.over) {
    return `refused: ${[...parsed.errors.map((e) => e.code), ...(parsed.duplicates.length ? ['DUPLICATE_KEY'] : [])].join(', ')}`;
  }
  return toPlain(parsed);
}

/** Every key path into a value (and, in lists, by the `id` of an item), plus one missing key under each. */
function pathsOf(value: unknown, prefix: KeyPath = [], out: KeyPath[] = []): KeyPath[] {
  out.push(prefix, [...prefix, 'missing']);
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      pathsOf(item, [...prefix, i], out);
      const id = typeof item === 'object' && item !== null ? (item as Record<string, unknown>).id : undefined;
      if (typeof id === 'string') pathsOf(item, [...prefix, id], out);
    });
  } else if (typeof value === 'object' && value !== null) {
    for (const key of Object.keys(value)) pathsOf((value as Record<string, unknown>)[key], [...prefix, key], out);
  }
  return out;
}

/**
 * Fails with the text when the fast reader takes it and disagrees with the full parser:
 * on the value, or on where a problem at any key path points (value, key or parent map).
 */
function agrees(text: string): boolean {
  const fast = parseSimpleYaml(text, 64);
  if (fast === undefined) return false;
  const full = fullValue(text);
  if (!isDeepStrictEqual(fast.value, full)) {
    throw new Error(
      `the readers disagree on ${JSON.stringify(text)}:\nfast ${JSON.stringify(fast.value)}\nfull ${JSON.stringify(full)}`,
    );
  }
  const parsed = parseYaml(text);
  const quick = Reporter.forSimple('f.yaml', fast);
  const slow = new Reporter('f.yaml', parsed.doc, parsed.lines, parsed.aliases);
  for (const path of pathsOf(fast.value)) {
    for (const at of ['value', 'key', 'parent'] as const) {
      quick.add('DEF_INVALID', path, at, 'h', at);
      slow.add('DEF_INVALID', path, at, 'h', at);
    }
  }
  for (const [i, problem] of quick.problems.entries()) {
    if (!isDeepStrictEqual(problem, slow.problems[i])) {
      throw new Error(
        `the readers place a problem differently in ${JSON.stringify(text)}:\nfast ${JSON.stringify(problem)}\nfull ${JSON.stringify(slow.problems[i])}`,
      );
    }
  }
  return true;
}

/** mulberry32: a small seeded generator, so that each text is a function of one integer. */
function random(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// One scalar per kind the core schema tells apart, and those the subset leaves out.
// prettier-ignore
const SCALARS = [
  'a', 'hello world', '1', '-1', '+1', '0', '-0', '007', '0o17', '0x1F', '0xg', '1.5', '.5', '1.', '1e3', '1E-3',
  '.inf', '-.Inf', '.nan', '.NaN', 'null', 'Null', '~', 'true', 'False', 'TRUE', 'yes', 'on', '1_000', '12:30',
  'a:b', 'http://x.y/z', 'a#b', 'a #b', 'x y  z', '-x', '?x', ':x', '${{ params.a }}', '"q"', "'s'", '"a\\"b"',
  '"\\n\\t\\u00e9"', '"\\x41"', "'it''s'", '"#"', "'#'", '[]', '{}', '[a, b]', '{a: 1}', '[a, [b, c]]',
  '{a: [1, 2], b: {c: d}}', 'a, b', '[a,b]', '{a:1}', '[a, ]', '{ a: 1, a: 2 }', '&x a', '*x', '!!str 1', '|',
  '>', '@a', '`a`', '%a', 'a: b', 'a:', '- a', '"unterminated', "'un", '[a', 'é', '1 # c', 'x   ', '0.0', '1.10',
  '-.5e+2', '0b101', '0o8', '+.inf', 'NULL', 'nUll', '[a: b]', '[a, b # c]', '{a: b, c}', '[ "x", \'y\' ]',
  '[[[]]]', '{a: {}}', '"\\/"', '"\\\'"', 'a\\b', '[a, -]', '[-a, ?b]', 'a[0]', 'echo {x}', '"a" b', "'a' b",
];
// prettier-ignore
const KEYS = [
  'a', 'b', 'name', 'tasks', 'with', 'x1', '1', 'true', 'null', '1.0', '0x1', '.5', 'a.b', 'a-b', 'a/b', '$x',
  '-a', 'a b', '"q"', '__proto__', 'constructor', 'toString', '_', '~', '1e2',
];

function documentOf(seed: number): string {
  const rnd = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
  const value = (depth: number, indent: number): { inline?: string; block?: string[] } => {
    const r = rnd();
    if (depth > 4 || r < 0.55) return { inline: pick(SCALARS) };
    if (r < 0.8) return { block: map(depth + 1, indent + pick([1, 2, 2, 4])) };
    return { block: seq(depth + 1, indent + pick([0, 2, 2, 3])) };
  };
  const map = (depth: number, indent: number): string[] => {
    const lines: string[] = [];
    const sp = ' '.repeat(indent);
    for (let i = 0, n = 1 + Math.floor(rnd() * 4); i < n; i++) {
      const key = pick(KEYS);
      const v = value(depth, indent);
      if (rnd() < 0.1) lines.push(`${sp}# a comment`);
      if (rnd() < 0.05) lines.push('');
      if (v.inline !== undefined)
        lines.push(`${sp}${key}:${pick([' ', ' ', '  '])}${v.inline}${rnd() < 0.1 ? ' # note' : ''}`);
      else lines.push(`${sp}${key}:${rnd() < 0.1 ? ' # c' : ''}`, ...(v.block ?? []));
    }
    return lines;
  };
  const seq = (depth: number, indent: number): string[] => {
    const lines: string[] = [];
    const sp = ' '.repeat(indent);
    for (let i = 0, n = 1 + Math.floor(rnd() * 3); i < n; i++) {
      const r = rnd();
      if (r < 0.5) lines.push(`${sp}- ${pick(SCALARS)}`);
      else if (r < 0.8) {
        const m = map(depth + 1, indent + 2);
        lines.push(`${sp}- ${(m[0] as string).trimStart()}`, ...m.slice(1));
      } else {
        const v = value(depth, indent);
        if (v.inline !== undefined) lines.push(`${sp}-${pick([' ', '  '])}${v.inline}`);
        else lines.push(`${sp}-`, ...(v.block ?? []));
      }
    }
    return lines;
  };
  let text = map(1, 0).join('\n') + pick(['\n', '', '\n\n']);
  if (rnd() < 0.2) {
    const at = Math.floor(rnd() * text.length);
    const insert = pick([' ', '\n', ':', '-', '#', '"', "'", '[', ']', ',', '  ', 'x', '{', '}', '- ', ': ', '\t']);
    text = text.slice(0, at) + insert + text.slice(at);
  }
  return text;
}

// prettier-ignore
const TOKENS = [
  'a', 'b', 'k', '1', '0', '.', 'e', 'x', 'n', 'ull', 'true', ':', ': ', ' ', '  ', '- ', '-', '#', ' #', '"', "'",
  '[', ']', '{', '}', ', ', ',', '\\', 'o', '+', '?', '$', '/', '_', '~', 'é', '\\n', '\\"', "''",
];

function soupOf(seed: number): string {
  const rnd = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
  const lines: string[] = [];
  for (let l = 0, n = 1 + Math.floor(rnd() * 6); l < n; l++) {
    let line = ' '.repeat(pick([0, 0, 0, 1, 2, 2, 3, 4]));
    if (l === 0 || rnd() < 0.6) line += `${pick(['a', 'b', 'k', 'x1', 'ab', '1', 'n'])}: `;
    for (let t = 0, m = Math.floor(rnd() * 6); t < m; t++) line += pick(TOKENS);
    lines.push(line);
  }
  return lines.join('\n') + pick(['\n', '']);
}

describe('the fast reader of flow files', () => {
  it('gives the full parser’s value for every generated document it takes', () => {
    let taken = 0;
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        if (agrees(documentOf(seed))) taken++;
      }),
      { numRuns: 4000 },
    );
    // The generator must reach the subset, or the property says nothing.
    expect(taken).toBeGreaterThan(300);
  });

  it('gives the full parser’s value for every token soup it takes', () => {
    let taken = 0;
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        if (agrees(soupOf(seed))) taken++;
      }),
      { numRuns: 6000 },
    );
    expect(taken).toBeGreaterThan(200);
  });

  it('reads the plain subset', () => {
    const text = [
      '# a flow',
      'name: daily',
      'params:',
      '  day: { type: string, default: "2024-01-01" }',
      'tasks:',
      '  extract:',
      '    kind: shell',
      "    command: [echo, 'it''s', \"a\\tb\"]   # argv",
      '    depends_on:',
      '    - load',
      '  load:',
      '    with:',
      '      n: 0x1F',
      '      f: 1.5e3',
      '      none: ~',
      '      url: http://example.com/a#b',
      '      list:',
      '        - id: a',
      '          x: -1',
      '        -',
      '          y: .inf',
      '',
    ].join('\n');
    expect(agrees(text)).toBe(true);
    expect(parseSimpleYaml(text, 64)?.value).toMatchObject({
      tasks: { load: { with: { n: 31, f: 1500, none: null } } },
    });
  });

  it('leaves to the full parser what is outside the subset', () => {
    for (const text of [
      'a: &x 1\nb: *x\n', // anchors and aliases
      'a: !!str 1\n', // tags
      'a: |\n  text\n', // block scalars
      'a: "two\n  lines"\n', // multi-line scalars
      'a: [1,\n  2]\n', // multi-line flow collections
      '"a": 1\n', // quoted keys
      'a: 1\na: 2\n', // duplicate keys
      'a:\tb\n', // tabs
      'a: 1\r\n', // carriage returns
      '---\na: 1\n', // document markers
      '- a\n', // a list at the top
      'a: b: c\n', // a nested map on one line
      `${['a:', ...Array.from({ length: 70 }, (_, i) => `${' '.repeat(2 * (i + 1))}a:`)].join('\n')} 1\n`, // deep
    ]) {
      expect(parseSimpleYaml(text, 64), text).toBeUndefined();
    }
  });
});
