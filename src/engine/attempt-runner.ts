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
import { LIMITS, limitExceeded } from '../core/limits.js';
import { boundTaskError, boundedJson, cutMarker, cutText } from '../core/truncation.js';
import type { TaskDataProvider, TaskFunction } from '../core/task-context.js';
import { isPayloadRef, type PayloadOwner, type PayloadStore } from '../core/payload-ref.js';
import { renderValue } from '../define/expression.js';
import type { AttemptContext, ExecutorRegistry } from './executor.js';
import { AttemptAbort } from './executor.js';
import type { AttemptController } from './attempt-controller.js';
import { TaskAttemptContext } from './attempt-context.js';
import { collectReferences } from '../define/expression.js';
import type { TaskRunExtras } from './run-scope.js';
import type { LongTimer } from './long-timer.js';
import { setLongTimeout } from './long-timer.js';
import { CACHEABLE_KINDS, type CachedResult, type ResultCache } from './result-cache.js';

export type AttemptResult =
  | {
      readonly status: 'succeeded';
      readonly output: unknown;
      /** The earlier attempt whose output was reused instead of running the body (`cache: inputs`). */
      readonly cachedFrom?: string;
    }
  | { readonly status: 'failed'; readonly error: TaskError };

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
  readonly controller: AttemptController;
  readonly writeLog: (stream: 'stdout' | 'stderr' | 'log', text: string) => void;
  /** Makes the attempt's `ctx.data`; without it, reading `ctx.data` throws. */
  readonly data?: TaskDataProvider;
  /**
   * Where outputs over `outputLimitBytes` are stored by reference, and upstream outputs
   * stored so are read back from; without it, such an output fails the attempt.
   */
  readonly payloads?: PayloadStore;
  /** Runs after a body that succeeded, for a task that produces assets (see AfterBodyStep). */
  readonly afterBody?: AfterBodyStep;
  /** The task run's id, map item and handled error, when it is a map instance or a handler. */
  readonly extras?: TaskRunExtras;
  /** Where a task that declares `cache: inputs` finds and records its outputs; without it, bodies always run. */
  readonly resultCache?: ResultCache;
  /** The run's pinned flow version, part of a cache key; without it, nothing is cached. */
  readonly version?: string;
  /** The flow's `prefetch` paths, part of a cache key. */
  readonly prefetch?: readonly string[];
}

/**
 * A step after a body that succeeded and before its outcome is reported: the
 * materialization and checks of the assets a task produces (data/assets/). It runs only for
 * a task that declares `produces`; what it throws fails the attempt (CHECK_FAILED, say).
 */
export type AfterBodyStep = (attempt: {
  readonly runId: string;
  readonly flow: string;
  readonly task: TaskSpec;
  /** The task run's id: a map instance's own, else the task's. */
  readonly taskRunId: string;
  readonly attempt: number;
}) => Promise<void>;

export interface AttemptLimits {
  readonly outputLimitBytes: number;
  readonly killGraceMs: number;
  /** Each of a failure's message, hint, stack and details; default limits.error_bytes. */
  readonly errorLimitBytes?: number;
  /** A line of the task log (a command's output, a function's `log` calls); default limits.log_line_bytes. */
  readonly logLineLimitBytes?: number;
  /** Largest output stored by reference (limits.payload_bytes). */
  readonly payloadLimitBytes?: number;
}

/** What a template reads as `tasks.<id>`: its state, and its output once it succeeded. */
export interface TaskScope {
  readonly state: string;
  readonly output?: unknown;
}

const referencedCache = new WeakMap<TaskSpec, readonly string[]>();
const NO_TASKS: readonly string[] = Object.freeze([]);

