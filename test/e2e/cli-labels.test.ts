/**
 * Run labels from the command line, on both stores: `baton run --label k=v` keeps them on
 * the run, `baton runs --label` lists the runs that have every label asked for, `show` and
 * every `--json` output carry them, and a bad label is refused before anything is created.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { storeSetups } from '../store/pg-helpers.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import type { CliResult, RunJson } from './cli-helpers.js';
import { baton, describeResult, parseJson, useTempDirs } from './cli-helpers.js';

// Registers the check that every test stops the processes it starts.
useTempDirs();

const STORES = storeSetups('baton-e2e-labels-');
const setups: StoreSetup[] = [];

afterEach(async () => {
  for (const s of setups.splice(0)) await s.cleanup();
});

const FLOW = `name: hello
tasks:
  greet:
    kind: shell
    command: ["echo", "hello"]
`;

type LabelledRun = RunJson & { readonly labels: Record<string, string> };

async function project(store: string): Promise<(args: readonly string[]) => Promise<CliResult>> {
  const setup = await (STORES[store] as () => Promise<StoreSetup>)();
  setups.push(setup);
  mkdirSync(join(setup.dir, 'flows'));
  writeFileSync(join(setup.dir, 'baton.yaml'), 'concurrency: 2\n');
  writeFileSync(join(setup.dir, 'flows', 'hello.yaml'), FLOW);
  return (args) => baton(args, { cwd: setup.dir, env: setup.env });
}

function ok(result: CliResult): CliResult {
  expect(result.code, describeResult(result)).toBe(0);
  return result;
}

for (const store of Object.keys(STORES)) {
  describe(`run labels from the CLI on ${store}`, () => {
    it('keeps --label on the run, filters runs by every label given, and shows them', async () => {
      const cli = await project(store);
      const enqueue = async (labels: readonly string[]) =>
        parseJson<LabelledRun>(ok(await cli(['run', 'hello', '--enqueue', '--json', ...labels])));
      const prod = await enqueue(['--label', 'team=growth', '--label', 'env=prod']);
      const dev = await enqueue(['--label', 'team=growth', '--label', 'env=dev', '--label', 'example.com/url=a=b']);
      const plain = await enqueue([]);
      expect(prod.labels).toEqual({ team: 'growth', env: 'prod' });
      // The value is everything after the first `=`.
      expect(dev.labels).toEqual({ team: 'growth', env: 'dev', 'example.com/url': 'a=b' });
      expect(plain.labels).toEqual({});

      const listed = async (...labels: string[]) =>
        parseJson<LabelledRun[]>(ok(await cli(['runs', '--json', ...labels.flatMap((l) => ['--label', l])])))
          .map((r) => r.id)
          .sort();
      expect(await listed('team=growth')).toEqual([prod.id, dev.id].sort());
      expect(await listed('team=growth', 'env=prod')).toEqual([prod.id]);
      expect(await listed('example.com/url=a=b')).toEqual([dev.id]);
      expect(await listed('team=growth', 'env=staging')).toEqual([]);
      expect(await listed()).toHaveLength(3);

      const table = ok(await cli(['runs', '--label', 'env=prod'])).stdout;
      expect(table.split('\n')[0]).toMatch(/^RUN +FLOW +STATE +CREATED +DURATION +LABELS$/);
      expect(table).toContain(`${prod.id}  hello`);
      expect(table).toMatch(/env=prod,team=growth$/m);
      // A listing of runs without labels has no LABELS column.
      expect(ok(await cli(['runs', '--limit', '1'])).stdout.split('\n')[0]).not.toContain('LABELS');

      expect(ok(await cli(['show', prod.id])).stdout).toMatch(/^labels {3}env=prod,team=growth$/m);
      expect(ok(await cli(['show', plain.id])).stdout).not.toMatch(/^labels/m);
      expect(parseJson<LabelledRun>(ok(await cli(['show', dev.id, '--json']))).labels).toEqual(dev.labels);
    });

    it('refuses a bad label with RUN_LABEL_INVALID naming it, and creates no run', async () => {
      const cli = await project(store);
      const refused = async (labels: readonly string[], ...says: string[]) => {
        const result = await cli(['run', 'hello', '--enqueue', ...labels.flatMap((l) => ['--label', l])]);
        expect(result.code, describeResult(result)).toBe(2);
        expect(result.stderr).toContain('RUN_LABEL_INVALID');
        for (const text of says) expect(result.stderr).toContain(text);
      };
      await refused(['team'], 'label "team": expected key=value');
      await refused(['team='], 'label "team": the value is empty');
      await refused(['=growth'], 'a label key is empty');
      await refused(['team_=growth'], 'label "team_": the key must be letters, digits and _ . / -');
      await refused(['-team=growth'], 'label "-team": the key must be');
      await refused([`${'k'.repeat(64)}=v`], `label "${'k'.repeat(64)}": the key has 64 characters; at most 63`);
      await refused([`team=${'v'.repeat(257)}`], 'label "team": the value has 257 characters; at most 256');
      await refused(['team=a', 'team=b'], 'label "team" is given twice');
      await refused(
        Array.from({ length: 65 }, (_, i) => `k${i}=v`),
        '65 labels; at most 64 are allowed',
      );
      // Every problem is named at once.
      await refused(['ok=1', 'bad_=x', 'empty='], 'label "bad_": the key must be', 'label "empty": the value is empty');
      expect(parseJson<unknown[]>(ok(await cli(['runs', '--json'])))).toEqual([]);

      // The longest key and value, and 64 labels, are accepted.
      const edge = [`${'k'.repeat(63)}=${'v'.repeat(256)}`, ...Array.from({ length: 63 }, (_, i) => `k${i}=v`)];
      const made = parseJson<LabelledRun>(
        ok(await cli(['run', 'hello', '--enqueue', '--json', ...edge.flatMap((l) => ['--label', l])])),
      );
      expect(Object.keys(made.labels)).toHaveLength(64);

      const filter = await cli(['runs', '--label', 'Team!=x']);
      expect(filter.code, describeResult(filter)).toBe(2);
      expect(filter.stderr).toContain('label "Team!": the key must be');
    });
  });
}
