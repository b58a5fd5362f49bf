/**
 * Fuzz of command-line options through the real `baton`: numbers out of range, huge,
 * negative or not numbers at all, impossible durations, odd run ids, and odd paths (a
 * folder, a named pipe, a device) where a file or a database is expected. Commands that
 * run until stopped (`worker`, `dev`, `scheduler`) get only bad values, and must refuse
 * them at once. Every case ends with exit 0 or a coded error (oracle.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, it } from 'vitest';
import type { CliExpectation } from './oracle.js';
import { CASE_DEADLINE_MS, Findings, fuzzSeed, judgeCli, preview, scaled } from './oracle.js';
import { TempDirs, inParallel, killAll, runBaton } from './processes.js';
import { ODD_DURATIONS, ODD_STRINGS } from './values.js';

/** A command that runs until stopped must refuse a bad value well before this. */
const REFUSAL_DEADLINE_MS = 15_000;

/** Texts for `<n>` options that are not positive integers, or are out of any sane range. */
const BAD_COUNTS = [
  '0',
  '-1',
  '1.5',
  'abc',
  '',
  ' ',
  'NaN',
  'Infinity',
  '-Infinity',
  '1e400',
  '99999999999999999999',
  `1${'0'.repeat(400)}`,
  '١٢',
  '--',
  '4294967296',
];
/** Texts a tolerant parser might take for a number; any answer but a crash is fine for a short command. */
const ODD_COUNTS = [
  ...BAD_COUNTS,
  '1',
  '50',
  '10000',
  '1e3',
  '0x10',
  ' 5',
  '5 ',
  '007',
  '2147483648',
  '9007199254740993',
];

/** Dates for backfill ranges: far apart (millions of intervals), impossible, or not dates. */
const ODD_DATES = [
  '2024-01-01',
  '0001-01-01',
  '9999-12-31',
  '+275760-09-13',
  '-271821-04-20',
  '2024-13-45',
  '2024-02-30',
  '',
  'now',
  '1e400',
  '2024-01-01T00:00:00+99:00',
  '1700000000000',
];

const FLOW = `name: ticker
triggers:
  often: { kind: interval, every: 1h }
  hook: { kind: webhook }
tasks:
  work:
    kind: shell
    command: [echo, ok]
`;

interface CliCase {
  readonly label: string;
  /** Arguments after `--db <db>` (or all of them, with `ownDb`). */
  readonly args: (dir: string) => string[];
  readonly expect?: CliExpectation;
  readonly env?: Record<string, string>;
  readonly deadlineMs?: number;
  /** The case names its own database. */
  readonly ownDb?: boolean;
}

let project = '';
const temp = new TempDirs();

beforeAll(() => {
  project = temp.make('baton-fuzz-options-');
  mkdirSync(join(project, 'flows'));
  mkdirSync(join(project, 'empty-folder'));
  writeFileSync(join(project, 'flows', 'ticker.yaml'), FLOW);
  execFileSync('mkfifo', [join(project, 'pipe.yaml')]);
  execFileSync('mkfifo', [join(project, 'pipe.db')]);
});

afterAll(async () => {
  await killAll();
  temp.removeAll();
});

/** Odd paths where a flow file or a folder of flows is expected. */
const ODD_PATHS: readonly ((dir: string) => string)[] = [
  () => '/dev/null',
  () => '/dev/zero',
  (d) => join(d, 'empty-folder'),
  (d) => join(d, 'pipe.yaml'),
  (d) => join(d, 'missing.yaml'),
  (d) => join(d, `${'d'.repeat(255)}.yaml`),
  (d) => join(d, `${'x/'.repeat(2000)}f.yaml`),
  (d) => join(d, '😀 \u202E.yaml'),
];

