/**
 * `shell` tasks: an argv array run without a shell (unless the task sets `shell`), in its
 * own process group so that cancellation and timeouts kill every child. stdout and stderr
 * go to the task log line by line. The output is the last non-empty stdout line, or the
 * JSON the command wrote to the file named by `$BATON_OUTPUT`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BatonError } from '../../core/errors.js';
import { renderValue } from '../../define/expression.js';
import type { AttemptRequest, TaskExecutor } from '../executor.js';
import { AttemptAbort } from '../executor.js';

interface ShellConfig {
  readonly command: readonly string[] | string;
  readonly env?: Readonly<Record<string, unknown>>;
  readonly cwd?: string;
  readonly shell?: boolean | string;
}

function argvOf(config: ShellConfig): string[] {
  if (typeof config.command === 'string') {
    const shell = typeof config.shell === 'string' ? config.shell : '/bin/sh';
    return [shell, '-c', config.command];
  }
  return [...config.command];
}

/** Splits a stream into lines, holding a partial last line until more arrives. */
function lineSplitter(onLine: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let rest = '';
  return {
    push(chunk) {
      const text = rest + chunk.toString('utf8');
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    },
    end() {
      if (rest !== '') onLine(rest);
      rest = '';
    },
  };
}

export const shellExecutor: TaskExecutor = {
  kind: 'shell',
  async execute(request: AttemptRequest): Promise<unknown> {
    const { context, task } = request;
    const config = task.config as unknown as ShellConfig;
    const scope = request.templateScope;
    const argv = argvOf(config).map((a) => String(renderValue(a, scope)));
    const extraEnv = config.env ? (renderValue(config.env, scope) as Record<string, unknown>) : {};
    const outDir = mkdtempSync(join(tmpdir(), 'baton-out-'));
    const outputFile = join(outDir, 'output.json');
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...Object.fromEntries(
        Object.entries(extraEnv).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
      ),
      BATON_RUN_ID: context.runId,
      BATON_TASK_ID: context.taskId,
      BATON_ATTEMPT: String(context.attempt),
      BATON_IDEMPOTENCY_KEY: context.idempotencyKey,
      BATON_OUTPUT: outputFile,
    };
    const cwd = config.cwd ? resolve(request.flowDir, config.cwd) : request.flowDir;
    const [file, ...args] = argv;
    if (!file) throw new BatonError('TASK_FAILED', `task ${context.taskId}: empty command`);
    try {
      let lastLine = '';
      const code = await new Promise<number | string>((resolvePromise, reject) => {
        const child = spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
        const out = lineSplitter((line) => {
          if (line.trim() !== '') lastLine = line;
          request.writeLog('stdout', line);
        });
        const err = lineSplitter((line) => request.writeLog('stderr', line));
        child.stdout.on('data', (c: Buffer) => out.push(c));
        child.stderr.on('data', (c: Buffer) => err.push(c));
        let killTimer: NodeJS.Timeout | undefined;
        const stop = () => {
          killGroup(child.pid, 'SIGTERM');
          killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), request.killGraceMs);
          killTimer.unref();
        };
        if (context.signal.aborted) stop();
        else context.signal.addEventListener('abort', stop, { once: true });
        child.on('error', (error) => {
          context.signal.removeEventListener('abort', stop);
          reject(
            new BatonError('TASK_FAILED', `task ${context.taskId}: cannot start ${file}: ${error.message}`, {
              hint: 'Check that the command exists and is on PATH; commands run without a shell unless `shell` is set.',
              cause: error,
            }),
          );
        });
        child.on('close', (exitCode, signal) => {
          out.end();
          err.end();
          if (killTimer) clearTimeout(killTimer);
          context.signal.removeEventListener('abort', stop);
          // The group may still hold children that outlived the leader.
          if (context.signal.aborted) killGroup(child.pid, 'SIGKILL');
          resolvePromise(exitCode ?? signal ?? -1);
        });
      });
      if (context.signal.aborted)
        throw context.signal.reason instanceof AttemptAbort
          ? context.signal.reason
          : new AttemptAbort('cancelled', 'cancelled');
      if (code !== 0) {
        throw new BatonError(
          'TASK_FAILED',
          `task ${context.taskId}: command ${JSON.stringify(argv)} exited with ${code}`,
          {
            details: { exitCode: code },
          },
        );
      }
      let structured: string | undefined;
      try {
        structured = readFileSync(outputFile, 'utf8');
      } catch {
        structured = undefined;
      }
      if (structured !== undefined && structured.trim() !== '') {
        try {
          return JSON.parse(structured) as unknown;
        } catch (error) {
          throw new BatonError(
            'TASK_OUTPUT_INVALID',
            `task ${context.taskId}: $BATON_OUTPUT does not hold valid JSON`,
            {
              cause: error,
            },
          );
        }
      }
      return lastLine;
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  },
};

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already: nothing left to stop.
  }
}
