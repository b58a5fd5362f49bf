/**
 * Docs that are derived from code must not drift from it: docs/errors.md is exactly what
 * scripts/gen-errors-doc.js makes of the catalog in src/core/errors.ts, and the
 * environment variables the code reads are the ones `ENV_VARS` lists and the ones the docs
 * (docs/operations.md, docs/cli.md) name.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_VARS } from '../../src/core/env-vars.js';
import { REPO_ROOT } from './cli-helpers.js';

describe('docs/errors.md', () => {
  it('is what `npm run docs:errors` generates from the catalog', () => {
    const generated = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'gen-errors-doc.js'), '--stdout'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(generated.status, generated.stderr).toBe(0);
    const current = readFileSync(join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
    // On a difference: run `npm run docs:errors` and keep the result.
    expect(current).toBe(generated.stdout);
  });
});

describe('the limits table of docs/operations.md', () => {
  it('is what `npm run docs:limits` generates from src/core/limits.ts', () => {
    const generated = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'gen-limits-doc.js'), '--stdout'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(generated.status, generated.stderr).toBe(0);
    const current = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
    // On a difference: run `npm run docs:limits` and keep the result.
    expect(current).toContain(generated.stdout.trimEnd());
  });
});

/** Every .ts file under a folder. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|js)$/.test(path) ? [path] : [];
  });
}

/**
 * `BATON_*` variables the code reads, with the files that read them: `env.BATON_X`,
 * `env['BATON_X']`, or the name passed as a string to a reader (`envNumber(env, 'BATON_X')`).
 */
function readInCode(dir = 'src'): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const patterns = [/env\.(BATON_[A-Z0-9_]+)/g, /env\[['"](BATON_[A-Z0-9_]+)['"]\]/g, /['"](BATON_[A-Z0-9_]+)['"]/g];
  for (const file of sources(join(REPO_ROOT, dir))) {
    const text = readFileSync(file, 'utf8');
    for (const pattern of patterns) {
      for (const match of text.matchAll(pattern)) {
        const name = match[1] as string;
        found.set(name, [...new Set([...(found.get(name) ?? []), relative(REPO_ROOT, file)])]);
      }
    }
  }
  return found;
}

function namedIn(doc: string): Set<string> {
  const text = readFileSync(join(REPO_ROOT, 'docs', doc), 'utf8');
  return new Set([...text.matchAll(/\bBATON_[A-Z][A-Z0-9_]*/g)].map((m) => m[0]));
}

describe('environment variables', () => {
  const code = readInCode();
  const listed = new Set(Object.keys(ENV_VARS));
  const documented = new Set([...namedIn('operations.md'), ...namedIn('cli.md')]);

  it('that the code reads are in ENV_VARS, and ENV_VARS lists only those', () => {
    const unlisted = [...code].filter(([name]) => !listed.has(name)).map(([name, files]) => `${name} (${files})`);
    expect(unlisted, 'read in src/ but missing from ENV_VARS in src/core/env-vars.ts').toEqual([]);
    expect(
      [...listed].filter((name) => !code.has(name)),
      'in ENV_VARS but read nowhere',
    ).toEqual([]);
  });

  it('are each documented in docs/operations.md or docs/cli.md, and the docs name no other', () => {
    expect(
      [...listed].filter((name) => !documented.has(name)),
      'undocumented: add them to "Environment variables" in docs/operations.md',
    ).toEqual([]);
    // The benchmarks and the test suites read variables of their own (BATON_BENCH_PG_URL, ...).
    const development = new Set([...readInCode('bench').keys(), ...readInCode('test').keys()]);
    expect(
      [...documented].filter((name) => !listed.has(name) && !development.has(name)),
      'named in the docs, read nowhere',
    ).toEqual([]);
  });

  it('are all in the table of docs/operations.md', () => {
    const operations = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
    for (const name of listed) expect(operations).toMatch(new RegExp(`^\\| \`${name}\` +\\|`, 'm'));
  });
});
