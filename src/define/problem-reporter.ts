/**
 * Where a problem of a flow file (or of baton.yaml) points: the file, the 1-based line and
 * column, and the key path. A problem names a key path of the plain value; the reporter
 * finds it in the parsed document, or in the places the fast reader kept, and points at the
 * value, at its key (for a problem of the key, or an empty value), or at the key of the
 * map that lacks a key. Maps and lists are indexed when first searched, so that placing
 * each of the problems of a flow of 100,000 tasks costs the length of its path.
 */
import {
  LineCounter,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Alias,
  type Document,
  type Node,
  type Pair,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import type { ErrorCode, Problem } from '../core/errors.js';
import { formatPath, type KeyPath, type SchemaProblem } from './flow-schema.js';
import type { Place, SimpleYaml } from './yaml-fast.js';

function scalarText(node: unknown): string {
  return String(isScalar(node) ? node.value : node);
}

/** A key's name as the plain value has it (toPlain): a null key is ''. */
function keyText(node: unknown): string {
  const value = isScalar(node) ? node.value : node;
  return value === null || value === undefined ? '' : String(value);
}

/** The `id` value of a task written in a list, if it has a string one. */
function idNode(node: unknown): Node | undefined {
  if (!isMap(node)) return undefined;
  const id = node.items.find((p) => scalarText(p.key) === 'id')?.value;
  return isScalar(id) && typeof id.value === 'string' ? (id as Node) : undefined;
}

/**
 * Collects problems with positions resolved against one parsed document (baton.yaml's
 * too), or against the places the fast reader kept (`Reporter.forSimple`).
 */
export class Reporter {
  readonly problems: Problem[] = [];
  /** Per map, its pairs by key name (the last of duplicates); built when a map is first searched. */
  private readonly keyIndex = new WeakMap<YAMLMap, Map<string, Pair>>();
  /** Per list of tasks, its items by `id` (the first of duplicates). */
  private readonly idIndex = new WeakMap<YAMLSeq, Map<string, Node>>();
  private simple: SimpleYaml | undefined;

  /**
   * `aliases` (from parseYaml) resolves an alias on a path at once; without it an alias is
   * looked up through the document, which is fine for the few problems of a small file.
   */
  constructor(
    private readonly file: string,
    private readonly doc: Document | undefined,
    private readonly lines: LineCounter,
    private readonly aliases?: ReadonlyMap<Alias, Node>,
  ) {}

  /** A reporter for what the fast reader read: problems are placed by the places it kept. */
  static forSimple(file: string, simple: SimpleYaml): Reporter {
    const lines = new LineCounter();
    for (const start of simple.lineStarts) lines.addNewLine(start);
    const report = new Reporter(file, undefined, lines);
    report.simple = simple;
    return report;
  }

  add(code: ErrorCode, path: KeyPath, message: string, hint: string, at: SchemaProblem['at'] = 'value'): void {
    const dotted = formatPath(path);
    // Every problem is placed: maps and lists are indexed once (see find), so a lookup costs
    // the length of its path, and the problems are sorted by line before any are cut.
    const offset = this.offsetOf(path, at);
    const pos = offset === undefined ? undefined : this.lines.linePos(offset);
    this.problems.push({
      code,
      message: dotted ? `${dotted}: ${message}` : message,
      hint,
      location: {
        file: this.file,
        ...(pos ? { line: pos.line, column: pos.col } : {}),
        ...(dotted ? { path: dotted } : {}),
      },
    });
  }

  /** A problem at an offset of the text (syntax, limits, a duplicate key), with the key path if there is one. */
  addAt(code: ErrorCode, offset: number, message: string, hint: string, path: KeyPath = []): void {
    const dotted = formatPath(path);
    const pos = this.lines.linePos(offset);
    this.problems.push({
      code,
      message: dotted ? `${dotted}: ${message}` : message,
      hint,
      location: { file: this.file, line: pos.line, column: pos.col, ...(dotted ? { path: dotted } : {}) },
    });
  }

  addAll(problems: readonly SchemaProblem[], code: ErrorCode = 'DEF_INVALID'): void {
    for (const p of problems) this.add(p.code ?? code, p.path, p.message, p.hint, p.at);
  }

  /** Where to point: the value, its key, or (for a missing key) the key of the map that lacks it. */
  private offsetOf(path: KeyPath, at: SchemaProblem['at']): number | undefined {
    const target = at === 'parent' ? path.slice(0, -1) : path;
    for (let n = target.length; n >= 0; n--) {
      const place = this.placeOf(target.slice(0, n));
      if (!place) continue;
      // A missing or empty value (`params:`) has no useful position of its own: use its key.
      const useKey = (at !== 'value' || place.empty || n < target.length) && place.key !== undefined;
      const offset = useKey ? place.key : (place.value ?? place.key);
      if (offset !== undefined) return offset;
    }
    return undefined;
  }

  private placeOf(path: KeyPath): Place | undefined {
    if (this.simple) return this.simple.place(path);
    const found = this.find(path);
    if (!found) return undefined;
    const { key, value } = found;
    const empty = !value?.range || (isScalar(value) && value.value === null && value.range[0] === value.range[1]);
    const keyAt = key?.range?.[0];
    const valueAt = value?.range?.[0];
    return {
      ...(keyAt !== undefined ? { key: keyAt } : {}),
      ...(valueAt !== undefined ? { value: valueAt } : {}),
      empty,
    };
  }

  /**
   * The key node and value node at a path; for a duplicated key, the last one (as the
   * plain value keeps). In a list of tasks a name part finds the task with that `id`, whose
   * id value then serves as its key. Maps and lists are indexed once, so that a flow with a
   * problem in each of 100,000 tasks does not search the tasks once per problem.
   */
  private find(path: KeyPath): { key: Node | undefined; value: Node | undefined } | undefined {
    let key: Node | undefined;
    let value = (this.doc?.contents ?? undefined) as Node | undefined;
    for (const part of path) {
      if (isAlias(value)) value = this.resolve(value);
      if (isMap(value)) {
        const pair = this.pairOf(value, String(part));
        if (!pair) return undefined;
        key = pair.key as Node;
        value = (pair.value ?? undefined) as Node | undefined;
      } else if (isSeq(value) && typeof part === 'number') {
        key = undefined;
        value = value.items[part] as Node | undefined;
        if (!value) return undefined;
      } else if (isSeq(value)) {
        const item = this.itemWithId(value, String(part));
        if (!item) return undefined;
        key = idNode(item);
        value = item;
      } else return undefined;
    }
    return { key, value };
  }

  private resolve(alias: Alias): Node | undefined {
    if (this.aliases) return this.aliases.get(alias);
    return this.doc ? (alias.resolve(this.doc) as Node | undefined) : undefined;
  }

  private pairOf(map: YAMLMap, name: string): Pair | undefined {
    let index = this.keyIndex.get(map);
    if (!index) {
      index = new Map();
      for (const pair of map.items) index.set(keyText(pair.key), pair as Pair);
      this.keyIndex.set(map, index);
    }
    return index.get(name);
  }

  private itemWithId(seq: YAMLSeq, id: string): Node | undefined {
    let index = this.idIndex.get(seq);
    if (!index) {
      index = new Map();
      for (const item of seq.items) {
        const node = idNode(item);
        const name = node === undefined ? undefined : scalarText(node);
        if (name !== undefined && !index.has(name)) index.set(name, item as Node);
      }
      this.idIndex.set(seq, index);
    }
    return index.get(id);
  }

  sorted(): Problem[] {
    const rank = (p: Problem): [number, number] => [p.location?.line ?? Infinity, p.location?.column ?? Infinity];
    return [...this.problems].sort((a, b) => {
      const [la, ca] = rank(a);
      const [lb, cb] = rank(b);
      return la - lb || ca - cb;
    });
  }
}
