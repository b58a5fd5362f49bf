/**
 * Fuzz of run params: `--param` pairs and JSON values through the params parser and
 * resolver in process, then `baton run -p` and `baton run --params-file` on a real flow
 * with odd values and odd files (a folder, a named pipe, /dev/zero, huge or deep files).
 * Every case ends with a run or a coded refusal, in bounded time and output (oracle.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, it } from 'vitest';
import type { ParamSpec } from '../../src/core/model.js';
import { CaseRunner, runInProcess } from './in-process.js';
import { CASE_DEADLINE_MS, Findings, fuzzSeed, judgeCli, preview, scaled } from './oracle.js';
import { TempDirs, inParallel, killAll, runBaton } from './processes.js';
import { CLI_SIZES, IN_PROCESS_SIZES, aliasBombRaw, deepRaw, jsonBodyArb, paramPairArb } from './values.js';

/** One param of each type, and a free string that the task prints. */
const SPECS: Record<string, ParamSpec> = {
  s: { type: 'string', default: 'a', enum: ['a', 'b', 'c'] },
  n: { type: 'number', default: 1.5 },
  i: { type: 'integer', default: 3 },
  b: { type: 'boolean', default: true },
  o: { type: 'object', default: { k: 'v' } },
  l: { type: 'array', default: [1, 2] },
  free: { type: 'string', default: '' },
};
const NAMES = Object.keys(SPECS);

const FLOW = `name: params
params:
  s: { type: string, default: a, enum: [a, b, c] }
  n: { type: number, default: 1.5 }
  i: { type: integer, default: 3 }
  b: { type: boolean, default: true }
  o: { type: object, default: { k: v } }
  l: { type: array, default: [1, 2] }
  free: { type: string, default: '' }
tasks:
  echo:
    kind: shell
    command: [echo, '\${{ params.free }}']
    retry: { max_attempts: 1 }
`;

const runner = new CaseRunner({ tasksModule: '' });
const temp = new TempDirs();

afterAll(async () => {
  await runner.close();
  await killAll();
  temp.removeAll();
});

function project(): string {
  const dir = temp.make('baton-fuzz-params-');
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'flows', 'params.yaml'), FLOW);
  return dir;
}

it('resolves every fuzzed --param list to params or a coded refusal, in process', async () => {
  const seed = fuzzSeed() + 20;
  const findings = new Findings('--param lists (in process)', seed);
  const lists = fc.sample(fc.array(paramPairArb(NAMES, IN_PROCESS_SIZES), { maxLength: 6 }), {
    seed,
    numRuns: scaled(150),
  });
  await runInProcess(runner, findings, lists.length, (i) => {
    const pairs = lists[i] ?? [];
    const label = `--param ${pairs.map((p) => preview(p, 40)).join(' ')}`;
    return { job: { target: 'param-text', specs: SPECS, pairs }, label, input: pairs.join('\n') };
  });
  console.info(findings.summary());
  findings.assertNone();
}, 600_000);

it('resolves every fuzzed params object (a webhook body, a params file) to params or RUN_PARAM_INVALID, in process', async () => {
  const seed = fuzzSeed() + 22;
  const findings = new Findings('params objects (in process)', seed);
  const bodies = fc.sample(jsonBodyArb(NAMES, IN_PROCESS_SIZES), { seed, numRuns: scaled(150) });
  await runInProcess(runner, findings, bodies.length, (i) => {
    const body = bodies[i] as (typeof bodies)[number];
    const json = body.text();
    return { job: { target: 'param-values', specs: SPECS, json }, label: `params ${body.label}`, input: json };
  });
  console.info(findings.summary());
  findings.assertNone();
}, 600_000);

/** Params files that are not what they should be: the path, made in `dir`. */
const ODD_PARAMS_FILES: readonly { readonly label: string; make(dir: string): string }[] = [
  { label: '/dev/null', make: () => '/dev/null' },
  { label: '/dev/zero', make: () => '/dev/zero' },
  { label: 'a folder', make: (d) => d },
  { label: 'a missing file', make: (d) => join(d, 'missing.json') },
  {
    label: 'a named pipe with no writer',
    make: (d) => {
      execFileSync('mkfifo', [join(d, 'pipe.json')]);
      return join(d, 'pipe.json');
    },
  },
  { label: 'an empty file', make: (d) => write(d, 'empty.json', '') },
  {
    label: '12 MB of JSON string',
    make: (d) => write(d, 'big.json', JSON.stringify({ free: 'x'.repeat(12 * 1024 * 1024) })),
  },
  { label: 'a list nested 100000 deep', make: (d) => write(d, 'deep.json', `{"l": ${deepRaw('list', 100_000)}}`) },
  { label: 'an unclosed list 100000 deep', make: (d) => write(d, 'open.yaml', `l: ${deepRaw('unclosed', 100_000)}`) },
  { label: 'an alias bomb', make: (d) => write(d, 'bomb.yaml', `o: {bomb: ${aliasBombRaw(9, 12)}}\n`) },
  { label: 'a YAML list', make: (d) => write(d, 'list.yaml', '- a\n- b\n') },
  { label: 'an undefined alias', make: (d) => write(d, 'alias.yaml', 'free: *nowhere\n') },
  {
    label: 'random bytes',
    make: (d) => write(d, 'bytes.json', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256))),
  },
];

function write(dir: string, name: string, text: string | Buffer): string {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

it('answers `baton run` with fuzzed -p values and odd --params-file paths with a run or a coded refusal', async () => {
  const seed = fuzzSeed() + 21;
  const findings = new Findings('baton run -p / --params-file', seed);
  // argv cannot carry NUL: spawn would refuse the case before Baton sees it.
  const pairs = fc
    .sample(fc.array(paramPairArb(NAMES, CLI_SIZES), { minLength: 1, maxLength: 3 }), { seed, numRuns: scaled(10) })
    .map((list) => list.map((p) => p.replace(/\0/g, '')));
  const fromText = pairs.map((list) => ({
    label: `-p ${list.map((p) => preview(p, 40)).join(' -p ')}`,
    args: (_dir: string) => list.flatMap((p) => ['-p', p]),
  }));
  const fromFiles = ODD_PARAMS_FILES.map((f) => ({
    label: `--params-file ${f.label}`,
    args: (dir: string) => ['--params-file', f.make(dir)],
  }));
  await inParallel([...fromFiles, ...fromText], 2, async (c, i) => {
    const dir = project();
    const args = ['--db', join(dir, 'baton.db'), 'run', 'params', ...c.args(dir), '-q', '--json'];
    const exec = await runBaton(args, { cwd: dir, deadlineMs: CASE_DEADLINE_MS, env: { BATON_JSON_ERRORS: '1' } });
    findings.record(i, c.label, exec.ms, judgeCli(exec, { runJson: true }), () =>
      [`baton run params ${c.label}`, `exit ${exec.code ?? exec.signal}`, `stderr ${preview(exec.stderr, 400)}`].join(
        '\n',
      ),
    );
  });
  console.info(findings.summary());
  findings.assertNone();
}, 600_000);
