import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BatonError, type Problem } from '../../src/core/errors.js';
import { DEFAULT_RETRY, NON_RETRYABLE_CODES } from '../../src/core/model.js';
import { TASK_KIND_SCHEMAS, registerTaskKindSchema } from '../../src/define/flow-schema.js';
import { assertLoaded, loadFlowFile, parseFlowText } from '../../src/define/load-yaml.js';
import { yaml } from './yaml-helpers.js';

/** The problems of a file that must not load. */
function problemsOf(text: string, file = 'flow.yaml'): Problem[] {
  const result = parseFlowText(text, { file });
  expect(result.spec).toBeUndefined();
  return [...result.problems];
}

/** The one problem of a file, as the fields the tests compare. */
function onlyProblem(text: string, file = 'flow.yaml') {
  const problems = problemsOf(text, file);
  expect(problems.map((p) => p.message)).toHaveLength(1);
  return brief(problems[0] as Problem);
}

function brief(p: Problem) {
  return {
    code: p.code,
    line: p.location?.line,
    column: p.location?.column,
    path: p.location?.path,
    message: p.message,
  };
}

const EXAMPLE = yaml`
  name: daily_sales
  description: optional text
  params:
    day: { type: string, default: "2024-01-01" }     # type: string|number|integer|boolean|object|array; default, enum, description optional
  defaults:
    retry: { max_attempts: 3, backoff: 2s, max_backoff: 1m, jitter: full }   # jitter: full|none; also retry_on: [codes], never_retry_on: [codes]
    timeout: 10m
    pool: cpu            # optional default pool
  timeout: 2h            # optional whole-run timeout
  max_active_runs: 4     # optional
  pools: { cpu: 2 }      # optional: pool name → slots (positive integer)
  tasks:                      # a map from task id to task
    extract:
      kind: shell
      command: ["sh", "-c", "echo extracting"]   # argv array (no shell). Alternative: command: "echo $X | wc" together with shell: true (runs via /bin/sh -c) or shell: "/bin/bash"
      env: { A: "1" }          # optional, values templated like \`with\`
      cwd: ./data              # optional, relative to the flow file
    transform:
      kind: function
      module: ./transform.ts  # relative to this file (.ts, .mts, .js, .mjs)
      export: transform       # default: "default"
      depends_on: [extract]
      with: { day: "\${{ params.day }}", rows: "\${{ tasks.extract.output }}" }
      retry: { max_attempts: 5 }
      timeout: 30s
      pool: cpu
    report:
      kind: shell
      command: ["sh", "-c", "echo done"]
      depends_on: [transform]
      trigger_rule: all_done
`;

/** A small valid flow that tests edit one line of. */
const BASE = yaml`
  name: f
  tasks:
    a:
      kind: shell
      command: [echo, a]
`;

describe('parseFlowText: the documented example', () => {
  it('loads with no problems and normalizes every default', () => {
    const result = parseFlowText(EXAMPLE, { file: 'daily.yaml' });
    expect(result.problems).toEqual([]);
    const flowRetry = { ...DEFAULT_RETRY, maxAttempts: 3, backoffMs: 2000, maxBackoffMs: 60_000, jitter: 'full' };
    expect(result.spec).toEqual({
      name: 'daily_sales',
      description: 'optional text',
      params: { day: { type: 'string', default: '2024-01-01' } },
      pools: { cpu: 2 },
      maxActiveRuns: 4,
      timeoutMs: 7_200_000,
      tasks: [
        {
          id: 'extract',
          kind: 'shell',
          dependsOn: [],
          triggerRule: 'all_success',
          retry: flowRetry,
          timeoutMs: 600_000,
          pool: 'cpu',
          with: {},
          config: { command: ['sh', '-c', 'echo extracting'], env: { A: '1' }, cwd: './data' },
        },
        {
          id: 'transform',
          kind: 'function',
          dependsOn: ['extract'],
          triggerRule: 'all_success',
          retry: { ...flowRetry, maxAttempts: 5 },
          timeoutMs: 30_000,
          pool: 'cpu',
          with: { day: '${{ params.day }}', rows: '${{ tasks.extract.output }}' },
          config: { module: './transform.ts', export: 'transform' },
        },
        {
          id: 'report',
          kind: 'shell',
          dependsOn: ['transform'],
          triggerRule: 'all_done',
          retry: flowRetry,
          timeoutMs: 600_000,
          pool: 'cpu',
          with: {},
          config: { command: ['sh', '-c', 'echo done'] },
        },
      ],
    });
    expect(result.spec?.tasks[0]?.retry.neverRetryOn).toBe(NON_RETRYABLE_CODES);
  });

  it('fills the built-in defaults for a minimal flow', () => {
    const spec = assertLoaded(
      parseFlowText(BASE + '  b:\n    kind: function\n    module: b.mjs\n', { file: 'f.yaml' }),
      'f.yaml',
    );
    expect(spec).toMatchObject({ params: {}, pools: {}, maxActiveRuns: null, timeoutMs: null });
    expect(spec.tasks[0]).toMatchObject({
      retry: DEFAULT_RETRY,
      timeoutMs: null,
      pool: null,
      with: {},
      triggerRule: 'all_success',
    });
    expect(spec.tasks[1]?.config).toEqual({ module: 'b.mjs', export: 'default' });
  });

  it('accepts a string command with shell set, and the retry lists', () => {
    const spec = assertLoaded(
      parseFlowText(
        yaml`
          name: f
          tasks:
            a:
              kind: shell
              command: "echo $X | wc"
              shell: /bin/bash
              retry: { retry_on: [TASK_FAILED], never_retry_on: [] }
        `,
        { file: 'f.yaml' },
      ),
      'f.yaml',
    );
    expect(spec.tasks[0]?.config).toEqual({ command: 'echo $X | wc', shell: '/bin/bash' });
    expect(spec.tasks[0]?.retry).toMatchObject({ retryOn: ['TASK_FAILED'], neverRetryOn: [] });
  });
});

