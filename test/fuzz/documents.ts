/**
 * Fuzz inputs for YAML and JSON documents (flow files, baton.yaml): structured mutations
 * of real documents, byte-level edits of their text (text-edits.ts), and garbage.
 *
 * A structured case is a seed document and a list of mutations, each picking its place by
 * a number taken modulo the places the document has at that moment, so that fast-check
 * generates plain data and the same seed always makes the same file. The label of a case
 * names the seed and every mutation, which is what a failure report shows.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { Document, isMap, parse as parseYaml, type Pair, type YAMLMap } from 'yaml';
import { REPO_ROOT } from '../e2e/cli-helpers.js';
import { editText, textEditArb, tokenSoupArb } from './text-edits.js';
import { ODD_DURATIONS, oddName, oddValue, type Odd, type Sizes } from './values.js';

export interface SeedDoc {
  readonly name: string;
  readonly value: unknown;
}

/** The module every function task of a seed flow names (written next to the flow). */
export const TASKS_MODULE = './tasks.mjs';

/** A flow with most of what the examples leave out: every param type, pools, retry lists, more triggers. */
const WIDE_FLOW = `
name: wide
description: params of every type, pools, groups, retry lists and triggers
params:
  s: { type: string, default: a, enum: [a, b] }
  n: { type: number, default: 1.5 }
  i: { type: integer, default: 3 }
  b: { type: boolean, default: true }
  o: { type: object, default: { k: v } }
  l: { type: array, default: [1, 2] }
defaults:
  retry: { max_attempts: 3, backoff: 1s, max_backoff: 1m, jitter: full, retry_on: [TASK_TIMEOUT], never_retry_on: [DEF_INVALID] }
  timeout: 10m
  pool: cpu
timeout: 2h
max_active_runs: 4
overlap: skip
pools: { cpu: 2, io: 8 }
groups:
  loaders: { description: the loaders }
triggers:
  hourly: { kind: interval, every: 1h, params: { s: b } }
  hook: { kind: webhook, secret_env: WIDE_HOOK_SECRET }
  nightly: { kind: cron, cron: '0 2 * * *', timezone: Europe/Berlin, catchup: all, max_catchup: 3, deadline: 1h }
tasks:
  first:
    kind: shell
    command: ['sh', '-c', 'echo "$S"']
    env: { S: '\${{ params.s }}' }
    timeout: 30s
  second:
    kind: function
    module: ${TASKS_MODULE}
    export: step
    depends_on: [first]
    group: loaders
    pool: io
    with: { n: '\${{ params.n }}', out: '\${{ tasks.first.output }}' }
    retry: { max_attempts: 5 }
  last:
    kind: shell
    command: [echo, done]
    depends_on: [second]
    trigger_rule: all_done
`;

const CONFIG_SEEDS_TEXT = [
  `database: .baton/baton.db
concurrency: 8
pool_size: 10
pools: { cpu: 2, io: 4 }
lease: 15s
kill_grace: 2s
limits: { output_bytes: 262144, params_bytes: 65536, log_bytes: 1048576 }
`,
  'database: .baton/baton.db\nconcurrency: 16\npools:\n  cpu: 2\n',
];

/** Module paths of a seed flow, pointed at TASKS_MODULE, so that a seed loads where it is copied. */
function pointModules(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(pointModules);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === 'module' && typeof v === 'string' ? TASKS_MODULE : pointModules(v),
    ]),
  );
}

/** Every flow of examples/, and WIDE_FLOW, as data. */
export function flowSeeds(): SeedDoc[] {
  const seeds: SeedDoc[] = [{ name: 'wide.yaml', value: parseYaml(WIDE_FLOW) }];
  const examples = join(REPO_ROOT, 'examples');
  for (const project of readdirSync(examples).sort()) {
    let files: string[];
    try {
      files = readdirSync(join(examples, project, 'flows')).sort();
    } catch {
      continue; // Not a project folder (a tsconfig.json, say).
    }
    for (const file of files.filter((f) => /\.ya?ml$/.test(f))) {
      const text = readFileSync(join(examples, project, 'flows', file), 'utf8');
      seeds.push({ name: `${project}/${file}`, value: pointModules(parseYaml(text)) });
    }
  }
  return seeds;
}

