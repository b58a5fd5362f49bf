/**
 * Runs in-process fuzz cases in a worker thread, one at a time, with the loaders the CLI
 * uses: a flow file through the flow catalog (the YAML loader with its module checks, the
 * version hash) and the plan compiler; baton.yaml through the config loader; params
 * through the `--param` parser and the params resolver.
 *
 * A thread, not the test's own process, so that the test can stop a case that hangs
 * (terminate) and cap its heap, and a stack overflow or an out-of-memory ends a case, not
 * the suite. Its stack is as small as a CLI process's main thread, so that deep inputs
 * overflow here where they would there.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from '../../src/app/config.js';
import { FlowCatalog } from '../../src/app/flow-catalog.js';
import { createExecutors } from '../../src/app/runtime.js';
import { errorJson, renderError } from '../../src/cli/render.js';
import { BatonError } from '../../src/core/errors.js';
import type { ParamSpec } from '../../src/core/model.js';
import { compilePlan } from '../../src/core/run-fold.js';
import { parseParamAssignments, resolveParams } from '../../src/define/params.js';
import type { Outcome } from './oracle.js';

export type Job =
  | { readonly target: 'flow'; readonly file: string; readonly bytes: Uint8Array }
  | { readonly target: 'config'; readonly bytes: Uint8Array }
  | { readonly target: 'param-text'; readonly specs: Record<string, ParamSpec>; readonly pairs: readonly string[] }
  /** `json` is parsed in the thread: a deep value would overflow the structured clone of a message. */
  | { readonly target: 'param-values'; readonly specs: Record<string, ParamSpec>; readonly json: string };

export interface WorkerSetup {
  /** Source of the module the seed flows' function tasks name, written next to every case. */
  readonly tasksModule: string;
}

export interface JobMessage {
  readonly id: number;
  readonly job: Job;
}

export interface AnswerMessage {
  readonly id: number;
  readonly outcome: Outcome;
}

function describeError(error: unknown): Outcome {
  if (error instanceof BatonError) {
    const printed = Math.max(
      Buffer.byteLength(renderError(error)),
      Buffer.byteLength(JSON.stringify({ error: errorJson(error) })),
    );
    return {
      kind: 'error',
      code: error.code,
      message: error.message.slice(0, 500),
      printedBytes: printed,
      longestMessageBytes: error.problems.reduce(
        (most, p) => Math.max(most, Buffer.byteLength(p.message)),
        Buffer.byteLength(error.message),
      ),
      problemCodes: error.problems.map((p) => p.code),
    };
  }
  const e = error instanceof Error ? error : new Error(String(error));
  return {
    kind: 'threw',
    name: e.name,
    message: e.message.slice(0, 500),
    stack: (e.stack ?? '').split('\n').slice(1, 8).join('\n'),
  };
}

const setup = workerData as { setup: WorkerSetup };
const base = mkdtempSync(join(tmpdir(), 'baton-fuzz-'));
const project = join(base, 'project');
mkdirSync(join(project, 'flows'), { recursive: true });
writeFileSync(join(project, 'flows', 'tasks.mjs'), setup.setup.tasksModule);
let configCases = 0;
const kinds = createExecutors().kinds();

async function run(job: Job): Promise<Outcome> {
  switch (job.target) {
    case 'flow': {
      const path = join(project, 'flows', job.file);
      writeFileSync(path, job.bytes);
      try {
        // The pools the examples' baton.yaml files declare, and the task kinds of the runtime
        // (sql among them), as a project would give them.
        const flow = await new FlowCatalog(project, { knownPools: ['cpu', 'io'], kinds }).load(path);
        const plan = compilePlan(flow.spec);
        return {
          kind: 'ok',
          summary: `flow ${flow.spec.name}, ${plan.graph.ids.length} tasks, version ${flow.version}`,
        };
      } finally {
        rmSync(path, { force: true });
      }
    }
    case 'config': {
      // A folder per case: loadConfig finds baton.yaml from the working directory up.
      const dir = join(base, `config-${configCases++}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'baton.yaml'), job.bytes);
      try {
        const config = await loadConfig(dir, {});
        return { kind: 'ok', summary: `concurrency ${config.concurrency}, lease ${config.leaseMs} ms` };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    case 'param-text': {
      const params = resolveParams(job.specs, parseParamAssignments(job.pairs), { fromText: true });
      return { kind: 'ok', summary: `${Object.keys(params).length} params` };
    }
    case 'param-values': {
      let given: unknown;
      try {
        given = JSON.parse(job.json);
      } catch {
        return { kind: 'ok', summary: 'not JSON: refused before the resolver' };
      }
      if (given === null || typeof given !== 'object' || Array.isArray(given)) {
        return { kind: 'ok', summary: 'not an object: refused before the resolver' };
      }
      const params = resolveParams(job.specs, given as Record<string, unknown>);
      return { kind: 'ok', summary: `${Object.keys(params).length} params` };
    }
  }
}

const port = parentPort;
if (!port) throw new Error('case-worker.ts runs in a worker thread');
port.on('message', (message: JobMessage) => {
  void run(message.job).then(
    (outcome) => port.postMessage({ id: message.id, outcome } satisfies AnswerMessage),
    (error: unknown) => port.postMessage({ id: message.id, outcome: describeError(error) } satisfies AnswerMessage),
  );
});
// The folder comes back with the greeting: after a terminate, the runner removes it.
port.postMessage({ ready: base });
