/**
 * `function` tasks: a TypeScript or JavaScript function run in-process. A task from a
 * TypeScript flow calls the function given to the builder; a YAML task names a module
 * (relative to the flow file) and an export. The function receives the attempt context
 * and returns a JSON-serializable output.
 */
import { resolve } from 'node:path';
import { BatonError } from '../../core/errors.js';
import { importModule, moduleRevision } from '../../define/module-loader.js';
import type { AttemptRequest, TaskExecutor, TaskFunction } from '../executor.js';
import { AttemptAbort } from '../executor.js';

const moduleCache = new Map<string, Promise<Record<string, unknown>>>();

async function loadExport(modulePath: string, exportName: string, taskId: string): Promise<TaskFunction> {
  const key = `${modulePath}\u0000${moduleRevision(modulePath)}`;
  let loading = moduleCache.get(key);
  if (!loading) {
    loading = importModule(modulePath);
    moduleCache.set(key, loading);
    loading.catch(() => moduleCache.delete(key));
  }
  const mod = await loading;
  const fn = mod[exportName];
  if (typeof fn !== 'function') {
    const exported = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
    throw new BatonError('DEF_LOAD', `task ${taskId}: ${modulePath} has no function export "${exportName}"`, {
      hint: `Exported functions: ${exported.join(', ') || 'none'}. Set \`export:\` to one of them.`,
    });
  }
  return fn as TaskFunction;
}

export const functionExecutor: TaskExecutor = {
  kind: 'function',
  async execute(request: AttemptRequest): Promise<unknown> {
    const { task, context } = request;
    const config = task.config as { module?: string; export?: string };
    const fn = config.module
      ? await loadExport(resolve(request.flowDir, config.module), config.export ?? 'default', task.id)
      : request.resolveFunction(task.key ?? task.id);
    if (!fn) {
      throw new BatonError('DEF_LOAD', `task ${task.id} has no function to run`, {
        hint: 'Give the task a `module` (YAML) or define it with a function in the TypeScript builder.',
      });
    }
    // Through the attempt's controller when there is one: reading `context.signal` would make one.
    const controller = request.controller;
    const reasonNow = () => (controller ? controller.reason : context.signal.reason);
    if (controller ? controller.aborted : context.signal.aborted) throw reasonNow();
    // A function that ignores its signal cannot be stopped; the attempt still ends at once.
    return await new Promise<unknown>((resolvePromise, reject) => {
      const onAbort = () => reject(abortReason(reasonNow()));
      const stopListening = controller ? controller.onAbort(onAbort) : listen(context.signal, onAbort);
      Promise.resolve()
        .then(() => fn(context))
        .then(
          (value) => {
            stopListening();
            resolvePromise(value);
          },
          (error: unknown) => {
            stopListening();
            reject(error);
          },
        );
    });
  },
};

function abortReason(reason: unknown): AttemptAbort {
  return reason instanceof AttemptAbort ? reason : new AttemptAbort('cancelled', 'cancelled');
}

function listen(signal: AbortSignal, onAbort: () => void): () => void {
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}
