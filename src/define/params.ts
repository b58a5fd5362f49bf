/**
 * Typed run params: checks what a run was given against what its flow declares, fills
 * defaults, and turns `--param k=v` text into typed values. Every problem is collected and
 * reported in one `RUN_PARAM_INVALID` error, so a user fixes a command line in one go, and
 * nothing undeclared reaches a run.
 */
import { BatonError, ERROR_CODES, type Problem } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import type { ParamSpec, ParamType } from '../core/model.js';
// Enum membership uses the same data equality as `==` in expressions.
import { dataEqual, isPlainObject } from './expression.js';
import { suggest } from './suggest.js';

const EXPECTED: Readonly<Record<ParamType, string>> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
};

/** Decimal numbers only: `Number()` would also take `0x10`, `''` and `Infinity`. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

export interface ResolveParamsOptions {
  /**
   * Values came from `--param k=v` text: `"3"` becomes 3 for number and integer params,
   * `"true"`/`"false"` a boolean, and JSON text an object or array. Default false.
   */
  readonly fromText?: boolean;
}

/**
 * The params of one run: `given` checked against `specs`, with defaults filled in and only
 * declared names kept. Throws one `RUN_PARAM_INVALID` listing every problem.
 * Example: `resolveParams({ n: { type: 'integer', default: 1 } }, { n: '3' }, { fromText: true })` → `{ n: 3 }`.
 */
export function resolveParams(
  specs: Readonly<Record<string, ParamSpec>>,
  given: Readonly<Record<string, unknown>>,
  options: ResolveParamsOptions = {},
): Record<string, unknown> {
  const messages: string[] = [];
  const declared = Object.keys(specs);
  for (const name of Object.keys(given)) {
    if (Object.hasOwn(specs, name)) continue;
    const guess = suggest(name, declared);
    const aside =
      guess !== undefined
        ? ` (did you mean ${quote(guess)}?)`
        : declared.length === 0
          ? ' (this flow declares no params)'
          : '';
    messages.push(`unknown param ${quote(name)}${aside}`);
  }
  const resolved: [string, unknown][] = [];
  for (const [name, spec] of Object.entries(specs)) {
    const value = Object.hasOwn(given, name) ? given[name] : undefined;
    if (value === undefined) {
      if (spec.default !== undefined) resolved.push([name, copyDefault(spec.default)]);
      else messages.push(`missing required param ${quote(name)} (${spec.type})`);
      continue;
    }
    const converted = options.fromText && typeof value === 'string' ? fromText(value, spec.type) : { value };
    const problem =
      'problem' in converted
        ? converted.problem
        : (depthProblem(converted.value) ?? valueProblem(converted.value, spec));
    if (problem !== undefined) messages.push(`param ${quote(name)} ${problem}`);
    else if ('value' in converted) resolved.push([name, converted.value]);
  }
  if (messages.length > 0) {
    const count = messages.length === 1 ? '1 invalid param' : `${messages.length} invalid params`;
    throw new BatonError('RUN_PARAM_INVALID', `${count} for this run: ${messages.join('; ')}`, {
      hint: `${describeDeclared(specs)} ${ERROR_CODES.RUN_PARAM_INVALID.hint}`,
      problems: messages.map((message): Problem => ({ code: 'RUN_PARAM_INVALID', message })),
    });
  }
  // fromEntries defines keys, so a param named `__proto__` stays an ordinary key.
  return Object.fromEntries(resolved);
}

/**
 * `--param` values as written: `["day=2024-01-01", "n=3"]` → `{ day: "2024-01-01", n: "3" }`.
 * The value is everything after the first `=`, untrimmed. Throws `USAGE` for a pair without
 * `=` or without a name, and for a name given twice, since which one wins would be a guess.
 */
export function parseParamAssignments(pairs: readonly string[]): Record<string, string> {
  const values = new Map<string, string>();
  const problems: Problem[] = [];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, Math.max(eq, 0)).trim();
    let message: string | undefined;
    if (eq < 0) message = `--param ${JSON.stringify(pair)} must be written name=value`;
    else if (name === '') message = `--param ${JSON.stringify(pair)} has no name before "="`;
    else if (values.has(name)) message = `param ${quote(name)} is given more than once`;
    else values.set(name, pair.slice(eq + 1));
    if (message !== undefined) problems.push({ code: 'USAGE', message });
  }
  const [first] = problems;
  if (first !== undefined) {
    const message =
      problems.length === 1
        ? first.message
        : `${problems.length} malformed --param values: ${problems.map((p) => p.message).join('; ')}`;
    throw new BatonError('USAGE', message, {
      problems,
      hint: 'Write each param as --param name=value, e.g. --param day=2024-01-01.',
    });
  }
  return Object.fromEntries(values);
}

