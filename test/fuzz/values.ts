/**
 * The odd values the fuzz generators put where a document or a command line expects a
 * value: long, deep, aliased, unicode, NUL, out-of-range numbers, impossible durations,
 * YAML tags. Each carries a label, so that a failure says what was injected without
 * printing megabytes.
 *
 * A value is either data (serialized with the document) or `raw` text spliced into the
 * serialized document as written: deep nesting, alias bombs, tags and number forms that
 * have no JavaScript value, or whose serialization would itself recurse too deep.
 */
import fc from 'fast-check';

export interface Odd {
  readonly label: string;
  /** Builds the value when a case runs, so that a sample of many cases holds no big value. */
  make(): { readonly value: unknown } | { readonly raw: string };
}

/** How big the big values get: smaller for cases that pay a process start each. */
export interface Sizes {
  readonly longString: number;
  readonly depth: number;
  readonly manyKeys: number;
}

export const IN_PROCESS_SIZES: Sizes = { longString: 1_000_000, depth: 20_000, manyKeys: 10_000 };
/** One argument of a command line is at most 128 KiB (Linux), and the CLI cases pay a process each. */
export const CLI_SIZES: Sizes = { longString: 100_000, depth: 5_000, manyKeys: 5_000 };

const data = (label: string, value: unknown): Odd => ({ label, make: () => ({ value }) });
const raw = (label: string, text: string): Odd => ({ label, make: () => ({ raw: text }) });
const lazy = (label: string, value: () => unknown): Odd => ({ label, make: () => ({ value: value() }) });
const lazyRaw = (label: string, text: () => string): Odd => ({ label, make: () => ({ raw: text() }) });

/** `[[[…]]]`, `{a: {a: …}}` or an unclosed `[[[…`, as inline (flow) YAML that is also JSON when closed. */
export function deepRaw(shape: 'list' | 'map' | 'unclosed', depth: number): string {
  if (shape === 'list') return `${'['.repeat(depth)}${']'.repeat(depth)}`;
  if (shape === 'map') return `${'{"a": '.repeat(depth)}1${'}'.repeat(depth)}`;
  return '['.repeat(depth);
}

/**
 * Billion laughs in one inline value: each level is a list of `width` aliases of the level
 * before, so the value expands to width^levels leaves.
 */
export function aliasBombRaw(levels: number, width: number): string {
  const parts = [`&l0 [${Array.from({ length: width }, () => '"lol"').join(', ')}]`];
  for (let i = 1; i < levels; i++)
    parts.push(`&l${i} [${Array.from({ length: width }, () => `*l${i - 1}`).join(', ')}]`);
  return `[${parts.join(', ')}]`;
}

export const ODD_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t',
  '\r\n',
  'a\u0000b',
  '\u0000',
  '\u0007\u001b[31m',
  '😀🚀',
  'é\u0301',
  '\u202Eevil',
  '\uFEFF',
  '\uD800',
  'Ω≈ç√∫',
  'null',
  'true',
  '~',
  '0x1F',
  '1e400',
  '__proto__',
  'constructor',
  'toString',
  '${{ params.day }}',
  '${{ tasks.missing.output }}',
  '${{',
  '}}${{ 1 +',
  '$(id)',
  '`id`',
  '; rm -rf /',
  '../../../../etc/passwd',
  'a.b',
  'a b',
  '-',
  '*',
  '%ZZ',
  'data://mount/path',
  'postgres://user:pw@127.0.0.1:1/db',
];

export const ODD_DURATIONS: readonly string[] = [
  '99999999999d',
  '0s',
  '-1s',
  '0',
  '0ms',
  '1e3s',
  '1.5h',
  '0.0001ms',
  `${'9'.repeat(400)}ms`,
  '1d1d1d',
  '1m30s',
  '366d',
  '367d',
  '8784h',
  '31622400001',
  '5 m',
  ' 5m',
  'P1D',
  '1y',
  'Infinity',
  '18446744073709551616ms',
  '1.7976931348623157e308ms',
];

