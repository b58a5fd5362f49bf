/**
 * Baton in a user's own project, as the README's "Use Baton in your project" says: the
 * package is packed with `npm pack`, and in an empty folder `npx --package <tarball> baton
 * init demo`, `npm install` and `npx baton run hello` work, from the tarball alone (not
 * this repository's folder or node_modules). Then what a new user meets next: optional
 * clients are not installed and a trigger that needs one is refused with the install
 * line; a folder that is no project says so; a subfolder of a project names it.
 *
 * Slow by nature (two installs that build better-sqlite3): one describe, steps in order.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './cli-helpers.js';

const run = promisify(execFile);
const INSTALL_TIMEOUT_MS = 8 * 60_000;

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end; never throws on a non-zero exit. */
async function sh(file: string, args: readonly string[], cwd: string, timeoutMs = 120_000): Promise<Result> {
  const env: NodeJS.ProcessEnv = {};
  // The user's shell: none of this repository's own settings, npm's own variables included.
  for (const [k, v] of Object.entries(process.env)) if (!/^(BATON_|npm_|INIT_CWD)/.test(k)) env[k] = v;
  try {
    const { stdout, stderr } = await run(file, [...args], { cwd, env, timeout: timeoutMs, maxBuffer: 32 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: `${e.stderr ?? ''}\n${e.message}`,
    };
  }
}

function show(r: Result): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

describe('a new project from the packed tarball', () => {
  let root: string;
  let tarball: string;
  let demo: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'baton-user-'));
    // `npm test` has just built dist/: pack what is there, without running prepare again.
    const packed = await sh('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', root], REPO_ROOT);
    expect(packed.code, show(packed)).toBe(0);
    tarball = packed.stdout.trim().split('\n').pop() ?? '';
    expect(existsSync(join(root, tarball)), show(packed)).toBe(true);
    demo = join(root, 'demo');
  }, 120_000);

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it(
    'npx --package ./<tarball> baton init demo, npm install, npx baton run hello',
    async () => {
      const init = await sh(
        'npx',
        ['--yes', '--package', `./${tarball}`, 'baton', 'init', 'demo'],
        root,
        INSTALL_TIMEOUT_MS,
      );
      expect(init.code, show(init)).toBe(0);
      expect(init.stdout).toContain('next: cd demo && npm install && npx baton run hello');
      const pkg = JSON.parse(readFileSync(join(demo, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
      };
      expect(pkg.dependencies['baton-orchestrator']).toBe(`file:../${tarball}`);
      for (const file of ['tsconfig.json', 'baton.yaml', '.gitignore', 'flows/hello.ts', 'flows/daily_report.yaml']) {
        expect(existsSync(join(demo, file)), file).toBe(true);
      }

      const install = await sh('npm', ['install', '--no-audit', '--no-fund'], demo, INSTALL_TIMEOUT_MS);
      expect(install.code, show(install)).toBe(0);
      // The clients of optional trigger sources are peers: not downloaded for a project that uses none.
      const installed = readdirSync(join(demo, 'node_modules'));
      for (const client of ['ioredis', 'nats', 'amqplib']) expect(installed).not.toContain(client);
      expect(existsSync(join(demo, 'node_modules', '@aws-sdk', 'client-s3'))).toBe(false);

      const hello = await sh('npx', ['baton', 'run', 'hello', '-p', 'who=tests'], demo);
      expect(hello.code, show(hello)).toBe(0);
      expect(hello.stdout).toMatch(/state\s+succeeded/);
      const report = await sh('npx', ['baton', 'run', 'daily_report', '--json'], demo);
      expect(report.code, show(report)).toBe(0);
      const validate = await sh('npx', ['baton', 'validate'], demo);
      expect(validate.code, show(validate)).toBe(0);
      // The package resolves from the project's own node_modules, not from this repository.
      const where = await sh(
        'node',
        ['--input-type=module', '-e', "console.log(import.meta.resolve('baton-orchestrator'))"],
        demo,
      );
      expect(where.stdout.trim()).toContain(join(demo, 'node_modules'));
    },
    2 * INSTALL_TIMEOUT_MS + 60_000,
  );

  it('refuses a trigger whose client is not installed, naming the npm install line', async () => {
    expect(existsSync(join(demo, 'node_modules')), 'the previous step installs the project').toBe(true);
    writeFileSync(
      join(demo, 'flows', 'orders_stream.yaml'),
      [
        'name: orders_stream',
        'triggers:',
        '  orders: { kind: redis, stream: orders, group: baton }',
        'tasks:',
        "  hello: { kind: shell, command: ['echo', 'hi'] }",
        '',
      ].join('\n'),
    );
    try {
      const validate = await sh('npx', ['baton', 'validate'], demo);
      expect(validate.code, show(validate)).toBe(3);
      expect(validate.stdout + validate.stderr).toContain('DEP_MISSING');
      expect(validate.stdout + validate.stderr).toMatch(/npm install 'ioredis@\^\d/);
      const runIt = await sh('npx', ['baton', 'run', 'orders_stream'], demo);
      expect(runIt.code, show(runIt)).toBe(3);
    } finally {
      rmSync(join(demo, 'flows', 'orders_stream.yaml'));
    }
  });

  it('says which project a subfolder belongs to, and that a plain folder is none', async () => {
    const inSub = await sh('npx', ['baton', 'runs'], join(demo, 'tasks'));
    expect(inSub.code, show(inSub)).toBe(0);
    expect(inSub.stderr).toContain(`project ${demo} (store ${join(demo, '.baton', 'baton.db')})`);
    expect(inSub.stdout).toContain('hello');

    const plain = join(root, 'plain');
    mkdirSync(plain);
    const bin = join(demo, 'node_modules', '.bin', 'baton');
    const none = await sh(bin, ['runs'], plain);
    expect(none.code, show(none)).toBe(2);
    expect(none.stderr).toContain('NO_PROJECT');
    expect(none.stderr).toContain('baton init');
    expect(existsSync(join(plain, '.baton')), 'no store is created outside a project').toBe(false);
  });
});
