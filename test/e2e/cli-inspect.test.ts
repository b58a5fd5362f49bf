/**
 * Debugging from the command line: run references (`last`, `last --flow`, unique id
 * prefixes, ambiguous ones) in every command that takes a run; `show` with its OUTPUT
 * column, failure summary and `--task` detail; `graph` as text, Mermaid and DOT.
 */
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RunJson, Sandbox, ShowJson } from './cli-helpers.js';
import { createSandbox, describeResult, listRuns, parseJson, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

/** `ok` returns a long output and a short one; `bad` fails twice in `parse-rows`, after a success. */
function project(): Sandbox {
  const sandbox = createSandbox(temp.mkdir());
  const tasks = sandbox.write(
    'tasks.mjs',
    [
      'export async function produce() {',
      "  return { rows: 1234, note: 'a fairly long output that does not fit in forty characters' };",
      '}',
      'export async function boom(ctx) {',
      '  throw new Error(`cannot parse row ${ctx.attempt}\\nsecond line of the message`);',
      '}',
      '',
    ].join('\n'),
  );
  const fn = (name: string) => [`    kind: function`, `    module: ${JSON.stringify(tasks)}`, `    export: ${name}`];
  mkdirSync(sandbox.path('flows'));
  sandbox.write(
    'flows/ok.yaml',
    ['name: ok', 'tasks:', '  produce:', ...fn('produce'), '  short:', '    run: echo hi', ''].join('\n'),
  );
  sandbox.write(
    'flows/bad.yaml',
    [
      'name: bad',
      'tasks:',
      '  produce:',
      ...fn('produce'),
      '  parse-rows:',
      ...fn('boom'),
      '    depends_on: [produce]',
      '    retry: { max_attempts: 2, backoff: 10ms }',
      '  after:',
      '    depends_on: [parse-rows]',
      '    run: echo never',
      '',
    ].join('\n'),
  );
  sandbox.write(
    'flows/items.yaml',
    [
      'name: items',
      'params:',
      '  items: { type: array, default: [1, 2, 3] }',
      'tasks:',
      '  process:',
      "    map: { over: '${{ params.items }}' }",
      "    env: { ITEM: '${{ item }}' }",
      '    run: test "$ITEM" != 2',
      '',
    ].join('\n'),
  );
  return sandbox;
}

async function runFlow(sandbox: Sandbox, flow: string): Promise<string> {
  const result = await sandbox.run(['run', flow, '-q']);
  const created = /run (\S+) of /.exec(result.stderr);
  if (!created) throw new Error(`no run id in: ${describeResult(result)}`);
  return created[1] as string;
}

/** The shortest prefix of `id` that no other of `ids` starts with. */
function uniquePrefix(id: string, ids: readonly string[]): string {
  for (let n = 1; n <= id.length; n++) {
    const prefix = id.slice(0, n);
    if (ids.every((other) => other === id || !other.startsWith(prefix))) return prefix;
  }
  return id;
}

function commonPrefix(a: string, b: string): string {
  let n = 0;
  while (n < a.length && a[n] === b[n]) n++;
  return a.slice(0, n);
}

describe('run references', () => {
  it('last with no runs is RUN_NOT_FOUND with a hint', async () => {
    const sandbox = project();
    const result = await sandbox.run(['show', 'last']);
    expect(result.code, describeResult(result)).toBe(4);
    expect(result.stderr).toContain('RUN_NOT_FOUND: there are no runs yet');
    expect(result.stderr).toContain('hint: Start one with `baton run <flow>`');
    const ofFlow = await sandbox.run(['logs', 'last', '--flow', 'ok']);
    expect(ofFlow.code, describeResult(ofFlow)).toBe(4);
    expect(ofFlow.stderr).toContain('flow ok has no runs yet');
  });

  it('last, last --flow and unique prefixes name a run; an ambiguous prefix lists its candidates', async () => {
    const sandbox = project();
    const first = await runFlow(sandbox, 'ok');
    const failed = await runFlow(sandbox, 'bad');
    const latest = await runFlow(sandbox, 'ok');
    const ids = [first, failed, latest];

    const shown = async (args: string[]) => {
      const result = await sandbox.run(['show', ...args, '--json']);
      expect(result.code, describeResult(result)).toBe(0);
      return parseJson<ShowJson>(result).id;
    };
    expect(await shown(['last'])).toBe(latest);
    expect(await shown(['last', '--flow', 'bad'])).toBe(failed);
    expect(await shown(['last', '--flow', 'ok'])).toBe(latest);
    for (const id of ids) expect(await shown([uniquePrefix(id, ids)])).toBe(id);

    // Ids are `r`, the creation time in base 36, then random: runs made one after the
    // other share a prefix of several characters.
    const shared = commonPrefix(first, latest);
    expect(shared.length).toBeGreaterThan(0);
    const matching = ids.filter((id) => id.startsWith(shared)).sort();
    const ambiguous = await sandbox.run(['show', shared]);
    expect(ambiguous.code, describeResult(ambiguous)).toBe(2);
    expect(ambiguous.stdout).toBe('');
    expect(ambiguous.stderr).toContain(`RUN_AMBIGUOUS: run id prefix ${shared} matches ${matching.length} runs:`);
    for (const id of matching)
      expect(ambiguous.stderr).toMatch(new RegExp(`^ {2}${id} +(ok|bad) +\\w+ +created \\d{4}-`, 'm'));
    expect(ambiguous.stderr).toContain('hint: Give more characters of the run id');
    const asJson = await sandbox.run(['show', shared, '--json']);
    expect(asJson.code).toBe(2);
    const error = (JSON.parse(asJson.stderr) as { error: { code: string; details: { candidates: RunJson[] } } }).error;
    expect(error.code).toBe('RUN_AMBIGUOUS');
    expect(error.details.candidates.map((c) => c.id)).toEqual(matching);
    expect(error.details.candidates[0]).toMatchObject({ flow: expect.any(String), state: expect.any(String) });
    expect(Date.parse(error.details.candidates[0]?.created_at ?? '')).not.toBeNaN();

    const unknown = await sandbox.run(['show', 'zz']);
    expect(unknown.code, describeResult(unknown)).toBe(4);
    expect(unknown.stderr).toContain('RUN_NOT_FOUND: no run with id zz');
    const misplaced = await sandbox.run(['show', latest, '--flow', 'ok']);
    expect(misplaced.code, describeResult(misplaced)).toBe(2);
    expect(misplaced.stderr).toContain('--flow ok applies only to the run reference `last`');

    // Every command that takes a run resolves the reference and speaks of the full id.
    const failedPrefix = uniquePrefix(failed, ids);
    const logs = await sandbox.run(['logs', 'last', 'parse-rows', '--flow', 'bad', '--json']);
    expect(logs.code, describeResult(logs)).toBe(0);
    const signal = await sandbox.run(['signal', failedPrefix, 'go']);
    expect(signal.code, describeResult(signal)).toBe(2);
    expect(signal.stderr).toContain(`run ${failed} is already failed`);
    const approve = await sandbox.run(['approve', failedPrefix, 'after']);
    expect(approve.code, describeResult(approve)).toBe(2);
    expect(approve.stderr).toContain(`run ${failed}`);
    const reject = await sandbox.run(['reject', 'last', 'short']);
    expect(reject.code, describeResult(reject)).toBe(2);
    expect(reject.stderr).toContain(`run ${latest}`);
    const cancel = await sandbox.run(['cancel', 'last', '--flow', 'bad']);
    expect(cancel.code, describeResult(cancel)).toBe(0);
    expect(cancel.stderr).toContain(`run ${failed} is already failed; nothing to cancel`);
    const resume = await sandbox.run(['resume', failedPrefix, '--json']);
    expect(resume.code, describeResult(resume)).toBe(1);
    expect(parseJson<ShowJson>(resume).id).toBe(failed);
    const retry = await sandbox.run(['retry', 'last', '--flow', 'bad', '--from-failed', '-q']);
    expect(retry.code, describeResult(retry)).toBe(1);
    expect(retry.stderr).toContain(`baton: run ${failed} reopened`);
    const children = await sandbox.run(['runs', '--parent', 'last']);
    expect(children.code, describeResult(children)).toBe(0);
    expect(children.stdout.trim()).toBe(`run ${latest} has no child runs`);
    expect((await listRuns(sandbox)).map((r) => r.id)).toEqual([latest, failed, first]);
  });
});

describe('show', () => {
  it('has an OUTPUT column of compact JSON cut to 40 characters; --full prints outputs whole', async () => {
    const sandbox = project();
    const runId = await runFlow(sandbox, 'ok');
    const whole = '{"rows":1234,"note":"a fairly long output that does not fit in forty characters"}';
    const text = await sandbox.run(['show', runId]);
    expect(text.code, describeResult(text)).toBe(0);
    expect(text.stdout).toMatch(/^TASK +STATE +ATTEMPTS +STARTED +DURATION +OUTPUT +NOTE$/m);
    const cut = `${whole.slice(0, 39)}…`;
    expect(text.stdout).toMatch(new RegExp(`^produce +succeeded +1 .* ${escape(cut)}$`, 'm'));
    expect(text.stdout).not.toContain(whole);
    // A shell task's output is the last line it printed: a JSON string.
    expect(text.stdout).toMatch(/^short +succeeded +1 .* "hi"$/m);
    expect(text.stdout).not.toContain('failure');

    const full = await sandbox.run(['show', 'last', '--full']);
    expect(full.code, describeResult(full)).toBe(0);
    expect(full.stdout).toMatch(new RegExp(`^produce +succeeded +1 .* ${escape(whole)}$`, 'm'));
    const json = parseJson<ShowJson & { failure: unknown }>(await sandbox.run(['show', 'last', '--json']));
    expect(json.tasks[0]?.output).toEqual(JSON.parse(whole));
    expect(json.failure).toBeNull();
  });

  it('sums up why a run failed: its first failed task, the error and the logs command', async () => {
    const sandbox = project();
    const runId = await runFlow(sandbox, 'bad');
    const text = await sandbox.run(['show', runId]);
    expect(text.code, describeResult(text)).toBe(0);
    // The task table keeps one line per task: the message's first line only.
    expect(text.stdout).toMatch(/^parse-rows +failed +2 .* TASK_FAILED: cannot parse row 2$/m);
    expect(text.stdout).not.toContain('second line of the message');
    expect(text.stdout).toContain(
      [
        'failure  parse-rows failed after 2 attempts: TASK_FAILED: cannot parse row 2',
        `logs     baton logs ${runId} parse-rows`,
        `detail   baton show ${runId} --task parse-rows`,
      ].join('\n'),
    );
    const json = parseJson<{ failure: unknown }>(await sandbox.run(['show', runId, '--json']));
    expect(json.failure).toEqual({
      task: 'parse-rows',
      attempts: 2,
      code: 'TASK_FAILED',
      message: 'cannot parse row 2',
      logs_command: `baton logs ${runId} parse-rows`,
      detail_command: `baton show ${runId} --task parse-rows`,
    });

    // A map fails with its item: the item is named, quoted for the shell.
    const mapped = await runFlow(sandbox, 'items');
    const items = await sandbox.run(['show', mapped]);
    expect(items.stdout).toMatch(/^failure {2}process\[1\] failed: TASK_FAILED: /m);
    expect(items.stdout).toContain(`logs     baton logs ${mapped} 'process[1]'`);
    expect(items.stdout).toContain(`detail   baton show ${mapped} --task 'process[1]'`);
  });

  it('--task prints one task run: attempts, the whole error with its stack, output and logs command', async () => {
    const sandbox = project();
    const runId = await runFlow(sandbox, 'bad');
    const text = await sandbox.run(['show', 'last', '--task', 'parse-rows']);
    expect(text.code, describeResult(text)).toBe(0);
    const out = text.stdout;
    expect(out).toContain(`run      ${runId} (flow bad, failed)`);
    expect(out).toMatch(/^state +failed$/m);
    expect(out).toMatch(/^ATTEMPT +STARTED +ENDED +DURATION +OUTCOME +NOTE$/m);
    expect(out).toMatch(
      /^#1 +\d{4}-\S+ \S+ +\d{4}-\S+ \S+ +\d+ms +failed +TASK_FAILED: cannot parse row 1; retry due /m,
    );
    expect(out).toMatch(/^#2 +.* failed +TASK_FAILED: cannot parse row 2$/m);
    expect(out).toContain('error    TASK_FAILED: cannot parse row 2\n         second line of the message');
    expect(out).toMatch(/^hint +Read the task log/m);
    expect(out).toMatch(/^stack\n {2}Error: cannot parse row 2\n/m);
    expect(out).toMatch(/^ {6}at boom \(.*tasks\.mjs:\d+:\d+\)$/m);
    expect(out).toMatch(/^output +null$/m);
    expect(out).toMatch(new RegExp(`^logs +baton logs ${runId} parse-rows$`, 'm'));

    const json = parseJson<{
      run: { id: string; state: string };
      id: string;
      state: string;
      hint: string;
      error: { code: string; message: string; stack?: string };
      attempt_history: { attempt: number; outcome: string; duration_ms: number; error: { message: string } }[];
      logs_command: string;
    }>(await sandbox.run(['show', runId, '--task', 'parse-rows', '--json']));
    expect(json).toMatchObject({ run: { id: runId, state: 'failed' }, id: 'parse-rows', state: 'failed' });
    expect(json.error.code).toBe('TASK_FAILED');
    expect(json.error.stack).toMatch(/at boom \(.*tasks\.mjs/);
    expect(json.hint).toContain('baton logs');
    expect(json.attempt_history.map((a) => [a.attempt, a.outcome, a.error.message.split('\n')[0]])).toEqual([
      [1, 'failed', 'cannot parse row 1'],
      [2, 'failed', 'cannot parse row 2'],
    ]);
    expect(json.attempt_history.every((a) => a.duration_ms >= 0)).toBe(true);
    expect(json.logs_command).toBe(`baton logs ${runId} parse-rows`);

    const succeeded = await sandbox.run(['show', runId, '--task', 'produce']);
    expect(succeeded.code, describeResult(succeeded)).toBe(0);
    expect(succeeded.stdout).toMatch(/^#1 +.* succeeded *$/m);
    expect(succeeded.stdout).toContain('output   {\n           "rows": 1234,');

    const missing = await sandbox.run(['show', runId, '--task', 'nope']);
    expect(missing.code, describeResult(missing)).toBe(4);
    expect(missing.stderr).toContain(`TASK_NOT_FOUND: run ${runId} has no task "nope"`);
    expect(missing.stderr).toContain('Tasks: produce, parse-rows, after.');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A flow with a group, a choice, a map, a hyphenated id and ids that are DOT keywords. */
const GRAPH_FLOW = `name: shapes
params:
  items: { type: array, default: [1, 2] }
groups:
  ingest: { description: raw data in }
tasks:
  start: { run: echo start }
  node: { group: ingest, depends_on: [start], run: echo a }
  load-b: { group: ingest, depends_on: [start], run: echo b }
  route:
    depends_on: [ingest]
    choice:
      rules:
        - when: '\${{ params.items }}'
          then: [big]
      otherwise: [small]
  big: { run: echo big }
  small: { run: echo small }
  each:
    depends_on: [big, small]
    trigger_rule: none_failed_min_one_success
    map: { over: '\${{ params.items }}' }
    run: echo item
`;

const GRAPH_EDGES = [
  'start->node',
  'start->load-b',
  'node->route',
  'load-b->route',
  'route->big',
  'route->small',
  'big->each',
  'small->each',
].sort();

describe('graph', () => {
  function graphProject(): Sandbox {
    const sandbox = createSandbox(temp.mkdir());
    mkdirSync(sandbox.path('flows'));
    sandbox.write('flows/shapes.yaml', GRAPH_FLOW);
    return sandbox;
  }

  it('prints tasks in dependency layers with their kind and upstreams, marking groups, choices and maps', async () => {
    const sandbox = graphProject();
    const result = await sandbox.run(['graph', 'shapes']);
    expect(result.code, describeResult(result)).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^flow shapes \(version \w+\): 7 tasks in 5 layers$/);
    expect(lines[2]).toMatch(/^LAYER +TASK +KIND +UPSTREAM +NOTE$/);
    const rows = lines.slice(3).map((l) => l.split(/ {2,}/));
    expect(rows).toEqual([
      ['1', 'start', 'shell', '-'],
      ['2', 'node', 'shell', 'start', 'group ingest'],
      ['', 'load-b', 'shell', 'start', 'group ingest'],
      ['3', 'route', 'choice', 'node, load-b', 'choice of big, small'],
      ['4', 'big', 'shell', 'route'],
      ['', 'small', 'shell', 'route'],
      ['5', 'each', 'map', 'big, small', 'map over ${{ params.items }}; rule none_failed_min_one_success'],
    ]);
  });

  it('--format mermaid is a flowchart TD with one edge per dependency', async () => {
    const sandbox = graphProject();
    const result = await sandbox.run(['graph', 'shapes', '--format', 'mermaid']);
    expect(result.code, describeResult(result)).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('flowchart TD');
    const names = new Map<string, string>();
    for (const line of lines) {
      const node = /^\s+(t\d+)(?:\[\[|\{\{|\(\[|\[|\{)"([^"<]*)<br\/>/.exec(line);
      if (node) names.set(node[1] as string, node[2] as string);
    }
    expect([...names.values()].sort()).toEqual(['big', 'each', 'load-b', 'node', 'route', 'small', 'start']);
    expect(result.stdout).toMatch(/^\s+t\d+\{"route<br\/>choice"\}$/m);
    expect(result.stdout).toMatch(/^\s+t\d+\[\["each<br\/>map over \$\{\{ params\.items \}\}"\]\]$/m);
    expect(result.stdout).toMatch(
      /^ {2}subgraph g0 \["ingest"\]\n {4}t\d+\["node<br\/>shell"\]\n {4}t\d+\["load-b<br\/>shell"\]\n {2}end$/m,
    );
    const edges = lines.flatMap((l) => {
      const m = /^\s+(t\d+) --> (t\d+)$/.exec(l);
      return m ? [`${names.get(m[1] as string)}->${names.get(m[2] as string)}`] : [];
    });
    expect(edges.sort()).toEqual(GRAPH_EDGES);
  });

  it('--format dot is a digraph with quoted ids where DOT needs them, a cluster per group and every edge', async () => {
    const sandbox = graphProject();
    const result = await sandbox.run(['graph', 'shapes', '--format', 'dot']);
    expect(result.code, describeResult(result)).toBe(0);
    const dot = result.stdout.trimEnd();
    const lines = dot.split('\n');
    expect(lines[0]).toBe('digraph shapes {');
    expect(lines[lines.length - 1]).toBe('}');
    expect(dot.split('{').length).toBe(dot.split('}').length);
    // `node` is a DOT keyword and `load-b` is no bare DOT id: both are quoted.
    expect(dot).toContain('  start [label="start\\nshell", shape=box];');
    expect(dot).toContain('  route [label="route\\nchoice", shape=diamond];');
    expect(dot).toContain('  each [label="each\\nmap over ${{ params.items }}", shape=box3d];');
    expect(dot).toMatch(
      /^ {2}subgraph cluster_0 \{\n {4}label="ingest";\n {4}"node" \[label="node\\nshell", shape=box\];\n {4}"load-b" \[label="load-b\\nshell", shape=box\];\n {2}\}$/m,
    );
    const unquote = (id: string) => id.replace(/^"(.*)"$/, '$1');
    const edges = lines.flatMap((l) => {
      const m = /^ {2}("[^"]+"|\w+) -> ("[^"]+"|\w+);$/.exec(l);
      return m ? [`${unquote(m[1] as string)}->${unquote(m[2] as string)}`] : [];
    });
    expect(edges.sort()).toEqual(GRAPH_EDGES);
    expect(lines.filter((l) => l.includes('->'))).toHaveLength(GRAPH_EDGES.length);
  });

  it('an unknown flow is FLOW_NOT_FOUND; an unknown format is a usage error', async () => {
    const sandbox = graphProject();
    const missing = await sandbox.run(['graph', 'nope']);
    expect(missing.code, describeResult(missing)).toBe(4);
    expect(missing.stderr).toContain('FLOW_NOT_FOUND');
    const format = await sandbox.run(['graph', 'shapes', '--format', 'png']);
    expect(format.code, describeResult(format)).toBe(2);
    expect(format.stderr).toContain('mermaid');
  });
});
