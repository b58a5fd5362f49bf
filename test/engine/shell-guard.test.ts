/**
 * The shell executor's own guard: a run pinned to a flow definition made before shell
 * strings were checked (or stored by hand) still never pastes a value into a shell. The
 * real executor runs; the marker file shows whether a command was injected.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskSpec } from '../../src/core/model.js';
import type { AttemptContext } from '../../src/core/task-context.js';
import type { AttemptRequest } from '../../src/engine/executor.js';
import { shellExecutor } from '../../src/engine/executors/shell.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function request(dir: string, config: Record<string, unknown>, who: string): AttemptRequest {
  const context = {
    runId: 'r1',
    taskId: 'greet',
    attempt: 1,
    idempotencyKey: 'r1/greet',
    signal: new AbortController().signal,
  } as unknown as AttemptContext;
  return {
    task: { id: 'greet', kind: 'shell', config } as unknown as TaskSpec,
    context,
    flowDir: dir,
    resolveFunction: () => undefined,
    writeLog: () => undefined,
    killGraceMs: 100,
    templateScope: { params: { who } },
  };
}

describe('shell executor guard', () => {
  const injection = `x"; touch owned; echo "`;

  it('refuses an expression in a string command before starting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-shell-guard-'));
    dirs.push(dir);
    const config = { command: 'echo "hello ${{ params.who }}"' };
    await expect(shellExecutor.execute(request(dir, config, injection))).rejects.toMatchObject({
      code: 'DEF_SHELL_EXPRESSION',
    });
    expect(existsSync(join(dir, 'owned'))).toBe(false);
  });

  it('refuses an expression in the script of an argv list that starts a shell', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-shell-guard-'));
    dirs.push(dir);
    const config = { command: ['sh', '-c', 'echo "hello ${{ params.who }}"'] };
    await expect(shellExecutor.execute(request(dir, config, injection))).rejects.toMatchObject({
      code: 'DEF_SHELL_EXPRESSION',
    });
    expect(existsSync(join(dir, 'owned'))).toBe(false);
  });

  it('passes the same value verbatim through an argv entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-shell-guard-'));
    dirs.push(dir);
    const config = { command: ['sh', '-c', 'printf %s "$1"', 'greet', '${{ params.who }}'] };
    await expect(shellExecutor.execute(request(dir, config, injection))).resolves.toBe(injection);
    expect(existsSync(join(dir, 'owned'))).toBe(false);
  });
});
