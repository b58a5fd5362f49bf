/**
 * Cutting what Baton records down to its limit. Text (an error's message and stack, a log
 * line) is cut at a UTF-8 character boundary and ends with a visible marker that says how
 * large it was; a value that must be JSON (a task output, an error's details) is measured
 * while it is serialized, so that one far over its limit is refused without building its
 * whole text. Sizes are bytes of UTF-8; limits are parameters (see limits.ts).
 *
 * Invariants
 * - A cut text is at most its limit in bytes, marker included (for limits of at least
 *   1 KiB, the smallest the settings accept), and shares no memory with the original: a
 *   huge string is not kept alive by the few kilobytes kept of it.
 * - Text within its limit is returned as it is.
 */
import { LIMITS } from './limits.js';
import type { TaskError } from './model.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes of `text` in UTF-8, counted without encoding it (a lone surrogate counts 3: it is written as U+FFFD). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      // A pair is 2 units and 4 bytes; a high surrogate alone is U+FFFD, 3 bytes.
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      bytes += 2;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * The longest head of `text` within `maxBytes` bytes of UTF-8, without a character cut in
 * half; a new string, so that it does not hold on to `text`.
 */
export function utf8Prefix(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  // Every UTF-16 unit takes at least one byte: no more than maxBytes of them can fit.
  let head = text.length > maxBytes ? text.slice(0, maxBytes) : text;
  const last = head.charCodeAt(head.length - 1);
  if (head !== text && last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1);
  const bytes = encoder.encode(head);
  let end = Math.min(bytes.length, maxBytes);
  // A continuation byte (10xxxxxx) first after the cut means its character was cut in half.
  while (end > 0 && end < bytes.length && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return decoder.decode(bytes.subarray(0, end));
}

/**
 * `text` when it is at most `limitBytes` bytes of UTF-8; else its head followed by
 * `marker(bytes)` (`bytes`: the size of the whole text), together within `limitBytes`.
 * `atLineBreak` cuts after the last whole line of the head (stacks: a frame cut in half
 * reads as a wrong location).
 * Example: `cutText('x'.repeat(5000), 1024, (n) => ` … [${n} bytes]`)` → 1,011 `x` and ` … [5000 bytes]`.
 */
export function cutText(
  text: string,
  limitBytes: number,
  marker: (bytes: number) => string,
  options: { readonly atLineBreak?: boolean } = {},
): string {
  // At most 3 bytes per UTF-16 unit: short text needs no counting.
  if (text.length * 3 <= limitBytes) return text;
  const bytes = utf8Length(text);
  if (bytes <= limitBytes) return text;
  const mark = marker(bytes);
  let head = utf8Prefix(text, limitBytes - utf8Length(mark));
  if (options.atLineBreak) {
    const lastBreak = head.lastIndexOf('\n');
    if (lastBreak > 0) head = head.slice(0, lastBreak);
  }
  return head + mark;
}

/** The marker of a text cut at `limitBytes` (the setting that raises it named, when there is one). */
export function cutMarker(what: string, limitBytes: number, setting?: string): (bytes: number) => string {
  const raise = setting === undefined ? '' : ` (${setting})`;
  return (bytes) => `[${what} truncated: ${bytes} bytes, at most the first ${limitBytes} kept${raise}]`;
}

export type BoundedJson =
  | { readonly ok: true; readonly text: string; readonly bytes: number }
  /** `bytes` is null when serializing stopped as soon as the value was known to be over the limit. */
  | { readonly ok: false; readonly reason: 'too_large'; readonly bytes: number | null }
  | { readonly ok: false; readonly reason: 'invalid'; readonly message: string; readonly path: string };

/** Thrown from the replacer to end JSON.stringify early. */
class Stop {
  constructor(readonly result: BoundedJson) {}
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function childPath(parent: string, key: string, inArray: boolean): string {
  if (inArray) return `${parent}[${key}]`;
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return IDENTIFIER.test(key) ? `${parent}.${shown}` : `${parent}[${JSON.stringify(shown)}]`;
}

/** Why a value has no JSON form, or undefined when it has one (JSON's own rules apply). */
function notJson(value: unknown): string | undefined {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'bigint') return 'a BigInt (JSON has no BigInt: make it a string or a number)';
  // Their JSON is `{}` whatever they hold: the data would be lost without a word.
  if (value instanceof Map) return 'a Map (JSON has none: convert it, e.g. with Object.fromEntries)';
  if (value instanceof Set) return 'a Set (JSON has none: convert it, e.g. with Array.from)';
  return undefined;
}

/**
 * Serializes `value` as JSON within `limitBytes` bytes of UTF-8. A lower bound of the size
 * is kept while serializing, so that a value far over the limit stops early instead of
 * being written out whole. `strict` refuses what JSON would drop or mangle without a word
 * (a function, a symbol, a Map or a Set anywhere in the value, naming where: `root` is the
 * name of the whole value); otherwise JSON's own rules apply. Cycles and BigInts are
 * refused either way.
 * Example: `boundedJson({ a: () => 1 }, 1024, { strict: true, root: 'output' })` → invalid, path `output.a`.
 */
export function boundedJson(
  value: unknown,
  limitBytes: number,
  options: { readonly strict: boolean; readonly root?: string },
): BoundedJson {
  const root = options.root ?? 'value';
  const paths = new WeakMap<object, string>();
  let atLeast = 0;
  function replacer(this: unknown, key: string, v: unknown): unknown {
    const holder = this as object;
    const parent = paths.get(holder);
    // The holder JSON.stringify makes for the whole value is the one without a path.
    const path = parent === undefined ? root : childPath(parent, key, Array.isArray(holder));
    const why = options.strict || typeof v === 'bigint' ? notJson(v) : undefined;
    if (why !== undefined) throw new Stop({ ok: false, reason: 'invalid', message: `${path} is ${why}`, path });
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return v;
    // Each kept key and value is written at least once, each UTF-16 unit in at least one byte.
    if (parent !== undefined && !Array.isArray(holder)) atLeast += key.length + 3;
    if (typeof v === 'string') atLeast += v.length + 2;
    else if (typeof v === 'object' && v !== null) {
      paths.set(v, path);
      atLeast += 2;
    } else atLeast += 1;
    if (atLeast > limitBytes) throw new Stop({ ok: false, reason: 'too_large', bytes: null });
    return v;
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value, replacer);
  } catch (error) {
    if (error instanceof Stop) return error.result;
    // A cycle, or a toJSON that threw.
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, reason: 'invalid', message, path: root };
  }
  if (text === undefined) return { ok: false, reason: 'invalid', message: `${root} has no JSON form`, path: root };
  const bytes = utf8Length(text);
  if (bytes > limitBytes) return { ok: false, reason: 'too_large', bytes };
  return { ok: true, text, bytes };
}

