/**
 * `shell` tasks: an argv array run without a shell (unless the task sets `shell`), in its
 * own process group so that cancellation and timeouts kill every child. stdout and stderr
 * go to the task log line by line, each line read in constant memory and cut at
 * limits.log_line_bytes. The output is the last non-empty stdout line (of which no more
 * than limits.output_bytes is ever held: a longer one is refused), or the JSON the command
 * wrote to the file named by `$BATON_OUTPUT`. A failure says why in
 * words: the last lines of stderr (bounded), and "command not found" or "not executable"
 * rather than a bare 127 or 126.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkShellScripts, shellScriptsOf } from '../../define/shell-scripts.js';
import { BatonError } from '../../core/errors.js';
import { LIMITS, limitExceeded } from '../../core/limits.js';
import { cutMarker, utf8Length, utf8Prefix } from '../../core/truncation.js';
import { renderValue } from '../../define/expression.js';
import type { AttemptRequest, TaskExecutor } from '../executor.js';
import { AttemptAbort } from '../executor.js';
import type { StreamLine } from './line-splitter.js';
import { createLineSplitter } from './line-splitter.js';
import type { LongTimer } from '../long-timer.js';
import { backgroundTimers, setLongTimeout } from '../long-timer.js';

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

/** A line as the log keeps it: at most `limitBytes`, a longer one cut with a marker that gives its size. */
export function logLine(line: StreamLine, limitBytes: number): string {
  if (line.bytes <= limitBytes) return line.text;
  const mark = ` … ${cutMarker('line', limitBytes, 'limits.log_line_bytes')(line.bytes)}`;
  return utf8Prefix(line.text, limitBytes - utf8Length(mark)) + mark;
}

/** At most this many of the last stderr lines go into a failure message, and at most this many bytes. */
export const STDERR_TAIL_LINES = 20;
export const STDERR_TAIL_BYTES = 2048;

/**
 * Keeps the last lines of a stream; `text()` gives at most `maxLines` of them in at most
 * `maxBytes`, with a `…` line first when older lines were left out.
 */
export function createTail(maxLines = STDERR_TAIL_LINES, maxBytes = STDERR_TAIL_BYTES) {
  const lines: string[] = [];
  let shifted = false;
  return {
    push(line: string): void {
      if (line.trim() === '' && lines.length === 0) return;
      lines.push(line);
      if (lines.length > maxLines) {
        lines.shift();
        shifted = true;
      }
    },
    text(): string {
      const kept: string[] = [];
      let bytes = 0;
      let dropped = shifted;
      for (let i = lines.length - 1; i >= 0; i--) {
        const line = lines[i] as string;
        const size = Buffer.byteLength(line) + 1;
        if (bytes + size > maxBytes) {
          // Only the newest line is ever cut (keeping its end): it usually carries the error itself.
          if (kept.length === 0) kept.unshift(`…${tailBytes(line, maxBytes - 8)}`);
          dropped = true;
          break;
        }
        kept.unshift(line);
        bytes += size;
      }
      while (kept.length > 0 && (kept[kept.length - 1] as string).trim() === '') kept.pop();
      return (dropped && kept.length > 0 ? ['…', ...kept] : kept).join('\n');
    },
  };
}

/** The end of a string within `bytes` bytes of UTF-8, without a character cut in half. */
function tailBytes(text: string, bytes: number): string {
  const buffer = Buffer.from(text);
  return buffer
    .subarray(Math.max(0, buffer.length - bytes))
    .toString('utf8')
    .replace(/^\uFFFD+/, '');
}

/** How the shell names a command it cannot find (dash, bash, zsh, busybox). */
const NOT_FOUND = /(?:^|:\s)([^\s:]+):\s*(?:command )?not found\s*$|command not found:\s*(\S+)\s*$/;
const NOT_EXECUTABLE = /(?:^|:\s)([^\s:]+):\s*Permission denied\s*$/;