const ODD_NUMBERS: readonly Odd[] = [
  data('0', 0),
  data('-0', -0),
  data('-1', -1),
  data('1.5', 1.5),
  data('2^31', 2 ** 31),
  data('2^32', 2 ** 32),
  data('2^53+2', 2 ** 53 + 2),
  data('1e21', 1e21),
  data('1e308', 1e308),
  data('-1e308', -1e308),
  data('5e-324', 5e-324),
  raw('.nan', '.nan'),
  raw('.inf', '.inf'),
  raw('-.inf', '-.inf'),
  raw('1e400', '1e400'),
  raw('-1e400', '-1e400'),
  raw('a 23-digit integer', '99999999999999999999999'),
  raw('0x7FFFFFFFFFFFFFFF', '0x7FFFFFFFFFFFFFFF'),
  raw('0o777', '0o777'),
  raw('+1', '+1'),
];

const ODD_TAGS: readonly Odd[] = [
  raw('!!binary', '!!binary aGVsbG8='),
  raw('!!timestamp', '!!timestamp 2001-12-14t21:59:43.10-05:00'),
  raw('!!set', '!!set {a, b}'),
  raw('!!omap', '!!omap [a: 1, b: 2]'),
  raw('!!str 1', '!!str 1'),
  raw('!!int abc', '!!int abc'),
  raw('!!float x', '!!float x'),
  raw('!!map []', '!!map []'),
  raw('!custom', '!custom x'),
  raw('!!js/function', '!!js/function "function () {}"'),
  raw('verbatim tag', '!<tag:yaml.org,2002:str> x'),
  raw('undefined alias', '*nowhere'),
  raw('self alias', '&self [*self]'),
  raw('unclosed quote', '"abc'),
];

/** Arbitrary odd value, with sizes from `sizes`. */
export function oddValue(sizes: Sizes): fc.Arbitrary<Odd> {
  const small = fc.oneof(
    fc.constantFrom(...ODD_STRINGS).map((s) => data(`string ${JSON.stringify(s)}`, s)),
    fc.constantFrom(...ODD_DURATIONS).map((s) => data(`duration ${JSON.stringify(s)}`, s)),
    fc.constantFrom(...ODD_NUMBERS),
    fc.constantFrom(...ODD_TAGS),
    fc.constantFrom(data('true', true), data('false', false), data('null', null), raw('yes', 'yes'), raw('off', 'off')),
    fc.constantFrom(data('[]', []), data('{}', {}), data('[null]', [null]), data("{'': 1}", { '': 1 })),
    fc.string({ unit: 'binary', maxLength: 40 }).map((s) => data(`unicode ${JSON.stringify(s)}`, s)),
  );
  const big = fc.oneof(
    fc
      .tuple(fc.constantFrom('x', '😀', '\u0000', '${{ params.a }}'), fc.integer({ min: 1, max: sizes.longString }))
      .map(([unit, n]) => {
        const count = Math.max(1, Math.floor(n / unit.length));
        return lazy(`${JSON.stringify(unit)} x ${count}`, () => unit.repeat(count));
      }),
    fc
      .tuple(
        fc.constantFrom('list', 'map', 'unclosed') as fc.Arbitrary<'list' | 'map' | 'unclosed'>,
        fc.integer({ min: 2, max: sizes.depth }),
      )
      .map(([shape, depth]) => lazyRaw(`deep ${shape} (depth ${depth})`, () => deepRaw(shape, depth))),
    fc
      .tuple(fc.integer({ min: 2, max: 9 }), fc.integer({ min: 2, max: 12 }))
      .map(([levels, width]) => lazyRaw(`alias bomb (${width}^${levels})`, () => aliasBombRaw(levels, width))),
    fc
      .integer({ min: 1, max: sizes.manyKeys })
      .map((n) =>
        lazy(`map of ${n} keys`, () => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
      ),
    fc
      .integer({ min: 1, max: sizes.manyKeys })
      .map((n) => lazy(`list of ${n} items`, () => Array.from({ length: n }, (_, i) => i))),
  );
  return fc.oneof({ arbitrary: small, weight: 4 }, { arbitrary: big, weight: 1 });
}

/** Odd names for keys (and task ids, param names, trigger names). */
export function oddName(sizes: Sizes): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(...ODD_STRINGS),
    fc.constantFrom('timout', 'depends-on', 'Kind', 'tasks', 'name', 'retry'),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.integer({ min: 256, max: Math.min(sizes.longString, 100_000) }).map((n) => 'k'.repeat(n)),
  );
}

