/**
 * `produces:` and `consumes:` of a task, read into the model's AssetSpec (core/asset-spec.ts)
 * for YAML and the TypeScript builder alike. Every problem names where it is (the asset,
 * the check, the key) and what is accepted, and all of them are reported at once.
 */
import { z } from 'zod';
import { ASSET_KEY_PATTERN, CHECK_KINDS, CHECK_SEVERITIES } from '../core/asset-spec.js';
import type { AssetCheckSpec, AssetSpec, CheckSeverity } from '../core/asset-spec.js';
import { parseDataPath } from '../core/data-path.js';
import { readDuration } from '../core/duration.js';
import type { KeyPath } from './flow-schema.js';
import { suggest } from './suggest.js';

/** A problem in a declaration, relative to the `produces` (or `consumes`) list. */
export interface AssetProblem {
  readonly path: KeyPath;
  readonly message: string;
  readonly hint: string;
}

const KEY_RULE = 'must be an asset key: letters, digits and _ - . / (starting with a letter, digit or _)';
const CHECK_EXAMPLE = '{ not_null: [order_id] }';
const COLUMN = /^.{1,255}$/s;

/** Reads `produces:`: a list of `{ asset, path, checks }`. */
export function readProduces(value: unknown): { specs: AssetSpec[]; problems: AssetProblem[] } {
  const problems: AssetProblem[] = [];
  const specs: AssetSpec[] = [];
  const say = (path: KeyPath, message: string, hint: string) => problems.push({ path, message, hint });
  if (!Array.isArray(value)) {
    say(
      [],
      'must be a list of assets',
      'Write e.g. `produces: [{ asset: orders_clean, path: data://curated/orders.parquet }]`.',
    );
    return { specs, problems };
  }
  const keys = new Set<string>();
  value.forEach((entry, i) => {
    if (!isRecord(entry)) {
      say(
        [i],
        'must be an asset: { asset, path, checks }',
        'Write e.g. `{ asset: orders_clean, path: data://curated/orders.parquet }`.',
      );
      return;
    }
    for (const k of Object.keys(entry)) {
      if (!['asset', 'path', 'checks'].includes(k)) unknownKey(say, [i, k], k, ['asset', 'path', 'checks']);
    }
    const key = entry.asset;
    if (typeof key !== 'string' || !ASSET_KEY_PATTERN.test(key)) {
      say([i, 'asset'], `${KEY_RULE}, got ${show(key)}`, 'Name the asset, e.g. `asset: orders_clean`.');
    } else if (keys.has(key)) {
      say([i, 'asset'], `asset ${key} is declared twice in this task`, 'Declare each asset once.');
    } else keys.add(key);
    const path = entry.path;
    let pathOk = false;
    if (typeof path !== 'string') {
      say(
        [i, 'path'],
        `must be a data path (data://<mount>/<key>), got ${show(path)}`,
        'Write where the asset lives, e.g. `path: data://curated/orders.parquet`.',
      );
    } else {
      try {
        pathOk = parseDataPath(path).key !== '';
        if (!pathOk)
          say([i, 'path'], `${path} names a mount, not an object`, 'Add the key of the object: data://<mount>/<key>.');
      } catch (error) {
        say([i, 'path'], (error as Error).message, 'Write a data path: data://<mount>/<key>.');
      }
    }
    const checks = readChecks(entry.checks, [i, 'checks'], say);
    if (typeof key === 'string' && pathOk) specs.push({ key, path: path as string, checks });
  });
  return { specs, problems };
}

/** Reads `consumes:`: a list of asset keys. */
export function readConsumes(value: unknown): { keys: string[]; problems: AssetProblem[] } {
  const problems: AssetProblem[] = [];
  if (!Array.isArray(value)) {
    return {
      keys: [],
      problems: [{ path: [], message: 'must be a list of asset keys', hint: 'Write e.g. `consumes: [orders_raw]`.' }],
    };
  }
  const keys: string[] = [];
  value.forEach((key, i) => {
    if (typeof key === 'string' && ASSET_KEY_PATTERN.test(key)) {
      if (!keys.includes(key)) keys.push(key);
    } else
      problems.push({ path: [i], message: `${KEY_RULE}, got ${show(key)}`, hint: 'Name an asset, e.g. `orders_raw`.' });
  });
  return { keys, problems };
}

/** A zod schema over `read`, its problems as issues with hints, for the task schema. */
function viaReader<T>(read: (value: unknown) => { problems: AssetProblem[] } & T, pick: (r: T) => unknown) {
  return z.unknown().transform((value, ctx) => {
    const result = read(value);
    for (const p of result.problems) {
      ctx.addIssue({ code: 'custom', path: [...p.path], message: p.message, params: { hint: p.hint } });
    }
    return pick(result);
  });
}