/** A message when the spec contradicts itself (a default or enum value of the wrong type, a default outside the enum). */
export function checkParamSpec(name: string, spec: ParamSpec): string | undefined {
  if (!Object.hasOwn(EXPECTED, spec.type)) {
    return `param ${quote(name)} has unknown type ${JSON.stringify(spec.type)} (expected one of ${Object.keys(EXPECTED).join(', ')})`;
  }
  const problems: string[] = [];
  for (const value of spec.enum ?? []) {
    const problem = typeProblem(value, spec.type);
    if (problem !== undefined) problems.push(`enum value ${problem}`);
  }
  if (spec.default !== undefined) {
    const problem = valueProblem(spec.default, spec);
    if (problem !== undefined) problems.push(`default ${problem}`);
  }
  return problems.length === 0 ? undefined : `param ${quote(name)} ${problems.join('; ')}`;
}

function fromText(text: string, type: ParamType): { value: unknown } | { problem: string } {
  switch (type) {
    case 'string':
      return { value: text };
    case 'number':
    case 'integer':
      return { value: DECIMAL.test(text.trim()) ? Number(text) : text };
    case 'boolean':
      return { value: text === 'true' ? true : text === 'false' ? false : text };
    case 'object':
    case 'array':
      try {
        return { value: JSON.parse(text) as unknown };
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        return { problem: `must be ${EXPECTED[type]} written as JSON, got ${preview(text)} (${reason})` };
      }
  }
}

/** What is wrong with a value for a spec (type first, then enum), or undefined. */
function valueProblem(value: unknown, spec: ParamSpec): string | undefined {
  const problem = typeProblem(value, spec.type);
  if (problem !== undefined || spec.enum === undefined || spec.enum.some((allowed) => dataEqual(allowed, value)))
    return problem;
  const choices = spec.enum.map(preview).join(', ');
  const strings = spec.enum.filter((allowed): allowed is string => typeof allowed === 'string');
  const guess = typeof value === 'string' ? suggest(value, strings) : undefined;
  return `must be one of ${choices}, got ${preview(value)}${guess === undefined ? '' : ` (did you mean ${quote(guess)}?)`}`;
}

function typeProblem(value: unknown, type: ParamType): string | undefined {
  const ok =
    type === 'string'
      ? typeof value === 'string'
      : type === 'number'
        ? typeof value === 'number' && Number.isFinite(value)
        : type === 'integer'
          ? Number.isSafeInteger(value)
          : type === 'boolean'
            ? typeof value === 'boolean'
            : type === 'array'
              ? Array.isArray(value)
              : isPlainObject(value);
  return ok ? undefined : `must be ${EXPECTED[type]}, got ${preview(value)}`;
}

function describeDeclared(specs: Readonly<Record<string, ParamSpec>>): string {
  const entries = Object.entries(specs);
  if (entries.length === 0) return 'This flow declares no params.';
  const list = entries.map(
    ([name, spec]) =>
      `${name} (${spec.type}${spec.default === undefined ? ', required' : `, default ${preview(spec.default)}`})`,
  );
  return `This flow declares: ${list.join(', ')}.`;
}

/** Defaults are shared by every run of a flow; a run must not be able to change the next run's. */
function copyDefault(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? structuredClone(value) : value;
}

/**
 * Why a value nests deeper than `params_depth`, or undefined. Walked with an explicit stack:
 * the value may be nested far deeper than the call stack would allow.
 */
function depthProblem(value: unknown): string | undefined {
  const max = LIMITS.params_depth.default;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return `nests maps or lists more than ${max} deep, over the limit params_depth (${max})`;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return undefined;
}

function preview(value: unknown): string {
  // JSON would show NaN and Infinity as null, which hides why the value was refused.
  if (typeof value === 'number') return String(value);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // Not JSON (a cycle, a bigint): the plain string form is enough to point at it.
  }
  try {
    text ??= String(value);
  } catch {
    // Too deep even for its string form.
    text = Array.isArray(value) ? '[…]' : typeof value;
  }
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

function quote(name: string): string {
  return `"${name}"`;
}
