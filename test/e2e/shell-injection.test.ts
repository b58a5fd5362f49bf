/**
 * Values never become shell syntax. A `${{ }}` expression inside a command line that a
 * shell parses (`run:`, a string `command`, the script of `[sh, -c, …]`, and the same in
 * the TypeScript builder) is refused when the flow is loaded; the safe forms, `env:` and
 * argv lists, pass hostile param values verbatim: the marker file that an injected
 * command would create never appears, and each task received exactly the value given.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sandbox, ShowJson } from './cli-helpers.js';
import { REPO_ROOT, createSandbox, describeResult, listRuns, parseJson, taskOf, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

// Lines: build.run 6, deploy.command 9, report.command[2] 12, notify.run (block) 15.
const UNSAFE = `name: unsafe
params:
  version: { type: string, default: '1.0' }
tasks:
  build:
    run: echo "building \${{ params.version }}"
  deploy:
    kind: shell
    command: 'deploy --version \${{ params.version }} --run \${{ run.id }}'
    shell: /bin/bash
  report:
    command: [sh, -c, 'echo \${{ params.version }}', sh, '\${{ params.version }}']
    kind: shell
  notify:
    run: |
      echo "done"
      echo "\${{ params.version }}"
`;

interface Problem {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
  readonly location?: { file: string; line?: number; column?: number; path?: string };
}

describe('expressions inside shell command lines are refused', () => {
  it('in run:, in a string command and in the script of sh -c, each with file:line:col and a hint', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('unsafe.yaml', UNSAFE);
    const result = await sandbox.run(['validate', 'unsafe.yaml']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stdout).toContain(`FAIL  ${file}: 4 problem(s)`);
    const danger =
      'pasted into a command line that a shell parses, where a value holding a quote, `;`, `$( )`, a backtick or a newline would run as commands';
    expect(result.stdout).toContain(
      `${file}:6:10: DEF_SHELL_EXPRESSION: tasks.build.run: the expression \${{ params.version }} is ${danger}`,
    );
    expect(result.stdout).toContain(
      `${file}:9:14: DEF_SHELL_EXPRESSION: tasks.deploy.command: the expressions \${{ params.version }} and \${{ run.id }} are ${danger}`,
    );
    // The script of sh -c is refused; the positional parameter after it is passed verbatim, and allowed.
    expect(result.stdout).toContain(
      `${file}:12:23: DEF_SHELL_EXPRESSION: tasks.report.command[2]: the expression \${{ params.version }} is ${danger}`,
    );
    expect(result.stdout).toContain(`${file}:15:10: DEF_SHELL_EXPRESSION: tasks.notify.run:`);
    expect(result.stdout).toContain(
      `hint: Pass the value through env and read it quoted: \`env: { VERSION: '\${{ params.version }}' }\` and "$VERSION" in the command line; ` +
        "or run the program without a shell, with an argv list: `command: [prog, '${{ params.version }}']` " +
        '(see docs/flows.md#expressions-and-shell-commands).',
    );
  });

  it('--json carries the code and the location; baton run refuses the flow and creates no run', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('unsafe.yaml', UNSAFE);
    const json = parseJson<{ ok: boolean; files: { problems: Problem[] }[] }>(
      await sandbox.run(['validate', 'unsafe.yaml', '--json']),
    );
    expect(json.ok).toBe(false);
    expect(json.files[0]?.problems.map((p) => [p.code, p.location])).toEqual([
      ['DEF_SHELL_EXPRESSION', { file, line: 6, column: 10, path: 'tasks.build.run' }],
      ['DEF_SHELL_EXPRESSION', { file, line: 9, column: 14, path: 'tasks.deploy.command' }],
      ['DEF_SHELL_EXPRESSION', { file, line: 12, column: 23, path: 'tasks.report.command[2]' }],
      ['DEF_SHELL_EXPRESSION', { file, line: 15, column: 10, path: 'tasks.notify.run' }],
    ]);

    const run = await sandbox.run(['run', 'unsafe.yaml', '-p', 'version=2.0']);
    expect(run.code, describeResult(run)).toBe(3);
    expect(run.stderr).toContain('DEF_SHELL_EXPRESSION');
    expect(await listRuns(sandbox)).toEqual([]);
  });

  it('an escaped $${{ is text, not an expression, and is allowed', async () => {
    const sandbox = createSandbox(temp.mkdir());
    sandbox.write('escaped.yaml', "name: escaped\ntasks:\n  a:\n    run: echo '$${{ not.an.expression }}'\n");
    const result = await sandbox.run(['run', 'escaped.yaml', '--json']);
    expect(result.code, describeResult(result)).toBe(0);
    expect(taskOf(parseJson<ShowJson>(result), 'a').output).toBe('${{ not.an.expression }}');
  });

  it('in a TypeScript flow: a string command with shell', async () => {
    const sandbox = createSandbox(temp.mkdir());
    mkdirSync(sandbox.path('node_modules'));
    symlinkSync(REPO_ROOT, join(sandbox.path('node_modules'), 'baton-orchestrator'), 'dir');
    sandbox.write('package.json', JSON.stringify({ name: 'unsafe-ts', type: 'module' }));
    const file = sandbox.write(
      'unsafe.ts',
      `import { defineFlow } from 'baton-orchestrator';
const flow = defineFlow({ name: 'unsafe_ts', params: { name: { type: 'string' } } });
flow.shell('greet', { command: 'echo "hello \${{ params.name }}"', shell: true });
flow.shell('safe', { command: 'echo "hello $NAME"', shell: true, env: { NAME: '\${{ params.name }}' } });
export default flow;
`,
    );
    const result = await sandbox.run(['validate', 'unsafe.ts']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stdout).toContain(`FAIL  ${file}: 1 problem(s)`);
    expect(result.stdout).toContain(
      `${file}: DEF_SHELL_EXPRESSION: tasks.greet.command: the expression \${{ params.name }} is pasted into a command line`,
    );
  });
});

/**
 * The same value three safe ways: read from env by a shell script, as an argv entry of a
 * program run without a shell, and as a positional parameter of `sh -c`. Each writes what
 * it received to a file of its own, byte for byte.
 */
