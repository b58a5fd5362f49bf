/**
 * Reading a flow file with `checkModules` imports the module of every function task and
 * checks its export, reporting at the key that is wrong, together with the file's other
 * problems; without it, nothing is imported.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadFlowFile } from '../../src/define/load-yaml.js';
import { brief, yaml } from './yaml-helpers.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'baton-modules-'));
  await mkdir(join(dir, 'tasks'));
  await writeFile(join(dir, 'tasks', 'steps.mjs'), 'export const fetch = () => 1;\nexport const label = "x";\n');
  await writeFile(join(dir, 'tasks', 'other.js'), 'export default function () { return 2; }\n');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(text: string, checkModules = true) {
  const file = join(dir, 'flow.yaml');
  await writeFile(file, text);
  return loadFlowFile(file, { checkModules });
}

describe('loadFlowFile with checkModules', () => {
  it('loads a flow whose modules and exports are there', async () => {
    const result = await load(yaml`
      name: f
      tasks:
        a: { kind: function, module: ./tasks/steps.mjs, export: fetch }
        b: { kind: function, module: ./tasks/other.js }
    `);
    expect(result.problems).toEqual([]);
    expect(result.spec?.tasks.map((t) => t.config)).toEqual([
      { module: './tasks/steps.mjs', export: 'fetch' },
      { module: './tasks/other.js', export: 'default' },
    ]);
  });

  it('reports each module problem at its key, with the problems of the other keys', async () => {
    const result = await load(yaml`
      name: f
      tasks:
        a: { kind: function, module: ./tasks/step.mjs }
        b: { kind: function, module: ./task/steps.mjs }
        c: { kind: function, module: ./tasks/steps.mjs, export: fecth }
        d: { kind: function, module: ./tasks/steps.mjs, export: label }
        e: { kind: function, module: ./tasks/nothing_alike.ts, retri: 1 }
    `);
    expect(result.spec).toBeUndefined();
    expect(result.problems.map(brief)).toEqual([
      {
        code: 'DEF_MODULE',
        at: '3:32',
        message: `tasks.a.module: task a: module ./tasks/step.mjs does not exist (did you mean "./tasks/steps.mjs"?); there is no file ${join(dir, 'tasks', 'step.mjs')}`,
        hint: 'Change module to "./tasks/steps.mjs".',
      },
      {
        code: 'DEF_MODULE',
        at: '4:32',
        message: `tasks.b.module: task b: module ./task/steps.mjs does not exist; there is no folder ${join(dir, 'task')}`,
        hint: 'Module paths are relative to the flow file; create the module or fix the path.',
      },
      {
        code: 'DEF_MODULE',
        at: '5:59',
        message:
          'tasks.c.export: task c: ./tasks/steps.mjs has no export "fecth" (did you mean "fetch"?); exported functions: fetch',
        hint: 'Change export to "fetch".',
      },
      {
        code: 'DEF_MODULE',
        at: '6:59',
        message:
          'tasks.d.export: task d: export "label" of ./tasks/steps.mjs is a string, not a function; exported functions: fetch',
        hint: 'Set export to one of: fetch; or export a function as "label".',
      },
      {
        code: 'DEF_MODULE',
        at: '7:32',
        message: `tasks.e.module: task e: module ./tasks/nothing_alike.ts does not exist; there is no file ${join(dir, 'tasks', 'nothing_alike.ts')}`,
        hint: `Module paths are relative to the flow file; modules in ${join(dir, 'tasks')}: other.js, steps.mjs.`,
      },
      {
        code: 'DEF_INVALID',
        at: '7:58',
        message: 'tasks.e.retri: unknown key (did you mean "retry"?)',
        hint: 'Rename it to "retry", or remove it.',
      },
    ]);
  });

  it('takes the default export of a TypeScript module outside an ES-module package as written', async () => {
    // No package.json says "type": "module" here: the file is compiled to CommonJS.
    await writeFile(
      join(dir, 'tasks', 'typed.ts'),
      'export default function (): number { return 1; }\nexport const n = 2;\n',
    );
    const result = await load(yaml`
      name: f
      tasks:
        a: { kind: function, module: ./tasks/typed.ts }
        b: { kind: function, module: ./tasks/typed.ts, export: n }
    `);
    expect(result.problems.map((p) => p.message)).toEqual([
      'tasks.b.export: task b: export "n" of ./tasks/typed.ts is a number, not a function; exported functions: default',
    ]);
  });

  it('imports nothing without checkModules, and lists the modules either way', async () => {
    await writeFile(join(dir, 'tasks', 'throws.mjs'), 'throw new Error("imported");\n');
    const text = yaml`
      name: f
      tasks:
        a: { kind: function, module: ./tasks/throws.mjs }
    `;
    const unchecked = await load(text, false);
    expect(unchecked.problems).toEqual([]);
    expect(unchecked.modules).toEqual([
      { taskId: 'a', path: ['tasks', 'a'], module: './tasks/throws.mjs', exportName: 'default', exportWritten: false },
    ]);
    const checked = await load(text);
    expect(checked.problems.map((p) => p.message)).toEqual([
      `tasks.a.module: task a: cannot import ${join(dir, 'tasks', 'throws.mjs')}: imported`,
    ]);
  });
});
