import { describe, it, expect } from 'vitest';
import type { ParamSpec } from '../../src/core/model.js';
import { checkParamSpec, parseParamAssignments, resolveParams } from '../../src/define/params.js';
import { suggest } from '../../src/define/suggest.js';
import { thrown } from '../helpers/thrown.js';

const specs: Record<string, ParamSpec> = {
  day: { type: 'string', default: '2024-01-01' },
  n: { type: 'integer', default: 3 },
  ratio: { type: 'number', default: 0.5 },
  dry: { type: 'boolean', default: false },
  env: { type: 'string', enum: ['dev', 'prod'], default: 'dev' },
  filter: { type: 'object', default: { kind: 'all' } },
  ids: { type: 'array', default: [] },
};

describe('resolveParams', () => {
  it('fills defaults and keeps only declared params, in declaration order', () => {
    expect(resolveParams(specs, { n: 5 })).toEqual({
      day: '2024-01-01',
      n: 5,
      ratio: 0.5,
      dry: false,
      env: 'dev',
      filter: { kind: 'all' },
      ids: [],
    });
    expect(Object.keys(resolveParams(specs, { ids: [1], day: 'x' }))).toEqual(Object.keys(specs));
  });

  it('returns a new object whose defaults a run cannot change for the next run', () => {
    const given = { n: 1 };
    const first = resolveParams(specs, given);
    expect(first).not.toBe(given);
    (first.filter as Record<string, unknown>).kind = 'changed';
    (first.ids as unknown[]).push(1);
    expect(resolveParams(specs, {})).toMatchObject({ filter: { kind: 'all' }, ids: [] });
  });

  it('accepts values of every type', () => {
    const given = { day: 'd', n: -2, ratio: 1e-3, dry: true, env: 'prod', filter: { a: [1] }, ids: ['x', 2] };
    expect(resolveParams(specs, given)).toEqual(given);
  });

  it('reports every problem in one error, with a summary message', () => {
    const error = thrown(() => resolveParams(specs, { dya: '2024-02-02', n: 'x' }));
    expect(error.code).toBe('RUN_PARAM_INVALID');
    expect(error.message).toBe(
      '2 invalid params for this run: unknown param "dya" (did you mean "day"?); param "n" must be an integer, got "x"',
    );
    expect(error.problems).toEqual([
      { code: 'RUN_PARAM_INVALID', message: 'unknown param "dya" (did you mean "day"?)' },
      { code: 'RUN_PARAM_INVALID', message: 'param "n" must be an integer, got "x"' },
    ]);
  });

  it('names the declared params in the hint', () => {
    const error = thrown(() => resolveParams({ day: { type: 'string' }, n: { type: 'integer', default: 3 } }, {}));
    expect(error.message).toBe('1 invalid param for this run: missing required param "day" (string)');
    expect(error.hint).toContain('This flow declares: day (string, required), n (integer, default 3).');
  });

  it('treats an undefined value as missing', () => {
    expect(resolveParams(specs, { n: undefined }).n).toBe(3);
    expect(thrown(() => resolveParams({ day: { type: 'string' } }, { day: undefined })).message).toContain(
      'missing required param "day" (string)',
    );
  });

  it('says when a flow declares no params', () => {
    expect(thrown(() => resolveParams({}, { x: 1 })).message).toBe(
      '1 invalid param for this run: unknown param "x" (this flow declares no params)',
    );
    expect(resolveParams({}, {})).toEqual({});
  });

  it.each<[ParamSpec['type'], unknown, string]>([
    ['string', 5, 'must be a string, got 5'],
    ['number', '1', 'must be a number, got "1"'],
    ['number', Number.NaN, 'must be a number, got NaN'],
    ['number', Infinity, 'must be a number, got Infinity'],
    ['integer', 1.5, 'must be an integer, got 1.5'],
    ['integer', 2 ** 60, `must be an integer, got ${2 ** 60}`],
    ['boolean', 'true', 'must be true or false, got "true"'],
    ['object', [1], 'must be an object, got [1]'],
    ['object', null, 'must be an object, got null'],
    ['array', { 0: 'a' }, 'must be an array, got {"0":"a"}'],
  ])('refuses a %s param given %j', (type, value, message) => {
    const error = thrown(() => resolveParams({ p: { type } }, { p: value }));
    expect(error.problems).toEqual([{ code: 'RUN_PARAM_INVALID', message: `param "p" ${message}` }]);
  });

  it('checks enums, with a suggestion for a near miss', () => {
    expect(resolveParams(specs, { env: 'prod' }).env).toBe('prod');
    expect(thrown(() => resolveParams(specs, { env: 'prd' })).problems[0]?.message).toBe(
      'param "env" must be one of "dev", "prod", got "prd" (did you mean "prod"?)',
    );
    expect(thrown(() => resolveParams(specs, { env: 'staging' })).problems[0]?.message).toBe(
      'param "env" must be one of "dev", "prod", got "staging"',
    );
  });

  it('compares object enum values by content', () => {
    const spec: ParamSpec = { type: 'object', enum: [{ a: 1 }, { b: [2] }] };
    expect(resolveParams({ p: spec }, { p: { b: [2] } })).toEqual({ p: { b: [2] } });
    expect(thrown(() => resolveParams({ p: spec }, { p: { b: [3] } })).code).toBe('RUN_PARAM_INVALID');
  });

  it('reports a type problem before an enum problem', () => {
    const error = thrown(() => resolveParams({ level: { type: 'integer', enum: [1, 2] } }, { level: '1' }));
    expect(error.problems[0]?.message).toBe('param "level" must be an integer, got "1"');
  });

  it('does not treat an own __proto__ key as anything but an unknown param', () => {
    const given = JSON.parse('{"__proto__": {"n": 9}}') as Record<string, unknown>;
    expect(thrown(() => resolveParams(specs, given)).problems[0]?.message).toBe('unknown param "__proto__"');
    const declared = resolveParams({ ['__proto__']: { type: 'integer', default: 1 } }, {});
    expect(Object.getPrototypeOf(declared)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(declared, '__proto__')?.value).toBe(1);
  });
});

