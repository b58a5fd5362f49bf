// `node scripts/record-histories.js [name ...]`: records the corpus of run histories in
// test/fixtures/histories. Each scenario runs a real flow through the engine, on a
// temporary SQLite store and a virtual clock (the testing kit), and writes one file per run:
// the pinned flow definition and the events exactly as the store keeps them, and the final
// state the engine recorded in its derived rows (the run's state, each task's state,
// attempts, output and error code). test/core/history-corpus.test.ts folds every file and
// compares. Files already there are kept: the corpus is the record of what every earlier
// format wrote. From format 2 on, a file's name ends in its format (`chain-v2.json`), so
// that raising the format records every scenario again beside the files of the formats
// before it. Without names, records every scenario whose file is missing.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as prettier from 'prettier';
import { tsImport } from 'tsx/esm/api';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'test', 'fixtures', 'histories');
const load = (path) => tsImport(pathToFileURL(join(root, path)).href, import.meta.url);
const { createTestKit } = await load('src/testing/index.ts');
const { defineFlow } = await load('src/define/builder.ts');
const { compilePlan, foldRun } = await load('src/core/run-machine.ts');
const { HISTORY_FORMAT, readPinnedSpec } = await load('src/core/run-history.ts');
const { taskIdOf } = await load('src/core/run-topology.ts');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const flaky =
  (times, code = 'FLAKY') =>
  (ctx) => {
    if (ctx.attempt <= times) throw Object.assign(new Error(`planned failure ${ctx.attempt}`), { code });
    return { attempt: ctx.attempt };
  };
const fail = (code) => () => {
  throw Object.assign(new Error(`planned ${code}`), { code });
};
const retry = (maxAttempts) => ({ maxAttempts, backoff: '1m', jitter: 'none' });

/**
 * The scenarios: name → what it shows, and a function that runs it in a kit and returns
 * the runs to record (name suffix → run id).
 */
