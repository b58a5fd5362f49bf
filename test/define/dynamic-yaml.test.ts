/**
 * The flow-file surface of groups, maps, choices, quorums, races, waits, subflows,
 * failure handlers and finally tasks: what each normalizes to, and every problem with
 * its position and hint.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, type TaskSpec } from '../../src/core/model.js';
import { parseFlowText } from '../../src/define/load-yaml.js';
import { onlyProblem, problemsOf, specOf, yaml } from './yaml-helpers.js';

const shell = (command: string) => ({ command, shell: true });

/** The fields every plain task gets from a flow without defaults. */
const plain = {
  triggerRule: 'all_success',
  retry: DEFAULT_RETRY,
  timeoutMs: null,
  pool: null,
  with: {},
} as const;

function task(spec: { tasks: readonly TaskSpec[] }, id: string): TaskSpec {
  const found = spec.tasks.find((t) => t.id === id);
  expect(found, `task ${id}`).toBeDefined();
  return found as TaskSpec;
}

describe('run: a command line', () => {
  it('is a shell task whose string command runs through /bin/sh, with env and cwd', () => {
    const spec = specOf(yaml`
      name: f
      tasks:
        a:
          run: echo "$A" > out
          env: { A: "1" }
          cwd: ./data
    `);
    expect(spec.tasks).toEqual([
      {
        id: 'a',
        kind: 'shell',
        dependsOn: [],
        ...plain,
        config: { command: 'echo "$A" > out', shell: true, env: { A: '1' }, cwd: './data' },
      },
    ]);
  });

  it('reads tasks written as a list with id exactly as tasks written as a map', () => {
    const listed = specOf(yaml`
      name: f
      tasks:
        - id: a
          run: echo a
        - id: b
          depends_on: [a]
          run: echo b
    `);
    const mapped = specOf(yaml`
      name: f
      tasks:
        a: { run: echo a }
        b: { depends_on: [a], run: echo b }
    `);
    expect(listed).toEqual(mapped);
    expect(listed.tasks.map((t) => [t.id, t.dependsOn])).toEqual([
      ['a', []],
      ['b', ['a']],
    ]);
  });
});

