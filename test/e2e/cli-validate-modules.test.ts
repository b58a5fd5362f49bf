/**
 * `baton validate` checks the code a flow runs before anything runs: the module of every
 * function task is imported and its export checked, all problems at once with file:line:col
 * and "did you mean"; `baton run` refuses such a flow before a run exists; commands that
 * read runs import nothing. `validate --types` type-checks TypeScript flows and task
 * modules with the project's tsconfig.json, or strict defaults.
 */
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sandbox, ValidateJson } from './cli-helpers.js';
import {
  REPO_ROOT,
  createSandbox,
  describeResult,
  listRuns,
  parseJson,
  readLines,
  useTempDirs,
} from './cli-helpers.js';

const temp = useTempDirs();

/** A module whose top-level code appends a line to `imported.log`: each import is counted. */
const ORDERS_MODULE = `import { appendFileSync } from 'node:fs';
appendFileSync(new URL('./imported.log', import.meta.url), 'imported\\n');
export function extract() { return [1, 2, 3]; }
export function load(ctx) { return \`loaded \${ctx.inputs.rows.length}\`; }
export const config = { batch: 10 };
`;

const TS_MODULE = `export function shout(ctx: { params: Record<string, unknown> }): string {
  return String(ctx.params.word ?? 'hi').toUpperCase();
}
`;

/** A project with flows/ and tasks/ (orders.mjs, words.ts). */
function project(): Sandbox {
  const sandbox = createSandbox(temp.mkdir());
  mkdirSync(sandbox.path('flows'));
  mkdirSync(sandbox.path('tasks'));
  sandbox.write('baton.yaml', 'concurrency: 2\n');
  sandbox.write('tasks/orders.mjs', ORDERS_MODULE);
  sandbox.write('tasks/words.ts', TS_MODULE);
  return sandbox;
}

// Lines: extract.module 5, load.export 10, summary.export 14, shout.export 18, typo 19.
const BROKEN = `name: etl
tasks:
  extract:
    kind: function
    module: ../tasks/order.mjs
  load:
    kind: function
    module: ../tasks/orders.mjs
    depends_on: [extract]
    export: lod
  summary:
    kind: function
    module: ../tasks/orders.mjs
    export: config
  shout:
    kind: function
    module: ../tasks/words.ts
    export: shuot
    timout: 5m
`;

const VALID = `name: etl
tasks:
  extract:
    kind: function
    module: ../tasks/orders.mjs
    export: extract
  load:
    kind: function
    module: ../tasks/orders.mjs
    export: load
    depends_on: [extract]
    with: { rows: '\${{ tasks.extract.output }}' }
`;

