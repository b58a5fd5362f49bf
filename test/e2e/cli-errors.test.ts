/**
 * How failing commands report errors, through the real binary: a baton.yaml problem names
 * file:line:column and suggests the key meant; `BATON_JSON_ERRORS=1` prints one JSON
 * object on stderr; no message shows a path into Baton's own files. The last block checks
 * the renderer itself for an error Baton did not expect (no command fails that way on
 * purpose): a bug in Baton, stack only with debug.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { asBatonError, errorJson, renderError } from '../../src/cli/render.js';
import type { CliResult } from './cli-helpers.js';
import { REPO_ROOT, createSandbox, describeResult, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

interface ErrorJson {
  readonly code: string;
  readonly message: string;
  readonly hint: string;
  readonly source: string;
  readonly location?: { file: string; line?: number; column?: number; path?: string };
  readonly problems?: readonly { code: string; message: string; location?: { line?: number; column?: number } }[];
  readonly stack?: string;
}

/** stderr as the one JSON object BATON_JSON_ERRORS promises: a single line, nothing else. */
function jsonError(result: CliResult): ErrorJson {
  const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, describeResult(result)).toHaveLength(1);
  return (JSON.parse(lines[0] as string) as { error: ErrorJson }).error;
}

/** Everything a user reads of a result, checked for paths into Baton's code. */
function expectNoInternalPaths(result: CliResult): void {
  const text = `${result.stdout}\n${result.stderr}`;
  expect(text, describeResult(result)).not.toContain(join(REPO_ROOT, 'dist'));
  expect(text, describeResult(result)).not.toContain(join(REPO_ROOT, 'src'));
  expect(text, describeResult(result)).not.toMatch(/module-loader|[?&](namespace|rev)=/);
}

describe('baton.yaml problems', () => {
  it('name file:line:column and suggest the key meant, every problem at once', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('baton.yaml', 'database: .baton/baton.db\nconcurency: 4\nlease: soon\n');
    const result = await sandbox.run(['runs']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toContain(`error: 2 problems in ${file}`);
    expect(result.stderr).toContain(
      `${file}:2:1: CONFIG_INVALID: concurency: unknown key (did you mean "concurrency"?)\n    hint: Rename it to "concurrency", or remove it.`,
    );
    expect(result.stderr).toContain(`${file}:3:8: CONFIG_INVALID: lease: must be a duration`);
  });

  it('point at YAML syntax errors', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('baton.yaml', 'pools:\n  cpu: [1\n');
    const result = await sandbox.run(['runs']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`${file}:\\d+:\\d+: CONFIG_INVALID: YAML syntax error: `));
  });
});

describe('BATON_JSON_ERRORS=1', () => {
  const env = { BATON_JSON_ERRORS: '1' };

  it('prints a config error as one JSON object with its problems and their positions', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('baton.yaml', 'concurency: 4\n');
    const result = await sandbox.run(['runs'], { env });
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stdout).toBe('');
    const error = jsonError(result);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', source: 'user', message: `1 problem in ${file}` });
    expect(error.problems?.[0]).toMatchObject({
      code: 'CONFIG_INVALID',
      message: 'concurency: unknown key (did you mean "concurrency"?)',
      location: { file, line: 1, column: 1, path: 'concurency' },
    });
  });

  it('prints a not-found error and a usage error the same way', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const missing = await sandbox.run(['show', 'r000000000000000'], { env });
    expect(missing.code, describeResult(missing)).toBe(4);
    expect(jsonError(missing)).toMatchObject({ code: 'RUN_NOT_FOUND', source: 'user' });

    const usage = await sandbox.run(['runz'], { env });
    expect(usage.code, describeResult(usage)).toBe(2);
    const error = jsonError(usage);
    expect(error.code).toBe('USAGE');
    expect(error.message).toContain("unknown command 'runz'");
    expect(error.hint).toBe('Run `baton <command> --help`.');
  });

  it('leaves text errors alone when unset', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const result = await sandbox.run(['show', 'r000000000000000']);
    expect(result.code, describeResult(result)).toBe(4);
    expect(result.stderr).toMatch(/^error: RUN_NOT_FOUND: .*\n {2}hint: /);
  });
});

describe("no path into Baton's own files", () => {
  function project() {
    const sandbox = createSandbox(temp.mkdir());
    mkdirSync(sandbox.path('flows'));
    mkdirSync(sandbox.path('tasks'));
    // A TypeScript flow importing a file that does not exist.
    sandbox.write('flows/imports.ts', "import { helper } from './missing-helper.js';\nexport default { helper };\n");
    // A YAML flow whose task module imports a package that is not installed.
    sandbox.write('tasks/broken.mjs', "import 'no-such-package-anywhere';\nexport function go() { return 1; }\n");
    sandbox.write(
      'flows/uses-broken.yaml',
      'name: uses_broken\ntasks:\n  t:\n    kind: function\n    module: ../tasks/broken.mjs\n    export: go\n',
    );
    return sandbox;
  }

  it('in errors of a flow that cannot be imported, a missing module, and validate', async () => {
    const sandbox = project();
    const results: CliResult[] = [];
    const envs: Record<string, string>[] = [{}, { BATON_JSON_ERRORS: '1' }];
    for (const env of envs) {
      const imports = await sandbox.run(['run', 'flows/imports.ts'], { env });
      expect(imports.code, describeResult(imports)).toBe(3);
      expect(imports.stderr).toContain('missing-helper');
      const broken = await sandbox.run(['run', 'flows/uses-broken.yaml', '-q'], { env });
      expect(broken.code, describeResult(broken)).not.toBe(0);
      expect(broken.stderr + broken.stdout).toContain('no-such-package-anywhere');
      const validate = await sandbox.run(['validate'], { env });
      expect(validate.code, describeResult(validate)).toBe(3);
      results.push(imports, broken, validate);
    }
    for (const result of results) expectNoInternalPaths(result);
  });
});

describe('an error Baton did not expect', () => {
  const internal = new TypeError(
    `Cannot find module 'x' imported from ${join(REPO_ROOT, 'dist', 'define', 'module-loader.js')}`,
  );
  internal.stack = `TypeError: ${internal.message}\n    at load (${join(REPO_ROOT, 'dist', 'app', 'flow-catalog.js')}:10:5)`;

  it('is INTERNAL (exit 70): a bug in Baton, with no path into Baton and no stack', () => {
    expect(asBatonError(internal)).toMatchObject({ code: 'INTERNAL', exitCode: 70, source: 'baton' });
    const text = renderError(internal);
    expect(text).toBe(
      "error: INTERNAL: a bug in Baton: TypeError: Cannot find module 'x'\n" +
        '  hint: Please report it with the command you ran and the output of running it again with BATON_DEBUG=1, which prints the stack.',
    );
    expect(errorJson(internal)).toMatchObject({
      code: 'INTERNAL',
      message: "a bug in Baton: TypeError: Cannot find module 'x'",
    });
  });

  it('shows its stack with BATON_DEBUG', () => {
    expect(renderError(internal, { debug: true })).toContain(
      `at load (${join(REPO_ROOT, 'dist', 'app', 'flow-catalog.js')}`,
    );
    expect(errorJson(internal, { debug: true }).stack).toContain('flow-catalog.js:10:5');
  });
});
