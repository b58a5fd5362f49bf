/**
 * Parses the text of a flow file (YAML, or JSON read as YAML 1.2) into a document and a
 * plain value, within the loader's limits and in time linear in the text:
 *
 * - nesting (`flow_depth`) is checked while the parser runs, token by token, so that a file
 *   of `[[[[…` is refused at the line that goes too deep, before the composer and the
 *   later passes, which recurse once per level, could overflow the stack;
 * - duplicate keys are found in one pass with a set per map, each with its key path (the
 *   YAML library compares every key with all earlier keys of its map: quadratic);
 * - aliases are resolved once, in document order, and what they would expand to is counted
 *   without expanding them (`flow_alias_nodes`): a billion laughs is refused at the alias
 *   that goes over, and an alias inside the node it names is an error, not a loop;
 * - the plain value is built here, each alias becoming a reference to the value of what it
 *   names (the library's own conversion looks every alias up among all earlier anchors).
 *
 * Everything here is in offsets; the caller turns them into lines with `lines`.
 */
import {
  Composer,
  Lexer,
  LineCounter,
  Parser,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Alias,
  type CST,
  type Document,
  type Node,
} from 'yaml';
import { LIMITS, overLimit, type LimitName } from '../core/limits.js';
import type { KeyPath } from './flow-schema.js';

export interface YamlLimits {
  /** Deepest nesting of maps and lists (default: the table's `flow_depth`). */
  readonly depth?: number;
  /** Most values aliases may add when expanded (default: the table's `flow_alias_nodes`). */
  readonly aliasNodes?: number;
}

/** A syntax error, or an alias problem that leaves the document without a value. */
export interface YamlError {
  readonly offset: number;
  /** The library's code (`BAD_INDENT`, …), or `MULTIPLE_DOCS`, `ALIAS_CYCLE`, `ALIAS_UNKNOWN`. */
  readonly code: string;
  readonly message: string;
}

export interface YamlDuplicateKey {
  /** Where the later key starts. */
  readonly offset: number;
  readonly path: KeyPath;
}

export interface YamlLimitHit {
  readonly limit: 'flow_depth' | 'flow_alias_nodes';
  /** Where the limit was crossed: the token that goes deeper, the alias that goes over. */
  readonly offset: number;
  readonly value: number;
  readonly max: number;
}

export interface ParsedYaml {
  readonly lines: LineCounter;
  /** Absent when the nesting limit stopped the parser. */
  readonly doc?: Document;
  readonly errors: readonly YamlError[];
  readonly duplicates: readonly YamlDuplicateKey[];
  readonly over?: YamlLimitHit;
  /** Each alias and the node it names, for positions inside aliased values. */
  readonly aliases: ReadonlyMap<Alias, Node>;
}

/** Thrown inside the token stream to stop the composer at the first token over the depth. */
class TooDeep {
  constructor(
    readonly offset: number,
    readonly depth: number,
  ) {}
}

const COLLECTIONS = new Set(['block-map', 'block-seq', 'flow-collection']);

/** Syntax errors of the parser after which the rest of the text is not read. */
const MAX_ERROR_TOKENS = 1000;

function nesting(stack: readonly CST.Token[]): number {
  let n = 0;
  for (const token of stack) if (COLLECTIONS.has(token.type)) n++;
  return n;
}

/**
 * The parser's tokens, with the nesting checked after every lexeme. The parser keeps one
 * entry on its stack per open collection (plus the document and a pending scalar), so the
 * stack's length bounds the nesting from above; the collections on it are counted only
 * when that bound is over the limit, which keeps the check O(1) per token in every file
 * that is not close to the limit.
 */
function* tokensWithin(
  text: string,
  lines: LineCounter,
  maxDepth: number,
  stopped: { at?: number },
): Generator<CST.Token, void> {
  const parser = new Parser(lines.addNewLine);
  // Parser.parse() reports the start of the input itself; next(), used here, does not.
  lines.addNewLine(0);
  let counted = -1;
  let errors = 0;
  for (const lexeme of new Lexer().lex(text)) {
    const offset = parser.offset;
    for (const token of parser.next(lexeme)) {
      // Each error costs the library an Error with a stack trace: 8 MiB of `]` would be
      // millions. Past a screenful the rest of the text is not read.
      if (token.type === 'error' && ++errors > MAX_ERROR_TOKENS) {
        stopped.at = offset;
        return;
      }
      yield token;
    }
    const length = parser.stack.length;
    if (length > maxDepth && length !== counted) {
      counted = length;
      const depth = nesting(parser.stack);
      if (depth > maxDepth) throw new TooDeep(offset, depth);
    }
  }
  yield* parser.end();
}

