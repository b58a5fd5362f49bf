/**
 * Odd input through the real CLI: mistyped database URLs, devices and named pipes where a
 * file is expected, and option values out of range. Each ends in a coded error, within a
 * deadline (nothing hangs), without a stack, and a database password never shows: not in
 * stdout or stderr, not in a file name under the project.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../store/pg-helpers.js';
import type { CliResult } from './cli-helpers.js';
import { baton, createSandbox, describeResult, parseJson, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

/** Long enough for a slow machine, short enough that a hang fails the test, not the suite. */
const DEADLINE = { timeoutMs: 20_000 };
const SECRET = 's3cret';
const BAD_URL = `postgress://baton:${SECRET}@db.invalid/baton`;

const FLOW = `name: odd
tasks:
  hello:
    kind: shell
    command: ["echo", "hi"]
`;

/** A project folder (its flows/ folder makes it one) with one flow. */
function project(): string {
  const dir = temp.mkdir('baton-odd-');
  mkdirSync(join(dir, 'flows'));
  createSandbox(dir).write('flows/odd.yaml', FLOW);
  return dir;
}

function mkfifo(path: string): string {
  execFileSync('mkfifo', [path]);
  return path;
}

/** Every file and folder name under `dir`. */
function namesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? [e.name, ...namesUnder(join(dir, e.name))] : [e.name],
  );
}

/** What every refusal here has in common: the code, the exit, no stack, no password. */
function expectRefused(result: CliResult, exit: number, code: string): void {
  expect(result.code, describeResult(result)).toBe(exit);
  expect(result.stderr, describeResult(result)).toContain(`${code}:`);
  expect(result.stderr).not.toContain('INTERNAL');
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(result.stdout + result.stderr).not.toContain(SECRET);
}

describe('a mistyped database URL', () => {
  it('is refused by db migrate, run --enqueue and worker, and no file is named after it', async () => {
    const dir = project();
    const env = { BATON_DATABASE_URL: BAD_URL };
    const migrate = await baton(['db', 'migrate'], { cwd: dir, env, ...DEADLINE });
    expectRefused(migrate, 2, 'DATABASE_URL_INVALID');
    expect(migrate.stderr).toContain('did you mean postgres://baton:***@db.invalid/baton?');
    for (const args of [['run', 'odd', '--enqueue'], ['worker']]) {
      expectRefused(await baton(args, { cwd: dir, env, ...DEADLINE }), 2, 'DATABASE_URL_INVALID');
    }
    expect(namesUnder(dir).filter((n) => n.includes(SECRET) || n.startsWith('postgress'))).toEqual([]);
    expect(namesUnder(dir)).not.toContain('.baton');
  });

  it('is refused the same from --db, BATON_DATABASE and baton.yaml, also as JSON', async () => {
    const dir = project();
    const fromFlag = await baton(['--db', `postgres:/baton:${SECRET}@host/baton`, 'runs'], { cwd: dir, ...DEADLINE });
    expectRefused(fromFlag, 2, 'DATABASE_URL_INVALID');
    expect(fromFlag.stderr).toContain('"postgres:" must be followed by "//"');

    const fromEnv = await baton(['runs'], {
      cwd: dir,
      env: { BATON_DATABASE: `postgres//baton:${SECRET}@host/baton` },
      ...DEADLINE,
    });
    expectRefused(fromEnv, 2, 'DATABASE_URL_INVALID');

    const sandbox = createSandbox(dir);
    sandbox.write('baton.yaml', `database: "pgsql://baton:${SECRET}@host/baton"\n`);
    const fromFile = await baton(['runs', '--json'], { cwd: dir, ...DEADLINE });
    expect(fromFile.code, describeResult(fromFile)).toBe(2);
    const error = (JSON.parse(fromFile.stderr) as { error: { code: string; message: string; location: unknown } })
      .error;
    expect(error.code).toBe('DATABASE_URL_INVALID');
    expect(error.message).toContain('did you mean postgres://baton:***@host/baton?');
    expect(error.location).toMatchObject({ file: join(dir, 'baton.yaml'), path: 'database' });
    expect(fromFile.stderr).not.toContain(SECRET);
    expect(namesUnder(dir).filter((n) => n.includes(SECRET))).toEqual([]);
  });

  it('a path in BATON_DATABASE_URL is refused: it takes a URL only', async () => {
    const dir = project();
    const result = await baton(['runs'], { cwd: dir, env: { BATON_DATABASE_URL: './runs.db' }, ...DEADLINE });
    expectRefused(result, 2, 'DATABASE_URL_INVALID');
    expect(result.stderr).toContain('BATON_DATABASE_URL takes a postgres:// URL');
    expect(namesUnder(dir)).not.toContain('runs.db');
  });

  it('a sqlite: or file: URL says that a SQLite file is named by its path', async () => {
    const dir = project();
    const result = await baton(['--db', 'sqlite:./runs.db', 'runs'], { cwd: dir, ...DEADLINE });
    expectRefused(result, 2, 'DATABASE_URL_INVALID');
    expect(result.stderr).toContain('a SQLite file is named by its path, without a scheme');
  });

  it('a PostgreSQL URL that does not parse is refused without showing it whole', async () => {
    const dir = project();
    const result = await baton(['db', 'migrate'], {
      cwd: dir,
      env: { BATON_DATABASE_URL: `postgres://baton:${SECRET}@host:99999/baton` },
      ...DEADLINE,
    });
    expectRefused(result, 2, 'DATABASE_URL_INVALID');
    expect(result.stderr).toContain('postgres://baton:***@host:99999/baton is not a valid PostgreSQL URL');
  });
});