/** The setting that bounds recorded errors, as markers name it. */
const ERROR_SETTING = 'limits.error_bytes';

/** Codes and kinds are identifiers that handlers match on: no legitimate one comes near the limit. */
function cutCode(code: string): string {
  return cutText(code, LIMITS.error_code_bytes.default, () => '…');
}

/**
 * An error's details as they are recorded: JSON within `limitBytes`; a marker object in
 * their place when they are larger (`{ truncated: true, ... }`) or have no JSON form
 * (`{ unserializable: '<why>' }`).
 */
export function boundDetails(details: unknown, limitBytes: number): Record<string, unknown> {
  const json = boundedJson(details, limitBytes, { strict: false, root: 'details' });
  if (json.ok) {
    const parsed = JSON.parse(json.text) as unknown;
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
    return { value: parsed };
  }
  if (json.reason === 'too_large') {
    return {
      truncated: true,
      ...(json.bytes === null ? {} : { bytes: json.bytes }),
      limit: limitBytes,
      setting: ERROR_SETTING,
    };
  }
  return { unserializable: cutText(json.message, 1024, () => ' …') };
}

/**
 * A TaskError as it is recorded: message, hint and stack each at most `limitBytes` bytes
 * with a truncation marker, details at most `limitBytes` bytes of JSON (else a marker
 * object), code and kind at most the fixed limit error_code_bytes.
 */
export function boundTaskError(error: TaskError, limitBytes: number): TaskError {
  const marked = (what: string, separator: string) => (bytes: number) =>
    `${separator}${cutMarker(what, limitBytes, ERROR_SETTING)(bytes)}`;
  return {
    ...error,
    code: cutCode(error.code),
    message: cutText(error.message, limitBytes, marked('message', ' … ')),
    ...(error.kind === undefined ? {} : { kind: cutCode(error.kind) }),
    ...(error.hint === undefined ? {} : { hint: cutText(error.hint, limitBytes, marked('hint', ' … ')) }),
    ...(error.details === undefined ? {} : { details: boundDetails(error.details, limitBytes) }),
    // Cut after a whole frame, the marker on a line of its own like one.
    ...(error.stack === undefined
      ? {}
      : { stack: cutText(error.stack, limitBytes, marked('stack', '\n    '), { atLineBreak: true }) }),
  };
}