/** Ids of the tasks a task's templates read (`tasks.<id>...`), computed once per spec. */
export function referencedTasks(task: TaskSpec): readonly string[] {
  let ids = referencedCache.get(task);
  if (!ids) {
    // Settings the engine evaluates itself (a map's list, a choice's rules) read tasks too.
    const evaluated = [task.map?.over ?? null, ...(task.choice?.rules.map((r) => r.when) ?? [])];
    const refs = collectReferences([task.with, task.config, evaluated]).references;
    ids =
      refs.length === 0
        ? NO_TASKS
        : [...new Set(refs.filter((r) => r.ref.root === 'tasks').map((r) => String(r.ref.path[0])))];
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

/**
 * What a failure is recorded as, whatever was thrown: an AttemptAbort, a BatonError, an
 * Error of the task's code (its own `code`, `kind` and `details` kept), or any other value
 * (an object's `code`, `kind` and `message` kept, its other fields as details). Its
 * message, hint, stack and details are each at most `limitBytes` (limits.error_bytes),
 * cut with a visible marker.
 */
export function toTaskError(error: unknown, limitBytes: number = LIMITS.error_bytes.default): TaskError {
  return boundTaskError(unboundedTaskError(error, limitBytes), limitBytes);
}

function unboundedTaskError(error: unknown, limitBytes: number): TaskError {
  if (error instanceof AttemptAbort) {
    if (error.kind === 'timeout') return { code: 'TASK_TIMEOUT', message: error.message, source: 'user' };
    if (error.kind === 'lease_lost') return { code: 'WORKER_LOST', message: error.message, source: 'baton' };
    return { code: 'TASK_CANCELLED', message: error.message, source: 'user' };
  }
  if (isBatonError(error)) {
    // Details (a command's exit code, the command not found) let handlers and `show` tell failures apart.
    const details = Object.keys(error.details).length > 0 ? { details: error.details } : {};
    return { code: error.code, message: error.message, source: error.source, hint: error.hint, ...details };
  }
  if (error instanceof Error) {
    const { code, kind, details } = error as unknown as Record<string, unknown>;
    const stack = userStack(stackOf(error), limitBytes);
    const message = typeof error.message === 'string' && error.message !== '' ? error.message : String(error.name);
    return {
      code: codeOf(code) ?? 'TASK_FAILED',
      ...(typeof kind === 'string' ? { kind } : {}),
      message,
      source: 'user',
      ...(isRecord(details) ? { details } : {}),
      ...(stack === undefined ? {} : { stack }),
    };
  }
  if (typeof error === 'object' && error !== null) return thrownObject(error, limitBytes);
  return { code: 'TASK_FAILED', message: String(error), source: 'user' };
}

/** A code as handlers match it: a string, or a number written as one (`throw { code: 42 }` → "42"). */
function codeOf(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A thrown value that is not an Error (`throw { code: 42, why: 'x' }`): its `code` and
 * `kind`, its `message` (else its JSON), and its other fields as details, rather than
 * `[object Object]`.
 */
function thrownObject(value: object, limitBytes: number): TaskError {
  let fields: Record<string, unknown>;
  try {
    fields = Array.isArray(value) ? {} : Object.fromEntries(Object.entries(value));
  } catch {
    // A proxy or a getter that throws: nothing more can be read from it.
    fields = {};
  }
  const { code, kind, message, ...rest } = fields;
  let text: string;
  if (typeof message === 'string' && message !== '') text = message;
  else {
    const json = boundedJson(value, limitBytes, { strict: false, root: 'the thrown value' });
    const shown = json.ok
      ? json.text
      : json.reason === 'too_large'
        ? `an object of more than ${limitBytes} bytes of JSON`
        : `an object that is not JSON (${json.message})`;
    text = `the task threw a non-Error value: ${shown}`;
  }
  return {
    code: codeOf(code) ?? 'TASK_FAILED',
    ...(typeof kind === 'string' ? { kind } : {}),
    message: text,
    source: 'user',
    ...(Object.keys(rest).length > 0 ? { details: rest } : {}),
  };
}

/** Baton's package root (this file is `<root>/dist/engine/`, or `src/` under tests); computing it touches no file. */
const BATON_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const FRAME = /^\s+at /;
const FIRST_FRAME = /^[ \t]+at /m;

/** Characters of the stack's head (the error's name and message) kept before the frames. */
const HEAD_LIMIT_CHARS = 1024;

/**
 * `error.stack`, without a copy of a long message in it. V8 writes the stack (name,
 * message, frames) the first time it is read; the message is shortened for that read, as
 * the stack keeps only its first kilobyte anyway, so that a message of megabytes is not
 * copied once more. A stack already written (read before, or set by the user) is as it is.
 */
function stackOf(error: Error): unknown {
  const message: unknown = error.message;
  if (typeof message !== 'string' || message.length <= HEAD_LIMIT_CHARS) return error.stack;
  const own = Object.getOwnPropertyDescriptor(error, 'message');
  try {
    error.message = message.slice(0, HEAD_LIMIT_CHARS + 1);
    return error.stack;
  } catch {
    // A frozen error, or a message that cannot be set: read as it is.
    return error.stack;
  } finally {
    try {
      if (own) Object.defineProperty(error, 'message', own);
      else delete (error as { message?: unknown }).message;
    } catch {
      // Nothing was changed, or it cannot be changed back: the error is not read again.
    }
  }
}

/**
 * The stack of an error thrown by task code, as the user needs it: frames of Baton's own
 * files and of Node's internals removed (they say nothing about the user's code and would
 * leak where Baton is installed), and at most `limitBytes` (limits.error_bytes), cut after
 * a whole frame with a visible marker. Undefined when no frame of the user's is left.
 * Only the first kilobyte of the head (the name and message) is looked at: a message of
 * megabytes is not copied again here (it is recorded, cut, on its own).
 */
export function userStack(stack: unknown, limitBytes: number = LIMITS.error_bytes.default): string | undefined {
  if (typeof stack !== 'string') return undefined;
  const firstFrame = stack.search(FIRST_FRAME);
  if (firstFrame < 0) return undefined;
  const headEnd = Math.max(0, firstFrame - 1);
  let head = stack.slice(0, Math.min(headEnd, HEAD_LIMIT_CHARS));
  if (headEnd > HEAD_LIMIT_CHARS) head = `${head} …`;
  head = withoutInternalPaths(head, BATON_ROOT);
  // Frames far beyond the limit would be cut anyway; only those that can be kept are filtered.
  let framesText = stack.slice(firstFrame);
  const scanChars = limitBytes * 4;
  if (framesText.length > scanChars) framesText = framesText.slice(0, framesText.lastIndexOf('\n', scanChars));
  const frames = withoutInternalPaths(framesText, BATON_ROOT)
    .split('\n')
    .filter((l) => !(FRAME.test(l) && l.includes('node:internal/')));
  if (!frames.some((l) => FRAME.test(l))) return undefined;
  return cutText(
    [head, ...frames].join('\n'),
    limitBytes,
    (bytes) => `\n    ${cutMarker('stack', limitBytes, 'limits.error_bytes')(bytes)}`,
    {
      atLineBreak: true,
    },
  );
}

/**
 * Checks that an output is JSON within `limitBytes`; returns the JSON round-tripped value.
 * A function, symbol, BigInt, Map, Set or cycle anywhere in it fails the attempt with
 * TASK_OUTPUT_INVALID naming where (JSON would drop or mangle it without a word); an
 * output far over the limit is refused without being serialized whole.
 */
export function checkOutput(
  taskId: string,
  output: unknown,
  limitBytes: number,
  errorLimitBytes: number = LIMITS.error_bytes.default,
): AttemptResult {
  // The output of most tasks that return nothing: its JSON is "null" without a walk.
  if (output === undefined || (output === null && limitBytes >= 4)) return { status: 'succeeded', output: null };
  const json = boundedJson(output, limitBytes, { strict: true, root: 'output' });
  if (json.ok) return { status: 'succeeded', output: JSON.parse(json.text) as unknown };
  if (json.reason === 'too_large') {
    const size = json.bytes === null ? `more than ${limitBytes}` : String(json.bytes);
    const error = limitExceeded('output_bytes', `its output (${size} bytes of JSON)`, `task ${taskId}`, {
      code: 'TASK_OUTPUT_TOO_LARGE',
      limit: limitBytes,
    });
    return { status: 'failed', error: toTaskError(error, errorLimitBytes) };
  }
  const whole = typeof output === 'function' || typeof output === 'symbol' || typeof output === 'bigint';
  const message = whole
    ? `task ${taskId} returned a ${typeof output}, not JSON`
    : `task ${taskId} returned a value that is not JSON: ${json.message}`;
  return { status: 'failed', error: toTaskError(new BatonError('TASK_OUTPUT_INVALID', message), errorLimitBytes) };
}

/** Upstream outputs with those stored by reference read back. */
async function loadUpstream(
  upstream: Readonly<Record<string, unknown>>,
  payloads: PayloadStore,
): Promise<Readonly<Record<string, unknown>>> {
  if (!Object.values(upstream).some(isPayloadRef)) return upstream;
  const loaded: Record<string, unknown> = {};
  for (const [id, output] of Object.entries(upstream))
    loaded[id] = isPayloadRef(output) ? await payloads.load(output) : output;
  return loaded;
}

/** The template scope's task outputs with those stored by reference read back. */
async function loadScope(
  tasks: Readonly<Record<string, TaskScope>>,
  payloads: PayloadStore,
): Promise<Readonly<Record<string, TaskScope>>> {
  if (!Object.values(tasks).some((t) => isPayloadRef(t.output))) return tasks;
  const loaded: Record<string, TaskScope> = {};
  for (const [id, t] of Object.entries(tasks)) {
    loaded[id] = isPayloadRef(t.output) ? { ...t, output: await payloads.load(t.output) } : t;
  }
  return loaded;
}

/**
 * An output over limits.output_bytes, written to the namespace whole (up to
 * limits.payload_bytes) and returned as its marker, which the run's history keeps.
 */
async function storeByReference(
  taskId: string,
  output: unknown,
  payloads: PayloadStore,
  owner: PayloadOwner,
  limits: AttemptLimits,
): Promise<AttemptResult> {
  const limit = limits.payloadLimitBytes ?? LIMITS.payload_bytes.default;
  const json = boundedJson(output, limit, { strict: true, root: 'output' });
  if (!json.ok) {
    if (json.reason === 'too_large') {
      const error = limitExceeded('payload_bytes', `its output (more than ${limit} bytes of JSON)`, `task ${taskId}`, {
        code: 'TASK_OUTPUT_TOO_LARGE',
        limit,
      });
      return { status: 'failed', error: toTaskError(error, limits.errorLimitBytes) };
    }
    const error = new BatonError(
      'TASK_OUTPUT_INVALID',
      `task ${taskId} returned a value that is not JSON: ${json.message}`,
    );
    return { status: 'failed', error: toTaskError(error, limits.errorLimitBytes) };
  }
  return { status: 'succeeded', output: await payloads.store(owner, json.text) };
}

/** Runs the attempt to its end; never rejects. `onBodyReturned` marks the instant the body settled. */
export async function runAttempt(
  executors: ExecutorRegistry,
  input: AttemptInput,
  limits: AttemptLimits,
  onBodyReturned: () => void = () => undefined,
): Promise<AttemptResult> {
  const { task, controller } = input;
  let timeout: LongTimer | undefined;
  try {
    const executor = executors.get(task.kind);
    if (!executor) {
      throw new BatonError('DEF_INVALID', `task ${task.id}: no executor for kind "${task.kind}"`, {
        hint: `Known kinds: ${executors.kinds().join(', ')}.`,
      });
    }
    // Outputs stored by reference are read back: bodies and templates see the values.
    const upstream = input.payloads ? await loadUpstream(input.upstream, input.payloads) : input.upstream;
    const scopeTasks =
      input.scopeTasks && input.payloads ? await loadScope(input.scopeTasks, input.payloads) : input.scopeTasks;
    const scope = templateScope(
      input.runId,
      input.flow,
      input.params,
      scopeTasks ?? scopeFromUpstream(upstream),
      input.extras,
    );
    const inputs = input.inputs ?? renderInputs(task, scope);
    // A line of the task's own log is bounded like a line of a command's output.
    const lineLimit = limits.logLineLimitBytes ?? LIMITS.log_line_bytes.default;
    const marker = (bytes: number) => ` … ${cutMarker('line', lineLimit, 'limits.log_line_bytes')(bytes)}`;
    const logLine = (text: string) => input.writeLog('log', cutText(text, lineLimit, marker));
    const log = {
      info: (m: string) => logLine(String(m)),
      warn: (m: string) => logLine(`WARN ${m}`),
      error: (m: string) => logLine(`ERROR ${m}`),
    };
    const extras = input.extras;
    const taskRunId = extras?.taskRunId ?? task.id;
    const context: AttemptContext = new TaskAttemptContext(
      {
        runId: input.runId,
        flow: input.flow,
        taskId: taskRunId,
        attempt: input.attempt,
        idempotencyKey: extras?.map ? `${input.runId}/${taskRunId}` : `${input.runId}/${task.id}/0`,
        params: input.params,
        inputs,
        upstream,
        log,
      },
      controller,
      extras?.map ?? null,
      extras?.error ?? null,
      input.data,
    );
    if (task.timeoutMs !== null) {
      // Real running time, for any timeout up to the limit duration_ms (beyond setTimeout's 24.8 days).
      timeout = setLongTimeout(
        () =>
          controller.abort(
            new AttemptAbort('timeout', `attempt ${input.attempt} of ${task.id} timed out after ${task.timeoutMs} ms`),
          ),
        task.timeoutMs,
      );
    }
    const cache =
      task.cache === 'inputs' && input.resultCache && CACHEABLE_KINDS.has(task.kind) ? input.resultCache : undefined;
    const cacheKey = cache
      ? await keyOf(cache, {
          flow: input.flow,
          version: input.version,
          task,
          params: input.params,
          inputs,
          upstream,
          scopeTasks,
          extras,
          prefetch: input.prefetch ?? [],
        })
      : null;
    if (cache && cacheKey !== null) {
      const hit = await reusable(cache, cacheKey, input);
      if (hit) {
        // The body is not run; the assets it produced are checked and their lineage recorded again.
        if (input.afterBody && task.produces?.length) {
          await input.afterBody({ runId: input.runId, flow: input.flow, task, taskRunId, attempt: input.attempt });
        }
        return { status: 'succeeded', output: hit.output, cachedFrom: hit.cachedFrom };
      }
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
        outputLimitBytes: limits.outputLimitBytes,
        logLineLimitBytes: limits.logLineLimitBytes ?? LIMITS.log_line_bytes.default,
        controller,
      });
    } finally {
      onBodyReturned();
    }
    const checked = checkOutput(task.id, output, limits.outputLimitBytes, limits.errorLimitBytes);
    const result =
      checked.status === 'failed' && checked.error.code === 'TASK_OUTPUT_TOO_LARGE' && input.payloads
        ? await storeByReference(
            task.id,
            output,
            input.payloads,
            { runId: input.runId, taskId: taskRunId, attempt: input.attempt },
            limits,
          )
        : checked;
    if (result.status === 'succeeded' && input.afterBody && task.produces?.length) {
      await input.afterBody({ runId: input.runId, flow: input.flow, task, taskRunId, attempt: input.attempt });
    }
    if (cache && cacheKey !== null && result.status === 'succeeded') {
      const attempt = { flow: input.flow, taskId: task.id, runId: input.runId, taskRunId, attempt: input.attempt };
      // An entry not recorded only means a later run computes again: the success stands.
      await cache.record(cacheKey, attempt, result.output).catch(() => undefined);
    }
    return result;
  } catch (error) {
    const reason = controller.aborted ? controller.reason : error;
    return { status: 'failed', error: toTaskError(reason, limits.errorLimitBytes) };
  } finally {
    timeout?.cancel();
  }
}

/** The cache key of an attempt; null (run the body, record nothing) on any error making it. */
async function keyOf(cache: ResultCache, attempt: Parameters<ResultCache['key']>[0]): Promise<string | null> {
  try {
    return await cache.key(attempt);
  } catch {
    return null;
  }
}

/**
 * The earlier success recorded with the key, if its output can still be read (an output
 * stored by reference must still be there); null on any doubt, and the body runs.
 */
async function reusable(cache: ResultCache, key: string, input: AttemptInput): Promise<CachedResult | null> {
  try {
    const hit = await cache.lookup(key, input.flow, input.task.id);
    if (!hit) return null;
    if (isPayloadRef(hit.output)) {
      if (!input.payloads) return null;
      await input.payloads.load(hit.output);
    }
    return hit;
  } catch {
    return null;
  }
}
