import { describe, expect, it } from 'vitest';
import { isDatasetName, parseDatasetKey, quoteIdent } from '../../src/data/postgres-keys.js';
import {
  csvValueType,
  int8ToJson,
  isoTimestamp,
  jsonValueType,
  numericToJson,
  widen,
} from '../../src/data/postgres-values.js';

describe('postgres mount values', () => {
  it('keeps int8 and numeric as numbers only when exact', () => {
    expect(int8ToJson('9007199254740991')).toBe(9007199254740991);
    expect(int8ToJson('9007199254740993')).toBe('9007199254740993');
    expect(numericToJson('12.50')).toBe(12.5);
    expect(numericToJson('-007.000')).toBe(-7);
    expect(numericToJson('0.1')).toBe(0.1);
    expect(numericToJson('-0.00')).toBe(-0);
    expect(numericToJson('123456789012345678.5')).toBe('123456789012345678.5');
    expect(numericToJson('0.1000000000000000000001')).toBe('0.1000000000000000000001');
    expect(numericToJson('NaN')).toBe('NaN');
  });

  it('writes timestamps as ISO 8601', () => {
    expect(isoTimestamp('2024-01-02 03:04:05.123+00')).toBe('2024-01-02T03:04:05.123Z');
    expect(isoTimestamp('2024-01-02 03:04:05+05:30')).toBe('2024-01-02T03:04:05+05:30');
    expect(isoTimestamp('2024-01-02 03:04:05-08')).toBe('2024-01-02T03:04:05-08:00');
    expect(isoTimestamp('2024-01-02 03:04:05.5')).toBe('2024-01-02T03:04:05.5');
    expect(isoTimestamp('infinity')).toBe('infinity');
  });

  it('infers column types, widening integers to floats and any other mix to text', () => {
    const over = (values: unknown[]) => values.map(jsonValueType).reduce(widen, null);
    expect(over([1, 2, null])).toBe('bigint');
    expect(over([1, 2.5])).toBe('double precision');
    expect(over([2 ** 60])).toBe('double precision');
    expect(over([true, null, false])).toBe('boolean');
    expect(over([{ a: 1 }, [1]])).toBe('jsonb');
    expect(over([1, 'one'])).toBe('text');
    expect(over([{ a: 1 }, 'x'])).toBe('text');
    expect(over([null, null])).toBe(null);
    expect(['1', '-3', '0'].map(csvValueType)).toEqual(['bigint', 'bigint', 'bigint']);
    expect(['01234', '1.5', '2e3', 'true', 'True', '', null, '99999999999999999999'].map(csvValueType)).toEqual([
      'text',
      'double precision',
      'double precision',
      'boolean',
      'text',
      'text',
      null,
      'text',
    ]);
  });
});

describe('postgres mount keys', () => {
  it('parses table and query keys with their formats', () => {
    expect(parseDatasetKey('w', 'orders')).toEqual({ kind: 'table', name: 'orders', format: 'jsonl' });
    expect(parseDatasetKey('w', 'orders.jsonl')).toEqual({ kind: 'table', name: 'orders', format: 'jsonl' });
    expect(parseDatasetKey('w', 'Order_Lines-2.csv')).toEqual({ kind: 'table', name: 'Order_Lines-2', format: 'csv' });
    expect(parseDatasetKey('w', 'queries/top.csv')).toEqual({ kind: 'query', name: 'top', format: 'csv' });
  });

  it('accepts only names that carry no SQL, and quotes them', () => {
    for (const name of ['orders; DROP TABLE x', 'a"b', 'a b', 'a.b', '1a', '', 'x'.repeat(64), 'é']) {
      expect(isDatasetName(name), name).toBe(false);
    }
    expect(isDatasetName('x'.repeat(63))).toBe(true);
    expect(quoteIdent('a"b')).toBe('"a""b"');
  });
});
