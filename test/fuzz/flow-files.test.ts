/**
 * Fuzz of flow files: mutated examples, garbled text and garbage, loaded as `baton
 * validate` and `baton run` load them. Many cases in process (the catalog and the plan
 * compiler in a case worker), a few through the real `baton validate`. Every case ends
 * with a spec or coded problems, in bounded time and output (oracle.ts).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { documentArb, flowSeeds, mutate, serialize, tasksModuleSource } from './documents.js';
import { CaseRunner, describeOutcome, runInProcess } from './in-process.js';
import { CASE_DEADLINE_MS, Findings, fuzzSeed, judgeCli, preview, scaled } from './oracle.js';
import { TempDirs, inParallel, killAll, runBaton } from './processes.js';
import { CLI_SIZES, IN_PROCESS_SIZES } from './values.js';

const seeds = flowSeeds();
const tasksModule = tasksModuleSource(seeds);
const runner = new CaseRunner({ tasksModule });
const temp = new TempDirs();

afterAll(async () => {
  await runner.close();
  await killAll();
  temp.removeAll();
});

it('loads every seed flow unchanged, so that mutations start from valid flows', async () => {
  const failed: string[] = [];
  for (const [i, seed] of seeds.entries()) {
    const bytes = Buffer.from(serialize(mutate(seed, []), 'yaml'), 'utf8');
    const { outcome } = await runner.run({ target: 'flow', file: `seed${i}.yaml`, bytes }, CASE_DEADLINE_MS);
    if (outcome.kind !== 'ok') failed.push(`${seed.name}: ${describeOutcome(outcome)}`);
  }
  expect(failed).toEqual([]);
}, 600_000);

it('loads every fuzzed flow file to a spec or to coded problems, in process', async () => {
  const seed = fuzzSeed();
  const findings = new Findings('flow files (in process)', seed);
  const cases = fc.sample(documentArb(seeds, IN_PROCESS_SIZES), { seed, numRuns: scaled(300) });
  await runInProcess(runner, findings, cases.length, (i) => {
    const doc = (cases[i] as (typeof cases)[number])();
    return {
      job: { target: 'flow', file: `case${i}.${doc.format}`, bytes: doc.bytes },
      label: doc.label,
      input: doc.bytes,
    };
  });
  console.info(findings.summary());
  findings.assertNone();
}, 600_000);

it('answers every fuzzed flow file through `baton validate` with a result or a coded error', async () => {
  const seed = fuzzSeed() + 1;
  const findings = new Findings('baton validate <fuzzed flow>', seed);
  const dir = temp.make('baton-fuzz-validate-');
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'flows', 'tasks.mjs'), tasksModule);
  const cases = fc.sample(documentArb(seeds, CLI_SIZES), { seed, numRuns: scaled(12) });
  await inParallel(cases, 2, async (make, i) => {
    const doc = make();
    const file = join('flows', `case${i}.${doc.format}`);
    writeFileSync(join(dir, file), doc.bytes);
    const args = ['--db', join(dir, 'baton.db'), 'validate', file, '--json'];
    const exec = await runBaton(args, { cwd: dir, deadlineMs: CASE_DEADLINE_MS, env: { BATON_JSON_ERRORS: '1' } });
    rmSync(join(dir, file), { force: true });
    findings.record(i, doc.label, exec.ms, judgeCli(exec, { validateJson: true }), () =>
      [
        `baton ${args.slice(2).join(' ')}`,
        `input ${preview(doc.bytes)}`,
        `exit ${exec.code ?? exec.signal}`,
        `stderr ${preview(exec.stderr, 400)}`,
      ].join('\n'),
    );
  });
  console.info(findings.summary());
  findings.assertNone();
}, 600_000);
