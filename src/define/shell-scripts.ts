/**
 * Where the text of a shell task is parsed by a shell, and the rule that no `${{ }}`
 * expression may be written there. A value pasted into a command line becomes shell
 * syntax: a param such as `x"; touch owned; echo "` would run a command, and params come
 * from webhook bodies, stream messages and file names as well as from people. Values
 * reach a command safely, and verbatim, in two ways that both front ends accept: through
 * `env` (the script reads `"$NAME"`), or as entries of an argv list run without a shell.
 *
 * A script is a string `command` (and a YAML `run:`), which `/bin/sh -c` runs, or the
 * argument after `-c` of an argv list that starts a shell itself (`[sh, -c, "…"]`), which
 * is the same hole written another way. Arguments after that script are the script's
 * positional parameters (`"$1"`), passed verbatim, so they may hold expressions.
 */
import { parseTemplateString, type Reference } from './expression.js';
import type { KeyPath } from './flow-schema.js';
import type { TemplatedValue } from './reference-check.js';

/** Programs that take a script after `-c`. */
const SHELLS: ReadonlySet<string> = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'fish']);
/** A cluster of short options that includes `c` (`-c`, `-ec`, `-euxc`). */
const SCRIPT_FLAG = /^-[A-Za-z]*c[A-Za-z]*$/;
/** Shell options that take the next argument as their value (`-o pipefail`). */
const OPTION_WITH_VALUE = /^[-+][oO]$/;

export const SHELL_EXPRESSION_DOCS = 'docs/flows.md#expressions-and-shell-commands';

function programName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Index of the script in an argv list that starts a shell with `-c`, if it does. */
function scriptIndex(argv: readonly unknown[]): number | undefined {
  let i = 0;
  // `env [NAME=value…] sh -c …` starts the shell through env.
  if (typeof argv[0] === 'string' && programName(argv[0]) === 'env') {
    i = 1;
    while (typeof argv[i] === 'string' && (String(argv[i]).includes('=') || String(argv[i]).startsWith('-'))) i++;
  }
  const program = argv[i];
  if (typeof program !== 'string' || !SHELLS.has(programName(program))) return undefined;
  let sawFlag = false;
  for (let j = i + 1; j < argv.length; j++) {
    const arg = argv[j];
    if (typeof arg !== 'string') return undefined;
    if (!sawFlag) {
      if (SCRIPT_FLAG.test(arg)) sawFlag = true;
      else if (OPTION_WITH_VALUE.test(arg)) j++;
      else if (!arg.startsWith('-') && !arg.startsWith('+')) return undefined; // a script file: no -c
      continue;
    }
    if (OPTION_WITH_VALUE.test(arg)) j++;
    else if (!arg.startsWith('-') && !arg.startsWith('+')) return j;
  }
  return undefined;
}

/**
 * The strings of a shell command that a shell parses, with their paths. `command` is the
 * value as written (a string, or an argv list), at `path`.
 * Example: `shellScriptsOf(['sh', '-c', 'echo hi', 'x'], p)` → `[{ value: 'echo hi', path: [...p, 2] }]`.
 */
export function shellScriptsOf(command: unknown, path: KeyPath): TemplatedValue[] {
  if (typeof command === 'string') return [{ value: command, path }];
  if (!Array.isArray(command)) return [];
  const at = scriptIndex(command);
  return at === undefined ? [] : [{ value: command[at] as string, path: [...path, at] }];
}

export interface ShellExpressionProblem {
  readonly code: 'DEF_SHELL_EXPRESSION';
  readonly path: KeyPath;
  readonly message: string;
  readonly hint: string;
  readonly at: 'value';
}

/** An environment variable name for the value an expression reads: `params.version` → `VERSION`. */
function variableName(refs: readonly Reference[]): string {
  const ref = refs[0];
  if (!ref) return 'VALUE';
  const last = [...ref.path].reverse().find((p): p is string => typeof p === 'string' && p !== 'output') ?? ref.root;
  const name = last.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return /^[A-Z_]/.test(name) ? name : `V_${name}`;
}

/**
 * One problem per script that holds an expression (an escaped `$${{` is text, not an
 * expression). Scripts whose templates do not parse are left to the expression checks.
 */
export function checkShellScripts(scripts: readonly TemplatedValue[]): ShellExpressionProblem[] {
  const problems: ShellExpressionProblem[] = [];
  for (const { value, path } of scripts) {
    if (typeof value !== 'string' || !value.includes('${{')) continue;
    let parts;
    try {
      parts = parseTemplateString(value).parts;
    } catch {
      continue;
    }
    const expressions = parts.flatMap((p) => (p.kind === 'expression' ? [p.source] : []));
    const first = expressions[0];
    if (first === undefined) continue;
    const refs = parseTemplateString(first).references;
    const name = variableName(refs);
    const listed =
      expressions.length === 1
        ? `the expression ${first} is`
        : `the expressions ${expressions.slice(0, -1).join(', ')} and ${expressions.at(-1) as string} are`;
    problems.push({
      code: 'DEF_SHELL_EXPRESSION',
      path,
      message:
        `${listed} pasted into a command line that a shell parses, where a value holding a quote, ` +
        '`;`, `$( )`, a backtick or a newline would run as commands',
      hint:
        `Pass the value through env and read it quoted: \`env: { ${name}: '${first}' }\` and "$${name}" in the command line; ` +
        `or run the program without a shell, with an argv list: \`command: [prog, '${first}']\` (see ${SHELL_EXPRESSION_DOCS}).`,
      at: 'value',
    });
  }
  return problems;
}