describe('parseFlowText: one problem of each kind', () => {
  it('names an unknown key and suggests the close one', () => {
    const problems = problemsOf(yaml`
      name: f
      tasks:
        extract:
          kind: shell
          comand: [echo, a]
    `).map(brief);
    expect(problems).toEqual([
      {
        code: 'DEF_INVALID',
        line: 3,
        column: 3,
        path: 'tasks.extract.command',
        message: 'tasks.extract.command: required for a shell task but missing',
      },
      {
        code: 'DEF_INVALID',
        line: 5,
        column: 5,
        path: 'tasks.extract.comand',
        message: 'tasks.extract.comand: unknown key (did you mean "command"?)',
      },
    ]);
  });

  it('names an unknown top-level key', () => {
    expect(onlyProblem(BASE + 'max_active_run: 3\n')).toEqual({
      code: 'DEF_INVALID',
      line: 6,
      column: 1,
      path: 'max_active_run',
      message: 'max_active_run: unknown key (did you mean "max_active_runs"?)',
    });
  });

  it('says which kind a misplaced key belongs to', () => {
    const p = onlyProblem(yaml`
      name: f
      tasks:
        t:
          kind: function
          module: ./t.ts
          command: [echo]
    `);
    expect(p).toEqual({
      code: 'DEF_INVALID',
      line: 6,
      column: 5,
      path: 'tasks.t.command',
      message: 'tasks.t.command: not a key of function tasks; it belongs to shell tasks',
    });
  });

  it('reports a wrong type with what it got', () => {
    expect(onlyProblem(BASE + '    depends_on: a_task\n')).toEqual({
      code: 'DEF_INVALID',
      line: 6,
      column: 17,
      path: 'tasks.a.depends_on',
      message: 'tasks.a.depends_on: must be a list, got "a_task"',
    });
  });

  it('reports a bad duration with the accepted forms', () => {
    const problems = problemsOf(BASE + '    timeout: 10 minutes\n');
    expect(problems.map(brief)).toEqual([
      {
        code: 'DEF_INVALID',
        line: 6,
        column: 14,
        path: 'tasks.a.timeout',
        message:
          'tasks.a.timeout: must be a duration like 250ms, 90s, 5m, 1h, 1m30s or a whole number of milliseconds, got "10 minutes"',
      },
    ]);
    expect(problems[0]?.hint).toContain('1m30s');
  });

  it('bounds max_attempts', () => {
    expect(onlyProblem(BASE + '    retry: { max_attempts: 0 }\n')).toEqual({
      code: 'DEF_INVALID',
      line: 6,
      column: 28,
      path: 'tasks.a.retry.max_attempts',
      message: 'tasks.a.retry.max_attempts: must be an integer from 1 to 100, got 0',
    });
  });

  it('refuses backoff longer than max_backoff, on max_backoff', () => {
    expect(onlyProblem(BASE + '    retry: { backoff: 2m, max_backoff: 1m }\n')).toEqual({
      code: 'DEF_INVALID',
      line: 6,
      column: 40,
      path: 'tasks.a.retry.max_backoff',
      message: 'tasks.a.retry.max_backoff: must be at least backoff (120000ms), got "1m"',
    });
  });

  it('checks backoff against an inherited max_backoff', () => {
    const text = yaml`
      name: f
      defaults:
        retry: { max_backoff: 10s }
      tasks:
        a:
          kind: shell
          command: [echo, a]
          retry: { backoff: 30s }
    `;
    expect(onlyProblem(text)).toMatchObject({
      line: 8,
      column: 23,
      path: 'tasks.a.retry.backoff',
      message: 'tasks.a.retry.backoff: must be at most max_backoff (10000ms), got "30s"',
    });
  });

  it('lists the trigger rules for a bad one', () => {
    const problems = problemsOf(BASE + '    trigger_rule: al_done\n');
    expect(problems.map(brief)).toEqual([
      {
        code: 'DEF_INVALID',
        line: 6,
        column: 19,
        path: 'tasks.a.trigger_rule',
        message:
          'tasks.a.trigger_rule: must be one of all_success, all_failed, all_done, one_success, one_failed, none_failed, none_failed_min_one_success, always, got "al_done" (did you mean "all_done"?)',
      },
    ]);
    expect(problems[0]?.hint).toMatch(/^Use one of: all_success, /);
  });

  it('lists the known kinds for an unknown one', () => {
    expect(onlyProblem(BASE.replace('kind: shell', 'kind: shel'))).toEqual({
      code: 'DEF_INVALID',
      line: 4,
      column: 11,
      path: 'tasks.a.kind',
      message: 'tasks.a.kind: unknown kind "shel" (did you mean "shell"?); known kinds: function, shell',
    });
  });

  it('requires command on a shell task', () => {
    expect(onlyProblem(BASE.replace('    command: [echo, a]\n', ''))).toEqual({
      code: 'DEF_INVALID',
      line: 3,
      column: 3,
      path: 'tasks.a.command',
      message: 'tasks.a.command: required for a shell task but missing',
    });
  });

  it('refuses a string command without shell', () => {
    const problems = problemsOf(BASE.replace('[echo, a]', '"echo a | wc"'));
    expect(problems.map(brief)).toEqual([
      {
        code: 'DEF_INVALID',
        line: 5,
        column: 14,
        path: 'tasks.a.command',
        message: 'tasks.a.command: is a string, which runs through a shell, but shell is not set',
      },
    ]);
    expect(problems[0]?.hint).toContain('shell: true');
  });

  it('reports a duplicate task id at the second one', () => {
    expect(onlyProblem(BASE + '  a:\n    kind: shell\n    command: [echo, again]\n')).toEqual({
      code: 'DEF_DUPLICATE_TASK',
      line: 6,
      column: 3,
      path: 'tasks.a',
      message: 'tasks.a: duplicate task id "a"',
    });
  });

  it('reports an unknown dependency at its entry, with a suggestion', () => {
    const text = yaml`
      name: f
      tasks:
        extract: { kind: shell, command: [echo] }
        load:
          kind: shell
          command: [echo]
          depends_on: [extract, extrct]
    `;
    expect(onlyProblem(text)).toEqual({
      code: 'DEF_UNKNOWN_DEPENDENCY',
      line: 7,
      column: 27,
      path: 'tasks.load.depends_on[1]',
      message:
        'tasks.load.depends_on[1]: task load depends on "extrct", which is not a task of this flow (did you mean "extract"?)',
    });
  });

  it('reports a self-dependency', () => {
    expect(onlyProblem(BASE + '    depends_on: [a]\n')).toMatchObject({
      code: 'DEF_CYCLE',
      line: 6,
      column: 18,
      message: 'tasks.a.depends_on[0]: task a depends on itself',
    });
  });

  it('prints a three-task cycle in order, at the depends_on of its first task', () => {
    const text = yaml`
      name: f
      tasks:
        a:
          kind: shell
          command: [echo]
          depends_on: [c]
        b:
          kind: shell
          command: [echo]
          depends_on: [a]
        c:
          kind: shell
          command: [echo]
          depends_on: [b]
    `;
    expect(onlyProblem(text)).toEqual({
      code: 'DEF_CYCLE',
      line: 10,
      column: 5,
      path: 'tasks.b.depends_on',
      message: 'tasks.b.depends_on: cycle b → c → a → b',
    });
  });

  it('checks a param default against its type', () => {
    const p = onlyProblem(yaml`
      name: f
      params:
        day: { type: integer, default: "monday" }
      tasks:
        a: { kind: shell, command: [echo] }
    `);
    expect(p).toMatchObject({ code: 'DEF_INVALID', line: 3, column: 34, path: 'params.day.default' });
    expect(p.message).toMatch(/^params\.day\.default: /);
    expect(p.message).toContain('integer');
  });

  it('refuses an expression that reads a task that is not upstream', () => {
    const text = yaml`
      name: f
      tasks:
        transform:
          kind: function
          module: ./t.ts
          with: { rows: "\${{ tasks.report.output }}" }
        report:
          kind: shell
          command: [echo]
    `;
    expect(onlyProblem(text)).toEqual({
      code: 'DEF_EXPRESSION',
      line: 6,
      column: 19,
      path: 'tasks.transform.with.rows',
      message:
        'tasks.transform.with.rows: task transform reads tasks.report.output but report is not upstream of transform; add it to depends_on',
    });
  });

  it('refuses an expression that reads an unknown param, in with and in env', () => {
    const text = yaml`
      name: f
      params:
        day: { type: string }
      tasks:
        a:
          kind: shell
          command: [echo]
          env: { DAY: "\${{ params.dya }}" }
          with:
            n: ["\${{ params.day }}", "\${{ params.count }}"]
    `;
    expect(problemsOf(text).map(brief)).toEqual([
      {
        code: 'DEF_EXPRESSION',
        line: 8,
        column: 17,
        path: 'tasks.a.env.DAY',
        message: 'tasks.a.env.DAY: reads params.dya but the flow has no param "dya" (did you mean "day"?)',
      },
      {
        code: 'DEF_EXPRESSION',
        line: 10,
        column: 32,
        path: 'tasks.a.with.n[1]',
        message: 'tasks.a.with.n[1]: reads params.count but the flow has no param "count"',
      },
    ]);
  });

  it('refuses a task field other than output or state, and an unknown root', () => {
    const text = yaml`
      name: f
      tasks:
        a: { kind: shell, command: [echo] }
        b:
          kind: shell
          command: [echo]
          depends_on: [a]
          with: { x: "\${{ tasks.a.outptu }}", y: "\${{ secrets.key }}" }
    `;
    expect(problemsOf(text).map((p) => p.message)).toEqual([
      'tasks.b.with.x: reads tasks.a.outptu; a task exposes only output and state',
      'tasks.b.with.y: reads secrets.key, but expressions may read only params, tasks and run',
    ]);
  });

  it('reports a malformed expression at its string', () => {
    const p = onlyProblem(BASE + '    with: { x: "${{ params. }}" }\n');
    expect(p).toMatchObject({ code: 'DEF_EXPRESSION', line: 6, column: 16, path: 'tasks.a.with.x' });
  });

  it('reports a task pool that is not declared, unless the caller knows it', () => {
    const text = BASE + '    pool: gpu\n';
    expect(onlyProblem(text)).toEqual({
      code: 'DEF_INVALID',
      line: 6,
      column: 11,
      path: 'tasks.a.pool',
      message: 'tasks.a.pool: pool "gpu" is not declared in pools',
    });
    expect(parseFlowText(text, { file: 'f.yaml', knownPools: ['gpu'] }).problems).toEqual([]);
  });

  it('reports a YAML syntax error with its position and does not go on', () => {
    // The unclosed flow map would also make `kind` and `b` look wrong; only the syntax is reported.
    expect(onlyProblem('name: f\ntasks:\n  a: { kind: shell, command: [echo]\n  b: 1\n')).toEqual({
      code: 'DEF_INVALID',
      line: 4,
      column: 3,
      path: undefined,
      message: 'YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }',
    });
  });

  it('reports an empty file and a top level that is not a map', () => {
    expect(onlyProblem('')).toMatchObject({ code: 'DEF_INVALID', message: 'the flow file is empty' });
    expect(onlyProblem('# nothing\n')).toMatchObject({ message: 'the flow file is empty' });
    expect(onlyProblem('- a\n- b\n')).toMatchObject({
      line: 1,
      column: 1,
      message: 'the top level must be a map with name and tasks, got a list',
    });
  });

  it('gives positions inside a JSON flow', () => {
    const json = [
      '{',
      '  "name": "f",',
      '  "tasks": {',
      '    "a": { "kind": "shell", "command": ["echo"], "retry": { "max_attempts": 101 } }',
      '  }',
      '}',
    ].join('\n');
    expect(onlyProblem(json, 'flow.json')).toEqual({
      code: 'DEF_INVALID',
      line: 4,
      column: 77,
      path: 'tasks.a.retry.max_attempts',
      message: 'tasks.a.retry.max_attempts: must be an integer from 1 to 100, got 101',
    });
    expect(onlyProblem('{\n  "name": "f",\n  "tasks": {\n}\n', 'flow.json')).toMatchObject({
      line: 5,
      column: 1,
      message: 'JSON syntax error: Flow map must end with a }',
    });
  });
});