export function configSeeds(): SeedDoc[] {
  return CONFIG_SEEDS_TEXT.map((text, i) => ({ name: `baton.yaml #${i}`, value: parseYaml(text) }));
}

/** Source of TASKS_MODULE: every export the seeds name, each returning its input. */
export function tasksModuleSource(seeds: readonly SeedDoc[]): string {
  const names = new Set<string>(['step']);
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'export' && typeof x === 'string' && /^[A-Za-z_$][\w$]*$/.test(x)) names.add(x);
        walk(x);
      }
    }
  };
  seeds.forEach((s) => walk(s.value));
  return (
    [...names].map((n) => `export function ${n}(input) { return input ?? null; }\n`).join('') +
    'export default function main() { return null; }\n'
  );
}

// --- structured mutations -------------------------------------------------------------

export type Mutation =
  | { readonly op: 'set'; readonly at: number; readonly odd: Odd }
  | { readonly op: 'retype'; readonly at: number; readonly to: 'string' | 'number' | 'list' | 'map' | 'null' | 'bool' }
  | { readonly op: 'drop'; readonly at: number }
  | { readonly op: 'rename'; readonly at: number; readonly name: string }
  | { readonly op: 'add'; readonly at: number; readonly name: string; readonly odd: Odd }
  | { readonly op: 'dup'; readonly at: number }
  | { readonly op: 'clone'; readonly at: number; readonly times: number }
  | { readonly op: 'link'; readonly at: number; readonly to: number }
  | { readonly op: 'duration'; readonly at: number; readonly value: string };

export interface DocCase {
  readonly seed: number;
  readonly mutations: readonly Mutation[];
  readonly format: 'yaml' | 'json';
}

type Path = readonly (string | number)[];

/** Keys whose values are durations, in flows and in baton.yaml. */
const DURATION_KEYS = new Set([
  'timeout',
  'backoff',
  'max_backoff',
  'every',
  'deadline',
  'jitter',
  'lease',
  'kill_grace',
  'duration',
  'poll',
  'debounce',
  'max_wait',
]);
type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return v !== null && typeof v === 'object';
}

/** Every path in a value, parents first; bounded, since a mutation may have made it huge. */
function pathsOf(value: unknown, limit = 5000): Path[] {
  const out: Path[] = [];
  const walk = (v: unknown, path: Path) => {
    if (out.length >= limit || !isContainer(v)) return;
    const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
    for (const [k, x] of entries) {
      if (out.length >= limit) return;
      out.push([...path, k]);
      walk(x, [...path, k]);
    }
  };
  walk(value, []);
  return out;
}