describe('groups', () => {
  it('declares groups, implies undeclared ones, and expands a group in depends_on in declaration order', () => {
    const spec = specOf(yaml`
      name: f
      groups:
        ingest: { description: Raw data in }
      tasks:
        z: { run: echo z, group: ingest }
        a: { run: echo a, group: ingest }
        m: { run: echo m, group: reports }
        b:
          depends_on: [a, ingest, reports]
          run: echo b
    `);
    expect(spec.groups).toEqual({ ingest: { description: 'Raw data in' }, reports: {} });
    expect(spec.tasks.map((t) => [t.id, t.group ?? null, t.dependsOn])).toEqual([
      ['z', 'ingest', []],
      ['a', 'ingest', []],
      ['m', 'reports', []],
      ['b', null, ['a', 'z', 'm']],
    ]);
  });

  it('leaves groups out of a flow that has none', () => {
    expect(specOf('name: f\ntasks:\n  a: { run: x }\n')).not.toHaveProperty('groups');
  });

  it('refuses a group named like a task, where the group is declared', () => {
    expect(
      onlyProblem(yaml`
        name: f
        groups:
          load: {}
        tasks:
          load: { run: x, group: load }
      `),
    ).toEqual({
      code: 'DEF_INVALID',
      at: '3:3',
      message: 'groups.load: group load has the same name as a task',
      hint: 'Rename the group or the task: a name in depends_on must mean one of them.',
    });
  });

  it('refuses a group named like a task, where a task implies it', () => {
    expect(
      onlyProblem(yaml`
        name: f
        tasks:
          a: { run: x, group: b }
          b: { run: y }
      `),
    ).toMatchObject({ at: '3:23', message: 'tasks.a.group: group b has the same name as a task' });
  });

  it('refuses a group without tasks in depends_on, and one that contains the task itself', () => {
    expect(
      problemsOf(yaml`
        name: f
        groups:
          empty: {}
        tasks:
          a: { run: x, group: g }
          b: { run: y, group: g, depends_on: [g, empty] }
      `),
    ).toEqual([
      {
        code: 'DEF_CYCLE',
        at: '6:39',
        message: 'tasks.b.depends_on[0]: task b depends on group g, which contains b itself',
        hint: 'List the other tasks of g instead, or move b out of the group.',
      },
      {
        code: 'DEF_INVALID',
        at: '6:42',
        message: 'tasks.b.depends_on[1]: group empty has no tasks',
        hint: 'Add `group: empty` to the tasks that belong to it, or remove it from depends_on.',
      },
    ]);
  });

  it('checks group names, and says "task or group" for an unknown name', () => {
    expect(
      problemsOf(yaml`
        name: f
        groups:
          1st: {}
        tasks:
          a: { run: x, group: ingest }
          b: { run: y, depends_on: [ingst] }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '3:3',
        message: expect.stringMatching(/^groups\.1st: group name must start with a letter or _/),
        hint: 'Rename the group.',
      },
      {
        code: 'DEF_UNKNOWN_DEPENDENCY',
        at: '6:29',
        message:
          'tasks.b.depends_on[0]: task b depends on "ingst", which is not a task or group of this flow (did you mean "ingest"?)',
        hint: 'Change it to "ingest".',
      },
    ]);
  });
});

describe('map: one task body per item', () => {
  it('normalizes a plain map: the task keeps its edges, the template keeps its body', () => {
    const spec = specOf(yaml`
      name: f
      defaults:
        retry: { max_attempts: 3 }
        timeout: 5m
        pool: cpu
      pools: { cpu: 2 }
      tasks:
        list: { run: echo 1 }
        process:
          description: once per item
          depends_on: [list]
          trigger_rule: all_done
          group: work
          map:
            over: "\${{ tasks.list.output }}"
            max_parallel: 10
            batch: 100
            on_item_failure: continue
          run: echo "$ITEM" "$INDEX"
          env: { ITEM: "\${{ item }}", INDEX: "\${{ map.index }}" }
          with: { n: "\${{ map.item }}" }
          timeout: 30s
          labels: [gpu]
    `);
    const flowRetry = { ...DEFAULT_RETRY, maxAttempts: 3 };
    expect(task(spec, 'process')).toEqual({
      id: 'process',
      kind: 'map',
      description: 'once per item',
      dependsOn: ['list'],
      triggerRule: 'all_done',
      group: 'work',
      retry: DEFAULT_RETRY,
      timeoutMs: null,
      pool: null,
      with: {},
      config: {},
      map: {
        over: '${{ tasks.list.output }}',
        maxParallel: 10,
        batch: 100,
        onItemFailure: 'continue',
        group: false,
        template: [
          {
            id: 'process',
            key: 'process',
            kind: 'shell',
            dependsOn: [],
            triggerRule: 'all_success',
            retry: flowRetry,
            timeoutMs: 30_000,
            pool: 'cpu',
            labels: ['gpu'],
            with: { n: '${{ map.item }}' },
            config: { ...shell('echo "$ITEM" "$INDEX"'), env: { ITEM: '${{ item }}', INDEX: '${{ map.index }}' } },
          },
        ],
      },
    });
  });

  it('fills the defaults of map keys, and maps any body: a function, a sleep, a subflow', () => {
    const spec = specOf(yaml`
      name: f
      params:
        regions: { type: array, default: [eu, us] }
      tasks:
        fn:
          map: { over: "\${{ params.regions }}" }
          kind: function
          module: ./t.ts
        nap:
          map: { over: "\${{ params.regions }}" }
          sleep: 1s
        child:
          map: { over: "\${{ params.regions }}" }
          subflow: { flow: load_region, params: { region: "\${{ item }}" } }
    `);
    expect(task(spec, 'fn').map).toMatchObject({ maxParallel: null, batch: null, onItemFailure: 'fail', group: false });
    expect(spec.tasks.map((t) => [t.kind, t.map?.template[0]?.kind, t.map?.template[0]?.config])).toEqual([
      ['map', 'function', { module: './t.ts', export: 'default' }],
      ['map', 'sleep', { duration: 1000 }],
      ['map', 'subflow', { flow: 'load_region', version: null }],
    ]);
    expect(task(spec, 'child').map?.template[0]?.with).toEqual({ region: '${{ item }}' });
  });

  it('normalizes a map over a group: local ids, local edges, keys under the map', () => {
    const spec = specOf(yaml`
      name: f
      params:
        regions: { type: array, default: [eu] }
      tasks:
        per_region:
          map: { over: "\${{ params.regions }}", max_parallel: 2 }
          tasks:
            - id: fetch
              kind: shell
              command: [fetch, "\${{ item }}"]
            - id: load
              depends_on: [fetch]
              kind: shell
              command: [load, "\${{ tasks.fetch.output }}"]
        report:
          depends_on: [per_region]
          run: echo done
    `);
    expect(task(spec, 'per_region')).toEqual({
      id: 'per_region',
      kind: 'map',
      dependsOn: [],
      ...plain,
      config: {},
      map: {
        over: '${{ params.regions }}',
        maxParallel: 2,
        batch: null,
        onItemFailure: 'fail',
        group: true,
        template: [
          {
            id: 'fetch',
            key: 'per_region/fetch',
            kind: 'shell',
            dependsOn: [],
            ...plain,
            config: { command: ['fetch', '${{ item }}'] },
          },
          {
            id: 'load',
            key: 'per_region/load',
            kind: 'shell',
            dependsOn: ['fetch'],
            ...plain,
            config: { command: ['load', '${{ tasks.fetch.output }}'] },
          },
        ],
      },
    });
    expect(task(spec, 'report').dependsOn).toEqual(['per_region']);
  });

  it('nests maps to any depth, with keys along the path and map.outer for the enclosing item', () => {
    const spec = specOf(yaml`
      name: f
      params:
        regions: { type: array, default: [eu] }
      tasks:
        outer:
          map: { over: "\${{ params.regions }}" }
          tasks:
            days:
              kind: shell
              command: [list-days, "\${{ item }}"]
            inner:
              depends_on: [days]
              map: { over: "\${{ tasks.days.output }}" }
              tasks:
                hour:
                  map: { over: "\${{ item.hours }}" }
                  kind: shell
                  command: [echo, "\${{ map.outer.item }}", "\${{ map.outer.outer.index }}", "\${{ item }}"]
    `);
    const inner = task(spec, 'outer').map?.template[1] as TaskSpec;
    expect(inner).toMatchObject({ id: 'inner', key: 'outer/inner', kind: 'map', dependsOn: ['days'] });
    const hour = inner.map?.template[0] as TaskSpec;
    expect(hour).toMatchObject({ id: 'hour', key: 'outer/inner/hour', kind: 'map' });
    expect(hour.map?.template).toEqual([
      expect.objectContaining({ id: 'hour', key: 'outer/inner/hour', kind: 'shell', dependsOn: [] }),
    ]);
  });

  it('refuses an over that is not one expression, and map keys that are not numbers', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          list: { run: x }
          m:
            depends_on: [list]
            map: { over: "items: \${{ tasks.list.output }}", batch: 0, max_paralel: 2 }
            run: y
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '6:18',
        message:
          'tasks.m.map.over: must be one ${{ }} expression that yields a list, got "items: ${{ tasks.list.output }}"',
        hint: 'Write e.g. "${{ tasks.list.output }}" or "${{ params.regions }}".',
      },
      {
        code: 'DEF_INVALID',
        at: '6:60',
        message: 'tasks.m.map.batch: must be a positive integer, got 0',
        hint: 'Write a positive integer here.',
      },
      {
        code: 'DEF_INVALID',
        at: '6:63',
        message: 'tasks.m.map.max_paralel: unknown key (did you mean "max_parallel"?)',
        hint: 'Rename it to "max_parallel", or remove it.',
      },
    ]);
  });

  it('requires a body beside map, or tasks', () => {
    expect(onlyProblem('name: f\ntasks:\n  m:\n    map: { over: "${{ run.id }}" }\n')).toEqual({
      code: 'DEF_INVALID',
      at: '3:3',
      message: 'tasks.m.kind: required but missing; known kinds: function, shell',
      hint: 'Add `kind:` with one of: function, shell; or write a body such as `run: <command line>`.',
    });
  });

  it('refuses tasks without map, keys of a running task on a map over a group, and a mapped choice', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          g:
            tasks: { a: { run: x } }
          m:
            map: { over: "\${{ run.id }}" }
            retry: { max_attempts: 2 }
            tasks: { a: { run: x } }
          c:
            map: { over: "\${{ run.id }}" }
            choice: { rules: [{ when: "\${{ true }}", then: [g] }] }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '4:5',
        message: 'tasks.g.tasks: lists tasks, but only a map over a group has tasks of its own',
        hint: 'Add `map: { over: "${{ … }}" }` to run these tasks once per item, or move them to the flow.',
      },
      {
        code: 'DEF_INVALID',
        at: '7:5',
        message: 'tasks.m.retry: not a key of a map over a group, which runs nothing itself',
        hint: 'Set retry on the tasks of the map.',
      },
      {
        code: 'DEF_INVALID',
        at: '10:5',
        message: 'tasks.c.map: a choice cannot be mapped: a map runs a task body once per item',
        hint: 'Map over a group instead, with the choice among its tasks.',
      },
    ]);
  });

  it('checks the graph inside a template: unknown names, outer names, cycles', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          list: { run: x }
          m:
            map: { over: "\${{ run.id }}" }
            tasks:
              a:
                run: a
                depends_on: [c, list, b]
              b:
                run: b
                depends_on: [a]
              c2: { run: c }
      `),
    ).toEqual([
      {
        code: 'DEF_UNKNOWN_DEPENDENCY',
        at: '9:22',
        message:
          'tasks.m.tasks.a.depends_on[0]: task a depends on "c", which is not a task of map m (did you mean "c2"?)',
        hint: 'Change it to "c2".',
      },
      {
        code: 'DEF_UNKNOWN_DEPENDENCY',
        at: '9:25',
        message: 'tasks.m.tasks.a.depends_on[1]: task a depends on "list", which is not a task of map m',
        hint: 'Tasks inside a map depend only on tasks of the same map; to wait for list, add it to the depends_on of the map.',
      },
      {
        code: 'DEF_CYCLE',
        at: '12:9',
        message: 'tasks.m.tasks.b.depends_on: cycle b → a → b',
        hint: 'Remove one of the depends_on edges of this cycle.',
      },
    ]);
  });

  it('refuses group and finally on tasks inside a map, and a duplicate id in a list of tasks', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          m:
            map: { over: "\${{ run.id }}" }
            tasks:
              - id: a
                run: a
                group: g
              - id: a
                run: b
              - id: c
                run: c
                finally: true
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '8:16',
        message: 'tasks.m.tasks.a.group: groups are for the tasks of the flow; tasks inside a map belong to none',
        hint: 'Remove group here; group the map task instead.',
      },
      {
        code: 'DEF_DUPLICATE_TASK',
        at: '9:13',
        message: 'tasks.m.tasks[1].id: duplicate task id "a"',
        hint: 'Give each task its own id; this one repeats an earlier task.',
      },
      {
        code: 'DEF_INVALID',
        at: '13:9',
        message: 'tasks.m.tasks.c.finally: finally applies to tasks of the flow, not to tasks inside a map',
        hint: 'Move the task out of the map.',
      },
    ]);
  });

  it('requires id on a task in a list, and tasks in a map over a group', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          - run: x
          - id: m
            map: { over: "\${{ run.id }}" }
            tasks: []
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '3:5',
        message: 'tasks[0].id: required for a task in a list but missing',
        hint: 'Add `id:` with the task id.',
      },
      {
        code: 'DEF_INVALID',
        at: '6:12',
        message: 'tasks.m.tasks: a map over a group needs at least one task',
        hint: 'List the tasks that run once per item under tasks.',
      },
    ]);
  });
});

