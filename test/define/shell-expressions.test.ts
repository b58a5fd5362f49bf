/**
 * No `${{ }}` where a shell parses the text: which strings of a shell task a shell parses,
 * and the DEF_SHELL_EXPRESSION problems both front ends report, with positions in YAML.
 */
import { describe, expect, it } from 'vitest';
import { defineFlow } from '../../src/define/builder.js';
import { checkShellScripts, shellScriptsOf } from '../../src/define/shell-scripts.js';
import { BatonError } from '../../src/core/errors.js';
import { problemsOf, specOf, yaml } from './yaml-helpers.js';

const DANGER =
  'pasted into a command line that a shell parses, where a value holding a quote, `;`, `$( )`, a backtick or a newline would run as commands';

describe('shellScriptsOf', () => {
  it('finds a string command, and the script after -c of an argv list that starts a shell', () => {
    const at = ['tasks', 'a', 'command'];
    expect(shellScriptsOf('echo hi', at)).toEqual([{ value: 'echo hi', path: at }]);
    expect(shellScriptsOf(['sh', '-c', 'echo "$1"', 'sh', 'x'], at)).toEqual([
      { value: 'echo "$1"', path: [...at, 2] },
    ]);
    expect(shellScriptsOf(['/bin/bash', '-euc', 's'], at)).toEqual([{ value: 's', path: [...at, 2] }]);
    expect(shellScriptsOf(['bash', '-o', 'pipefail', '-c', 's'], at)).toEqual([{ value: 's', path: [...at, 4] }]);
    expect(shellScriptsOf(['/usr/bin/env', 'A=1', 'zsh', '-c', 's'], at)).toEqual([{ value: 's', path: [...at, 4] }]);
  });

  it('finds none in argv lists that run a program, or a shell on a script file', () => {
    const at = ['command'];
    expect(shellScriptsOf(['echo', '-c', 'x'], at)).toEqual([]);
    expect(shellScriptsOf(['python3', '-c', 'print(1)'], at)).toEqual([]);
    expect(shellScriptsOf(['sh', './load.sh', '-c'], at)).toEqual([]);
    expect(shellScriptsOf(['sh', '-c'], at)).toEqual([]);
    expect(shellScriptsOf(undefined, at)).toEqual([]);
  });

  it('reports a script holding expressions once, naming them, and leaves escaped and malformed ones alone', () => {
    const problems = checkShellScripts([
      { value: 'cp ${{ params.src }} ${{ tasks.list.output.target }}', path: ['a'] },
      { value: "echo '$${{ literal }}'", path: ['b'] },
      { value: 'echo ${{ params. }}', path: ['c'] },
      { value: 'echo ${{ item }}', path: ['d'] },
    ]);
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      [['a'], `the expressions \${{ params.src }} and \${{ tasks.list.output.target }} are ${DANGER}`],
      [['d'], `the expression \${{ item }} is ${DANGER}`],
    ]);
    expect(problems[0]?.hint).toBe(
      'Pass the value through env and read it quoted: `env: { SRC: \'${{ params.src }}\' }` and "$SRC" in the command line; ' +
        "or run the program without a shell, with an argv list: `command: [prog, '${{ params.src }}']` (see docs/flows.md#expressions-and-shell-commands).",
    );
    expect(problems[1]?.hint).toContain('`env: { ITEM: \'${{ item }}\' }` and "$ITEM"');
  });
});

describe('flow files', () => {
  it('refuse an expression in run:, in a string command, in a sh -c script, in a handler and in a map template', () => {
    expect(
      problemsOf(yaml`
        name: f
        params:
          p: { type: string, default: x }
        tasks:
          a:
            run: echo \${{ params.p }}
          b:
            kind: shell
            command: "echo \${{ params.p }}"
            shell: /bin/bash
          c:
            kind: shell
            command: [bash, -c, "echo \${{ params.p }}"]
            on_failure: { run: "echo \${{ error.message }}" }
          m:
            map: { over: "\${{ params.p }}" }
            tasks:
              inner: { run: "echo \${{ item }}" }
      `).map((p) => [p.code, p.at, p.message.split(':')[0]]),
    ).toEqual([
      ['DEF_SHELL_EXPRESSION', '6:10', 'tasks.a.run'],
      ['DEF_SHELL_EXPRESSION', '9:14', 'tasks.b.command'],
      ['DEF_SHELL_EXPRESSION', '13:25', 'tasks.c.command[2]'],
      ['DEF_SHELL_EXPRESSION', '14:24', 'tasks.c.on_failure.run'],
      ['DEF_SHELL_EXPRESSION', '18:21', 'tasks.m.tasks.inner.run'],
    ]);
  });

  it('accept expressions in env, in argv entries and in the positional parameters of sh -c', () => {
    const spec = specOf(yaml`
      name: f
      params:
        p: { type: string, default: x }
      tasks:
        a:
          run: echo "$P"
          env: { P: "\${{ params.p }}" }
        b:
          kind: shell
          command: [printf, "%s", "\${{ params.p }}"]
        c:
          kind: shell
          command: [sh, -c, 'echo "$1"', sh, "\${{ params.p }}"]
        d:
          run: echo "no expression, only $$\{{ text"
    `);
    expect(spec.tasks.map((t) => t.config.command)).toEqual([
      'echo "$P"',
      ['printf', '%s', '${{ params.p }}'],
      ['sh', '-c', 'echo "$1"', 'sh', '${{ params.p }}'],
      'echo "no expression, only $${{ text"',
    ]);
  });
});

describe('the TypeScript builder', () => {
  function problems(build: (f: ReturnType<typeof defineFlow>) => void): string[] {
    const f = defineFlow({ name: 'f', params: { p: { type: 'string', default: 'x' } } });
    build(f);
    try {
      f.toSpec('f.ts');
    } catch (error) {
      if (error instanceof BatonError) return error.problems.map((p) => `${p.code} ${p.location?.path ?? ''}`);
      throw error;
    }
    return [];
  }

  it('refuses an expression in a string command, a map body and a handler, and accepts env and argv', () => {
    expect(
      problems((f) => {
        f.shell('a', { command: 'echo ${{ params.p }}', shell: true });
        f.map('m', { over: '${{ params.p }}' }, { command: 'echo ${{ item }}', shell: true });
        f.shell('b', {
          command: ['true'],
          onFailure: { run: { command: ['sh', '-c', 'echo ${{ error.code }}'] } },
        });
        f.shell('ok_env', { command: 'echo "$P"', shell: true, env: { P: '${{ params.p }}' } });
        f.shell('ok_argv', { command: ['echo', '${{ params.p }}'] });
      }),
    ).toEqual([
      'DEF_SHELL_EXPRESSION tasks.a.command',
      'DEF_SHELL_EXPRESSION tasks.m.command',
      'DEF_SHELL_EXPRESSION tasks.b.onFailure.command[2]',
    ]);
  });
});