/** Values as `--param name=value` gives them: text that should become a number, a boolean, JSON. */
export const ODD_PARAM_TEXTS: readonly string[] = [
  '',
  ' 5',
  '5 ',
  '1.0',
  '2.5',
  '-0',
  '1e400',
  '-1e400',
  'NaN',
  'Infinity',
  '0x10',
  '1_000',
  '١٢',
  '9007199254740993',
  '9'.repeat(400),
  'TRUE',
  'yes',
  '1',
  'null',
  '{',
  '{"a":1}',
  '[1,2]',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '"quoted"',
  'a=b=c',
  '😀',
  '\u202E',
];

/** `--param` pairs for a flow that declares `names`: right and wrong names, odd and huge values. */
export function paramPairArb(names: readonly string[], sizes: Sizes): fc.Arbitrary<string> {
  const name = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...names) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', 'unknown', 'S', '__proto__', 'constructor', 'a b', '=') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  );
  const value = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...ODD_PARAM_TEXTS) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
    { weight: 1, arbitrary: fc.integer({ min: 2, max: sizes.depth }).map((d) => deepRaw('list', d)) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: sizes.longString }).map((n) => 'x'.repeat(n)) },
  );
  return fc.oneof(
    { weight: 8, arbitrary: fc.tuple(name, value).map(([n, v]) => `${n}=${v}`) },
    { weight: 1, arbitrary: name },
  );
}

/** JSON values of every shape, a few of them deep or big: webhook bodies, params files, param values. */
export function jsonBodyArb(
  names: readonly string[],
  sizes: Sizes,
): fc.Arbitrary<{ label: string; text: () => string }> {
  const plain = fc
    .dictionary(fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 8 })), fc.jsonValue({ maxDepth: 4 }), {
      maxKeys: 8,
    })
    .map((o) => ({ label: 'an object of JSON values', text: () => JSON.stringify(o) }));
  const any = fc
    .jsonValue({ maxDepth: 3 })
    .map((v) => ({ label: 'a JSON value', text: () => JSON.stringify(v) ?? 'null' }));
  const deep = fc
    .tuple(
      fc.constantFrom(...names),
      fc.integer({ min: 2, max: sizes.depth }),
      fc.constantFrom('list', 'map') as fc.Arbitrary<'list' | 'map'>,
    )
    .map(([n, d, shape]) => ({
      label: `{${n}: deep ${shape} (depth ${d})}`,
      text: () => `{"${n}": ${deepRaw(shape, d)}}`,
    }));
  const big = fc.tuple(fc.constantFrom(...names), fc.integer({ min: 1, max: sizes.longString })).map(([n, len]) => ({
    label: `{${n}: a string of ${len} bytes}`,
    text: () => JSON.stringify({ [n]: 'x'.repeat(len) }),
  }));
  const many = fc.integer({ min: 1, max: sizes.manyKeys }).map((k) => ({
    label: `an object of ${k} keys`,
    text: () => JSON.stringify(Object.fromEntries(Array.from({ length: k }, (_, i) => [`k${i}`, i]))),
  }));
  const odd = fc
    .constantFrom(
      '',
      'null',
      '[]',
      '"str"',
      '1e400',
      '{"a":1,"a":2}',
      '{"__proto__":{"polluted":true}}',
      '{',
      '{"s": "\u0000"}',
      '\uFEFF{"s":"a"}',
      '{"n": 1e400, "i": 1e400}',
      '{"i": 9007199254740993}',
      '{"i": -0, "n": -0}',
    )
    .map((t) => ({ label: `the text ${JSON.stringify(t)}`, text: () => t }));
  return fc.oneof(
    { weight: 4, arbitrary: plain },
    { weight: 2, arbitrary: any },
    { weight: 2, arbitrary: odd },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: big },
    { weight: 1, arbitrary: many },
  );
}