const SCENARIOS = {
  chain: {
    description: 'three tasks one after the other, each reading its upstream output',
    async run(kit) {
      const f = defineFlow({ name: 'chain', params: { n: { type: 'integer', default: 2 } } });
      const a = f.task('extract', (ctx) => ({ rows: ctx.params.n * 10 }));
      const b = f.task('transform', { inputs: { a } }, (ctx) => ({ rows: ctx.inputs.a.rows + 1 }));
      f.task('load', { inputs: { b } }, (ctx) => `loaded ${ctx.inputs.b.rows}`);
      const run = await kit.run(f, { params: { n: 3 } });
      await expectState(run, 'succeeded');
      return { '': run.id };
    },
  },
  'fan-out': {
    description: 'one task fans out to three, a join waits for all, a quorum task for two of them',
    async run(kit) {
      const f = defineFlow({ name: 'fan_out' });
      const src = f.task('source', () => [1, 2, 3]);
      const parts = ['eu', 'us', 'apac'].map((r) => f.task(`copy_${r}`, { after: [src] }, () => r));
      f.task('join', { after: parts }, () => 'joined');
      f.task('two_done', { after: parts, triggerRule: { kOfN: 2, cancelRest: false } }, () => 'quorum');
      const run = await kit.run(f);
      await expectState(run, 'succeeded');
      return { '': run.id };
    },
  },
  'failure-skips': {
    description: 'a failed branch skips its downstream (upstream failed), all_done runs anyway, finally runs last',
    async run(kit) {
      const f = defineFlow({ name: 'failure_skips' });
      const ok = f.task('ok', () => 'fine');
      const bad = f.task('bad', fail('VALIDATION'));
      f.task('after_bad', { after: [bad] }, () => 'never');
      f.task('report', { after: [ok, bad], triggerRule: 'all_done' }, () => 'reported');
      f.task('on_one_failed', { after: [ok, bad], triggerRule: 'one_failed' }, () => 'alerted');
      f.task('cleanup', { finally: true }, () => 'cleaned');
      const run = await kit.run(f);
      await expectState(run, 'failed');
      return { '': run.id };
    },
  },
  retries: {
    description: 'retries with backoff: one task succeeds on its third attempt, one uses up its attempts',
    async run(kit) {
      const f = defineFlow({ name: 'retries' });
      f.task('flaky', { retry: retry(4) }, flaky(2, 'RATE_LIMITED'));
      const spent = f.task('spent', { retry: retry(2) }, flaky(5, 'ECONNRESET'));
      f.task('never_retried', { retry: { ...retry(3), neverRetryOn: ['VALIDATION'] } }, fail('VALIDATION'));
      f.task('downstream', { after: [spent] }, () => 'never');
      const run = await kit.run(f);
      await expectState(run, 'failed');
      return { '': run.id };
    },
  },
  map: {
    description: 'a map over an upstream list with max_parallel 2, and a mapped group, reduced downstream',
    async run(kit) {
      const f = defineFlow({ name: 'map', params: { pairs: { type: 'array', default: [10, 20, 30] } } });
      const list = f.task('list', () => [3, 1, 2, 5, 4]);
      const squares = f.map('square', { over: list, maxParallel: 2 }, (ctx) => ctx.item * ctx.item);
      f.task('sum', { inputs: { squares } }, (ctx) => ctx.inputs.squares.reduce((a, b) => a + b, 0));
      const pairs = f.mapGroup('pairs', { over: '${{ params.pairs }}', batch: 2 }, (g) => {
        const first = g.task('first', (ctx) => ctx.item.reduce((a, b) => a + b, 0));
        g.task('second', { inputs: { first } }, (ctx) => ctx.inputs.first * 2);
      });
      f.task('after_pairs', { inputs: { pairs } }, (ctx) => ctx.inputs.pairs);
      const run = await kit.run(f);
      await expectState(run, 'succeeded');
      return { '': run.id };
    },
  },
  'map-item-failures': {
    description: 'map items that fail: one map goes on (on_item_failure continue), one fails with MAP_ITEM_FAILED',
    async run(kit) {
      const f = defineFlow({ name: 'map_item_failures' });
      const list = f.task('list', () => [1, 2, 3, 4]);
      const odd = (ctx) => {
        if (ctx.item % 2 === 0) throw Object.assign(new Error(`even ${ctx.item}`), { code: 'EVEN' });
        return ctx.item;
      };
      const tolerant = f.map('tolerant', { over: list, onItemFailure: 'continue' }, odd);
      f.task('after_tolerant', { inputs: { tolerant } }, (ctx) => ctx.inputs.tolerant.failures.length);
      const strict = f.map('strict', { over: list, maxParallel: 1 }, odd);
      f.task('after_strict', { inputs: { strict } }, () => 'never');
      const run = await kit.run(f);
      await expectState(run, 'failed');
      return { '': run.id };
    },
  },
  choice: {
    description: 'a choice picks one branch, the others are skipped, a join runs after whichever ran',
    async run(kit) {
      const f = defineFlow({ name: 'choice', params: { rows: { type: 'integer', default: 250 } } });
      const count = f.task('count', (ctx) => ctx.params.rows);
      f.choice('route', {
        after: [count],
        rules: [
          { when: '${{ tasks.count.output > 1000 }}', then: ['full'] },
          { when: '${{ tasks.count.output > 0 }}', then: ['incremental'] },
        ],
        otherwise: ['nothing'],
      });
      const full = f.task('full', () => 'full');
      const incremental = f.task('incremental', () => 'incremental');
      const nothing = f.task('nothing', () => 'nothing');
      f.task('done', { after: [full, incremental, nothing], triggerRule: 'none_failed_min_one_success' }, () => 'done');
      const run = await kit.run(f);
      await expectState(run, 'succeeded');
      return { '': run.id };
    },
  },
  race: {
    description: 'a race in mode first (the loser is cancelled as benign) and one in mode all with priorities',
    async run(kit) {
      const f = defineFlow({ name: 'race' });
      const fast = f.task('fast', () => ({ mirror: 'fast' }));
      const slow = f.sleep('slow', { duration: '10m' });
      f.race('mirror', { branches: [fast, slow] });
      const champion = f.task('champion', () => ({ auc: 0.91 }));
      const challenger = f.task('challenger', fail('NOT_READY'));
      f.race('select', { branches: [champion, challenger], mode: 'all', priority: [challenger, champion] });
      const run = await kit.run(f);
      await expectState(run, 'succeeded');
      return { '': run.id };
    },
  },
  subflow: {
    description: 'a parent run starts a child run of another flow and takes its outputs',
    async run(kit) {
      const child = defineFlow({ name: 'child', params: { region: { type: 'string' } } });
      child.task('load', (ctx) => `loaded ${ctx.params.region}`);
      await kit.add(child);
      const f = defineFlow({ name: 'parent' });
      const sub = f.subflow('per_region', { flow: 'child', params: { region: 'eu' } });
      f.task('report', { inputs: { sub } }, (ctx) => ctx.inputs.sub);
      const run = await kit.run(f);
      await expectState(run, 'succeeded');
      const [childRun] = await run.children();
      return { '': run.id, child: childRun.id };
    },
  },
  'waits-signals-approval': {
    description: 'a sleep, a wait for an event (the signal arrives first), an approval granted, a wait timed out',
    async run(kit) {
      const f = defineFlow({ name: 'waits', params: { order: { type: 'string', default: 'o-7' } } });
      const nap = f.sleep('nap', { duration: '15m' });
      const paid = f.waitForEvent('paid', { event: 'payment.received', match: '${{ params.order }}', timeout: '2h' });
      const review = f.approval('review', { after: [paid, nap], approvers: ['dana'], timeout: '1d' });
      f.task('ship', { after: [review], inputs: { paid } }, (ctx) => ctx.inputs.paid);
      f.waitForEvent('never', { event: 'never.sent', timeout: '30m' });
      const run = await kit.run(f);
      await run.signal('payment.received', { amount: 80 }, { key: 'o-7', by: 'billing' });
      await run.signal('unrelated', null, { by: 'someone' });
      await expectState(run, 'waiting');
      await run.advance('20m');
      await run.approve('review', { by: 'dana', comment: 'ship it' });
      await expectState(run, 'failed', { fireWaitTimeouts: true });
      return { '': run.id };
    },
  },
  'approval-rejected': {
    description: 'an approval rejected: the task fails APPROVAL_REJECTED without a retry, its handler runs',
    async run(kit) {
      const f = defineFlow({ name: 'approval_rejected' });
      const gate = f.approval('gate', {
        retry: retry(3),
        onFailure: { run: (ctx) => `rejected: ${ctx.error.code}` },
      });
      f.task('deploy', { after: [gate] }, () => 'never');
      const run = await kit.run(f);
      await expectState(run, 'waiting');
      await run.reject('gate', { by: 'erin', comment: 'not today' });
      await expectState(run, 'failed');
      return { '': run.id };
    },
  },
  'failure-handler': {
    description: 'failure handlers: one recovers its task (which succeeds with its output), one only reports',
    async run(kit) {
      const f = defineFlow({ name: 'failure_handler' });
      const fetch = f.task('fetch', { onFailure: { run: () => ({ cached: true }), recover: true } }, fail('TIMEOUT'));
      f.task('use', { inputs: { fetch } }, (ctx) => ctx.inputs.fetch);
      f.task('notify', { onFailure: { run: (ctx) => ctx.error.code, on: ['BOOM'] } }, fail('BOOM'));
      const run = await kit.run(f);
      await expectState(run, 'failed');
      return { '': run.id };
    },
  },
  cancel: {
    description: 'a run cancelled while a task waits and another is queued behind it; its finally task still runs',
    async run(kit) {
      const f = defineFlow({ name: 'cancel' });
      const first = f.task('first', () => 1);
      const hold = f.waitForEvent('hold', { after: [first], event: 'go' });
      f.task('next', { after: [hold] }, () => 'never');
      f.task('cleanup', { finally: true }, () => 'cleaned');
      const run = await kit.run(f);
      await expectState(run, 'waiting');
      await run.cancel('stopped by an operator');
      await expectState(run, 'cancelled');
      return { '': run.id };
    },
  },
  timeout: {
    description: 'a run timeout while a task sleeps: open tasks are cancelled, finally runs, the run fails RUN_TIMEOUT',
    async run(kit) {
      const f = defineFlow({ name: 'timeout', timeout: '1h' });
      f.task('quick', () => 'done');
      const long = f.sleep('long', { duration: '3h' });
      f.task('after_long', { after: [long] }, () => 'never');
      f.task('cleanup', { finally: true }, () => 'cleaned');
      const run = await kit.run(f);
      await expectState(run, 'failed');
      return { '': run.id };
    },
  },
  rerun: {
    description: 'a failed run retried (baton retry): its failed and skipped tasks run again and succeed',
    async run(kit) {
      let broken = true;
      const f = defineFlow({ name: 'rerun' });
      const a = f.task('a', () => 'a');
      const b = f.task('b', { after: [a] }, () => {
        if (broken) throw Object.assign(new Error('not yet'), { code: 'NOT_YET' });
        return 'b';
      });
      f.task('c', { after: [b] }, () => 'c');
      const run = await kit.run(f);
      await expectState(run, 'failed');
      broken = false;
      if (!(await kit.engine.applyDirect(run.id, { type: 'rerun', mode: 'failed' }, { includeFinished: true }))) {
        throw new Error('the rerun was not applied');
      }
      const again = kit.attach(run.id);
      await expectState(again, 'succeeded');
      return { '': run.id };
    },
  },
};