/**
 * The command a shell complained about in its stderr, else the first word of the script;
 * undefined for an argv command, which did start: what it could not find is its business.
 */
function commandNamed(pattern: RegExp, stderr: string, argv: readonly string[], viaShell: boolean): string | undefined {
  for (const line of stderr.split('\n').reverse()) {
    const match = pattern.exec(line.trim());
    if (match) return match[1] ?? match[2];
  }
  return viaShell ? (argv[2] ?? '').trim().split(/\s+/)[0] || undefined : undefined;
}

/** The failure of a command that exited with `code` (a number, or the signal that ended it). */
export function exitFailure(
  taskId: string,
  argv: readonly string[],
  code: number | string,
  stderrTail: string,
  viaShell: boolean,
): BatonError {
  const tail = stderrTail === '' ? '' : `\nlast lines of stderr:\n${stderrTail.replace(/^/gm, '  ')}`;
  const name =
    code === 127
      ? commandNamed(NOT_FOUND, stderrTail, argv, viaShell)
      : code === 126
        ? commandNamed(NOT_EXECUTABLE, stderrTail, argv, viaShell)
        : undefined;
  if (code === 127) {
    const message =
      name === undefined
        ? `command ${JSON.stringify(argv)} exited with 127: a command it runs was not found`
        : `command not found: ${name} (exit code 127)`;
    return new BatonError('TASK_FAILED', `task ${taskId}: ${message}${tail}`, {
      hint: `Install ${name ?? 'the missing command'} where the task runs, or give its full path; the task gets the PATH of the baton process.`,
      details: { exitCode: code, ...(name === undefined ? {} : { command: name }) },
    });
  }
  if (code === 126) {
    const message =
      name === undefined
        ? `command ${JSON.stringify(argv)} exited with 126: a command it runs is not executable`
        : `command not executable: ${name} (exit code 126)`;
    return new BatonError('TASK_FAILED', `task ${taskId}: ${message}${tail}`, {
      hint: `Make ${name ?? 'the script'} executable (chmod +x), or run it through its interpreter, e.g. ["sh", "${name ?? 'script.sh'}"].`,
      details: { exitCode: code, ...(name === undefined ? {} : { command: name }) },
    });
  }
  const how = typeof code === 'number' ? `exited with ${code}` : `was killed by ${code}`;
  return new BatonError('TASK_FAILED', `task ${taskId}: command ${JSON.stringify(argv)} ${how}${tail}`, {
    details: { exitCode: code },
  });
}

/** Why an argv command could not start (`spawn` failed), in words. */
function startFailure(taskId: string, file: string, cwd: string, error: NodeJS.ErrnoException): BatonError {
  if (error.code === 'ENOENT' && !existsSync(cwd)) {
    return new BatonError('TASK_FAILED', `task ${taskId}: working folder ${cwd} does not exist`, {
      hint: "Check the task's `cwd`; it is relative to the flow file's folder.",
      details: { cwd },
      cause: error,
    });
  }
  if (error.code === 'ENOENT') {
    return new BatonError('TASK_FAILED', `task ${taskId}: command not found: ${file}`, {
      hint: `Install ${file} where the task runs, or give its full path; commands run without a shell (so no aliases or shell built-ins) unless \`shell\` is set.`,
      details: { command: file },
      cause: error,
    });
  }
  if (error.code === 'EACCES') {
    return new BatonError('TASK_FAILED', `task ${taskId}: command not executable: ${file}`, {
      hint: `Make ${file} executable (chmod +x), or run it through its interpreter, e.g. ["sh", "${file}"].`,
      details: { command: file },
      cause: error,
    });
  }
  return new BatonError('TASK_FAILED', `task ${taskId}: cannot start ${file}: ${error.message}`, {
    hint: 'Check that the command exists and is on PATH; commands run without a shell unless `shell` is set.',
    cause: error,
  });
}

/**
 * No process can receive a NUL character in an argument or an environment value; say
 * which value holds one, rather than Node's own ERR_INVALID_ARG_VALUE.
 */
