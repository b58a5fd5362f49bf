/**
 * The builder's maps, choices, quorums, races, waits, subflows, failure handlers and
 * finally tasks: the same normalized model as the flow-file loader, the same checks, the
 * code registered under the keys the engine looks up, and the types task code sees.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { BatonError, type Problem } from '../../src/core/errors.js';
import type { TaskError } from '../../src/core/model.js';
import { defineFlow, type TaskRef } from '../../src/define/builder.js';
import type { RaceResult } from '../../src/define/builder-types.js';
import { specOf, yaml } from './yaml-helpers.js';

/** The problems `toSpec` throws, as `<code> <message>` lines. */
function problemsOf(build: () => unknown): string[] {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(BatonError);
    return (error as BatonError).problems.map((p: Problem) => `${p.code} ${p.message}`);
  }
  throw new Error('expected toSpec to throw');
}

function hintsOf(build: () => unknown): (string | undefined)[] {
  try {
    build();
  } catch (error) {
    return (error as BatonError).problems.map((p) => p.hint);
  }
  throw new Error('expected toSpec to throw');
}

const sh = (command: string) => ({ command, shell: true as const });

describe('the builder normalizes like the flow-file loader', () => {
  it('produces the same spec as the same flow written in YAML', () => {
    const f = defineFlow({
      name: 'same',
      params: { regions: { type: 'array', default: ['eu'] } },
      groups: { ingest: { description: 'in' } },
      defaults: { retry: { maxAttempts: 2 } },
    });
    const a = f.shell('a', { ...sh('echo a'), group: 'ingest' });
    f.shell('b', { ...sh('echo b'), group: 'ingest' });
    const list = f.shell('list', { ...sh('echo 1'), after: ['ingest'] });
    // A shell task's output is not typed as a list: name it in an expression, and wait for it.
    f.map(
      'process',
      { over: '${{ tasks.list.output }}', after: [list], maxParallel: 4, onItemFailure: 'continue' },
      { command: ['echo', '${{ item }}'] },
    );
    f.mapGroup('per_region', { over: '${{ params.regions }}', batch: 5 }, (g) => {
      const fetch = g.shell('fetch', { command: ['fetch', '${{ item }}'] });
      g.shell('load', {
        ...sh('load "$OUT"'),
        env: { OUT: '${{ tasks.fetch.output }}' },
        after: [fetch],
        onFailure: {
          run: { ...sh('echo "$WHY"'), env: { WHY: '${{ error.message }}' } },
          recover: true,
          on: ['timeout'],
        },
      });
    });
    f.choice('route', {
      after: [list],
      rules: [{ when: '${{ tasks.list.output == "1" }}', then: ['big'] }],
      otherwise: ['small'],
    });
    f.shell('big', sh('echo big'));
    f.shell('small', sh('echo small'));
    f.shell('join', { ...sh('echo join'), after: ['big', 'small', a], triggerRule: { kOfN: 2, cancelRest: true } });
    f.race('best', { branches: ['big', 'small'], mode: 'all', priority: ['small', 'big'] });
    f.sleep('nap', { duration: '10m', after: ['best'] });
    f.waitUntil('noon', { until: '2024-06-01T12:00:00Z' });
    f.waitForEvent('paid', { event: 'paid', match: '${{ run.id }}', timeout: '2h' });
    f.approval('gate', { message: 'Ship?', approvers: ['alice'] });
    f.subflow('child', { flow: 'other', params: { region: '${{ params.regions }}' } });
    f.shell('cleanup', { ...sh('rm -rf tmp'), finally: true });

    const fromYaml = specOf(yaml`
      name: same
      params:
        regions: { type: array, default: [eu] }
      groups:
        ingest: { description: in }
      defaults:
        retry: { max_attempts: 2 }
      tasks:
        - { id: a, run: echo a, group: ingest }
        - { id: b, run: echo b, group: ingest }
        - { id: list, run: echo 1, depends_on: [ingest] }
        - id: process
          map: { over: "\${{ tasks.list.output }}", max_parallel: 4, on_item_failure: continue }
          depends_on: [list]
          kind: shell
          command: [echo, "\${{ item }}"]
        - id: per_region
          map: { over: "\${{ params.regions }}", batch: 5 }
          tasks:
            fetch: { kind: shell, command: [fetch, "\${{ item }}"] }
            load:
              run: load "$OUT"
              env: { OUT: "\${{ tasks.fetch.output }}" }
              depends_on: [fetch]
              on_failure: { run: 'echo "$WHY"', env: { WHY: "\${{ error.message }}" }, recover: true, on: [timeout] }
        - id: route
          depends_on: [list]
          choice:
            rules: [{ when: "\${{ tasks.list.output == \\"1\\" }}", then: [big] }]
            otherwise: [small]
        - { id: big, run: echo big }
        - { id: small, run: echo small }
        - id: join
          run: echo join
          depends_on: [big, small, a]
          trigger_rule: { k_of_n: 2, cancel_rest: true }
        - id: best
          race: { branches: [big, small], mode: all, priority: [small, big] }
        - { id: nap, sleep: 10m, depends_on: [best] }
        - { id: noon, wait_until: "2024-06-01T12:00:00Z" }
        - { id: paid, wait_for_event: { event: paid, match: "\${{ run.id }}", timeout: 2h } }
        - { id: gate, approval: { message: Ship?, approvers: [alice] } }
        - { id: child, subflow: { flow: other, params: { region: "\${{ params.regions }}" } } }
        - { id: cleanup, run: rm -rf tmp, finally: true }
    `);
    expect(f.toSpec('same.ts')).toEqual(fromYaml);
  });

  it('normalizes function bodies: a plain map, a choice that selects, a race that scores', () => {
    const f = defineFlow({ name: 'fns' });
    const list = f.task('list', () => [1, 2, 3]);
    f.map('double', { over: list, retry: { maxAttempts: 3 }, timeout: '1m' }, ({ item }) => item * 2);
    f.choice('pick', { after: [list], branches: ['big', 'small'] }, () => 'big');
    f.task('big', () => 'big');
    f.task('small', () => 'small');
    f.race('best', { branches: ['big', 'small'], mode: 'all' }, (output) => String(output).length);
    const spec = f.toSpec();
    const byId = Object.fromEntries(spec.tasks.map((t) => [t.id, t]));
    expect(byId.double).toMatchObject({
      kind: 'map',
      dependsOn: ['list'],
      retry: { maxAttempts: 1 },
      timeoutMs: null,
      map: {
        over: '${{ tasks.list.output }}',
        group: false,
        template: [
          { id: 'double', key: 'double', kind: 'function', retry: { maxAttempts: 3 }, timeoutMs: 60_000, config: {} },
        ],
      },
    });
    expect(byId.pick).toMatchObject({
      kind: 'choice',
      config: { select: 'function' },
      choice: { rules: [], otherwise: [], mode: 'first', targets: ['big', 'small'] },
    });
    expect(byId.big?.dependsOn).toEqual(['pick']);
    expect(byId.best).toMatchObject({
      kind: 'race',
      dependsOn: ['big', 'small'],
      triggerRule: 'all_done',
      race: { branches: ['big', 'small'], mode: 'all', priority: null, score: true },
    });
  });

  it('lets a task inside a map read a top-level task: the map waits for it', () => {
    const f = defineFlow({ name: 'lift' });
    const config = f.task('config', () => ({ dsn: 'x' }));
    const regions = f.task('regions', () => ['eu']);
    f.mapGroup('per_region', { over: regions }, (g) => {
      const fetch = g.task('fetch', ({ item }) => item);
      g.task('load', { inputs: { cfg: config, rows: fetch } }, ({ inputs }) => [inputs.cfg.dsn, inputs.rows]);
    });
    const spec = f.toSpec();
    const map = spec.tasks.find((t) => t.id === 'per_region');
    expect(map?.dependsOn).toEqual(['regions', 'config']);
    expect(map?.map?.template[1]).toMatchObject({
      id: 'load',
      dependsOn: ['fetch'],
      with: { cfg: '${{ tasks.config.output }}', rows: '${{ tasks.fetch.output }}' },
    });
  });
});