async function expectState(run, state, options = {}) {
  const got = await run.settle(options);
  if (got !== state) throw new Error(`run ${run.id} settled ${got}, expected ${state}`);
}

/** The file of one run: its pinned flow, its stored events, and the final state the engine recorded. */
async function record(kit, name, description, runId) {
  const run = await kit.store.getRun(runId);
  const pinned = await kit.store.getFlowVersion(run.flow, run.version);
  const events = (await kit.store.readEvents(runId)).map((e) => e.event);
  const rows = await kit.store.getTaskRuns(runId);
  const final = {
    state: run.state,
    error: run.error?.code ?? null,
    tasks: rows.map((t) => ({
      id: t.taskId,
      state: t.state,
      attempt: t.attempts,
      ...(t.output === undefined || t.output === null ? {} : { output: t.output }),
      error: t.error?.code ?? null,
    })),
  };
  // The derived rows and the fold must agree before they are recorded as the truth.
  const folded = foldRun(runId, compilePlan(readPinnedSpec(pinned.spec, name)), events);
  const mismatch = final.tasks.find((t, i) => {
    const f = folded.tasks[i];
    return (
      !f ||
      taskIdOf(folded, i) !== t.id ||
      f.state !== t.state ||
      f.attempt !== t.attempt ||
      JSON.stringify(f.output ?? null) !== JSON.stringify(t.output ?? null)
    );
  });
  if (folded.state !== final.state || folded.tasks.length !== final.tasks.length || mismatch) {
    throw new Error(`${name}: the fold of run ${runId} disagrees with the engine's rows (${mismatch?.id ?? 'run'})`);
  }
  return {
    name,
    description,
    recordedWith: `baton-orchestrator ${version}`,
    format: HISTORY_FORMAT,
    runId,
    flow: JSON.parse(pinned.spec),
    events,
    final,
  };
}