describe('resolveParams from text', () => {
  const fromText = { fromText: true };

  it('converts text to the declared type', () => {
    expect(
      resolveParams(
        specs,
        {
          day: '2024-05-05',
          n: '42',
          ratio: '-1.25e2',
          dry: 'true',
          env: 'prod',
          filter: '{"kind":"new"}',
          ids: '[1,"a"]',
        },
        fromText,
      ),
    ).toEqual({
      day: '2024-05-05',
      n: 42,
      ratio: -125,
      dry: true,
      env: 'prod',
      filter: { kind: 'new' },
      ids: [1, 'a'],
    });
    expect(resolveParams(specs, { dry: 'false', day: '3' }, fromText)).toMatchObject({ dry: false, day: '3' });
    expect(resolveParams(specs, { n: '3.0' }, fromText).n).toBe(3);
  });

  it('refuses text that is not of the type', () => {
    const error = thrown(() =>
      resolveParams(specs, { n: '1.5', ratio: '0x10', dry: 'yes', filter: '{kind: all}', ids: '{"a":1}' }, fromText),
    );
    expect(error.problems.map((p) => p.message)).toEqual([
      'param "n" must be an integer, got 1.5',
      'param "ratio" must be a number, got "0x10"',
      'param "dry" must be true or false, got "yes"',
      expect.stringMatching(/^param "filter" must be an object written as JSON, got "\{kind: all\}" \(.+\)$/),
      'param "ids" must be an array, got {"a":1}',
    ]);
    expect(error.message).toMatch(/^5 invalid params for this run: param "n" must be an integer, got 1\.5; /);
  });

  it('does not convert text without the option', () => {
    expect(thrown(() => resolveParams(specs, { n: '3' })).problems[0]?.message).toBe(
      'param "n" must be an integer, got "3"',
    );
  });

  it('leaves values that are not text alone', () => {
    expect(resolveParams(specs, { n: 7 }, fromText).n).toBe(7);
  });

  it('checks enums after converting', () => {
    const spec: ParamSpec = { type: 'integer', enum: [1, 2] };
    expect(resolveParams({ level: spec }, { level: '2' }, fromText)).toEqual({ level: 2 });
    expect(thrown(() => resolveParams({ level: spec }, { level: '3' }, fromText)).problems[0]?.message).toBe(
      'param "level" must be one of 1, 2, got 3',
    );
  });

  it('works with parseParamAssignments', () => {
    const given = parseParamAssignments(['day=2024-01-02', 'n=7', 'filter={"kind":"x=y"}']);
    expect(resolveParams(specs, given, fromText)).toMatchObject({ day: '2024-01-02', n: 7, filter: { kind: 'x=y' } });
  });
});

