/**
 * Runs one attempt of a task body: renders its inputs, builds the context, starts the
 * executor of its kind, enforces the attempt timeout, and turns whatever happens into a
 * result (an output within the size limit, or a typed error). Shared by the engine's
 * local mode and by worker processes, so a task behaves the same wherever it runs.
 */
import { fileURLToPath } from 'node:url';
import { BatonError, isBatonError } from '../core/errors.js';
import { withoutInternalPaths } from '../core/internal-paths.js';
import type { TaskError, TaskSpec } from '../core/model.js';
import { errorKind } from '../core/model.js';
import type { TaskFunction } from '../core/task-context.js';
import { renderValue } from '../define/expression.js';
import type { AttemptContext, ExecutorRegistry } from './executor.js';
import { AttemptAbort } from './executor.js';
import { collectReferences } from '../define/expression.js';
import type { TaskRunExtras } from './run-scope.js';

export type AttemptResult =
  { readonly status: 'succeeded'; readonly output: unknown } | { readonly status: 'failed'; readonly error: TaskError };

export interface AttemptInput {
  readonly runId: string;
  readonly flow: string;
  readonly task: TaskSpec;
  readonly attempt: number;
  readonly params: Readonly<Record<string, unknown>>;
  /** Outputs of the direct upstream tasks that succeeded. */
  readonly upstream: Readonly<Record<string, unknown>>;
  /** Already rendered inputs (from a dispatch); rendered here when absent. */
  readonly inputs?: Readonly<Record<string, unknown>>;
  /** `tasks.<id>` as templates see it; by default the direct upstream tasks that succeeded. */
  readonly scopeTasks?: Readonly<Record<string, TaskScope>>;
  readonly flowDir: string;
  readonly resolveFunction: (taskId: string) => TaskFunction | undefined;
  readonly controller: AbortController;
  readonly writeLog: (stream: 'stdout' | 'stderr' | 'log', text: string) => void;
  /** The task run's id, map item and handled error, when it is a map instance or a handler. */
  readonly extras?: TaskRunExtras;
}

export interface AttemptLimits {
  readonly outputLimitBytes: number;
  readonly killGraceMs: number;
}

/** What a template reads as `tasks.<id>`: its state, and its output once it succeeded. */
export interface TaskScope {
  readonly state: string;
  readonly output?: unknown;
}

const referencedCache = new WeakMap<TaskSpec, readonly string[]>();

/** Ids of the tasks a task's templates read (`tasks.<id>...`), computed once per spec. */
export function referencedTasks(task: TaskSpec): readonly string[] {
  let ids = referencedCache.get(task);
  if (!ids) {
    // Settings the engine evaluates itself (a map's list, a choice's rules) read tasks too.
    const evaluated = [task.map?.over ?? null, ...(task.choice?.rules.map((r) => r.when) ?? [])];
    const refs = collectReferences([task.with, task.config, evaluated]).references;
    ids = [...new Set(refs.filter((r) => r.ref.root === 'tasks').map((r) => String(r.ref.path[0])))];
    referencedCache.set(task, ids);
  }
  return ids;
}

/** The `tasks` scope from direct upstream outputs (all succeeded). */
export function scopeFromUpstream(upstream: Readonly<Record<string, unknown>>): Record<string, TaskScope> {
  const out: Record<string, TaskScope> = {};
  for (const [id, output] of Object.entries(upstream)) out[id] = { state: 'succeeded', output };
  return out;
}

/** The whole template scope of an attempt. */
export function templateScope(
  runId: string,
  flow: string,
  params: Readonly<Record<string, unknown>>,
  tasks: Readonly<Record<string, TaskScope>>,
  extras?: TaskRunExtras,
): Record<string, unknown> {
  const scope: Record<string, unknown> = { params, tasks, run: { id: runId, flow } };
  if (extras?.map) {
    scope.item = extras.map.item;
    scope.map = extras.map;
  }
  if (extras?.error) scope.error = { ...extras.error, kind: errorKind(extras.error) };
  return scope;
}