describe('the password of a PostgreSQL URL', () => {
  it('does not appear in the driver errors of an unreachable server or an unknown role', async () => {
    const dir = project();
    const refused = await baton(['db', 'migrate'], {
      cwd: dir,
      env: { BATON_DATABASE_URL: `postgres://baton:${SECRET}@127.0.0.1:1/baton` },
      ...DEADLINE,
    });
    expectRefused(refused, 6, 'STORE_UNAVAILABLE');

    const unknownRole = await baton(['db', 'migrate'], {
      cwd: dir,
      env: { BATON_DATABASE_URL: `postgres://baton_no_such_role:${SECRET}@127.0.0.1:5432/postgres`, BATON_DEBUG: '1' },
      ...DEADLINE,
    });
    expect(unknownRole.code, describeResult(unknownRole)).not.toBe(0);
    expect(unknownRole.stderr).toContain('STORE_');
    expect(unknownRole.stdout + unknownRole.stderr).not.toContain(SECRET);
    expect(namesUnder(dir).filter((n) => n.includes(SECRET))).toEqual([]);
  });

  it('is masked when db migrate names the database it migrated', async () => {
    const db = await createTestDatabase();
    try {
      const url = new URL(db.url);
      url.password = SECRET;
      const dir = project();
      const result = await baton(['db', 'migrate'], {
        cwd: dir,
        env: { BATON_DATABASE_URL: url.toString() },
        timeoutMs: 60_000,
      });
      expect(result.code, describeResult(result)).toBe(0);
      expect(result.stdout).toMatch(/^database postgres:\/\/postgres:\*\*\*@.* is up to date$/m);
      expect(result.stdout + result.stderr).not.toContain(SECRET);
    } finally {
      await db.drop();
    }
  });
});

