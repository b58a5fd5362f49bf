/**
 * Fuzz of baton.yaml: mutated project configurations, garbled text and garbage through the
 * config loader in process, a few through a real `baton runs`, and odd files in its place
 * (a folder, a named pipe, a device, a dangling link) through the CLI. Every case ends with
 * a configuration or CONFIG_INVALID, in bounded time and output (oracle.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { configSeeds, documentArb, mutate, serialize } from './documents.js';
import { CaseRunner, describeOutcome, runInProcess } from './in-process.js';
import { CASE_DEADLINE_MS, Findings, fuzzSeed, judgeCli, preview, scaled } from './oracle.js';
import { TempDirs, inParallel, killAll, runBaton } from './processes.js';
import { CLI_SIZES, IN_PROCESS_SIZES } from './values.js';

const seeds = configSeeds();
const runner = new CaseRunner({ tasksModule: '' });
const temp = new TempDirs();

afterAll(async () => {
  await runner.close();
  await killAll();
  temp.removeAll();
});

it('loads every seed baton.yaml unchanged, so that mutations start from valid files', async () => {
  for (const seed of seeds) {
    const bytes = Buffer.from(serialize(mutate(seed, []), 'yaml'), 'utf8');
    const { outcome } = await runner.run({ target: 'config', bytes }, CASE_DEADLINE_MS);
    expect(outcome.kind === 'ok' ? 'ok' : describeOutcome(outcome), seed.name).toBe('ok');
  }
}, 600_000);

it('loads every fuzzed baton.yaml to a configuration or CONFIG_INVALID, in process', async () => {
  const seed = fuzzSeed() + 10;
  const findings = new Findings('baton.yaml (in process)', seed);
  const cases = fc.sample(documentArb(seeds, IN_PROCESS_SIZES), { seed, numRuns: scaled(200) });
  await runInProcess(runner, findings, cases.length, (i) => {
    const doc = (cases[i] as (typeof cases)[number])();
    return { job: { target: 'config', bytes: doc.bytes }, label: doc.label, input: doc.bytes };
  });
  console.info(findings.summary());
  findings.assertNone();
}, 600_000);

/** What stands where baton.yaml should be, made in `dir`. */
const ODD_CONFIG_FILES: readonly { readonly label: string; make(path: string): void }[] = [
  { label: 'a folder', make: (p) => mkdirSync(p) },
  { label: 'a named pipe with no writer', make: (p) => execFileSync('mkfifo', [p]) },
  { label: 'a link to /dev/zero', make: (p) => symlinkSync('/dev/zero', p) },
  { label: 'a link to /dev/null', make: (p) => symlinkSync('/dev/null', p) },
  { label: 'a dangling link', make: (p) => symlinkSync(join(p, '..', 'nowhere'), p) },
  { label: 'a link to itself', make: (p) => symlinkSync(p, p) },
  { label: '12 MB of a comment', make: (p) => writeFileSync(p, `#${'x'.repeat(12 * 1024 * 1024)}\n`) },
];

it('answers `baton runs` under a fuzzed or odd baton.yaml with a result or a coded error', async () => {
  const seed = fuzzSeed() + 11;
  const findings = new Findings('baton runs under a fuzzed baton.yaml', seed);
  const fuzzed = fc.sample(documentArb(seeds, CLI_SIZES), { seed, numRuns: scaled(6) }).map((make) => {
    const doc = make();
    return { label: doc.label, input: preview(doc.bytes), make: (p: string) => writeFileSync(p, doc.bytes) };
  });
  const odd = ODD_CONFIG_FILES.map((o) => ({ label: `baton.yaml is ${o.label}`, input: o.label, make: o.make }));
  await inParallel([...odd, ...fuzzed], 2, async (c, i) => {
    const dir = temp.make('baton-fuzz-config-');
    c.make(join(dir, 'baton.yaml'));
    // --db names the store, so that only the file's parsing is at stake.
    const args = ['--db', join(dir, 'baton.db'), 'runs', '--json'];
    const exec = await runBaton(args, { cwd: dir, deadlineMs: CASE_DEADLINE_MS, env: { BATON_JSON_ERRORS: '1' } });
    findings.record(i, c.label, exec.ms, judgeCli(exec), () =>
      [
        `baton runs --json`,
        `baton.yaml ${c.input}`,
        `exit ${exec.code ?? exec.signal}`,
        `stderr ${preview(exec.stderr, 400)}`,
      ].join('\n'),
    );
  });
  console.info(findings.summary());
  findings.assertNone();
}, 600_000);