describe('parseFlowText: many problems at once', () => {
  it('reports every problem of a file together, sorted by line and column', () => {
    const text = yaml`
      name: 1bad
      params:
        day: { type: strng }
      defaults:
        timeout: soon
      tasks:
        extract:
          kind: shell
          command: [echo]
          retry: { max_attempts: 0, jiter: full }
        load:
          kind: sql
          depends_on: [extrct]
        report:
          kind: shell
          command: [echo]
          trigger_rule: sometimes
          with: { x: "\${{ tasks.load.output }}" }
        done: { kind: shell, command: [echo] }
        done: { kind: shell, command: [echo, again] }
    `;
    const problems = problemsOf(text);
    expect(problems.map((p) => [p.location?.line, p.location?.column, p.code, p.location?.path])).toEqual([
      [1, 7, 'DEF_INVALID', 'name'],
      [3, 16, 'DEF_INVALID', 'params.day.type'],
      [5, 12, 'DEF_INVALID', 'defaults.timeout'],
      [10, 28, 'DEF_INVALID', 'tasks.extract.retry.max_attempts'],
      [10, 31, 'DEF_INVALID', 'tasks.extract.retry.jiter'],
      [12, 11, 'DEF_INVALID', 'tasks.load.kind'],
      [13, 18, 'DEF_UNKNOWN_DEPENDENCY', 'tasks.load.depends_on[0]'],
      [17, 19, 'DEF_INVALID', 'tasks.report.trigger_rule'],
      [18, 16, 'DEF_EXPRESSION', 'tasks.report.with.x'],
      [20, 3, 'DEF_DUPLICATE_TASK', 'tasks.done'],
    ]);
    for (const p of problems) expect(p.location?.file).toBe('flow.yaml');
    for (const p of problems) expect(p.hint).toBeTruthy();
  });
});