function at(root: unknown, path: Path): unknown {
  let v = root;
  for (const k of path) v = isContainer(v) ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

function setAt(root: unknown, path: Path, value: unknown): void {
  const parent = at(root, path.slice(0, -1));
  if (isContainer(parent))
    Object.defineProperty(parent, path[path.length - 1] as string | number, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
}

function retype(v: unknown, to: Extract<Mutation, { op: 'retype' }>['to']): unknown {
  switch (to) {
    case 'string':
      return isContainer(v) ? JSON.stringify(v) : String(v);
    case 'number':
      return typeof v === 'string' ? Number(v) : isContainer(v) ? Object.keys(v).length : 7;
    case 'list':
      return isContainer(v) ? Object.values(v) : [v];
    case 'map':
      return Array.isArray(v) ? Object.fromEntries(v.map((x, i) => [String(i), x])) : { value: v };
    case 'null':
      return null;
    case 'bool':
      return !v;
  }
}

function describePath(path: Path): string {
  return (
    path
      .map((p) =>
        typeof p === 'number' ? `[${p}]` : JSON.stringify(p).length > 40 ? `"${String(p).slice(0, 20)}…"` : String(p),
      )
      .join('.') || '(root)'
  );
}

/** A document, its raw splices and duplicated keys, ready to serialize. */
interface Mutated {
  readonly value: unknown;
  readonly raws: readonly string[];
  readonly dups: readonly Path[];
  readonly labels: readonly string[];
}

/** Applies the mutations of a case to a deep copy of its seed. */
export function mutate(seed: SeedDoc, mutations: readonly Mutation[]): Mutated {
  const box: { root: unknown } = { root: structuredClone(seed.value) };
  const raws: string[] = [];
  const dups: Path[] = [];
  const labels: string[] = [seed.name];
  const put = (odd: Odd): unknown => {
    const made = odd.make();
    if ('raw' in made) {
      raws.push(made.raw);
      return `RAWVALUE${raws.length - 1}Z`;
    }
    return structuredClone(made.value);
  };
  for (const m of mutations) {
    const paths = pathsOf(box.root);
    const path = paths.length > 0 ? (paths[m.at % paths.length] as Path) : [];
    const place = describePath(path);
    switch (m.op) {
      case 'set':
        if (path.length === 0) box.root = put(m.odd);
        else setAt(box.root, path, put(m.odd));
        labels.push(`${place} := ${m.odd.label}`);
        break;
      case 'retype':
        if (path.length > 0) setAt(box.root, path, retype(at(box.root, path), m.to));
        labels.push(`${place} as ${m.to}`);
        break;
      case 'drop': {
        const parent = at(box.root, path.slice(0, -1));
        const key = path[path.length - 1];
        if (Array.isArray(parent) && typeof key === 'number') parent.splice(key, 1);
        else if (isContainer(parent) && key !== undefined) delete (parent as Record<string, unknown>)[String(key)];
        labels.push(`drop ${place}`);
        break;
      }
      case 'rename': {
        const parent = at(box.root, path.slice(0, -1));
        const key = path[path.length - 1];
        if (isContainer(parent) && !Array.isArray(parent) && typeof key === 'string') {
          const entries = Object.entries(parent).map(([k, v]): [string, unknown] => [k === key ? m.name : k, v]);
          for (const k of Object.keys(parent)) delete parent[k];
          for (const [k, v] of entries) setAt(parent, [k], v);
        }
        labels.push(
          `rename ${place} to ${JSON.stringify(m.name.length > 40 ? `${m.name.slice(0, 20)}…(${m.name.length})` : m.name)}`,
        );
        break;
      }
      case 'add': {
        const maps = [[] as Path, ...paths].filter(
          (p) => isContainer(at(box.root, p)) && !Array.isArray(at(box.root, p)),
        );
        const target = maps[m.at % maps.length] ?? [];
        if (isContainer(at(box.root, target))) setAt(box.root, [...target, m.name], put(m.odd));
        labels.push(`add ${describePath([...target, m.name])} := ${m.odd.label}`);
        break;
      }
      case 'dup':
        if (path.length > 0 && typeof path[path.length - 1] === 'string') dups.push(path);
        labels.push(`duplicate key ${place}`);
        break;
      case 'clone': {
        const parent = at(box.root, path.slice(0, -1));
        const key = path[path.length - 1];
        if (isContainer(parent) && !Array.isArray(parent) && typeof key === 'string') {
          for (let i = 0; i < m.times; i++) setAt(parent, [`${key}_${i}`], structuredClone(parent[key]));
        }
        labels.push(`clone ${place} x ${m.times}`);
        break;
      }
      case 'duration': {
        // Durations sit at few places: picked among them and the timeouts every task may have, so that they are hit often.
        const tasks = at(box.root, ['tasks']);
        const timeouts: Path[] =
          isContainer(tasks) && !Array.isArray(tasks)
            ? Object.keys(tasks).map((id) => ['tasks', id, 'timeout'])
            : [['lease']];
        const places = [...paths.filter((p) => DURATION_KEYS.has(String(p[p.length - 1]))), ...timeouts];
        const target = places[m.at % places.length] as Path;
        if (isContainer(at(box.root, target.slice(0, -1)))) setAt(box.root, target, m.value);
        labels.push(`${describePath(target)} := duration ${JSON.stringify(m.value)}`);
        break;
      }
      case 'link': {
        const tasks = at(box.root, ['tasks']);
        const ids = isContainer(tasks) && !Array.isArray(tasks) ? Object.keys(tasks) : [];
        const from = ids[m.at % Math.max(1, ids.length)];
        const to = ids[m.to % Math.max(1, ids.length)];
        if (from !== undefined && to !== undefined && isContainer((tasks as Record<string, unknown>)[from])) {
          setAt(box.root, ['tasks', from, 'depends_on'], [to]);
        }
        labels.push(from === undefined ? 'link tasks (none to link)' : `tasks.${from}.depends_on := [${to}]`);
        break;
      }
    }
  }
  return { value: box.root, raws, dups, labels };
}

const RAW_MARKER = /(["']?)RAWVALUE(\d+)Z\1/g;

/** Serializes a mutated document; raw values are spliced in where their markers are. */
export function serialize(m: Mutated, format: 'yaml' | 'json'): string {
  let text: string;
  if (format === 'json') {
    text = JSON.stringify(m.value, null, 1) ?? 'null';
  } else {
    const doc = new Document(m.value);
    for (const path of m.dups) {
      const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
      if (!isMap(parent)) continue;
      const map = parent as YAMLMap;
      const pair = map.items.find(
        (p: Pair) => String((p.key as { value?: unknown } | null)?.value ?? p.key) === String(path[path.length - 1]),
      );
      if (pair) map.items.push(pair.clone());
    }
    text = doc.toString({ lineWidth: 0 });
  }
  return text.replace(RAW_MARKER, (_, _q: string, i: string) => m.raws[Number(i)] ?? '');
}

export function mutationArb(sizes: Sizes): fc.Arbitrary<Mutation> {
  const at = fc.nat();
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), at, odd: oddValue(sizes) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('retype' as const),
        at,
        to: fc.constantFrom('string', 'number', 'list', 'map', 'null', 'bool') as fc.Arbitrary<
          'string' | 'number' | 'list' | 'map' | 'null' | 'bool'
        >,
      }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('drop' as const), at }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('rename' as const), at, name: oddName(sizes) }) },
    {
      weight: 2,
      arbitrary: fc.record({ op: fc.constant('add' as const), at, name: oddName(sizes), odd: oddValue(sizes) }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('dup' as const), at }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('clone' as const),
        at,
        times: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: sizes.manyKeys })),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('link' as const), at, to: fc.nat() }) },
    {
      weight: 2,
      arbitrary: fc.record({ op: fc.constant('duration' as const), at, value: fc.constantFrom(...ODD_DURATIONS) }),
    },
  );
}