export const ProducesSchema = viaReader(readProduces, (r) => r.specs) as z.ZodType<AssetSpec[], unknown>;
export const ConsumesSchema = viaReader(readConsumes, (r) => r.keys) as z.ZodType<string[], unknown>;

type Say = (path: KeyPath, message: string, hint: string) => void;

function readChecks(value: unknown, at: KeyPath, say: Say): AssetCheckSpec[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    say(at, 'must be a list of checks', `Write e.g. \`checks: [${CHECK_EXAMPLE}]\`.`);
    return [];
  }
  const checks: AssetCheckSpec[] = [];
  const names = new Set<string>();
  value.forEach((entry, i) => {
    const path = [...at, i];
    const check = readCheck(entry, path, say, i);
    if (!check) return;
    if (names.has(check.name)) {
      say(path, `a second check is named ${check.name}`, 'Give one of them another `name:`.');
      return;
    }
    names.add(check.name);
    checks.push(check);
  });
  return checks;
}

function readCheck(entry: unknown, path: KeyPath, say: Say, index: number): AssetCheckSpec | null {
  if (!isRecord(entry)) {
    say(path, `must be a check such as ${CHECK_EXAMPLE}`, `Check types: ${CHECK_KINDS.join(', ')}.`);
    return null;
  }
  const kinds = Object.keys(entry).filter((k) => k !== 'severity' && k !== 'name');
  if (kinds.length !== 1) {
    say(
      path,
      kinds.length === 0 ? 'names no check type' : `names ${kinds.length} check types (${kinds.join(', ')})`,
      `Write one check per entry, one of: ${CHECK_KINDS.join(', ')}.`,
    );
    return null;
  }
  const kind = kinds[0] as string;
  if (!(CHECK_KINDS as readonly string[]).includes(kind)) {
    unknownKey(say, [...path, kind], kind, [...CHECK_KINDS, 'severity', 'name'], 'unknown check type');
    return null;
  }
  let severity: CheckSeverity = 'error';
  if (entry.severity !== undefined) {
    if ((CHECK_SEVERITIES as readonly unknown[]).includes(entry.severity)) severity = entry.severity as CheckSeverity;
    else {
      say([...path, 'severity'], `must be error or warn, got ${show(entry.severity)}`, 'Use one of: error, warn.');
      return null;
    }
  }
  if (entry.name !== undefined && (typeof entry.name !== 'string' || !/^[A-Za-z0-9_.:()-]{1,128}$/.test(entry.name))) {
    say(
      [...path, 'name'],
      `must be a check name: letters, digits and _ . : ( ) -, got ${show(entry.name)}`,
      'Name it e.g. `no_negative_totals`.',
    );
    return null;
  }
  const declared = entry.name as string | undefined;
  const at = [...path, kind];
  const body = readBody(kind as AssetCheckSpec['kind'], entry[kind], at, say, index);
  if (!body) return null;
  return { ...body, name: declared ?? body.name, severity } as AssetCheckSpec;
}

type Body = { name: string } & Record<string, unknown>;

