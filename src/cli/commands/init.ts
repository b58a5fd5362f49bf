/**
 * `baton init`: scaffolds a project with a config file and an example flow that runs as is.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BatonError } from '../../core/errors.js';
import type { CliContext } from '../context.js';

const FILES: Record<string, string> = {
  'baton.yaml': `# Baton project configuration (see docs/operations.md).
database: .baton/baton.db
concurrency: 16
pools:
  cpu: 2
`,
  '.gitignore': `.baton/\nnode_modules/\n`,
  'flows/hello.yaml': `# An example flow: baton run hello --param who=you
name: hello
params:
  who: { type: string, default: world }
defaults:
  retry: { max_attempts: 3, backoff: 1s, max_backoff: 10s, jitter: full }
  timeout: 5m
tasks:
  extract:
    kind: shell
    command: ["sh", "-c", "echo 3"]
  greet:
    kind: function
    module: ../tasks/greet.ts
    export: greet
    depends_on: [extract]
    with: { who: "\${{ params.who }}", times: "\${{ tasks.extract.output }}" }
    pool: cpu
  report:
    kind: shell
    command: ["echo", "done"]
    depends_on: [greet]
    trigger_rule: all_done
`,
  'tasks/greet.ts': `// A function task: receives the attempt context, returns JSON.
interface GreetContext {
  inputs: { who: string; times: string };
  log: { info(message: string): void };
}

export async function greet({ inputs, log }: GreetContext) {
  const greeting = \`hello, \${inputs.who}!\`.repeat(Number(inputs.times));
  log.info(greeting);
  return { greeting };
}
`,
};

export async function initCommand(
  ctx: CliContext,
  dir: string | undefined,
  flags: { force?: boolean },
): Promise<number> {
  const root = resolve(ctx.runtime.cwd, dir ?? '.');
  const existing = Object.keys(FILES).filter((f) => f !== '.gitignore' && existsSync(join(root, f)));
  if (existing.length > 0 && !flags.force) {
    throw new BatonError('USAGE', `${root} already has ${existing.join(', ')}`, {
      hint: 'Run baton init in an empty folder, or pass --force to overwrite.',
    });
  }
  for (const [name, text] of Object.entries(FILES)) {
    const path = join(root, name);
    if (name === '.gitignore' && existsSync(path) && !flags.force) continue;
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
    ctx.stderr(`created ${path}`);
  }
  ctx.stdout(`project ready in ${root}\nnext: cd ${dir ?? '.'} && baton validate && baton run hello`);
  return 0;
}
