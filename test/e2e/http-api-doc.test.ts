/**
 * docs/http-api.md is derived from the server's schemas: it must be exactly what
 * scripts/gen-http-api-doc.js makes of the OpenAPI document they generate.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './cli-helpers.js';

describe('docs/http-api.md', () => {
  it('is what `npm run docs:http-api` generates from the OpenAPI document', () => {
    const generated = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'gen-http-api-doc.js'), '--stdout'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(generated.status, generated.stderr).toBe(0);
    expect(generated.stdout).toContain('### `POST /api/v1/flows/{flow}/runs`');
    const current = readFileSync(join(REPO_ROOT, 'docs', 'http-api.md'), 'utf8');
    // On a difference: run `npm run docs:http-api` and keep the result.
    expect(current).toBe(generated.stdout);
  }, 60_000);
});