/**
 * Parses `text`; never throws for anything in the text. The composer is told not to look
 * for duplicate keys (see the module comment); `walk` below does.
 * Example: `parseYaml('a: [[1]]\n').doc?.contents`.
 */
export function parseYaml(text: string, limits: YamlLimits = {}): ParsedYaml {
  const maxDepth = limits.depth ?? LIMITS.flow_depth.default;
  const maxAliasNodes = limits.aliasNodes ?? LIMITS.flow_alias_nodes.default;
  const lines = new LineCounter();
  const errors: YamlError[] = [];
  let doc: Document | undefined;
  const stopped: { at?: number } = {};
  try {
    const composer = new Composer({ uniqueKeys: false });
    for (const next of composer.compose(tokensWithin(text, lines, maxDepth, stopped), true, text.length)) {
      if (!doc) {
        doc = next;
        continue;
      }
      errors.push({
        offset: next.range[0],
        code: 'MULTIPLE_DOCS',
        message: 'the file holds more than one document (a second `---`); a flow file is one document',
      });
      break;
    }
  } catch (error) {
    if (!(error instanceof TooDeep)) throw error;
    const over: YamlLimitHit = { limit: 'flow_depth', offset: error.offset, value: error.depth, max: maxDepth };
    return { lines, errors, duplicates: [], over, aliases: new Map() };
  }
  if (!doc) throw new Error('the YAML composer produced no document'); // compose(…, true) always ends with one
  for (const e of doc.errors) errors.push({ offset: e.pos[0], code: e.code, message: e.message });
  if (stopped.at !== undefined) {
    errors.push({
      offset: stopped.at,
      code: 'TOO_MANY_ERRORS',
      message: 'too many errors; the rest of the file was not read',
    });
  }
  const walk = new Walk(maxAliasNodes);
  walk.node(doc.contents ?? null, []);
  for (const e of walk.errors) errors.push(e);
  return {
    lines,
    doc,
    errors,
    duplicates: walk.duplicates,
    ...(walk.over ? { over: walk.over } : {}),
    aliases: walk.aliases,
  };
}

/** Stops the walk once a limit is crossed: nothing after it is looked at. */
class Stop {}

/** One pass over the composed document: duplicate keys, aliases, and what aliases add. */
class Walk {
  readonly duplicates: YamlDuplicateKey[] = [];
  readonly errors: YamlError[] = [];
  readonly aliases = new Map<Alias, Node>();
  over: YamlLimitHit | undefined;
  /** The latest node with each anchor name, in document order, as YAML resolves aliases. */
  private readonly anchors = new Map<string, Node>();
  /** Sizes of anchored nodes, for the aliases that name them. */
  private readonly sizes = new Map<Node, number>();
  /** Anchored nodes being walked: an alias to one of them is inside what it names. */
  private readonly open = new Set<Node>();
  private added = 0;

  constructor(private readonly maxAliasNodes: number) {}

  /** Walks `node` at `path` (a mutable stack, copied only for a duplicate); returns its expanded size. */
  node(node: unknown, path: (string | number)[]): number {
    try {
      return this.visit(node, path);
    } catch (error) {
      if (error instanceof Stop) return 0;
      throw error;
    }
  }