describe('parseParamAssignments', () => {
  it('splits at the first "=" and keeps the value as written', () => {
    expect(parseParamAssignments(['day=2024-01-01', 'n=3', 'q=a=b', 'empty=', ' spaced = v '])).toEqual({
      day: '2024-01-01',
      n: '3',
      q: 'a=b',
      empty: '',
      spaced: ' v ',
    });
    expect(parseParamAssignments([])).toEqual({});
  });

  it('refuses a pair without "="', () => {
    const error = thrown(() => parseParamAssignments(['day']));
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe('--param "day" must be written name=value');
    expect(error.hint).toContain('--param name=value');
  });

  it('reports every malformed pair at once', () => {
    const error = thrown(() => parseParamAssignments(['day', '=x', 'n=1', 'n=2']));
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe(
      '3 malformed --param values: --param "day" must be written name=value; --param "=x" has no name before "="; param "n" is given more than once',
    );
    expect(error.problems).toHaveLength(3);
    expect(error.problems.every((p) => p.code === 'USAGE')).toBe(true);
  });
});

describe('checkParamSpec', () => {
  it('accepts a consistent spec', () => {
    expect(checkParamSpec('n', { type: 'integer' })).toBeUndefined();
    expect(checkParamSpec('n', { type: 'integer', default: 3 })).toBeUndefined();
    expect(checkParamSpec('env', { type: 'string', enum: ['a', 'b'], default: 'b' })).toBeUndefined();
  });

  it('refuses a default of the wrong type or outside the enum', () => {
    expect(checkParamSpec('n', { type: 'integer', default: 'x' })).toBe(
      'param "n" default must be an integer, got "x"',
    );
    expect(checkParamSpec('env', { type: 'string', enum: ['a', 'b'], default: 'c' })).toBe(
      'param "env" default must be one of "a", "b", got "c"',
    );
  });

  it('refuses enum values of the wrong type, with every problem', () => {
    expect(checkParamSpec('env', { type: 'string', enum: ['a', 2], default: 3 })).toBe(
      'param "env" enum value must be a string, got 2; default must be a string, got 3',
    );
  });

  it('refuses an unknown type', () => {
    // A spec from unvalidated input may carry any type name; the cast builds one.
    const spec = { type: 'date' } as unknown as ParamSpec;
    expect(checkParamSpec('when', spec)).toBe(
      'param "when" has unknown type "date" (expected one of string, number, integer, boolean, object, array)',
    );
  });
});

describe('suggest', () => {
  it.each([
    ['dya', ['day', 'n'], 'day'],
    ['day', ['day'], 'day'],
    ['paramz', ['params', 'tasks', 'run'], 'params'],
    ['extarct', ['extract', 'load'], 'extract'],
    ['tsaks', ['tasks'], 'tasks'],
    ['x', ['n'], undefined],
    ['ab', ['xy'], undefined],
    ['completely', ['different'], undefined],
    ['name', [], undefined],
    ['lod', ['load', 'lid'], 'load'],
  ])('%s among %j → %s', (name, candidates, expected) => {
    expect(suggest(name, candidates)).toBe(expected);
  });

  it('allows more edits for longer names', () => {
    expect(suggest('transform_orderz_dly', ['transform_orders_daily'])).toBe('transform_orders_daily');
    expect(suggest('abcd', ['wxyz'])).toBeUndefined();
  });

  it('takes any iterable', () => {
    expect(suggest('dya', new Set(['day']))).toBe('day');
    expect(suggest('dya', new Map([['day', 1]]).keys())).toBe('day');
  });
});