describe('task kinds', () => {
  afterEach(() => {
    TASK_KIND_SCHEMAS.delete('http');
  });

  it('accepts a kind the caller registers, with camelCased config', () => {
    registerTaskKindSchema('http', z.object({ url: z.string(), follow_redirects: z.boolean().default(true) }), {
      templated: ['url'],
    });
    const text = yaml`
      name: f
      params:
        host: { type: string, default: example.org }
      tasks:
        get:
          kind: http
          url: "https://\${{ params.hots }}/"
    `;
    const kinds = ['function', 'shell', 'http'];
    expect(parseFlowText(text, { file: 'f.yaml', kinds }).problems.map((p) => p.location?.path)).toEqual([
      'tasks.get.url',
    ]);
    const spec = assertLoaded(parseFlowText(text.replace('hots', 'host'), { file: 'f.yaml', kinds }), 'f.yaml');
    expect(spec.tasks[0]?.config).toEqual({ url: 'https://${{ params.host }}/', followRedirects: true });
    expect(parseFlowText(text, { file: 'f.yaml' }).problems[0]?.message).toContain('known kinds: function, shell');
  });
});

describe('loadFlowFile and assertLoaded', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reads a file, and reports an unreadable one as DEF_LOAD', async () => {
    dir = await mkdtemp(join(tmpdir(), 'baton-load-'));
    const file = join(dir, 'flow.yaml');
    await writeFile(file, EXAMPLE);
    expect((await loadFlowFile(file)).spec?.name).toBe('daily_sales');
    const missing = await loadFlowFile(join(dir, 'nope.yaml'));
    expect(missing.spec).toBeUndefined();
    expect(missing.problems).toHaveLength(1);
    expect(missing.problems[0]).toMatchObject({ code: 'DEF_LOAD', location: { file: join(dir, 'nope.yaml') } });
  });

  it('throws one BatonError carrying every problem', () => {
    const result = parseFlowText(BASE + '    timeout: x\n    pool: gpu\n', { file: 'f.yaml' });
    let error: unknown;
    try {
      assertLoaded(result, 'f.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BatonError);
    const e = error as BatonError;
    expect(e.code).toBe('DEF_INVALID');
    expect(e.message).toBe('2 problems in f.yaml');
    expect(e.problems).toHaveLength(2);
    expect(e.location).toMatchObject({ file: 'f.yaml', line: 6 });
  });
});