  private visit(node: unknown, path: (string | number)[]): number {
    if (isAlias(node)) return this.alias(node);
    if (node === null || node === undefined) return 0;
    const anchor = (node as Node).anchor;
    if (!isMap(node) && !isSeq(node)) {
      // A scalar adds nothing when aliased: it is not kept in `sizes`.
      if (anchor) this.anchors.set(anchor, node as Node);
      return 1;
    }
    if (anchor) {
      this.anchors.set(anchor, node as Node);
      this.open.add(node as Node);
    }
    let size = 1;
    if (isMap(node)) {
      const seen = node.items.length > 1 ? new Set<unknown>() : undefined;
      for (const pair of node.items) {
        const key = pair.key as unknown;
        const name = isScalar(key) ? key.value : key;
        // NaN is never equal to itself, so `.nan` twice is not a duplicate (as the library says).
        if (seen && isScalar(key) && !Number.isNaN(name)) {
          if (seen.has(name)) this.duplicates.push({ offset: key.range?.[0] ?? 0, path: [...path, String(name)] });
          else seen.add(name);
        }
        size += this.visit(key, path);
        path.push(String(name));
        size += this.visit(pair.value, path);
        path.pop();
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        path.push(idOf(item) ?? i);
        size += this.visit(item, path);
        path.pop();
      });
    }
    if (anchor) {
      this.open.delete(node as Node);
      this.sizes.set(node as Node, size);
    }
    return size;
  }

  private alias(alias: Alias): number {
    const target = this.anchors.get(alias.source);
    const offset = alias.range?.[0] ?? 0;
    if (!target) {
      this.errors.push({ offset, code: 'ALIAS_UNKNOWN', message: `alias *${alias.source} names no anchor before it` });
      return 1;
    }
    if (this.open.has(target)) {
      this.errors.push({
        offset,
        code: 'ALIAS_CYCLE',
        message: `alias *${alias.source} is inside the value that &${alias.source} names, which would make it endless`,
      });
      return 1;
    }
    this.aliases.set(alias, target);
    // Scalars are not kept in `sizes`: an alias to one adds nothing.
    const size = this.sizes.get(target) ?? 1;
    this.added += size - 1;
    if (this.added > this.maxAliasNodes) {
      this.over = { limit: 'flow_alias_nodes', offset, value: this.added, max: this.maxAliasNodes };
      throw new Stop();
    }
    return size;
  }
}

/** The `id` of a task written in a list, which names it in key paths. */
function idOf(node: unknown): string | undefined {
  if (!isMap(node)) return undefined;
  for (const pair of node.items) {
    const key = pair.key as unknown;
    if (isScalar(key) && key.value === 'id') {
      const value = pair.value as unknown;
      return isScalar(value) && typeof value.value === 'string' ? value.value : undefined;
    }
  }
  return undefined;
}

/**
 * The plain value of a document that `parseYaml` found no errors or limits in: maps become
 * objects (the last of duplicate keys wins; `__proto__` is an own key, never the
 * prototype), lists arrays, scalars their values, and each alias the very value of what
 * it names (shared, not copied, as the library does).
 */
export function toPlain(parsed: ParsedYaml): unknown {
  const values = new Map<Node, unknown>();
  const convert = (node: unknown): unknown => {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = parsed.aliases.get(node);
      return target === undefined ? null : values.get(target);
    }
    let out: unknown = null;
    if (isScalar(node)) out = node.value;
    else if (isMap(node)) {
      const map: Record<string, unknown> = {};
      for (const pair of node.items) {
        const key = convert(pair.key);
        // A map or list used as a key has no name: it is written out, and reported as an unknown key.
        const name = key === null ? '' : typeof key === 'object' ? JSON.stringify(key) : String(key);
        const value = convert(pair.value);
        if (Object.hasOwn(map, name) || name === '__proto__') {
          Object.defineProperty(map, name, { value, writable: true, enumerable: true, configurable: true });
        } else map[name] = value;
      }
      out = map;
    } else if (isSeq(node)) {
      const list: unknown[] = [];
      for (const item of node.items) list.push(convert(item));
      out = list;
    }
    // Anchors come before their aliases, and none is inside what it names (parseYaml refuses that).
    if ((node as Node).anchor) values.set(node as Node, out);
    return out;
  };
  return convert(parsed.doc?.contents ?? null);
}

/**
 * The message and hint of a limit the parser stopped at. `depthLimit` names the limit the
 * caller passed as `depth` (a params file bounds nesting by `params_depth`).
 */
export function yamlLimitMessage(
  over: YamlLimitHit,
  depthLimit: LimitName = 'flow_depth',
): { readonly message: string; readonly hint: string } {
  return over.limit === 'flow_depth'
    ? overLimit(depthLimit, `a map or list nested ${over.value} deep`, over.max)
    : overLimit(over.limit, over.value, over.max);
}
