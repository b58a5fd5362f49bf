/**
 * `baton data` through the real CLI process: mounts, ls, cat, cp (both ways), stat with the
 * run and task that wrote an object, rm, coded errors for bad paths, and no credential in
 * any output.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baton, describeResult, parseJson, useTempDirs } from './cli-helpers.js';

const dirs = useTempDirs();

function project(): string {
  const dir = dirs.mkdir('baton-data-cli-');
  mkdirSync(join(dir, 'flows'));
  writeFileSync(
    join(dir, 'baton.yaml'),
    [
      'data:',
      '  mounts:',
      '    raw: { kind: local, path: lake/raw }',
      '    curated: { kind: local, path: lake/curated }',
      '    api: { kind: http, url: "http://127.0.0.1:1/v1", headers_env: { Authorization: API_TOKEN } }',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'flows', 'tasks.mjs'),
    [
      'export async function clean(ctx) {',
      "  const text = await ctx.data.readText('data://raw/orders.csv');",
      "  const rows = text.trim().split('\\n').slice(1);",
      "  await ctx.data.write('data://curated/orders.csv', 'id\\n' + rows.map((r) => r.split(',')[0]).join('\\n') + '\\n');",
      '  return { rows: rows.length };',
      '}',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'flows', 'clean.yaml'),
    'name: clean\ntasks:\n  clean:\n    kind: function\n    module: ./tasks.mjs\n    export: clean\n',
  );
  return dir;
}

describe('baton data', () => {
  it('copies a file in, lets a task read and write through the namespace, and shows who wrote what', async () => {
    const cwd = project();
    const env = { API_TOKEN: 'Bearer hunter2-secret' };
    const local = join(cwd, 'orders.csv');
    writeFileSync(local, 'id,total\n1,10\n2,20\n');

    const mounts = await baton(['data', 'mounts'], { cwd, env });
    expect(mounts.code, describeResult(mounts)).toBe(0);
    expect(mounts.stdout).toMatch(/data:\/\/raw\/\s+local\s+lake\/raw/);
    expect(mounts.stdout).toContain('http://127.0.0.1:1/v1');
    expect(mounts.stdout + mounts.stderr).not.toContain('hunter2');

    const cp = await baton(['data', 'cp', local, 'data://raw/orders.csv'], { cwd, env });
    expect(cp.code, describeResult(cp)).toBe(0);
    expect(cp.stdout).toBe(`copied ${local} → data://raw/orders.csv (19 B)\n`);

    const run = await baton(['run', 'clean'], { cwd, env });
    expect(run.code, describeResult(run)).toBe(0);

    const ls = parseJson<{ key: string; size: number }[]>(
      await baton(['data', 'ls', 'data://curated/', '--json'], { cwd, env }),
    );
    expect(ls.map((e) => [e.key, e.size])).toEqual([['orders.csv', 7]]);
    const cat = await baton(['data', 'cat', 'data://curated/orders.csv'], { cwd, env });
    expect(cat.stdout).toBe('id\n1\n2\n');

    const stat = parseJson<{ metadata: { producerTaskId: string; sha256: string; producerRunId: string } }>(
      await baton(['data', 'stat', 'data://curated/orders.csv', '--json'], { cwd, env }),
    );
    expect(stat.metadata.producerTaskId).toBe('clean');
    expect(stat.metadata.producerRunId).toMatch(/^r/);
    expect(stat.metadata.sha256).toMatch(/^[0-9a-f]{64}$/);
    const text = await baton(['data', 'stat', 'data://curated/orders.csv'], { cwd, env });
    expect(text.stdout).toMatch(/written by\s+run r\w+, task clean/);

    const out = join(cwd, 'out', 'orders.csv');
    expect((await baton(['data', 'cp', 'data://curated/orders.csv', out], { cwd, env })).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('id\n1\n2\n');

    const rm = await baton(['data', 'rm', 'data://curated/orders.csv'], { cwd, env });
    expect(rm.stdout).toBe('removed data://curated/orders.csv\n');
    const gone = await baton(['data', 'stat', 'data://curated/orders.csv'], { cwd, env });
    expect(gone.code).toBe(4);
  });

  it('refuses bad paths with their codes and exit codes', async () => {
    const cwd = project();
    const cases: [string[], string, number][] = [
      [['data', 'cat', 'data://raw/../secret'], 'DATA_PATH_ESCAPE', 2],
      [['data', 'cat', 'data://raw/%2e%2e/secret'], 'DATA_PATH_ESCAPE', 2],
      [['data', 'ls', '/etc'], 'DATA_PATH_INVALID', 2],
      [['data', 'cat', 'data://rwa/orders.csv'], 'DATA_MOUNT_UNKNOWN', 4],
      [['data', 'cat', 'data://raw/none.csv'], 'DATA_NOT_FOUND', 4],
      [['data', 'cp', 'data://raw/none.csv', 'data://api/x'], 'DATA_NOT_FOUND', 4],
      [['data', 'ls', 'data://api/'], 'CONFIG_INVALID', 2],
    ];
    for (const [args, code, exit] of cases) {
      const result = await baton(args, { cwd });
      expect(result.code, `${args.join(' ')}: ${describeResult(result)}`).toBe(exit);
      expect(result.stderr).toContain(code);
    }
    const readOnly = await baton(['data', 'rm', 'data://api/x'], { cwd, env: { API_TOKEN: 'Bearer hunter2-secret' } });
    expect(readOnly.stderr).toContain('DATA_UNSUPPORTED');
    expect(readOnly.stderr).not.toContain('hunter2');
  });
});