/** Odd databases: a device, a folder, a pipe, a URL with a password that must not be printed. */
const ODD_DATABASES: readonly {
  readonly label: string;
  readonly db: (dir: string) => string;
  readonly secret?: string;
}[] = [
  { label: '/dev/null', db: () => '/dev/null' },
  { label: 'a folder', db: (d) => join(d, 'empty-folder') },
  { label: 'a named pipe', db: (d) => join(d, 'pipe.db') },
  { label: 'a file in a missing folder', db: (d) => join(d, 'no', 'such', 'dir', 'b.db') },
  {
    label: 'an unknown URL scheme with a password',
    db: () => 'postgress://baton:s3cretpw@127.0.0.1/baton',
    secret: 's3cretpw',
  },
  {
    label: 'a PostgreSQL URL nobody listens on',
    db: () => 'postgres://baton:s3cretpw@127.0.0.1:1/baton',
    secret: 's3cretpw',
  },
];

/** The cases, each family sampled with its own count so that every family is covered. */
function cases(seed: number): CliCase[] {
  const pick = <T>(arb: fc.Arbitrary<T>, n: number, offset: number): T[] =>
    fc.sample(arb, { seed: seed + offset, numRuns: scaled(n) });
  /** `n` different values of a list, so that a small family does not test one value twice. */
  const some = <T>(list: readonly T[], n: number, offset: number): T[] => {
    const k = Math.min(list.length, scaled(n));
    return (
      fc.sample(fc.shuffledSubarray([...list], { minLength: k, maxLength: k }), {
        seed: seed + offset,
        numRuns: 1,
      })[0] ?? []
    );
  };
  const id = fc.oneof(
    fc.constantFrom(...ODD_STRINGS),
    fc.constantFrom('last', 'r', '%', '_', "' OR 1=1 --", '*', 'x'.repeat(100_000)),
    fc.string({ unit: 'binary', maxLength: 30 }),
  );
  const out: CliCase[] = [];
  for (const v of some(ODD_COUNTS, 4, 1))
    out.push({ label: `runs --limit ${JSON.stringify(v)}`, args: () => ['runs', '--limit', v] });
  for (const v of some(ODD_COUNTS, 2, 2))
    out.push({
      label: `triggers history often --limit ${JSON.stringify(v)}`,
      args: () => ['triggers', 'history', 'often', '--limit', v],
    });
  for (const v of some(ODD_COUNTS, 2, 3)) {
    out.push({
      label: `backfill ticker --max-parallel ${JSON.stringify(v)} --plan`,
      args: () => ['backfill', 'ticker', '--from', '2024-01-01', '--to', '2024-01-02', '--max-parallel', v, '--plan'],
    });
  }
  for (const v of some([...BAD_COUNTS, '10001', '1000000'], 4, 4)) {
    out.push({
      label: `worker -c ${JSON.stringify(v)}`,
      args: () => ['worker', '-c', v],
      expect: { refuse: true },
      deadlineMs: REFUSAL_DEADLINE_MS,
    });
  }
  for (const v of some([...BAD_COUNTS, '65536', '99999', '4294967297'], 3, 5)) {
    out.push({
      label: `dev --port ${JSON.stringify(v)}`,
      args: () => ['dev', '--port', v],
      expect: { refuse: true },
      deadlineMs: REFUSAL_DEADLINE_MS,
    });
  }
  // The widest range there is (87 million hourly intervals) always, then random pairs.
  const ranges: [string, string][] = [
    ['0001-01-01', '9999-12-31'],
    ...pick(fc.tuple(fc.constantFrom(...ODD_DATES), fc.constantFrom(...ODD_DATES)), 3, 8),
  ];
  for (const [from, to] of ranges) {
    out.push({
      label: `backfill ticker --from ${JSON.stringify(from)} --to ${JSON.stringify(to)} --plan`,
      args: () => ['backfill', 'ticker', '--from', from, '--to', to, '--plan', '--json'],
    });
  }
  for (const v of some([...ODD_DURATIONS, '30d', ''], 5, 6)) {
    out.push({ label: `db prune --older-than ${JSON.stringify(v)}`, args: () => ['db', 'prune', '--older-than', v] });
  }
  for (const [i, v] of pick(id, 4, 7).entries()) {
    const command = (['show', 'logs', 'cancel', 'retry'] as const)[i % 4] as string;
    const text = v.replace(/\0/g, ''); // argv cannot carry NUL
    out.push({ label: `${command} ${preview(text, 40)}`, args: () => [command, text] });
  }
  // Values as long as a command line allows (128 KiB an argument): an error quotes them cut short, never whole.
  const huge = '9'.repeat(100_000);
  out.push(
    { label: 'runs --limit <100,000 digits>', args: () => ['runs', '--limit', huge] },
    { label: 'db prune --older-than <100,000 digits>d', args: () => ['db', 'prune', '--older-than', `${huge}d`] },
    { label: 'show <a 100,000-character id>', args: () => ['show', 'r'.repeat(100_000)] },
  );
  for (const [i, path] of ODD_PATHS.entries()) {
    out.push({
      label: `validate <${['/dev/null', '/dev/zero', 'an empty folder', 'a named pipe', 'a missing file', 'a 260-byte name', 'a path 4000 deep', 'a unicode name'][i]}>`,
      args: (d) => ['validate', path(d), '--json'],
      expect: { validateJson: true },
    });
  }
  for (const o of ODD_DATABASES) {
    out.push({
      label: `--db <${o.label}> runs`,
      args: (d) => ['--db', o.db(d), 'runs'],
      ownDb: true,
      expect: { storeErrors: true, ...(o.secret ? { secrets: [o.secret] } : {}) },
    });
  }
  for (const [name, v] of [
    ['BATON_CONCURRENCY', '0'],
    ['BATON_POOL_SIZE', '99999999999999999999'],
    ['BATON_DATABASE', '/dev/null'],
  ] as const) {
    out.push({
      label: `${name}=${v} runs`,
      args: () => ['runs'],
      env: { [name]: v },
      expect: { storeErrors: name === 'BATON_DATABASE' },
    });
  }
  return out;
}

