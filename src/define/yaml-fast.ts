/**
 * A fast reader for the plain subset of YAML that large, generated flow files are written
 * in: block maps and lists, one-line flow lists and maps, one-line plain and quoted
 * scalars, comments. It returns the same plain value as the full parser
 * (yaml-document.ts) would, about ten times faster and with a fraction of its memory,
 * or `undefined` as soon as it meets anything else — an anchor, an alias, a tag, a block
 * scalar, a multi-line scalar or flow collection, a quoted key, a tab, a carriage return,
 * a duplicate key, a document marker, anything it is not sure of, or nesting near the
 * limit. Then the full parser reads the file, and says what is wrong, where.
 *
 * It keeps where each key and value starts, as the full parser's nodes do, so that the
 * loader places problems without reading the file again (`SimpleYaml.place`). Scalars are
 * resolved by the rules of the YAML 1.2 core schema, as the full parser resolves them.
 */
import type { KeyPath } from './flow-schema.js';

/** Thrown to give up; caught once, at the top. */
class NotSimple {}
const NOT_SIMPLE = new NotSimple();

const SPACE = 0x20;
const HASH = 0x23;
const COLON = 0x3a;
const DASH = 0x2d;

/** Characters the reader gives up on anywhere: tabs, carriage returns, controls, a BOM, astral or lone surrogates. */
const UNSURE_CHARACTERS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\ud800-\udfff\ufeff\ufffe\uffff]/;
/** A key it reads: a plain word (what flow keys are). Others (quoted, spaced, …) are the full parser's. */
const KEY = /^[A-Za-z0-9_$][A-Za-z0-9_$./-]*$/;
const KEY_CHAR = /[A-Za-z0-9_$./-]/;
/** Characters that cannot begin a plain scalar (YAML's indicators), or that it does not read there. */
const NOT_PLAIN_FIRST = new Set([...',[]{}#&*!|>\'"%@`']);

// The YAML 1.2 core schema's plain scalars, in the order the full parser tries them.
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