describe('functionOf', () => {
  it('finds code by task id, template key, nested key, handler id, choice and race', () => {
    const fns = {
      top: () => 1,
      map: () => 2,
      fetch: () => 3,
      deep: () => 4,
      handler: () => 5,
      innerHandler: () => 6,
      select: () => 'a' as const,
      score: () => 1,
    };
    const f = defineFlow({ name: 'keys' });
    const top = f.task('top', { onFailure: { run: fns.handler } }, fns.top);
    f.map('m', { over: '${{ tasks.top.output }}', after: [top] }, fns.map);
    f.mapGroup('outer', { over: '${{ run.id }}' }, (g) => {
      g.task('fetch', { onFailure: { run: fns.innerHandler, id: 'retry_fetch' } }, fns.fetch);
      g.mapGroup('inner', { over: '${{ item }}' }, (h) => {
        h.task('deep', fns.deep);
      });
    });
    f.choice('c', { branches: ['a'] }, fns.select);
    f.task('a', () => 0);
    f.task('b', () => 0);
    f.race('r', { branches: ['a', 'b'], mode: 'all' }, fns.score);
    const spec = f.toSpec();
    expect(f.functionOf('top')).toBe(fns.top);
    expect(f.functionOf('m')).toBe(fns.map);
    expect(f.functionOf('outer/fetch')).toBe(fns.fetch);
    expect(f.functionOf('outer/inner/deep')).toBe(fns.deep);
    expect(f.functionOf('top.on_failure')).toBe(fns.handler);
    expect(f.functionOf('outer/retry_fetch')).toBe(fns.innerHandler);
    expect(f.functionOf('c')).toBe(fns.select);
    expect(f.functionOf('r')).toBe(fns.score);
    expect(f.functionOf('fetch')).toBeUndefined();
    // Every key the spec names has its code.
    const keys = (tasks: typeof spec.tasks): string[] =>
      tasks.flatMap((t) => [...(t.kind === 'function' ? [t.key ?? t.id] : []), ...keys(t.map?.template ?? [])]);
    for (const key of keys(spec.tasks)) expect(f.functionOf(key), key).toBeTypeOf('function');
  });
});

