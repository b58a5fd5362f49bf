/**
 * A run pins its flow's definition in the store, its tasks in the compact form, and what is
 * read back must be the definition pinned, to the byte: the version of a YAML flow is
 * computed again from it before the run executes. On both stores, and for every flow of
 * the examples.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { flowVersion } from '../../src/app/flow-catalog.js';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openCatalog, openRuntime } from '../../src/app/runtime.js';
import { HISTORY_FORMAT, pinSpec, readPinnedSpec } from '../../src/core/run-history.js';
import { defineFlow } from '../../src/define/builder.js';
import { flowYaml, TASKS_MJS, workTask } from '../engine/harness.js';
import { REPO_ROOT } from '../e2e/cli-helpers.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import { storeSetups } from '../store/pg-helpers.js';

const stores = storeSetups('baton-pinned-');
let setup: StoreSetup | undefined;
let rt: Runtime | undefined;

afterEach(async () => {
  await rt?.close();
  rt = undefined;
  await setup?.cleanup();
  setup = undefined;
});

/** A YAML flow with flow defaults, tasks that differ from them, a map over a group and a pool. */
const FLOW = flowYaml(
  'pinned',
  [
    workTask('a'),
    workTask('b', { deps: ['a'], extra: 'retry: { max_attempts: 2, backoff: 1s }\ntimeout: 30s' }),
    workTask('c', { deps: ['a'], extra: 'pool: io\ntrigger_rule: all_done' }),
    [
      '  each:',
      '    depends_on: [b, c]',
      "    map: { over: '${{ params.items }}' }",
      '    tasks:',
      indent(workTask('one')),
      indent(workTask('two', { deps: ['one'] })),
    ].join('\n'),
  ],
  // Goes on the list of params that flowYaml opens.
  '  items: { type: array, default: [1, 2] }\npools:\n  io: 2\ndefaults:\n  retry: { max_attempts: 3 }\n  timeout: 5m\n',
);

function indent(lines: string): string {
  return lines.replace(/^/gm, '    ');
}

for (const kind of Object.keys(stores)) {
  describe(`pinned definitions on ${kind}`, () => {
    it('stores the tasks compactly, reads back the same version, and runs it', async () => {
      setup = await (stores[kind] as () => Promise<StoreSetup>)();
      mkdirSync(join(setup.dir, 'flows'));
      writeFileSync(join(setup.dir, 'flows', 'tasks.mjs'), TASKS_MJS);
      const file = join(setup.dir, 'flows', 'pinned.yaml');
      writeFileSync(file, FLOW);
      rt = await openRuntime({ cwd: setup.dir, env: setup.env });
      const flow = await rt.catalog.find(file);
      const { run } = await createRun(rt, flow, { params: { dir: setup.dir } });

      const record = await rt.store.getFlowVersion('pinned', flow.version);
      const stored = JSON.parse(record?.spec ?? '{}') as { v: number; tasks: { defaults: object; list: object[] } };
      expect(stored.v).toBe(HISTORY_FORMAT);
      expect(stored.tasks.defaults).toMatchObject({ retry: { maxAttempts: 3 }, timeoutMs: 300_000 });
      expect(stored.tasks.list[0]).toEqual({
        id: 'a',
        config: { module: './tasks.mjs', export: 'work' },
        with: expect.any(Object),
      });
      expect(record?.spec.length).toBeLessThan(JSON.stringify(flow.spec).length);
      const read = readPinnedSpec(record?.spec as string, 'flow pinned');
      expect(JSON.stringify(read)).toBe(JSON.stringify(flow.spec));

      // The engine's way in: the version is computed again from the definition read back.
      const resolved = await rt.catalog.resolve('pinned', flow.version);
      expect(JSON.stringify(resolved.plan.spec)).toBe(JSON.stringify(flow.spec));
      const engine = rt.createEngine();
      expect(await engine.execute(run.id)).toBe('succeeded');
      await engine.stop();
    });

    it('pins a flow defined in code compactly, and the run executes from it', async () => {
      setup = await (stores[kind] as () => Promise<StoreSetup>)();
      mkdirSync(join(setup.dir, 'flows'));
      rt = await openRuntime({ cwd: setup.dir, env: setup.env });
      const f = defineFlow({ name: 'coded' });
      const first = f.task('first', async () => 1);
      f.task('second', { after: [first], retry: { maxAttempts: 2 } }, async () => 2);
      const flow = rt.catalog.register(f);
      const { run } = await createRun(rt, flow);
      const record = await rt.store.getFlowVersion('coded', flow.version);
      expect((JSON.parse(record?.spec ?? '{}') as { tasks: { list: object[] } }).tasks.list[0]).toEqual({
        id: 'first',
      });
      const engine = rt.createEngine();
      expect(await engine.execute(run.id)).toBe('succeeded');
      await engine.stop();
    });
  });
}

describe('the flows of the examples', () => {
  it('read back from their pinned form as the same text and the same version', async () => {
    const projects = readdirSync(join(REPO_ROOT, 'examples'), { withFileTypes: true }).filter((d) => d.isDirectory());
    let checked = 0;
    for (const project of projects) {
      const { catalog } = await openCatalog({ cwd: join(REPO_ROOT, 'examples', project.name), env: {} });
      for (const entry of await catalog.list()) {
        // An example that needs its environment (a broker, a bucket) is checked by its own tests.
        if (!entry.flow) continue;
        const { spec } = entry.flow;
        const read = readPinnedSpec(pinSpec(spec), `flow ${spec.name}`);
        expect(JSON.stringify(read), entry.path).toBe(JSON.stringify(spec));
        expect(flowVersion(read, ['source']), entry.path).toBe(flowVersion(spec, ['source']));
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });
});