it('answers fuzzed option values, ids and paths with exit 0 or a coded error, and refuses bad values of long-running commands at once', async () => {
  const seed = fuzzSeed() + 30;
  const findings = new Findings('CLI options', seed);
  await inParallel(cases(seed), 2, async (c, i) => {
    const args = c.ownDb ? c.args(project) : ['--db', join(project, 'baton.db'), ...c.args(project)];
    const exec = await runBaton(args, {
      cwd: project,
      deadlineMs: c.deadlineMs ?? CASE_DEADLINE_MS,
      env: { BATON_JSON_ERRORS: '1', ...c.env },
    });
    findings.record(i, c.label, exec.ms, judgeCli(exec, c.expect), () =>
      [
        `baton ${c.label}`,
        `exit ${exec.code ?? exec.signal}`,
        `stderr ${preview(exec.stderr, 400)}`,
        `stdout ${preview(exec.stdout, 200)}`,
      ].join('\n'),
    );
  });
  console.info(findings.summary());
  findings.assertNone();
}, 600_000);

it('prints a failing command in text as `error: CODE: message`, without a stack', async () => {
  const seed = fuzzSeed() + 31;
  const findings = new Findings('CLI options, text errors', seed);
  const text = [
    ['db', 'prune', '--older-than', '99999999999d'],
    ['show', 'x'.repeat(5000)],
    ['validate', join(project, 'empty-folder')],
  ];
  await inParallel(text, 2, async (args, i) => {
    const exec = await runBaton(['--db', join(project, 'baton.db'), ...args], {
      cwd: project,
      deadlineMs: CASE_DEADLINE_MS,
    });
    const symptom = judgeCli(exec, { text: true });
    findings.record(
      i,
      `baton ${args.map((a) => preview(a, 30)).join(' ')}`,
      exec.ms,
      symptom,
      () => `exit ${exec.code}\nstderr ${preview(exec.stderr, 400)}`,
    );
  });
  console.info(findings.summary());
  findings.assertNone();
}, 600_000);