function refuseNul(taskId: string, argv: readonly string[], env: Readonly<Record<string, unknown>>): void {
  const holdsNul = (v: unknown) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? '')).includes('\0');
  const arg = argv.findIndex(holdsNul);
  const variable = Object.keys(env).find((k) => holdsNul(env[k]));
  const where = arg >= 0 ? `argument ${arg} of the command` : variable !== undefined ? `env ${variable}` : undefined;
  if (where === undefined) return;
  throw new BatonError('TASK_INPUT', `task ${taskId}: ${where} holds a NUL character, which no command can receive`, {
    hint: 'Strip NUL characters from the value (binary data usually brings them), or pass such data through a file.',
  });
}

export const shellExecutor: TaskExecutor = {
  kind: 'shell',
  async execute(request: AttemptRequest): Promise<unknown> {
    const { context, task } = request;
    const config = task.config as unknown as ShellConfig;
    // Validation refuses these; a run pinned to a definition older than that rule must not
    // paste values into a shell either.
    const [pasted] = checkShellScripts(shellScriptsOf(config.command, []));
    if (pasted) {
      throw new BatonError('DEF_SHELL_EXPRESSION', `task ${context.taskId}: ${pasted.message}`, { hint: pasted.hint });
    }
    const scope = request.templateScope;
    const argv = argvOf(config).map((a) => String(renderValue(a, scope)));
    const extraEnv = config.env ? (renderValue(config.env, scope) as Record<string, unknown>) : {};
    refuseNul(context.taskId, argv, extraEnv);
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
    const lineLimit = request.logLineLimitBytes ?? LIMITS.log_line_bytes.default;
    const outputLimit = request.outputLimitBytes ?? LIMITS.output_bytes.default;
    // The last stdout line may be the output: enough of each is kept to judge it against
    // output_bytes, and no more, however long the line.
    const stdoutKeep = Math.max(lineLimit, outputLimit);
    try {
      let lastLine: StreamLine | undefined;
      const stderrTail = createTail();
      const code = await new Promise<number | string>((resolvePromise, reject) => {
        const child = spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
        const out = createLineSplitter(stdoutKeep, (line) => {
          if (!line.blank) lastLine = line;
          request.writeLog('stdout', logLine(line, lineLimit));
        });
        const err = createLineSplitter(lineLimit, (line) => {
          const text = logLine(line, lineLimit);
          stderrTail.push(text);
          request.writeLog('stderr', text);
        });
        child.stdout.on('data', (c: Buffer) => out.push(c));
        child.stderr.on('data', (c: Buffer) => err.push(c));
        let killTimer: LongTimer | undefined;
        const stop = () => {
          killGroup(child.pid, 'SIGTERM');
          // kill_grace is a setting of up to 366 days, beyond what setTimeout holds.
          killTimer = setLongTimeout(() => killGroup(child.pid, 'SIGKILL'), request.killGraceMs, backgroundTimers);
        };
        if (context.signal.aborted) stop();
        else context.signal.addEventListener('abort', stop, { once: true });
        child.on('error', (error) => {
          context.signal.removeEventListener('abort', stop);
          reject(startFailure(context.taskId, file, cwd, error));
        });
        child.on('close', (exitCode, signal) => {
          out.end();
          err.end();
          killTimer?.cancel();
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
        throw exitFailure(context.taskId, argv, code, stderrTail.text(), typeof config.command === 'string');
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
      if (lastLine === undefined) return '';
      if (lastLine.bytes > stdoutKeep) {
        // Over output_bytes by its raw size alone (JSON only adds to it); its head is all there is.
        throw limitExceeded(
          'output_bytes',
          `the last line of stdout, its output (${lastLine.bytes} bytes)`,
          `task ${context.taskId}`,
          { code: 'TASK_OUTPUT_TOO_LARGE', limit: outputLimit },
        );
      }
      return lastLine.text;
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