/** Renders a task's `with`; throws TASK_INPUT. */
export function renderInputs(task: TaskSpec, scope: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return renderValue(task.with, scope) as Record<string, unknown>;
}

export function toTaskError(error: unknown): TaskError {
  if (error instanceof AttemptAbort) {
    if (error.kind === 'timeout') return { code: 'TASK_TIMEOUT', message: error.message, source: 'user' };
    if (error.kind === 'lease_lost') return { code: 'WORKER_LOST', message: error.message, source: 'baton' };
    return { code: 'TASK_CANCELLED', message: error.message, source: 'user' };
  }
  if (isBatonError(error)) {
    // Details (a command's exit code, the command not found) let handlers and `show` tell failures apart.
    const details =
      Object.keys(error.details).length > 0 && isJsonRecord(error.details) ? { details: error.details } : {};
    return { code: error.code, message: error.message, source: error.source, hint: error.hint, ...details };
  }
  if (error instanceof Error) {
    const { code: rawCode, kind: rawKind, details: rawDetails } = error as unknown as Record<string, unknown>;
    const code = typeof rawCode === 'string' ? rawCode : 'TASK_FAILED';
    const kind = typeof rawKind === 'string' ? { kind: rawKind } : {};
    const details = isJsonRecord(rawDetails) ? { details: rawDetails } : {};
    const stack = userStack(error.stack);
    return {
      code,
      ...kind,
      message: error.message || error.name,
      source: 'user',
      ...details,
      ...(stack === undefined ? {} : { stack }),
    };
  }
  return { code: 'TASK_FAILED', message: String(error), source: 'user' };
}

/** Largest stack kept with a failure, in bytes of UTF-8; the frames nearest the throw are kept. */
export const STACK_LIMIT_BYTES = 16 * 1024;

/** Baton's package root (this file is `<root>/dist/engine/`, or `src/` under tests); computing it touches no file. */
const BATON_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const FRAME = /^\s+at /;

/** Characters of the stack's head (the error's name and message) kept before the frames. */
const HEAD_LIMIT_CHARS = 1024;

/**
 * The stack of an error thrown by task code, as the user needs it: frames of Baton's own
 * files and of Node's internals removed (they say nothing about the user's code and would
 * leak where Baton is installed), and at most STACK_LIMIT_BYTES, cut with a visible
 * marker. Undefined when no frame of the user's is left.
 */
export function userStack(stack: unknown, limitBytes = STACK_LIMIT_BYTES): string | undefined {
  if (typeof stack !== 'string') return undefined;
  const lines = withoutInternalPaths(stack, BATON_ROOT).split('\n');
  const firstFrame = lines.findIndex((l) => FRAME.test(l));
  if (firstFrame < 0) return undefined;
  const frames = lines.slice(firstFrame).filter((l) => !(FRAME.test(l) && l.includes('node:internal/')));
  if (!frames.some((l) => FRAME.test(l))) return undefined;
  // The head repeats the message, which is kept on its own: a long one must not crowd the frames out.
  let head = lines.slice(0, firstFrame).join('\n');
  if (head.length > HEAD_LIMIT_CHARS) head = `${head.slice(0, HEAD_LIMIT_CHARS)} …`;
  return truncateStack([head, ...frames].join('\n'), limitBytes);
}

function truncateStack(text: string, limitBytes: number): string {
  const bytes = Buffer.byteLength(text);
  if (bytes <= limitBytes) return text;
  const marker = `\n    [stack truncated: ${bytes} bytes, at most the first ${limitBytes} kept]`;
  let kept = Buffer.from(text)
    .subarray(0, Math.max(0, limitBytes - Buffer.byteLength(marker)))
    .toString('utf8');
  // A character cut in half decodes to U+FFFD; a frame cut in half reads as a wrong location.
  kept = kept.replace(/\uFFFD+$/, '');
  const lastBreak = kept.lastIndexOf('\n');
  if (lastBreak > 0) kept = kept.slice(0, lastBreak);
  return kept + marker;
}