/** The value of a plain scalar, as the core schema resolves it. */
function plainValue(text: string): unknown {
  if (NULL.test(text)) return null;
  if (BOOL.test(text)) return text[0] === 't' || text[0] === 'T';
  if (INT_OCT.test(text)) return parseInt(text.substring(2), 8);
  if (INT.test(text)) return parseInt(text, 10);
  if (INT_HEX.test(text)) return parseInt(text.substring(2), 16);
  if (FLOAT_NAN.test(text)) {
    if (text.slice(-3).toLowerCase() === 'nan') return NaN;
    return text[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (FLOAT_EXP.test(text) || FLOAT.test(text)) return parseFloat(text);
  return text;
}

/** A key's name as the plain value has it: `null` is '', `1.0` is '1', `true` is 'true'. */
function keyName(text: string): string {
  const value = plainValue(text);
  return value === null ? '' : String(value);
}

/** Sets a key as the full parser's plain value does (own `__proto__`); a duplicate gives up. */
function setKey(map: Record<string, unknown>, name: string, value: unknown): void {
  if (Object.hasOwn(map, name)) throw NOT_SIMPLE;
  if (name === '__proto__') {
    Object.defineProperty(map, name, { value, writable: true, enumerable: true, configurable: true });
  } else map[name] = value;
}

/** Where a problem at a key path can point: the start of the key, of the value, and whether the value is empty. */
export interface Place {
  readonly key?: number;
  readonly value?: number;
  /** Nothing is written for the value (`key:` alone): there is no value to point at. */
  readonly empty: boolean;
}

export interface SimpleYaml {
  readonly value: Record<string, unknown>;
  /** Where a line starts, for each line. */
  readonly lineStarts: readonly number[];
  /** The place of the key and the value at `path`, found as the loader's reporter finds them in a document. */
  place(path: KeyPath): Place | undefined;
}

/**
 * The places of what the reader made, compactly (a flow of 50,000 tasks has 250,000 maps
 * and lists): one array of numbers holding one record per map or list, in the order they
 * are finished. A map's record has, per entry, its key's offset, its value's offset (-1
 * when the value is empty) and its value's record (-1 for a scalar); a list's, per item,
 * its offset and its record.
 */
class Places {
  /** Grown by doubling; `size` numbers of it are used. A typed array keeps a number in 4 bytes. */
  private data = new Int32Array(1024);
  private size = 0;
  /** The keys of maps whose own keys JavaScript lists in another order than written (integer-like keys first). */
  private readonly written = new Map<object, readonly string[]>();
  /** Indexes of the entries of searched maps by key, and of searched lists by the `id` of their items. */
  private readonly index = new Map<object, Map<string, number>>();

  /** Records a finished map or list; returns where its record starts. */
  record(entries: readonly number[], map?: object, names?: readonly string[]): number {
    const at = this.size;
    if (at + entries.length > this.data.length) {
      const grown = new Int32Array(Math.max(2 * this.data.length, at + entries.length));
      grown.set(this.data);
      this.data = grown;
    }
    for (const n of entries) this.data[this.size++] = n;
    if (map && names?.some((name) => INDEX_LIKE.test(name))) this.written.set(map, names);
    return at;
  }

  /**
   * The rules of the reporter's search in a document (load-yaml.ts): a name part of a path
   * is a key of a map; a number part an item of a list; a name part on a list the first
   * item that is a map whose `id` is that name, whose id value then stands for its key.
   */
  place(root: unknown, rootRecord: number, rootAt: number, path: KeyPath): Place | undefined {
    let key: number | undefined;
    let at = rootAt;
    let record = rootRecord;
    let value: unknown = root;
    for (const part of path) {
      if (record < 0) return undefined;
      if (!Array.isArray(value)) {
        const map = value as Record<string, unknown>;
        const i = this.entryOf(map, String(part));
        if (i < 0) return undefined;
        key = this.data[record + 3 * i] as number;
        at = this.data[record + 3 * i + 1] as number;
        record = this.data[record + 3 * i + 2] as number;
        value = map[String(part)];
      } else if (typeof part === 'number') {
        if (!Number.isInteger(part) || part < 0 || part >= value.length) return undefined;
        key = undefined;
        at = this.data[record + 2 * part] as number;
        record = this.data[record + 2 * part + 1] as number;
        value = value[part];
      } else {
        const i = this.itemWithId(value, part);
        if (i < 0) return undefined;
        const item = value[i] as Record<string, unknown>;
        const itemRecord = this.data[record + 2 * i + 1] as number;
        key = this.data[itemRecord + 3 * this.entryOf(item, 'id') + 1] as number;
        at = this.data[record + 2 * i] as number;
        record = itemRecord;
        value = item;
      }
    }
    return { ...(key !== undefined ? { key } : {}), ...(at >= 0 ? { value: at } : {}), empty: at < 0 };
  }

  /** The place of key `name` among the entries of a map, as written, or -1. */
  private entryOf(map: Record<string, unknown>, name: string): number {
    let index = this.index.get(map);
    if (!index) {
      const found = new Map<string, number>();
      (this.written.get(map) ?? Object.keys(map)).forEach((key, i) => found.set(key, i));
      this.index.set(map, (index = found));
    }
    return index.get(name) ?? -1;
  }

  /** The first item of a list that is a map with this `id` (which the reader wrote as a key), or -1. */
  private itemWithId(list: readonly unknown[], id: string): number {
    let index = this.index.get(list);
    if (!index) {
      const found = new Map<string, number>();
      list.forEach((item, i) => {
        if (typeof item !== 'object' || item === null || Array.isArray(item)) return;
        const own = (item as Record<string, unknown>).id;
        if (typeof own === 'string' && !found.has(own)) found.set(own, i);
      });
      this.index.set(list, (index = found));
    }
    return index.get(id) ?? -1;
  }
}

/** Keys that JavaScript lists before all others, in numeric order: array indexes. */
const INDEX_LIKE = /^(?:0|[1-9][0-9]{0,9})$/;

/**
 * The plain value of `text`, with the places of its keys and values, or undefined when it
 * is not in the subset (see the module comment). `maxDepth` is the nesting limit: a
 * document that comes within two levels of it is left to the full parser, which reports
 * the limit.
 * Example: `parseSimpleYaml('a: [1, x]\n', 64)?.value` → `{ a: [1, 'x'] }`.
 */
export function parseSimpleYaml(text: string, maxDepth: number): SimpleYaml | undefined {
  if (UNSURE_CHARACTERS.test(text)) return undefined;
  let reader: Reader;
  let value: Record<string, unknown>;
  try {
    reader = new Reader(text, maxDepth - 2);
    value = reader.document();
  } catch (error) {
    if (error === NOT_SIMPLE) return undefined;
    throw error;
  }
  const { places, rootRecord, rootAt } = reader;
  return { value, lineStarts: reader.starts, place: (path) => places.place(value, rootRecord, rootAt, path) };
}

/**
 * Reads line by line. Each method that reads a value returns it, and leaves in fields what
 * else its caller needs (so that no object is made per value): the next line that holds
 * something, where the value starts and whether it is empty, its record, and where it ends.
 */
class Reader {
  readonly places = new Places();
  /** Where the top-level map starts (its first key), and its record. */
  rootAt = 0;
  rootRecord = -1;
  /** Per line: where it starts, where it ends (its newline), and where its content starts. */
  readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly contents: number[] = [];
  /** Per line: true when it holds something (not blank, not only a comment). */
  private readonly filled: boolean[] = [];

  // What the last value read leaves for its caller.
  private nextLine = -1;
  private valueStart = 0;
  private valueEmpty = false;
  private valueRecord = -1;
  private valueEnd = 0;

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {
    let start = 0;
    while (start <= text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      let content = start;
      while (content < end && text.charCodeAt(content) === SPACE) content++;
      this.starts.push(start);
      this.ends.push(end);
      this.contents.push(content);
      this.filled.push(content < end && text.charCodeAt(content) !== HASH);
      start = end + 1;
    }
  }

  private indent(line: number): number {
    return (this.contents[line] as number) - (this.starts[line] as number);
  }

  /** The first line at or after `line` that holds something, or -1. */
  private next(line: number): number {
    for (let i = line; i < this.filled.length; i++) if (this.filled[i]) return i;
    return -1;
  }

  document(): Record<string, unknown> {
    const first = this.next(0);
    if (first < 0 || this.indent(first) !== 0) throw NOT_SIMPLE;
    const c = this.contents[first] as number;
    // `---`, `...` and `%` directives are the full parser's.
    if (this.text.startsWith('---', c) || this.text.startsWith('...', c)) throw NOT_SIMPLE;
    this.rootAt = c;
    const value = this.blockMap(first, c, 1);
    this.rootRecord = this.valueRecord;
    if (this.nextLine >= 0) throw NOT_SIMPLE;
    return value;
  }

  private isSeqItem(line: number): boolean {
    const c = this.contents[line] as number;
    return this.text.charCodeAt(c) === DASH && (c + 1 === this.ends[line] || this.text.charCodeAt(c + 1) === SPACE);
  }

  /** The end of a `key:` at `at` (the colon), or -1 when the line does not start a map entry there. */
  private keyEnd(line: number, at: number): number {
    const end = this.ends[line] as number;
    const colon = this.find(COLON, at, end);
    if (colon < 0) return -1;
    if (colon + 1 < end && this.text.charCodeAt(colon + 1) !== SPACE) return -1;
    // Keys over 1,024 characters are an error of the full parser's.
    if (colon - at > 1000 || !KEY.test(this.text.slice(at, colon))) return -1;
    return colon;
  }

  /** A block map whose first key is at `at` on `line`; the map's indentation is that column. */
  private blockMap(line: number, at: number, depth: number): Record<string, unknown> {
    if (depth > this.maxDepth) throw NOT_SIMPLE;
    const indent = at - (this.starts[line] as number);
    const map: Record<string, unknown> = {};
    const entries: number[] = [];
    const names: string[] = [];
    let current = line;
    let col = at;
    for (;;) {
      const colon = this.keyEnd(current, col);
      if (colon < 0) throw NOT_SIMPLE;
      const name = keyName(this.text.slice(col, colon));
      setKey(map, name, this.valueAfter(current, colon + 1, indent, depth + 1));
      names.push(name);
      entries.push(col, this.valueEmpty ? -1 : this.valueStart, this.valueRecord);
      const next = this.nextLine;
      if (next < 0 || this.indent(next) < indent) {
        this.valueRecord = this.places.record(entries, map, names);
        this.nextLine = next;
        return map;
      }
      if (this.indent(next) > indent || this.isSeqItem(next)) throw NOT_SIMPLE;
      current = next;
      col = this.contents[next] as number;
    }
  }

  /** A block list whose items start at column `indent` from `line`. */
  private blockSeq(line: number, depth: number): unknown[] {
    if (depth > this.maxDepth) throw NOT_SIMPLE;
    const indent = this.indent(line);
    const list: unknown[] = [];
    const entries: number[] = [];
    let current = line;
    for (;;) {
      const dash = this.contents[current] as number;
      const end = this.ends[current] as number;
      let p = dash + 1;
      while (p < end && this.text.charCodeAt(p) === SPACE) p++;
      if (p < end && this.text.charCodeAt(p) === DASH && (p + 1 === end || this.text.charCodeAt(p + 1) === SPACE)) {
        throw NOT_SIMPLE; // `- - a`: a list in a list on one line
      } else if (p < end && this.text.charCodeAt(p) !== HASH && this.keyEnd(current, p) >= 0) {
        list.push(this.blockMap(current, p, depth + 1));
        entries.push(p, this.valueRecord);
      } else {
        list.push(this.valueAfter(current, dash + 1, indent, depth + 1));
        entries.push(this.valueStart, this.valueRecord);
      }
      const next = this.nextLine;
      if (next >= 0 && this.indent(next) > indent) throw NOT_SIMPLE;
      // A line at the list's column that is no item ends an indentless list (a key of the map around it).
      if (next < 0 || this.indent(next) < indent || !this.isSeqItem(next)) {
        this.valueRecord = this.places.record(entries);
        this.nextLine = next;
        return list;
      }
      current = next;
    }
  }

  /**
   * The value that follows a `key:` or a `- ` at `from` on `line`: on the line itself, or in
   * the lines below that are indented more than `indent` (or, for a key, a list at the
   * key's own column).
   */
  private valueAfter(line: number, from: number, indent: number, depth: number): unknown {
    const end = this.ends[line] as number;
    let p = from;
    while (p < end && this.text.charCodeAt(p) === SPACE) p++;
    if (p === end || (this.text.charCodeAt(p) === HASH && p > from)) {
      const next = this.next(line + 1);
      const start = next < 0 ? 0 : (this.contents[next] as number);
      const isKey = this.text.charCodeAt(from - 1) === COLON;
      let value: unknown = null;
      if (next >= 0 && this.indent(next) > indent) {
        value = this.isSeqItem(next) ? this.blockSeq(next, depth) : this.blockMap(next, start, depth);
      } else if (next >= 0 && isKey && this.indent(next) === indent && this.isSeqItem(next)) {
        value = this.blockSeq(next, depth);
      } else {
        // An empty value starts where the full parser puts it: after the spaces.
        this.nextLine = next;
        this.valueStart = p;
        this.valueEmpty = true;
        this.valueRecord = -1;
        return null;
      }
      this.valueStart = start;
      this.valueEmpty = false;
      return value;
    }
    const value = this.inline(line, p, depth);
    this.restOfLine(line, this.valueEnd);
    const next = this.next(line + 1);
    // A more indented line after a value on the line continues it, or is an error.
    if (next >= 0 && this.indent(next) > indent) throw NOT_SIMPLE;
    this.nextLine = next;
    this.valueStart = p;
    this.valueEmpty = false;
    return value;
  }

  /** Nothing but spaces and a comment may follow a value on its line. */
  private restOfLine(line: number, at: number): void {
    const end = this.ends[line] as number;
    let p = at;
    while (p < end && this.text.charCodeAt(p) === SPACE) p++;
    if (p === end) return;
    if (this.text.charCodeAt(p) !== HASH || p === at) throw NOT_SIMPLE;
  }

  /** A value on one line, in block context: a flow collection, a quoted or a plain scalar. */
  private inline(line: number, at: number, depth: number): unknown {
    const ch = this.text[at] as string;
    if (ch === '[' || ch === '{') return this.flow(line, at, depth);
    this.valueRecord = -1;
    if (ch === '"') return this.doubleQuoted(line, at);
    if (ch === "'") return this.singleQuoted(line, at);
    const end = this.ends[line] as number;
    this.checkPlainStart(at, end, false);
    let stop = at;
    while (stop < end && !(this.text.charCodeAt(stop) === HASH && this.text.charCodeAt(stop - 1) === SPACE)) stop++;
    const raw = this.text.slice(at, stop).trimEnd();
    if (raw.includes(': ') || raw.endsWith(':')) throw NOT_SIMPLE;
    this.valueEnd = at + raw.length;
    return plainValue(raw);
  }

  private checkPlainStart(at: number, end: number, inFlow: boolean): void {
    const ch = this.text[at] as string;
    if (NOT_PLAIN_FIRST.has(ch)) throw NOT_SIMPLE;
    // `-`, `?` and `:` begin a plain scalar only when something other than a space (or, in
    // a flow collection, a flow indicator) follows.
    if (ch === '-' || ch === '?' || ch === ':') {
      const next = this.text[at + 1];
      if (at + 1 === end || next === ' ' || (inFlow && next !== undefined && ',[]{}'.includes(next))) throw NOT_SIMPLE;
    }
  }

  /** A flow list or map that closes on the same line. */
  private flow(line: number, at: number, depth: number): unknown {
    if (depth > this.maxDepth) throw NOT_SIMPLE;
    const end = this.ends[line] as number;
    const isList = this.text[at] === '[';
    const close = isList ? ']' : '}';
    // Only the collection written is made: a flow file may hold 100,000 of them.
    const list: unknown[] | undefined = isList ? [] : undefined;
    const map: Record<string, unknown> | undefined = isList ? undefined : {};
    const names: string[] | undefined = isList ? undefined : [];
    const entries: number[] = [];
    let p = this.skipSpaces(at + 1, end);
    let after = p + 1;
    if (this.text[p] !== close)
      for (;;) {
        if (list) {
          list.push(this.flowItem(line, p, depth + 1));
          entries.push(p, this.valueRecord);
        } else {
          const keyAt = p;
          while (p < end && KEY_CHAR.test(this.text[p] as string)) p++;
          const key = this.text.slice(keyAt, p);
          if (!KEY.test(key) || this.text[p] !== ':' || this.text.charCodeAt(p + 1) !== SPACE) throw NOT_SIMPLE;
          const name = keyName(key);
          const start = this.skipSpaces(p + 1, end);
          setKey(map as Record<string, unknown>, name, this.flowItem(line, start, depth + 1));
          (names as string[]).push(name);
          entries.push(keyAt, start, this.valueRecord);
        }
        p = this.skipSpaces(this.valueEnd, end);
        const ch = this.text[p];
        if (p < end && ch === close) {
          after = p + 1;
          break;
        }
        if (p >= end || ch !== ',') throw NOT_SIMPLE;
        p = this.skipSpaces(p + 1, end);
        // A trailing comma, or an empty entry, is left to the full parser.
        if (p >= end || this.text[p] === close || this.text[p] === ',') throw NOT_SIMPLE;
      }
    this.valueRecord = list
      ? this.places.record(entries)
      : this.places.record(entries, map as Record<string, unknown>, names as string[]);
    this.valueEnd = after;
    return list ?? map;
  }

  /** The first `code` in [at, end), or -1: searches stay within their line, so that reading stays linear. */
  private find(code: number, at: number, end: number): number {
    for (let p = at; p < end; p++) if (this.text.charCodeAt(p) === code) return p;
    return -1;
  }

  private skipSpaces(at: number, end: number): number {
    let p = at;
    while (p < end && this.text.charCodeAt(p) === SPACE) p++;
    return p;
  }

  /** One entry of a flow collection: a nested one, a quoted scalar, or a plain scalar up to `,`, `]` or `}`. */
  private flowItem(line: number, at: number, depth: number): unknown {
    const end = this.ends[line] as number;
    if (at >= end) throw NOT_SIMPLE;
    const ch = this.text[at] as string;
    if (ch === '[' || ch === '{') return this.flow(line, at, depth);
    this.valueRecord = -1;
    if (ch === '"') return this.doubleQuoted(line, at);
    if (ch === "'") return this.singleQuoted(line, at);
    this.checkPlainStart(at, end, true);
    let p = at;
    while (p < end) {
      const c = this.text[p] as string;
      if (c === ',' || c === ']' || c === '}') break;
      // A colon (a pair) or a bracket inside a flow scalar is the full parser's to read.
      if (c === ':' || c === '#' || c === '[' || c === '{') throw NOT_SIMPLE;
      p++;
    }
    const raw = this.text.slice(at, p).trimEnd();
    this.valueEnd = at + raw.length;
    return plainValue(raw);
  }

  private doubleQuoted(line: number, at: number): string {
    const end = this.ends[line] as number;
    let p = at + 1;
    let escaped = false;
    while (p < end) {
      const c = this.text.charCodeAt(p);
      if (c === 0x5c) escaped = true;
      if (c === 0x22) break;
      p += c === 0x5c ? 2 : 1;
    }
    if (p >= end) throw NOT_SIMPLE; // the string goes on to another line
    this.valueEnd = p + 1;
    const body = this.text.slice(at + 1, p);
    if (!escaped) return body;
    // JSON's escapes are YAML's, with the same meaning; anything else is the full parser's.
    try {
      return JSON.parse(`"${body}"`) as string;
    } catch {
      throw NOT_SIMPLE;
    }
  }

  private singleQuoted(line: number, at: number): string {
    const end = this.ends[line] as number;
    let p = at + 1;
    for (;;) {
      const q = this.find(0x27, p, end);
      if (q < 0) throw NOT_SIMPLE;
      if (this.text.charCodeAt(q + 1) === 0x27) {
        p = q + 2;
        continue;
      }
      this.valueEnd = q + 1;
      return this.text.slice(at + 1, q).replaceAll("''", "'");
    }
  }
}