function readBody(kind: AssetCheckSpec['kind'], v: unknown, at: KeyPath, say: Say, index: number): Body | null {
  const columnsOf = (): string[] | null => {
    const list = typeof v === 'string' ? [v] : v;
    if (Array.isArray(list) && list.length > 0 && list.every((c) => typeof c === 'string' && COLUMN.test(c))) {
      return list as string[];
    }
    say(at, `must be a column or a list of columns, got ${show(v)}`, `Write e.g. \`${kind}: [order_id]\`.`);
    return null;
  };
  const object = (
    keys: readonly string[],
    required: readonly string[],
    example: string,
  ): Record<string, unknown> | null => {
    if (!isRecord(v)) {
      say(at, `must be an object such as ${example}`, `Write e.g. \`${kind}: ${example}\`.`);
      return null;
    }
    let ok = true;
    for (const k of Object.keys(v)) {
      if (!keys.includes(k)) {
        unknownKey(say, [...at, k], k, keys);
        ok = false;
      }
    }
    for (const k of required) {
      if (v[k] === undefined) {
        say([...at, k], `required for ${kind} but missing`, `Write e.g. \`${kind}: ${example}\`.`);
        ok = false;
      }
    }
    return ok ? v : null;
  };
  const column = (o: Record<string, unknown>, key: string): string | null => {
    const c = o[key];
    if (typeof c === 'string' && COLUMN.test(c)) return c;
    say([...at, key], `must be a column name, got ${show(c)}`, 'Name a column of the asset.');
    return null;
  };
  const bound = (o: Record<string, unknown>, key: string): number | null | undefined => {
    const n = o[key];
    if (n === undefined) return null;
    if (typeof n === 'number' && Number.isFinite(n)) return n;
    say([...at, key], `must be a number, got ${show(n)}`, `Write a number, e.g. \`${key}: 0\`.`);
    return undefined;
  };
  switch (kind) {
    case 'not_null':
    case 'unique': {
      const columns = columnsOf();
      return columns && { kind, columns, name: `${kind}(${columns.join(',')})` };
    }
    case 'accepted_values': {
      const o = object(['column', 'values'], ['column', 'values'], '{ column: status, values: [open, shipped] }');
      if (!o) return null;
      const c = column(o, 'column');
      const values = o.values;
      if (
        !Array.isArray(values) ||
        values.length === 0 ||
        !values.every((x) => ['string', 'number', 'boolean'].includes(typeof x))
      ) {
        say(
          [...at, 'values'],
          `must be a list of values (strings, numbers or booleans), got ${show(values)}`,
          'Write e.g. `values: [open, shipped]`.',
        );
        return null;
      }
      return c === null ? null : { kind, column: c, values, name: `accepted_values(${c})` };
    }
    case 'range': {
      const o = object(['column', 'min', 'max'], ['column'], '{ column: total, min: 0 }');
      if (!o) return null;
      const c = column(o, 'column');
      const min = bound(o, 'min');
      const max = bound(o, 'max');
      if (c === null || min === undefined || max === undefined) return null;
      if (min === null && max === null) {
        say(at, 'needs min, max or both', 'Write e.g. `range: { column: total, min: 0 }`.');
        return null;
      }
      return { kind, column: c, min, max, name: `range(${c})` };
    }
    case 'row_count': {
      const o = object(['min', 'max'], [], '{ min: 1 }');
      if (!o) return null;
      const min = bound(o, 'min');
      const max = bound(o, 'max');
      if (min === undefined || max === undefined) return null;
      if (min === null && max === null) {
        say(at, 'needs min, max or both', 'Write e.g. `row_count: { min: 1 }`.');
        return null;
      }
      return { kind, min, max, name: 'row_count' };
    }
    case 'freshness': {
      const o = object(['column', 'max_age'], ['column', 'max_age'], '{ column: updated_at, max_age: 1d }');
      if (!o) return null;
      const c = column(o, 'column');
      const age = readDuration(o.max_age, 'positive', { wholeNumbers: true });
      if (!age.ok) {
        say(
          [...at, 'max_age'],
          `must be a duration such as 90m or 1d, got ${show(o.max_age)}`,
          'Write e.g. `max_age: 1d`.',
        );
        return null;
      }
      return c === null ? null : { kind, column: c, maxAgeMs: age.ms, name: `freshness(${c})` };
    }
    case 'schema': {
      if (
        !isRecord(v) ||
        Object.keys(v).length === 0 ||
        !Object.values(v).every((t) => typeof t === 'string' && t !== '')
      ) {
        say(
          at,
          `must map columns to types, such as { order_id: BIGINT }, got ${show(v)}`,
          'Write e.g. `schema: { order_id: BIGINT, total: DOUBLE }`.',
        );
        return null;
      }
      return { kind, columns: v, name: 'schema' };
    }
    case 'references': {
      const o = object(
        ['column', 'asset', 'column_in_asset'],
        ['column', 'asset'],
        '{ column: customer_id, asset: customers, column_in_asset: id }',
      );
      if (!o) return null;
      const c = column(o, 'column');
      if (typeof o.asset !== 'string' || !ASSET_KEY_PATTERN.test(o.asset)) {
        say([...at, 'asset'], `${KEY_RULE}, got ${show(o.asset)}`, 'Name the asset the column refers to.');
        return null;
      }
      const inAsset = o.column_in_asset === undefined ? c : column(o, 'column_in_asset');
      if (c === null || inAsset === null) return null;
      return { kind, column: c, asset: o.asset, columnInAsset: inAsset, name: `references(${c})` };
    }
    case 'sql': {
      if (typeof v !== 'string' || v.trim() === '') {
        say(
          at,
          'must be a query returning the failing rows',
          'Write e.g. `sql: "SELECT * FROM asset WHERE total < 0"`.',
        );
        return null;
      }
      return { kind, sql: v, name: `sql(${index + 1})` };
    }
  }
}

function unknownKey(say: Say, path: KeyPath, key: string, accepted: readonly string[], what = 'unknown key'): void {
  const guess = suggest(key, accepted);
  say(
    path,
    `${what} ${JSON.stringify(key)}${guess ? ` (did you mean "${guess}"?)` : ''}`,
    guess ? `Rename it to "${guess}".` : `Accepted here: ${accepted.join(', ')}.`,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}…` : text;
}