/** Details attached to a thrown error are kept only if they are plain JSON data. */
function isJsonRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  try {
    return JSON.stringify(value).length <= 16 * 1024;
  } catch {
    return false;
  }
}

/** Checks that an output is JSON within the limit; returns the JSON round-tripped value. */
export function checkOutput(taskId: string, output: unknown, limitBytes: number): AttemptResult {
  if (output === undefined) return { status: 'succeeded', output: null };
  let text: string | undefined;
  try {
    text = JSON.stringify(output);
  } catch (error) {
    return {
      status: 'failed',
      error: toTaskError(
        new BatonError(
          'TASK_OUTPUT_INVALID',
          `task ${taskId} returned a value that is not JSON: ${(error as Error).message}`,
        ),
      ),
    };
  }
  if (text === undefined) {
    return {
      status: 'failed',
      error: toTaskError(new BatonError('TASK_OUTPUT_INVALID', `task ${taskId} returned a ${typeof output}, not JSON`)),
    };
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > limitBytes) {
    return {
      status: 'failed',
      error: toTaskError(
        new BatonError(
          'TASK_OUTPUT_TOO_LARGE',
          `task ${taskId} returned ${bytes} bytes of output; the limit is ${limitBytes} bytes (limits.output_bytes)`,
        ),
      ),
    };
  }
  return { status: 'succeeded', output: JSON.parse(text) as unknown };
}

/** Runs the attempt to its end; never rejects. `onBodyReturned` marks the instant the body settled. */
export async function runAttempt(
  executors: ExecutorRegistry,
  input: AttemptInput,
  limits: AttemptLimits,
  onBodyReturned: () => void = () => undefined,
): Promise<AttemptResult> {
  const { task, controller } = input;
  let timeout: NodeJS.Timeout | undefined;
  try {
    const executor = executors.get(task.kind);
    if (!executor) {
      throw new BatonError('DEF_INVALID', `task ${task.id}: no executor for kind "${task.kind}"`, {
        hint: `Known kinds: ${executors.kinds().join(', ')}.`,
      });
    }
    const scope = templateScope(
      input.runId,
      input.flow,
      input.params,
      input.scopeTasks ?? scopeFromUpstream(input.upstream),
      input.extras,
    );
    const inputs = input.inputs ?? renderInputs(task, scope);
    const log = {
      info: (m: string) => input.writeLog('log', m),
      warn: (m: string) => input.writeLog('log', `WARN ${m}`),
      error: (m: string) => input.writeLog('log', `ERROR ${m}`),
    };
    const extras = input.extras;
    const taskRunId = extras?.taskRunId ?? task.id;
    const context: AttemptContext = {
      runId: input.runId,
      flow: input.flow,
      taskId: taskRunId,
      attempt: input.attempt,
      idempotencyKey: extras?.map ? `${input.runId}/${taskRunId}` : `${input.runId}/${task.id}/0`,
      params: input.params,
      inputs,
      upstream: input.upstream,
      signal: controller.signal,
      log,
      ...(extras?.map ? { item: extras.map.item, mapIndex: extras.map.index } : {}),
      ...(extras?.error ? { error: extras.error } : {}),
    };
    if (task.timeoutMs !== null) {
      timeout = setTimeout(
        () =>
          controller.abort(
            new AttemptAbort('timeout', `attempt ${input.attempt} of ${task.id} timed out after ${task.timeoutMs} ms`),
          ),
        task.timeoutMs,
      );
    }
    let output: unknown;
    try {
      output = await executor.execute({
        task,
        context,
        flowDir: input.flowDir,
        resolveFunction: input.resolveFunction,
        writeLog: input.writeLog,
        killGraceMs: limits.killGraceMs,
        templateScope: scope,
      });
    } finally {
      onBodyReturned();
    }
    return checkOutput(task.id, output, limits.outputLimitBytes);
  } catch (error) {
    const reason = controller.signal.aborted ? controller.signal.reason : error;
    return { status: 'failed', error: toTaskError(reason) };
  } finally {
    if (timeout) clearTimeout(timeout);
  }
}