export function docCaseArb(seedCount: number, sizes: Sizes): fc.Arbitrary<DocCase> {
  return fc.record({
    seed: fc.nat({ max: seedCount - 1 }),
    mutations: fc.array(mutationArb(sizes), { minLength: 1, maxLength: 4 }),
    format: fc.constantFrom('yaml', 'yaml', 'yaml', 'json') as fc.Arbitrary<'yaml' | 'json'>,
  });
}

/** A document case, rendered: the bytes to write and a label. */
export interface Rendered {
  readonly bytes: Buffer;
  readonly label: string;
  readonly format: 'yaml' | 'json';
}

/**
 * A document case of any of the four families (structured, structured then edited as
 * bytes, random bytes, token soup), rendered when called: a sample of hundreds of cases
 * then holds descriptions, not megabytes.
 */
export function documentArb(seeds: readonly SeedDoc[], sizes: Sizes): fc.Arbitrary<() => Rendered> {
  const structured = docCaseArb(seeds.length, sizes).map((c) => (): Rendered => {
    const m = mutate(seeds[c.seed] as SeedDoc, c.mutations);
    return {
      bytes: Buffer.from(serialize(m, c.format), 'utf8'),
      label: `${m.labels.join('; ')} (${c.format})`,
      format: c.format,
    };
  });
  const edited = fc
    .tuple(docCaseArb(seeds.length, sizes), fc.array(textEditArb(), { minLength: 1, maxLength: 4 }))
    .map(([c, edits]) => (): Rendered => {
      const m = mutate(seeds[c.seed] as SeedDoc, c.mutations.slice(0, 1));
      const { bytes, labels } = editText(serialize(m, c.format), edits);
      return { bytes, label: `${[...m.labels, ...labels].join('; ')} (${c.format})`, format: c.format };
    });
  const garbage = fc
    .uint8Array({ maxLength: 8192 })
    .map((b) => (): Rendered => ({ bytes: Buffer.from(b), label: `${b.length} random bytes`, format: 'yaml' }));
  const soup = tokenSoupArb().map((t) => (): Rendered => ({
    bytes: Buffer.from(t, 'utf8'),
    label: 'YAML token soup',
    format: 'yaml',
  }));
  return fc.oneof(
    { weight: 6, arbitrary: structured },
    { weight: 2, arbitrary: edited },
    { weight: 1, arbitrary: garbage },
    { weight: 1, arbitrary: soup },
  );
}