describe('expressions inside maps and handlers', () => {
  it('allows item and map only inside a map, with as many .outer as enclosing maps', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          a: { run: 'echo "$V"', env: { V: "\${{ item }}" } }
          m:
            map: { over: "\${{ item }}" }
            kind: shell
            command: [echo, "\${{ map.outer.index }}", "\${{ map.idx }}"]
      `),
    ).toEqual([
      {
        code: 'DEF_EXPRESSION',
        at: '3:36',
        message:
          'tasks.a.env.V: reads item, but item exists only inside a map: in the body of a task with map:, or in the tasks of a map over a group',
        hint: 'Use item in a mapped task, or read the list itself (e.g. tasks.<id>.output).',
      },
      {
        code: 'DEF_EXPRESSION',
        at: '5:18',
        message:
          'tasks.m.map.over: reads item, but item exists only inside a map: in the body of a task with map:, or in the tasks of a map over a group',
        hint: 'Use item in a mapped task, or read the list itself (e.g. tasks.<id>.output).',
      },
      {
        code: 'DEF_EXPRESSION',
        at: '7:21',
        message:
          'tasks.m.command[1]: reads map.outer.index, but the task is inside one map: map.outer goes past the outermost',
        hint: 'Write map.item and map.index for this map, and one .outer for each enclosing map.',
      },
      {
        code: 'DEF_EXPRESSION',
        at: '7:47',
        message: 'tasks.m.command[2]: reads map.idx; map has only index, item and outer (did you mean "index"?)',
        hint: 'Write map.index, map.item, or map.outer for the enclosing map.',
      },
    ]);
  });

  it('lets a template read its siblings upstream and the tasks its top-level map waits for', () => {
    const text = yaml`
      name: f
      tasks:
        list: { run: x }
        other: { run: y }
        m:
          depends_on: [list]
          map: { over: "\${{ tasks.list.output }}" }
          tasks:
            a: { kind: shell, command: [a, "\${{ tasks.list.output }}"] }
            b: { kind: shell, command: [b, "\${{ tasks.other.output }}", "\${{ tasks.c.output }}", "\${{ tasks.m.output }}"] }
            c: { kind: shell, command: [c, "\${{ tasks.a.output }}"], depends_on: [a] }
    `;
    expect(problemsOf(text)).toEqual([
      {
        code: 'DEF_EXPRESSION',
        at: '10:38',
        message:
          'tasks.m.tasks.b.command[1]: task b reads tasks.other.output but other is not upstream of map m; add it to the depends_on of m',
        hint: 'Add other to the depends_on of m: tasks inside a map read what their map waits for.',
      },
      {
        code: 'DEF_EXPRESSION',
        at: '10:67',
        message:
          'tasks.m.tasks.b.command[2]: task b reads tasks.c.output but c is not upstream of b; add it to depends_on',
        hint: 'Add c to the depends_on of b.',
      },
      {
        code: 'DEF_EXPRESSION',
        at: '10:92',
        message: 'tasks.m.tasks.b.command[3]: task b reads tasks.m.output, the result of the map it is part of',
        hint: 'Inside a map, read item, map, sibling tasks and what the map waits for.',
      },
    ]);
  });

  it('allows error only in a handler, with its code, kind and message', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          a:
            run: echo "$CODE"
            env: { CODE: "\${{ error.code }}" }
            on_failure:
              run: echo "$CODE" "$KIND" "$MESSAGE"
              env: { CODE: "\${{ error.cod }}", KIND: "\${{ error.kind }}", MESSAGE: "\${{ error.message }}" }
      `),
    ).toEqual([
      {
        code: 'DEF_EXPRESSION',
        at: '5:18',
        message: 'tasks.a.env.CODE: reads error.code, but error exists only in an on_failure handler',
        hint: 'Read the failure in the handler of a task: `on_failure: { run: …, with: { why: "${{ error.message }}" } }`.',
      },
      {
        code: 'DEF_EXPRESSION',
        at: '8:20',
        message:
          'tasks.a.on_failure.env.CODE: reads error.cod; error has only code, kind and message (did you mean "code"?)',
        hint: 'Write error.code, error.kind or error.message.',
      },
    ]);
  });

  it('lets a handler read what its task may read, but not the task itself', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          up: { run: x }
          side: { run: y }
          a:
            depends_on: [up]
            run: z
            on_failure:
              with: { u: "\${{ tasks.up.output }}", s: "\${{ tasks.side.output }}", a: "\${{ tasks.a.output }}" }
              run: fix
      `),
    ).toEqual([
      {
        code: 'DEF_EXPRESSION',
        at: '9:47',
        message:
          'tasks.a.on_failure.with.s: handler a.on_failure reads tasks.side.output but side is not upstream of a, the task it handles',
        hint: 'A handler reads what its task may read; add side to the depends_on of a.',
      },
      {
        code: 'DEF_EXPRESSION',
        at: '9:78',
        message: 'tasks.a.on_failure.with.a: handler a.on_failure reads tasks.a.output, but a is the task that failed',
        hint: 'Read the failure as error.code, error.kind and error.message.',
      },
    ]);
  });

  it('names every root an expression may read where it sits', () => {
    expect(
      onlyProblem(yaml`
        name: f
        tasks:
          m:
            map: { over: "\${{ run.id }}" }
            run: x
            on_failure: { kind: shell, command: ["\${{ secrets.token }}"] }
      `),
    ).toEqual({
      code: 'DEF_EXPRESSION',
      at: '6:42',
      message:
        'tasks.m.on_failure.command[0]: reads secrets.token, but expressions may read only params, tasks, run and error',
      hint: 'Start the expression with params., tasks., run. or error.',
    });
  });
});

describe('choice', () => {
  const CHOICE = yaml`
    name: f
    groups:
      small: {}
    tasks:
      list: { run: x }
      route:
        depends_on: [list]
        choice:
          mode: all
          rules:
            - when: "\${{ tasks.list.output.length > 100 }}"
              then: [big]
            - when: "\${{ tasks.list.output.length == 0 }}"
              then: [big, empty]
          otherwise: [small]
      big: { run: big, depends_on: [route] }
      empty: { run: empty }
      tiny: { run: tiny, group: small }
      little: { run: little, group: small }
      join:
        depends_on: [big, small]
        trigger_rule: none_failed_min_one_success
        run: join
  `;

  it('normalizes rules, expands groups and lists every target once, in order', () => {
    const spec = specOf(CHOICE);
    expect(task(spec, 'route')).toEqual({
      id: 'route',
      kind: 'choice',
      dependsOn: ['list'],
      ...plain,
      config: {},
      choice: {
        rules: [
          { when: '${{ tasks.list.output.length > 100 }}', then: ['big'] },
          { when: '${{ tasks.list.output.length == 0 }}', then: ['big', 'empty'] },
        ],
        otherwise: ['tiny', 'little'],
        mode: 'all',
        targets: ['big', 'empty', 'tiny', 'little'],
      },
    });
  });

  it('makes every target wait for the choice, once', () => {
    const spec = specOf(CHOICE);
    expect(spec.tasks.map((t) => [t.id, t.dependsOn])).toEqual([
      ['list', []],
      ['route', ['list']],
      ['big', ['route']],
      ['empty', ['route']],
      ['tiny', ['route']],
      ['little', ['route']],
      ['join', ['big', 'tiny', 'little']],
    ]);
    expect(task(spec, 'join').triggerRule).toBe('none_failed_min_one_success');
  });

  it('defaults mode to first and otherwise to none', () => {
    const spec = specOf(yaml`
      name: f
      tasks:
        c: { choice: { rules: [{ when: "\${{ true }}", then: [a] }] } }
        a: { run: a }
    `);
    expect(task(spec, 'c').choice).toEqual({
      rules: [{ when: '${{ true }}', then: ['a'] }],
      otherwise: [],
      mode: 'first',
      targets: ['a'],
    });
  });

  it('reports rules, conditions and targets that cannot work', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          up: { run: x }
          none: { choice: { mode: first } }
          c:
            depends_on: [up]
            choice:
              rules:
                - when: "true"
                  then: []
                - when: "\${{ tasks.up.output }}"
                  then: [c, bigg, up]
          big: { run: big }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '4:19',
        message: 'tasks.none.choice: choice none has no rules',
        hint: 'Add rules: [{ when: "${{ … }}", then: [<task>] }], and otherwise: for when none matches.',
      },
      {
        code: 'DEF_INVALID',
        at: '9:17',
        message: 'tasks.c.choice.rules[0].when: must be one ${{ }} expression, got "true"',
        hint: 'Write the condition as one expression, e.g. "${{ tasks.list.output.length > 100 }}".',
      },
      {
        code: 'DEF_INVALID',
        at: '10:17',
        message: 'tasks.c.choice.rules[0].then: a rule must name at least one task in then',
        hint: 'List the tasks this rule selects, e.g. then: [big].',
      },
      {
        code: 'DEF_INVALID',
        at: '12:18',
        message: 'tasks.c.choice.rules[1].then[0]: choice c names itself as a branch',
        hint: 'Name other tasks of the flow as branches.',
      },
      {
        code: 'DEF_UNKNOWN_DEPENDENCY',
        at: '12:21',
        message:
          'tasks.c.choice.rules[1].then[1]: choice c names "bigg" as a branch, but there is no such task (did you mean "big"?)',
        hint: 'Change it to "big".',
      },
      {
        code: 'DEF_CYCLE',
        at: '12:27',
        message: 'tasks.c.choice.rules[1].then[2]: choice c cannot select up: up runs before c (it is upstream)',
        hint: 'Branches come after their choice; remove up from the branches, or c from its upstream.',
      },
    ]);
  });

  it('refuses the keys of running tasks on a choice', () => {
    expect(
      onlyProblem(yaml`
        name: f
        tasks:
          a: { run: a }
          c: { choice: { rules: [{ when: "\${{ true }}", then: [a] }] }, timeout: 5m }
      `),
    ).toEqual({
      code: 'DEF_INVALID',
      at: '4:65',
      message: 'tasks.c.timeout: not a key of a choice, which runs nothing itself',
      hint: 'Remove timeout.',
    });
  });
});

describe('k_of_n', () => {
  it('normalizes a quorum, cancel_rest defaulting to false', () => {
    const spec = specOf(yaml`
      name: f
      tasks:
        a: { run: a }
        b: { run: b }
        c: { run: c }
        p: { depends_on: [a, b, c], trigger_rule: { k_of_n: 2, cancel_rest: true }, run: p }
        q: { depends_on: [a, b], trigger_rule: { k_of_n: 2 }, run: q }
    `);
    expect(task(spec, 'p')).toMatchObject({ triggerRule: 'k_of_n', quorum: { k: 2, cancelRest: true } });
    expect(task(spec, 'q')).toMatchObject({ triggerRule: 'k_of_n', quorum: { k: 2, cancelRest: false } });
    expect(task(spec, 'a')).not.toHaveProperty('quorum');
  });

  it('counts a group as its tasks, and refuses a k above the upstream count, a bare k_of_n and k of 0', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          a: { run: a, group: g }
          b: { run: b, group: g }
          p: { depends_on: [g], trigger_rule: { k_of_n: 3 }, run: p }
          q: { depends_on: [g], trigger_rule: k_of_n, run: q }
          r: { depends_on: [g], trigger_rule: { k_of_n: 0, cancel: true }, run: r }
          s: { trigger_rule: { k_of_n: 1 }, run: s }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '5:39',
        message: 'tasks.p.trigger_rule: k_of_n must be a whole number from 1 to 2 (the upstream tasks of p), got 3',
        hint: 'Set k_of_n to at most 2.',
      },
      {
        code: 'DEF_INVALID',
        at: '6:39',
        message: 'tasks.q.trigger_rule: k_of_n needs the number of upstream successes to wait for',
        hint: 'Write the object form with the count, e.g. `trigger_rule: { k_of_n: 2, cancel_rest: true }`.',
      },
      {
        code: 'DEF_INVALID',
        at: '7:49',
        message: 'tasks.r.trigger_rule.k_of_n: must be a positive integer, got 0',
        hint: 'Write a positive integer here.',
      },
      {
        code: 'DEF_INVALID',
        at: '7:52',
        message: 'tasks.r.trigger_rule.cancel: unknown key',
        hint: 'Remove it; keys accepted here: k_of_n, cancel_rest.',
      },
      {
        code: 'DEF_INVALID',
        at: '8:22',
        message: 'tasks.s.trigger_rule: k_of_n counts upstream successes, but s has no upstream tasks',
        hint: 'Add upstream tasks to the depends_on of s.',
      },
    ]);
  });
});

describe('race', () => {
  it('normalizes a race: it waits for its branches, all_done', () => {
    const spec = specOf(yaml`
      name: f
      tasks:
        setup: { run: s }
        champion: { run: a, depends_on: [setup] }
        challenger: { run: b, depends_on: [setup] }
        first: { race: { branches: [champion, challenger] } }
        best:
          race:
            branches: [champion, challenger]
            mode: all
            priority: [challenger, champion]
    `);
    expect(task(spec, 'first')).toEqual({
      id: 'first',
      kind: 'race',
      dependsOn: ['champion', 'challenger'],
      ...plain,
      triggerRule: 'all_done',
      config: {},
      race: { branches: ['champion', 'challenger'], mode: 'first', priority: null, score: false },
    });
    expect(task(spec, 'best')).toMatchObject({
      dependsOn: ['champion', 'challenger'],
      race: { branches: ['champion', 'challenger'], mode: 'all', priority: ['challenger', 'champion'], score: false },
    });
  });

  it('refuses a task-level timeout on sleeps and waits, which run no attempt', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          nap: { sleep: 3s, timeout: 1s }
          paid: { wait_for_event: { event: paid }, timeout: 1h }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '3:21',
        message: 'tasks.nap.timeout: not a key of sleep tasks, which run no attempt to time out',
        hint: 'Remove timeout.',
      },
      {
        code: 'DEF_INVALID',
        at: '4:44',
        message: 'tasks.paid.timeout: not a key of wait_for_event tasks, which run no attempt to time out',
        hint: "Set the wait's own timeout: wait_for_event: { timeout: … }.",
      },
    ]);
  });

  it('refuses depends_on on a race: a prerequisite would compete as a branch', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          setup: { run: s }
          a: { run: a }
          b: { run: b }
          first: { race: { branches: [a, b] }, depends_on: [setup] }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '6:52',
        message: 'tasks.first.depends_on: race first waits only for its branches; it cannot also depend on setup',
        hint: 'Put setup in the depends_on of each branch instead.',
      },
    ]);
  });

  it('reports too few branches, unknown ones, groups, a trigger rule and a priority in mode first', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          a: { run: a, group: g }
          r1: { race: { branches: [a] } }
          r2: { race: { branches: [a, g, b], priority: [a] }, trigger_rule: all_done }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '4:27',
        message: 'tasks.r1.race.branches: race r1 needs at least two branches, got 1',
        hint: 'List two or more tasks that compete for the same result.',
      },
      {
        code: 'DEF_INVALID',
        at: '5:31',
        message: 'tasks.r2.race.branches[1]: race r2 names group g; its branches are tasks',
        hint: 'List the tasks of g instead: a.',
      },
      {
        code: 'DEF_UNKNOWN_DEPENDENCY',
        at: '5:34',
        message: 'tasks.r2.race.branches[2]: race r2 names "b" as a branch, but there is no such task',
        hint: 'Use one of the task ids: a, r1, r2.',
      },
      {
        code: 'DEF_INVALID',
        at: '5:48',
        message: 'tasks.r2.race.priority: priority applies only with mode all; in mode first the first success wins',
        hint: 'Set mode: all, or remove priority.',
      },
      {
        code: 'DEF_INVALID',
        at: '5:69',
        message:
          'tasks.r2.trigger_rule: a race waits for its branches and picks the winner itself; it takes no trigger rule',
        hint: 'Remove the trigger rule.',
      },
    ]);
  });

  it('requires a priority to list every branch once', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          a: { run: a }
          b: { run: b }
          c: { run: c }
          r: { race: { branches: [a, b, c], mode: all, priority: [a, a, d] } }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '6:58',
        message: 'tasks.r.race.priority: priority must list every branch of race r, but does not list b, c',
        hint: 'List each branch once, the preferred first: a, b, c.',
      },
      {
        code: 'DEF_INVALID',
        at: '6:62',
        message: 'tasks.r.race.priority[1]: priority lists a twice',
        hint: 'List each branch once.',
      },
      {
        code: 'DEF_INVALID',
        at: '6:65',
        message: 'tasks.r.race.priority[2]: priority names d, which is not a branch of race r',
        hint: 'List the branches only: a, b, c.',
      },
    ]);
  });
});

describe('tasks the engine carries out itself', () => {
  it('normalizes sleep, wait_until, wait_for_event, approval and subflow', () => {
    const spec = specOf(yaml`
      name: f
      params:
        release_at: { type: string, default: "2024-06-01T12:00:00Z" }
        order_id: { type: string, default: o1 }
      defaults:
        timeout: 5m
        pool: cpu
        retry: { max_attempts: 2 }
      pools: { cpu: 1 }
      tasks:
        cool_off: { sleep: 10m }
        later: { sleep: "\${{ params.order_id }}" }
        at_noon: { wait_until: "\${{ params.release_at }}" }
        at_epoch: { wait_until: 1717243200000 }
        at_iso: { wait_until: "2024-06-01T12:00:00Z" }
        wait_paid:
          wait_for_event:
            event: payment.received
            match: "\${{ params.order_id }}"
            timeout: 2h
        bare_wait: { wait_for_event: { event: go } }
        gate:
          approval:
            message: Ship it?
            timeout: 1d
            approvers: [alice, bob]
        anyone:
          approval:
        child:
          subflow:
            flow: load_region
            version: 3f2a
            params: { region: "\${{ params.order_id }}" }
          timeout: 1h
    `);
    const got = Object.fromEntries(spec.tasks.map((t) => [t.id, [t.kind, t.config]]));
    expect(got).toEqual({
      cool_off: ['sleep', { duration: 600_000 }],
      later: ['sleep', { duration: '${{ params.order_id }}' }],
      at_noon: ['wait_until', { until: '${{ params.release_at }}' }],
      at_epoch: ['wait_until', { until: 1717243200000 }],
      at_iso: ['wait_until', { until: '2024-06-01T12:00:00Z' }],
      wait_paid: [
        'wait_for_event',
        { event: 'payment.received', match: '${{ params.order_id }}', timeoutMs: 7_200_000 },
      ],
      bare_wait: ['wait_for_event', { event: 'go', match: null, timeoutMs: null }],
      gate: ['approval', { message: 'Ship it?', timeoutMs: 86_400_000, approvers: ['alice', 'bob'] }],
      anyone: ['approval', { message: null, timeoutMs: null, approvers: [] }],
      child: ['subflow', { flow: 'load_region', version: '3f2a' }],
    });
    expect(task(spec, 'child').with).toEqual({ region: '${{ params.order_id }}' });
    // No worker slot, and the flow's attempt timeout is not theirs; retries are.
    expect(task(spec, 'cool_off')).toMatchObject({ pool: null, timeoutMs: null, retry: { maxAttempts: 2 } });
    expect(task(spec, 'child').timeoutMs).toBe(3_600_000);
  });

  it('reports bad values of each, with positions', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          a: { sleep: soon }
          b: { wait_until: tomorrow }
          c: { wait_for_event: { event: "paid order", timout: 1h } }
          d: { subflow: { version: 3 }, with: { x: 1 } }
          e: { sleep: 1s, pool: cpu }
          f: { kind: sleep, run: x }
          g: { kind: approval }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '3:15',
        message:
          'tasks.a.sleep: must be a duration like 10m, 2h, 1d, or one ${{ }} expression that yields milliseconds, got "soon"',
        hint: 'Write a duration such as 250ms, 90s, 5m, 1h, 1m30s or a whole number of milliseconds.',
      },
      {
        code: 'DEF_INVALID',
        at: '4:20',
        message:
          'tasks.b.wait_until: must be an instant: an ISO 8601 date-time such as 2024-06-01T12:00:00Z, epoch milliseconds, or one ${{ }} expression, got "tomorrow"',
        hint: 'Write an instant: an ISO 8601 date-time such as 2024-06-01T12:00:00Z, epoch milliseconds, or one ${{ }} expression here.',
      },
      {
        code: 'DEF_INVALID',
        at: '5:33',
        message: 'tasks.c.wait_for_event.event: must be an event name: letters, digits, _ . and -, got "paid order"',
        hint: 'Write an event name: letters, digits, _ . and - here.',
      },
      {
        code: 'DEF_INVALID',
        at: '5:47',
        message: 'tasks.c.wait_for_event.timout: unknown key (did you mean "timeout"?)',
        hint: 'Rename it to "timeout", or remove it.',
      },
      {
        code: 'DEF_INVALID',
        at: '6:8',
        message: 'tasks.d.subflow.flow: required for a subflow task but missing',
        hint: 'Add `flow` to tasks.d.subflow.',
      },
      {
        code: 'DEF_INVALID',
        at: '6:28',
        message: 'tasks.d.subflow.version: must be a string: quote the version, e.g. "3f2a9c", got 3',
        hint: 'Write a string: quote the version, e.g. "3f2a9c" here.',
      },
      {
        code: 'DEF_INVALID',
        at: '6:33',
        message: 'tasks.d.with: a subflow takes its params under subflow.params',
        hint: 'Move these values to subflow.params.',
      },
      {
        code: 'DEF_INVALID',
        at: '7:19',
        message: 'tasks.e.pool: not a key of sleep tasks, which the engine carries out without a worker slot',
        hint: 'Remove pool.',
      },
      {
        code: 'DEF_INVALID',
        at: '8:14',
        message: 'tasks.f.kind: is "sleep", but the task\'s body is run (a shell task)',
        hint: 'Remove kind: the body says what the task is.',
      },
      {
        code: 'DEF_INVALID',
        at: '9:14',
        message: 'tasks.g.kind: approval tasks are written with a key of their own: approval: { message: "Ship it?" }',
        hint: 'Remove kind, and write approval: { message: "Ship it?" }.',
      },
    ]);
  });

  it('refuses two bodies in one task', () => {
    expect(onlyProblem('name: f\ntasks:\n  a: { run: x, sleep: 1s }\n')).toEqual({
      code: 'DEF_INVALID',
      at: '3:16',
      message: 'tasks.a.sleep: a task has one body, but this one has run and sleep',
      hint: 'Keep one of them, and put the other in a task of its own.',
    });
  });
});

describe('on_failure', () => {
  it('places the handler right after its task, with its id, and links both ways', () => {
    const spec = specOf(yaml`
      name: f
      tasks:
        up: { run: u }
        load:
          depends_on: [up]
          run: ./load.sh
          on_failure:
            kind: shell
            command: [./fallback.sh, "\${{ error.message }}"]
            recover: true
            on: [timeout, TASK_FAILED]
            retry: { max_attempts: 2 }
        store:
          depends_on: [load]
          kind: function
          module: ./store.ts
          on_failure:
            id: alert
            kind: function
            module: ./alert.ts
    `);
    expect(spec.tasks.map((t) => t.id)).toEqual(['up', 'load', 'load.on_failure', 'store', 'alert']);
    expect(task(spec, 'load').onFailure).toEqual({
      handler: 'load.on_failure',
      recover: true,
      on: ['timeout', 'TASK_FAILED'],
    });
    expect(task(spec, 'load.on_failure')).toEqual({
      id: 'load.on_failure',
      kind: 'shell',
      handles: 'load',
      dependsOn: [],
      ...plain,
      retry: { ...DEFAULT_RETRY, maxAttempts: 2 },
      config: { command: ['./fallback.sh', '${{ error.message }}'] },
    });
    expect(task(spec, 'store').onFailure).toEqual({ handler: 'alert', recover: false, on: [] });
    expect(task(spec, 'alert')).toMatchObject({ handles: 'store', kind: 'function', dependsOn: [] });
  });

  it('allows handlers inside a map over a group, with local ids and keys', () => {
    const spec = specOf(yaml`
      name: f
      tasks:
        m:
          map: { over: "\${{ run.id }}" }
          tasks:
            a:
              kind: shell
              command: [a, "\${{ item }}"]
              on_failure: { kind: shell, command: [echo, "\${{ item }}", "\${{ error.code }}"] }
    `);
    expect(
      task(spec, 'm').map?.template.map((t) => [t.id, t.key, t.handles ?? null, t.onFailure?.handler ?? null]),
    ).toEqual([
      ['a', 'm/a', null, 'a.on_failure'],
      ['a.on_failure', 'm/a.on_failure', 'a', null],
    ]);
  });

  it('handles the failure of a whole map on the map task, not on its template', () => {
    const spec = specOf(yaml`
      name: f
      tasks:
        m:
          map: { over: "\${{ run.id }}" }
          run: echo "$ITEM"
          env: { ITEM: "\${{ item }}" }
          on_failure: { run: 'echo "$WHY"', env: { WHY: "\${{ error.message }}" } }
    `);
    expect(spec.tasks.map((t) => [t.id, t.kind, t.handles ?? null])).toEqual([
      ['m', 'map', null],
      ['m.on_failure', 'shell', 'm'],
    ]);
    expect(task(spec, 'm').onFailure).toEqual({ handler: 'm.on_failure', recover: false, on: [] });
    expect(task(spec, 'm').map?.template[0]).not.toHaveProperty('onFailure');
  });

  it('reports what a handler may not have, and id collisions', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          a:
            run: a
            on_failure:
              run: b
              depends_on: [a]
              trigger_rule: all_done
              on: [timout, ECONNRESET]
              on_failure: { run: c }
          b:
            run: b
            on_failure: { id: a, run: d }
          c:
            run: c
            on_failure: { run: e, recovr: true }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '7:7',
        message: 'tasks.a.on_failure.depends_on: a handler starts when a fails; it takes no depends_on',
        hint: 'Remove depends_on from the handler.',
      },
      {
        code: 'DEF_INVALID',
        at: '8:7',
        message: 'tasks.a.on_failure.trigger_rule: a handler starts when a fails; it takes no trigger rule',
        hint: 'Remove the trigger rule.',
      },
      {
        code: 'DEF_INVALID',
        at: '9:12',
        message: 'tasks.a.on_failure.on[0]: "timout" is not an error kind (did you mean "timeout"?)',
        hint: 'Error kinds are timeout, validation, lost, cancelled, rejected, transient, error; error codes are written as thrown, e.g. TASK_FAILED.',
      },
      {
        code: 'DEF_INVALID',
        at: '10:7',
        message: 'tasks.a.on_failure.on_failure: a handler takes no on_failure of its own',
        hint: 'Remove the nested on_failure.',
      },
      {
        code: 'DEF_DUPLICATE_TASK',
        at: '13:23',
        message: 'tasks.b.on_failure.id: the on_failure handler of b is named "a", which is already a task id',
        hint: 'Give the handler an id of its own.',
      },
      {
        code: 'DEF_INVALID',
        at: '16:27',
        message: 'tasks.c.on_failure.recovr: unknown key (did you mean "recover"?)',
        hint: 'Rename it to "recover", or remove it.',
      },
    ]);
  });
});

describe('finally', () => {
  it('normalizes a cleanup task without edges', () => {
    const spec = specOf(yaml`
      name: f
      tasks:
        a: { run: a }
        cleanup: { finally: true, run: rm -rf tmp }
    `);
    expect(task(spec, 'cleanup')).toEqual({
      id: 'cleanup',
      kind: 'shell',
      finally: true,
      dependsOn: [],
      ...plain,
      config: shell('rm -rf tmp'),
    });
    expect(task(spec, 'a')).not.toHaveProperty('finally');
  });

  it('lets a finally task read any other task, and refuses what a finally task may not have', () => {
    expect(
      problemsOf(yaml`
        name: f
        tasks:
          a: { run: a }
          done: { finally: true, run: 'echo "$A"', env: { A: "\${{ tasks.a.state }}" } }
          bad:
            finally: true
            depends_on: [a]
            trigger_rule: all_done
            map: { over: "\${{ run.id }}" }
            run: x
            on_failure: { run: y }
          after: { depends_on: [done], run: z }
      `),
    ).toEqual([
      {
        code: 'DEF_INVALID',
        at: '7:5',
        message: 'tasks.bad.depends_on: a finally task runs once every other task ended; it takes no depends_on',
        hint: 'Remove depends_on.',
      },
      {
        code: 'DEF_INVALID',
        at: '8:5',
        message: 'tasks.bad.trigger_rule: a finally task runs however the run ends; it takes no trigger rule',
        hint: 'Remove the trigger rule.',
      },
      {
        code: 'DEF_INVALID',
        at: '9:5',
        message: 'tasks.bad.map: a finally task cannot be a map',
        hint: 'Map in another task; keep finally for cleanup.',
      },
      {
        code: 'DEF_INVALID',
        at: '11:5',
        message: 'tasks.bad.on_failure: a finally task takes no on_failure handler',
        hint: 'Handle the failure inside the task, or remove on_failure.',
      },
      {
        code: 'DEF_INVALID',
        at: '12:25',
        message:
          'tasks.after.depends_on[0]: task after depends on done, a finally task; finally tasks run after every other task, so nothing can wait for them',
        hint: 'Remove done from the depends_on of after.',
      },
    ]);
  });
});

describe('retry lists', () => {
  it('accept error kinds and codes, and catch a misspelt kind', () => {
    const text = yaml`
      name: f
      defaults:
        retry: { retry_on: [timeout, transient, ECONNRESET], never_retry_on: [validation, rejected] }
      tasks:
        a: { run: a, retry: { retry_on: [lost, my_code_1] } }
    `;
    const spec = specOf(text);
    expect(task(spec, 'a').retry).toMatchObject({
      retryOn: ['lost', 'my_code_1'],
      neverRetryOn: ['validation', 'rejected'],
    });
    expect(onlyProblem(text.replace('transient', 'transiant'))).toEqual({
      code: 'DEF_INVALID',
      at: '3:32',
      message: 'defaults.retry.retry_on[1]: "transiant" is not an error kind (did you mean "transient"?)',
      hint: 'Error kinds are timeout, validation, lost, cancelled, rejected, transient, error; error codes are written as thrown, e.g. TASK_FAILED.',
    });
  });
});

describe('positions in a flow written as a list', () => {
  it('points into nested tasks of a list by their id', () => {
    const result = parseFlowText(
      yaml`
        name: f
        tasks:
          - id: per
            map: { over: "\${{ run.id }}" }
            tasks:
              - id: fetch
                run: x
                timeout: soon
      `,
      { file: 'f.yaml' },
    );
    expect(result.problems.map((p) => [p.location?.line, p.location?.column, p.location?.path])).toEqual([
      [8, 18, 'tasks.per.tasks.fetch.timeout'],
    ]);
  });
});