const args = process.argv.slice(2);
const force = args.includes('--force');
const names = args.filter((a) => a !== '--force');
for (const n of names)
  if (!SCENARIOS[n]) throw new Error(`no scenario ${n}; known: ${Object.keys(SCENARIOS).join(', ')}`);
mkdirSync(target, { recursive: true });
// Format 1 was recorded before names carried the format.
const formatSuffix = HISTORY_FORMAT === 1 ? '' : `-v${HISTORY_FORMAT}`;
const fileOf = (name) => join(target, `${name}.json`);
let written = 0;
for (const [name, scenario] of Object.entries(SCENARIOS)) {
  if (names.length > 0 && !names.includes(name)) continue;
  if (existsSync(fileOf(`${name}${formatSuffix}`)) && !force) {
    console.log(`${name}: kept (pass --force to record it again)`);
    continue;
  }
  const kit = await createTestKit({ startAt: '2030-01-01T00:00:00Z', concurrency: 1 });
  try {
    const runs = await scenario.run(kit);
    for (const [suffix, runId] of Object.entries(runs)) {
      const file = `${suffix ? `${name}-${suffix}` : name}${formatSuffix}`;
      const body = await record(kit, file, scenario.description, runId);
      // Formatted as the repository formats JSON, so that the format check leaves it alone.
      const options = { ...(await prettier.resolveConfig(fileOf(file))), filepath: fileOf(file) };
      // Stacks name this checkout's folder: the corpus names a neutral one, wherever it is recorded.
      const text = JSON.stringify(body).replaceAll(pathToFileURL(root).href, 'file:///project');
      writeFileSync(fileOf(file), await prettier.format(text, options));
      written++;
      console.log(`${file}: ${body.events.length} events, run ${body.final.state}`);
    }
  } finally {
    await kit.close();
  }
}
console.log(`${written} histories written to ${target}`);