describe('baton validate: task modules', () => {
  it('reports a missing module, a misspelt export and an export that is not a function, at once, with did-you-mean', async () => {
    const sandbox = project();
    const file = sandbox.write('flows/etl.yaml', BROKEN);
    const result = await sandbox.run(['validate']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stdout).toContain(`FAIL  ${file}: 5 problem(s)`);
    expect(result.stdout).toContain(
      `${file}:5:13: DEF_MODULE: tasks.extract.module: task extract: module ../tasks/order.mjs does not exist ` +
        `(did you mean "../tasks/orders.mjs"?); there is no file ${sandbox.path('tasks/order.mjs')}`,
    );
    expect(result.stdout).toContain('hint: Change module to "../tasks/orders.mjs".');
    expect(result.stdout).toContain(
      `${file}:10:13: DEF_MODULE: tasks.load.export: task load: ../tasks/orders.mjs has no export "lod" ` +
        '(did you mean "load"?); exported functions: extract, load',
    );
    expect(result.stdout).toContain('hint: Change export to "load".');
    expect(result.stdout).toContain(
      `${file}:14:13: DEF_MODULE: tasks.summary.export: task summary: export "config" of ../tasks/orders.mjs is an object, ` +
        'not a function; exported functions: extract, load',
    );
    // TypeScript modules load through tsx and get the same checks.
    expect(result.stdout).toContain(
      `${file}:18:13: DEF_MODULE: tasks.shout.export: task shout: ../tasks/words.ts has no export "shuot" ` +
        '(did you mean "shout"?); exported functions: shout',
    );
    // The other problems of the file come in the same report.
    expect(result.stdout).toContain(`${file}:19:5: DEF_INVALID: tasks.shout.timout: unknown key`);
  });

  it('--json gives each module problem its code, location and hint', async () => {
    const sandbox = project();
    const file = sandbox.write('flows/etl.yaml', BROKEN);
    const result = await sandbox.run(['validate', '--json']);
    expect(result.code, describeResult(result)).toBe(3);
    const json = parseJson<ValidateJson>(result);
    expect(json.ok).toBe(false);
    const problems = json.files[0]?.problems ?? [];
    expect(problems.filter((p) => p.code === 'DEF_MODULE').map((p) => p.location)).toEqual([
      { file, line: 5, column: 13, path: 'tasks.extract.module' },
      { file, line: 10, column: 13, path: 'tasks.load.export' },
      { file, line: 14, column: 13, path: 'tasks.summary.export' },
      { file, line: 18, column: 13, path: 'tasks.shout.export' },
    ]);
    expect(problems.every((p) => typeof p.hint === 'string' && p.hint !== '')).toBe(true);
  });

  it('a module without the default export, and a module that does not import, are named with the task', async () => {
    const sandbox = project();
    sandbox.write('tasks/broken.mjs', 'export function run( {\n');
    const file = sandbox.write(
      'flows/etl.yaml',
      `name: etl
tasks:
  first:
    kind: function
    module: ../tasks/orders.mjs
  second:
    kind: function
    module: ../tasks/broken.mjs
`,
    );
    const result = await sandbox.run(['validate', 'flows/etl.yaml']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stdout).toContain(
      `${file}:5:13: DEF_MODULE: tasks.first.module: task first: ../tasks/orders.mjs has no default export; ` +
        'exported functions: extract, load',
    );
    expect(result.stdout).toContain('hint: Set `export:` to one of: extract, load.');
    // The first line of the module's own error, after the module's path.
    expect(result.stdout).toContain(
      `${file}:8:13: DEF_MODULE: tasks.second.module: task second: cannot import ${sandbox.path('tasks/broken.mjs')}: Unexpected`,
    );
  });

  it('baton run refuses such a flow before creating a run', async () => {
    const sandbox = project();
    sandbox.write('flows/etl.yaml', BROKEN);
    const result = await sandbox.run(['run', 'etl']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stderr).toContain(
      'DEF_MODULE: tasks.load.export: task load: ../tasks/orders.mjs has no export "lod"',
    );
    expect(await listRuns(sandbox)).toEqual([]);
  });

  it('a valid flow imports each module once per process; runs and show import nothing', async () => {
    const sandbox = project();
    sandbox.write('flows/etl.yaml', VALID);
    const imports = sandbox.path('tasks/imported.log');

    const validated = await sandbox.run(['validate']);
    expect(validated.code, describeResult(validated)).toBe(0);
    expect(readLines(imports)).toHaveLength(1);

    const ran = await sandbox.run(['run', 'etl', '--json']);
    expect(ran.code, describeResult(ran)).toBe(0);
    const run = parseJson<{ id: string; tasks: { id: string; output: unknown }[] }>(ran);
    expect(run.tasks.find((t) => t.id === 'load')?.output).toBe('loaded 3');
    // The check and the two tasks of that process share one import.
    expect(readLines(imports)).toHaveLength(2);

    for (const args of [['runs'], ['show', run.id], ['logs', run.id]]) {
      const read = await sandbox.run(args);
      expect(read.code, describeResult(read)).toBe(0);
    }
    expect(readLines(imports)).toHaveLength(2);
  });
});

/** Makes `baton-orchestrator` resolvable from the project, as an install would. */
function linkBaton(sandbox: Sandbox): void {
  mkdirSync(sandbox.path('node_modules'));
  symlinkSync(REPO_ROOT, join(sandbox.path('node_modules'), 'baton-orchestrator'), 'dir');
}