describe('a device or a named pipe where a file is expected', () => {
  it('validate refuses /dev/null, /dev/zero and a FIFO with a problem, and a folder still validates', async () => {
    const dir = project();
    const fifo = mkfifo(join(dir, 'pipe.yaml'));
    for (const [path, kind] of [
      ['/dev/null', 'a device'],
      ['/dev/zero', 'a device'],
      [fifo, 'a named pipe'],
    ] as const) {
      const result = await baton(['validate', path], { cwd: dir, ...DEADLINE });
      expect(result.code, describeResult(result)).toBe(3);
      expect(result.stdout).toContain(`DEF_LOAD: flow file ${path} is ${kind}, not a regular file`);
      expect(result.stderr).not.toContain('INTERNAL');
    }
    const folder = await baton(['validate', join(dir, 'flows')], { cwd: dir, ...DEADLINE });
    expect(folder.code, describeResult(folder)).toBe(0);
    expect(folder.stdout).toContain('ok    ');
  });

  it('--params-file refuses /dev/zero and a FIFO before opening the store', async () => {
    const dir = project();
    const fifo = mkfifo(join(dir, 'params.yaml'));
    for (const path of ['/dev/zero', fifo]) {
      const result = await baton(['run', 'odd', '--params-file', path], { cwd: dir, ...DEADLINE });
      expectRefused(result, 2, 'USAGE');
      expect(result.stderr).toContain(`params file ${path} is`);
    }
    expect(namesUnder(dir)).not.toContain('.baton');
  });

  it('a function task whose module is a FIFO is a problem of the flow, not a hang', async () => {
    const dir = project();
    mkdirSync(join(dir, 'tasks'));
    mkfifo(join(dir, 'tasks', 'body.mjs'));
    const sandbox = createSandbox(dir);
    sandbox.write(
      'flows/piped.yaml',
      'name: piped\ntasks:\n  work:\n    kind: function\n    module: ../tasks/body.mjs\n    export: run\n',
    );
    const validate = await baton(['validate', 'flows/piped.yaml'], { cwd: dir, ...DEADLINE });
    expect(validate.code, describeResult(validate)).toBe(3);
    expect(validate.stdout).toContain('DEF_MODULE');
    expect(validate.stdout).toContain('is a named pipe, not a regular file');
    const run = await baton(['run', 'piped'], { cwd: dir, ...DEADLINE });
    expectRefused(run, 3, 'DEF_MODULE');
  });

  it('flow files that are FIFOs (YAML and TypeScript) are listed with their problem', async () => {
    const dir = project();
    mkfifo(join(dir, 'flows', 'pipe.yaml'));
    mkfifo(join(dir, 'flows', 'pipe.ts'));
    const result = await baton(['flows', '--json'], { cwd: dir, ...DEADLINE });
    expect(result.code, describeResult(result)).toBe(3);
    const entries = parseJson<{ path: string; name: string | null; problems: { message: string }[] }[]>(result);
    const byFile = new Map(entries.map((e) => [e.path, e]));
    expect(byFile.get(join(dir, 'flows', 'odd.yaml'))?.name).toBe('odd');
    for (const name of ['pipe.yaml', 'pipe.ts']) {
      expect(byFile.get(join(dir, 'flows', name))?.problems[0]?.message).toContain(
        'is a named pipe, not a regular file',
      );
    }
  });

  it('a baton.yaml that is a FIFO is CONFIG_INVALID', async () => {
    const dir = project();
    mkfifo(join(dir, 'baton.yaml'));
    expectRefused(await baton(['runs'], { cwd: dir, ...DEADLINE }), 2, 'CONFIG_INVALID');
  });
});

describe('option values out of range', () => {
  const cases: [string[], string][] = [
    [
      ['db', 'prune', '--older-than', '99999999999999999999999d'],
      '--older-than "99999999999999999999999d": must be a duration from 0s to 366d',
    ],
    [['db', 'prune', '--older-than', 'soon'], '--older-than "soon": must be a duration'],
    [['runs', '--limit', '99999999999999999999'], '--limit "99999999999999999999": must be an integer from 1 to 10000'],
    [['runs', '--limit', '0'], '--limit "0": must be an integer from 1 to 10000'],
    [['runs', '--limit', '1e3'], '--limit "1e3": must be an integer from 1 to 10000'],
    [['worker', '-c', '100000'], '--concurrency "100000": must be an integer from 1 to 10000'],
    [['dev', '--port', '70000'], '--port "70000": must be an integer from 1 to 65535'],
    [['scheduler', '--webhook-port', '0'], '--webhook-port "0": must be an integer from 1 to 65535'],
    [['triggers', 'history', 'odd/x', '--limit', '-1'], '--limit "-1": must be an integer from 1 to 10000'],
    [
      ['backfill', 'odd', '--from', '2026-01-01', '--to', '2026-01-02', '--max-parallel', '10001'],
      '--max-parallel "10001": must be an integer from 1 to 10000',
    ],
  ];
  it.each(cases)('baton %j is a usage error naming the option and its range', async (args, message) => {
    const dir = project();
    const result = await baton(args, { cwd: dir, ...DEADLINE });
    expectRefused(result, 2, 'USAGE');
    expect(result.stderr).toContain(message);
    // Refused while parsing: nothing was opened or created.
    expect(namesUnder(dir)).not.toContain('.baton');
  });

  it('is a JSON usage error with --json', async () => {
    const dir = project();
    const result = await baton(['runs', '--limit', '99999999999999999999', '--json'], { cwd: dir, ...DEADLINE });
    expect(result.code, describeResult(result)).toBe(2);
    const { error } = JSON.parse(result.stderr) as { error: { code: string; details: Record<string, unknown> } };
    expect(error.code).toBe('USAGE');
    expect(error.details).toMatchObject({ option: '--limit', min: 1, max: 10_000 });
  });

  it('BATON_CONCURRENCY over the maximum is CONFIG_INVALID', async () => {
    const dir = project();
    const result = await baton(['worker'], { cwd: dir, env: { BATON_CONCURRENCY: '100000' }, ...DEADLINE });
    expectRefused(result, 2, 'CONFIG_INVALID');
    expect(result.stderr).toContain('not an integer from 1 to 10000');
  });
});
