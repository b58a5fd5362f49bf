/**
 * `baton init [dir]`: scaffolds a project that runs with the next command it prints: a
 * package.json that depends on Baton, a tsconfig.json, a TypeScript flow and a YAML flow
 * with its function module, baton.yaml and .gitignore.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatonError } from '../../core/errors.js';
import type { CliContext } from '../context.js';

/** Baton's own package.json: its npm name and version go into the new project. */
interface OwnPackage {
  readonly name: string;
  readonly version: string;
  readonly devDependencies?: Record<string, string>;
}

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function ownPackage(): OwnPackage {
  return JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as OwnPackage;
}

/**
 * How the new project's package.json names Baton, in order of preference: what the user
 * asked for (`--from`); the tarball or folder `npx --package <path>` ran this command from
 * (npm passes it as `npm_config_package`); this checkout, when Baton runs from a clone;
 * otherwise the published version.
 */
export function batonDependency(
  root: string,
  env: NodeJS.ProcessEnv,
  from: string | undefined,
  own: { readonly root: string; readonly version: string } = { root: PACKAGE_ROOT, version: ownPackage().version },
): string {
  const local = (path: string): string => {
    // Relative while close (a tarball beside the project moves with it), absolute otherwise.
    const rel = relative(root, path);
    return `file:${rel === '' ? '.' : isAbsolute(rel) || rel.startsWith(`..${sep}..`) ? path : rel}`;
  };
  const asPath = (spec: string, base: string): string | undefined => {
    const candidate = resolve(base, spec.replace(/^file:/, ''));
    return existsSync(candidate) ? candidate : undefined;
  };
  if (from) {
    const path = asPath(from, process.cwd());
    return path ? local(path) : from;
  }
  const viaNpx = env.npm_config_package;
  if (viaNpx && (/\.(tgz|tar\.gz)$/.test(viaNpx) || viaNpx.startsWith('.') || viaNpx.startsWith('/'))) {
    const path = asPath(viaNpx, env.INIT_CWD ?? process.cwd());
    if (path) return local(path);
  }
  if (existsSync(join(own.root, 'src', 'index.ts')) && existsSync(join(own.root, '.git'))) return local(own.root);
  return `^${own.version}`;
}

function projectFiles(name: string, pkg: OwnPackage, dependency: string): Record<string, string> {
  const typescript = pkg.devDependencies?.typescript ?? '^5.9.3';
  const nodeTypes = pkg.devDependencies?.['@types/node'] ?? '^20.19.43';
  const packageJson = {
    name,
    version: '0.0.0',
    private: true,
    type: 'module',
    scripts: {
      validate: 'baton validate --types',
      hello: 'baton run hello',
      dev: 'baton dev',
    },
    dependencies: { [pkg.name]: dependency },
    devDependencies: { '@types/node': nodeTypes, typescript },
  };
  return {
    'package.json': `${JSON.stringify(packageJson, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        include: ['flows/**/*.ts', 'tasks/**/*.ts'],
      },
      null,
      2,
    )}\n`,
    'baton.yaml': `# Baton project configuration: every key is described in Baton's docs/operations.md.
# The embedded store; set BATON_DATABASE_URL=postgres://... to share one PostgreSQL database.
database: .baton/baton.db
# Task bodies running at once in one process.
concurrency: 16
# Named slots that tasks take with \`pool:\`.
pools:
  cpu: 2
`,
    '.gitignore': `.baton/\nnode_modules/\n`,
    'flows/hello.ts': `// A flow in TypeScript: npx baton run hello --param who=you
import { defineFlow } from '${pkg.name}';

const flow = defineFlow({
  name: 'hello',
  params: { who: { type: 'string', default: 'world' } },
  defaults: { retry: { maxAttempts: 3, backoff: '1s', maxBackoff: '10s' }, timeout: '5m' },
});

const greet = flow.task('greet', async ({ params, log }) => {
  const greeting = \`hello, \${params.who}!\`;
  log.info(greeting);
  return { greeting, length: greeting.length };
});

// Values reach a shell command through the environment, never pasted into the script.
flow.shell('announce', {
  after: [greet],
  command: ['sh', '-c', 'echo "run $BATON_RUN_ID said hello"'],
});

export default flow;
`,
    'flows/daily_report.yaml': `# A flow in YAML: npx baton run daily_report --param day=2024-03-01
name: daily_report
params:
  day: { type: string, default: '2024-01-01' }
defaults:
  retry: { max_attempts: 3, backoff: 1s, max_backoff: 10s, jitter: full }
  timeout: 5m
tasks:
  count_orders:
    kind: shell
    # An argv array: each element is passed as is, without a shell.
    command: ['echo', '42']
  summarize:
    kind: function
    module: ../tasks/report.ts
    export: summarize
    depends_on: [count_orders]
    with: { day: '\${{ params.day }}', orders: '\${{ tasks.count_orders.output }}' }
    pool: cpu
  publish:
    kind: shell
    # Params reach a script through env: and are read as "$NAME".
    command: ['sh', '-c', 'echo "report for $DAY published"']
    env: { DAY: '\${{ params.day }}' }
    depends_on: [summarize]
    trigger_rule: all_done
`,
    'tasks/report.ts': `// Function tasks of flows/daily_report.yaml: each receives the attempt context and
// returns JSON; \`inputs\` holds the task's rendered \`with:\` values.
import type { AttemptContext } from '${pkg.name}';

export async function summarize({ inputs, log }: AttemptContext) {
  const orders = Number(inputs.orders);
  log.info(\`\${String(inputs.day)}: \${orders} orders\`);
  return { day: inputs.day, orders };
}
`,
  };
}

function isEmptyOrMissing(dir: string): boolean {
  return !existsSync(dir) || (statSync(dir).isDirectory() && readdirSync(dir).length === 0);
}

export async function initCommand(
  ctx: CliContext,
  dir: string | undefined,
  flags: { force?: boolean; from?: string },
): Promise<number> {
  const root = resolve(ctx.runtime.cwd, dir ?? '.');
  const pkg = ownPackage();
  const name =
    basename(root)
      .replace(/[^a-z0-9._-]/gi, '-')
      .toLowerCase() || 'baton-project';
  const files = projectFiles(name, pkg, '');
  const existing = Object.keys(files).filter((f) => f !== '.gitignore' && existsSync(join(root, f)));
  if (existing.length > 0 && !flags.force) {
    throw new BatonError('USAGE', `${root} already has ${existing.join(', ')}`, {
      hint: 'Run baton init in an empty folder, or pass --force to overwrite.',
    });
  }
  const wasEmpty = isEmptyOrMissing(root);
  const dependency = batonDependency(root, ctx.runtime.env, flags.from);
  for (const [file, text] of Object.entries(projectFiles(name, pkg, dependency))) {
    const path = join(root, file);
    if (file === '.gitignore' && existsSync(path) && !flags.force) continue;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    ctx.stderr(`created ${relative(ctx.runtime.cwd, path) || path}`);
  }
  const cd = root === resolve(ctx.runtime.cwd) ? '' : `cd ${relative(ctx.runtime.cwd, root) || root} && `;
  ctx.stderr(`baton: ${pkg.name} will be installed from ${dependency}`);
  if (!wasEmpty) ctx.stderr('baton: the folder was not empty; files not listed above were left as they were');
  ctx.stdout(`project ready in ${root}\nnext: ${cd}npm install && npx baton run hello`);
  return 0;
}