const TYPED_FLOW = `import { defineFlow } from 'baton-orchestrator';

const flow = defineFlow({ name: 'typed', params: { day: { type: 'string', default: '2024-01-01' } } });
flow.task('count', ({ params }) => {
  const n: number = params.day;
  return n;
});
export default flow;
`;

const MODULE_WITH_TYPE_ERROR = `export function total(ctx: { inputs: Record<string, unknown> }): number {
  const rows: string = Object.keys(ctx.inputs).length;
  return rows.length;
}
`;

const USES_TS_MODULE = `name: uses_ts
tasks:
  total:
    kind: function
    module: ../tasks/total.ts
    export: total
`;

describe('baton validate --types', () => {
  it('reports type errors of a TypeScript task module and of a TypeScript flow as file:line:col  TSxxxx, and exits 3', async () => {
    const sandbox = project();
    linkBaton(sandbox);
    sandbox.write('package.json', JSON.stringify({ name: 'typed', type: 'module' }));
    const module = sandbox.write('tasks/total.ts', MODULE_WITH_TYPE_ERROR);
    sandbox.write('flows/uses_ts.yaml', USES_TS_MODULE);
    const flow = sandbox.write('flows/typed.ts', TYPED_FLOW);

    // Loading strips types: without --types both flows are valid.
    const plain = await sandbox.run(['validate']);
    expect(plain.code, describeResult(plain)).toBe(0);

    const result = await sandbox.run(['validate', '--types']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stdout.split('\n')).toEqual(
      expect.arrayContaining([
        `${module}:2:9  TS2322 Type 'number' is not assignable to type 'string'.`,
        `${flow}:5:9  TS2322 Type 'string' is not assignable to type 'number'.`,
      ]),
    );
    expect(result.stdout).toMatch(/^FAIL {2}types: 2 error\(s\) in 2 TypeScript file\(s\) with default options/m);
    expect(result.stderr).toContain(
      `no tsconfig.json in ${sandbox.dir} or above; type-checking with defaults (strict, module NodeNext, target ES2022)`,
    );

    const json = parseJson<ValidateJson>(await sandbox.run(['validate', '--types', '--json']));
    expect(json.ok).toBe(false);
    expect(json.types?.tsconfig).toBeNull();
    expect(json.types?.diagnostics).toEqual(
      expect.arrayContaining([
        {
          file: module,
          line: 2,
          column: 9,
          code: 'TS2322',
          category: 'error',
          message: "Type 'number' is not assignable to type 'string'.",
        },
      ]),
    );
  });

  it("uses the project's tsconfig.json, and passes clean code", async () => {
    const sandbox = project();
    // An untyped parameter is an error under the strict defaults, and allowed by this tsconfig.
    sandbox.write('tasks/loose.ts', 'export function echo(ctx) {\n  return ctx.params;\n}\n');
    sandbox.write(
      'flows/loose.yaml',
      'name: loose\ntasks:\n  echo:\n    kind: function\n    module: ../tasks/loose.ts\n    export: echo\n',
    );
    const strict = await sandbox.run(['validate', '--types']);
    expect(strict.code, describeResult(strict)).toBe(3);
    expect(strict.stdout).toContain(
      `${sandbox.path('tasks/loose.ts')}:1:22  TS7006 Parameter 'ctx' implicitly has an 'any' type.`,
    );

    const tsconfig = sandbox.write(
      'tsconfig.json',
      JSON.stringify({ compilerOptions: { strict: false, module: 'NodeNext', target: 'ES2022', types: [] } }),
    );
    const loose = await sandbox.run(['validate', '--types']);
    expect(loose.code, describeResult(loose)).toBe(0);
    expect(loose.stdout).toMatch(
      new RegExp(`^ok {4}types: 1 TypeScript file\\(s\\) with ${tsconfig.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'),
    );
    expect(loose.stderr).not.toContain('no tsconfig.json');
    expect(readFileSync(tsconfig, 'utf8')).toContain('"strict":false');
  });
});