const SAFE = `name: safe
params:
  value: { type: string }
tasks:
  via_env:
    run: printf '%s' "$VALUE" > env.txt; printf '%s\\n' "$VALUE"
    env: { VALUE: '\${{ params.value }}' }
  via_argv:
    kind: shell
    command: [node, -e, 'require("fs").writeFileSync("argv.txt", process.argv[1])', '\${{ params.value }}']
  via_positional:
    kind: shell
    command: [sh, -c, 'printf "%s" "$1" > positional.txt', sh, '\${{ params.value }}']
`;

/** Values that would run \`touch owned\` if pasted into a command line, in every way a shell allows. */
const HOSTILE: readonly (readonly [string, string])[] = [
  ['a closed double quote', 'x"; touch owned; echo "'],
  ['a closed single quote', "x'; touch owned; echo '"],
  ['backticks', '`touch owned`'],
  ['$( )', '$(touch owned)'],
  ['a newline', 'x\ntouch owned'],
  ['a semicolon', 'x; touch owned'],
  ['&&', 'x && touch owned'],
  ['a pipe and a redirection', 'x | touch owned > owned'],
  ['a variable and a glob', '$HOME * ${PATH}'],
];

function safeProject(): Sandbox {
  const sandbox = createSandbox(temp.mkdir());
  sandbox.write('safe.yaml', SAFE);
  return sandbox;
}

describe('env: and argv lists pass hostile values verbatim', () => {
  it('the flow with env and argv lists is valid', async () => {
    const sandbox = safeProject();
    const result = await sandbox.run(['validate', 'safe.yaml']);
    expect(result.code, describeResult(result)).toBe(0);
  });

  for (const [what, value] of HOSTILE) {
    it(`a param with ${what} runs nothing, and arrives as given`, async () => {
      const sandbox = safeProject();
      const result = await sandbox.run(['run', 'safe.yaml', '--param', `value=${value}`, '--json']);
      expect(result.code, describeResult(result)).toBe(0);
      const run = parseJson<ShowJson>(result);
      expect(run.params).toEqual({ value });
      expect(existsSync(sandbox.path('owned')), 'an injected command ran').toBe(false);
      for (const name of ['env.txt', 'argv.txt', 'positional.txt']) {
        expect(readFileSync(sandbox.path(name), 'utf8'), name).toBe(value);
      }
      // The output of via_env is its last line of stdout, as printed.
      expect(taskOf(run, 'via_env').output).toBe(value.split('\n').at(-1));
      const logs = await sandbox.run(['logs', run.id, 'via_env']);
      expect(logs.stdout).toContain(value.split('\n')[0] as string);
    });
  }

  it('a NUL character (only possible through --params-file) stops every task before its command starts', async () => {
    // The operating system takes arguments and environment values as C strings: none can
    // hold a NUL, so the CLI cannot be given one on its command line.
    const sandbox = safeProject();
    const value = 'x\u0000; touch owned';
    sandbox.write('params.json', JSON.stringify({ value }));
    const result = await sandbox.run(['run', 'safe.yaml', '--params-file', 'params.json', '--json']);
    expect(result.code, describeResult(result)).toBe(1);
    const run = parseJson<ShowJson>(result);
    expect(run.params).toEqual({ value });
    for (const id of ['via_env', 'via_argv', 'via_positional']) {
      expect(taskOf(run, id).state).toBe('failed');
      expect(taskOf(run, id).error?.code).toBe('TASK_INPUT');
      expect(taskOf(run, id).error?.message).toContain('holds a NUL character, which no command can receive');
    }
    expect(existsSync(sandbox.path('owned'))).toBe(false);
    for (const name of ['env.txt', 'argv.txt', 'positional.txt']) expect(existsSync(sandbox.path(name))).toBe(false);
  });
});