describe('types task code sees', () => {
  it('types the item from over, an array of them with batch, and the failure in a handler', () => {
    const f = defineFlow({ name: 't', params: { n: { type: 'integer', default: 1 } } });
    const rows = f.task('rows', () => [{ id: 1 }]);
    const doubled = f.map('each', { over: rows }, (ctx) => {
      expectTypeOf(ctx.item).toEqualTypeOf<{ id: number }>();
      expectTypeOf(ctx.mapIndex).toEqualTypeOf<number>();
      expectTypeOf(ctx.params.n).toEqualTypeOf<number>();
      return ctx.item.id * 2;
    });
    expectTypeOf(doubled).toEqualTypeOf<TaskRef<number[]>>();
    f.map('batches', { over: rows, batch: 10 }, (ctx) => {
      expectTypeOf(ctx.item).toEqualTypeOf<{ id: number }[]>();
      return ctx.item.length;
    });
    f.mapGroup('group', { over: rows }, (g) => {
      g.task('inner', (ctx) => {
        expectTypeOf(ctx.item).toEqualTypeOf<{ id: number }>();
        return ctx.item.id;
      });
    });
    f.task(
      'risky',
      {
        onFailure: {
          run: (ctx) => {
            expectTypeOf(ctx.error).toEqualTypeOf<TaskError>();
            return ctx.error.code;
          },
        },
      },
      () => 1,
    );
    const big = f.task('big', () => 'b');
    const small = f.task('small', () => 1);
    const winner = f.race('best', { branches: [big, small], mode: 'all' }, (output, branchId) => {
      expectTypeOf(output).toEqualTypeOf<string | number>();
      expectTypeOf(branchId).toEqualTypeOf<string>();
      return 0;
    });
    expectTypeOf(winner).toEqualTypeOf<TaskRef<RaceResult<string | number>>>();
    f.choice('pick', { branches: ['big', 'small'] }, () => 'small');
    // @ts-expect-error: the function selects only among its branches.
    f.choice('pick2', { branches: ['big', 'small'] }, () => 'other');
    expect(f.name).toBe('t');
  });
});

describe('the builder reports the same problems', () => {
  it('inside a map over a group: unknown names, cycles, groups, and refs of another map', () => {
    const f = defineFlow({ name: 'bad' });
    let elsewhere: TaskRef | undefined;
    f.mapGroup('one', { over: '${{ run.id }}' }, (g) => {
      elsewhere = g.task('x', () => 1);
    });
    f.mapGroup('two', { over: '${{ run.id }}' }, (g) => {
      g.task('a', { after: ['b', 'nope'], group: 'g' }, () => 1);
      g.task('b', { after: ['a', elsewhere as TaskRef] }, () => 1);
    });
    expect(problemsOf(() => f.toSpec('bad.ts'))).toEqual([
      'DEF_UNKNOWN_DEPENDENCY tasks.two.tasks.a.after[1]: task a depends on "nope", which is not a task of map two',
      'DEF_UNKNOWN_DEPENDENCY tasks.two.tasks.b.after[1]: task b depends on "x", which is not a task of map two',
      'DEF_CYCLE tasks.two.tasks.b.after: cycle b → a → b',
      'DEF_INVALID tasks.two.tasks.a.group: groups are for the tasks of the flow; tasks inside a map belong to none',
    ]);
  });

  it('quorums, choices and races', () => {
    const f = defineFlow({ name: 'bad' });
    const a = f.task('a', () => 1);
    f.task('q', { after: [a], triggerRule: { kOfN: 2 } }, () => 1);
    f.task('k', { after: [a], triggerRule: 'k_of_n' }, () => 1);
    f.choice('c', { after: [a], rules: [{ when: 'true', then: ['a'] }] });
    f.choice('none', { rules: [] });
    f.race('r', { branches: [a, 'a'], priority: ['a'] });
    // @ts-expect-error: the types ask for mode 'all' with a score function; plain JavaScript gets the check.
    f.race('s', { branches: [a, 'q'] }, () => 1);
    expect(problemsOf(() => f.toSpec())).toEqual([
      'DEF_INVALID tasks.k.triggerRule: k_of_n needs the number of upstream successes to wait for',
      'DEF_INVALID tasks.r.branches[1]: race r names a twice',
      'DEF_INVALID tasks.r.branches: race r needs at least two branches, got 1',
      'DEF_INVALID tasks.r.priority: priority applies only with mode all; in mode first the first success wins',
      'DEF_INVALID tasks.s: race s has a score function, which needs mode all',
      'DEF_INVALID tasks.c.rules[0].when: must be one ${{ }} expression, got "true"',
      'DEF_CYCLE tasks.c.rules[0].then[0]: choice c cannot select a: a runs before c (it is upstream)',
      'DEF_INVALID tasks.none.rules: choice none has no rules',
      'DEF_INVALID tasks.q.triggerRule: k_of_n must be a whole number from 1 to 1 (the upstream tasks of q), got 2',
    ]);
    expect(hintsOf(() => f.toSpec())[0]).toBe('Write triggerRule: { kOfN: 2, cancelRest: true }.');
  });

  it('handlers, finally tasks, waits and expressions', () => {
    const f = defineFlow({ name: 'bad' });
    const a = f.task('a', () => 1);
    f.task('b', { onFailure: { run: () => 0, id: 'a' } }, () => 1);
    f.task('e', { onFailure: { run: { command: ['true'] }, on: ['timout', 'ECONNRESET'] } }, () => 1);
    f.task('done', { finally: true, after: [a] }, () => 1);
    f.shell('c', { command: 'echo ${{ tasks.a.output }} ${{ item }}', shell: true });
    f.sleep('nap', { duration: 'soon' });
    f.waitForEvent('w', { event: 'bad event', timeout: 'later' });
    f.map('m', { over: 'tasks.a.output' }, () => 1);
    f.task('d', { after: ['done'], triggerRule: 'sometimes' as 'all_done' }, () => 1);
    expect(problemsOf(() => f.toSpec())).toEqual([
      'DEF_INVALID tasks.nap.duration: must be a duration like 10m, 2h, 1d, or one ${{ }} expression that yields milliseconds, got "soon"',
      'DEF_INVALID tasks.w.event: must be an event name: letters, digits, _ . and -, got "bad event"',
      'DEF_INVALID tasks.w.timeout: must be a duration like 250ms, 90s, 5m, 1h, 1m30s or a whole number of milliseconds, got "later"',
      'DEF_INVALID tasks.d.triggerRule: "sometimes" is not one of all_success, all_failed, all_done, one_success, one_failed, none_failed, none_failed_min_one_success, always',
      'DEF_DUPLICATE_TASK tasks.b.onFailure.id: the on_failure handler of b is named "a", which is already a task id',
      'DEF_INVALID tasks.d.after[0]: task d depends on done, a finally task; finally tasks run after every other task, so nothing can wait for them',
      'DEF_INVALID tasks.e.onFailure.on[0]: "timout" is not an error kind (did you mean "timeout"?)',
      'DEF_INVALID tasks.done.after: a finally task runs once every other task ended; it takes no after',
      'DEF_INVALID tasks.m.over: must be one ${{ }} expression that yields a list, got "tasks.a.output"',
      'DEF_EXPRESSION tasks.c.command: task c reads tasks.a.output but a is not upstream of c; add it to after',
      'DEF_EXPRESSION tasks.c.command: reads item, but item exists only inside a map: in the body of a task with map:, or in the tasks of a map over a group',
      'DEF_SHELL_EXPRESSION tasks.c.command: the expressions ${{ tasks.a.output }} and ${{ item }} are pasted into a command line that a shell parses, where a value holding a quote, `;`, `$( )`, a backtick or a newline would run as commands',
    ]);
  });

  it('ids, groups and retry kinds', () => {
    const f = defineFlow({ name: 'bad', groups: { a: {} }, defaults: { retry: { retryOn: ['transiant'] } } });
    f.task('a', { group: '1g' }, () => 1);
    f.task('bad id', () => 1);
    expect(problemsOf(() => f.toSpec())).toEqual([
      'DEF_INVALID defaults.retry.retryOn[0]: "transiant" is not an error kind (did you mean "transient"?)',
      expect.stringMatching(/^DEF_INVALID tasks\.a\.group: group name must start with a letter/),
      'DEF_INVALID groups.a: group a has the same name as a task',
      expect.stringMatching(/^DEF_INVALID tasks\.bad id: task id must start with a letter/),
    ]);
  });
});
