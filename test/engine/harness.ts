/**
 * A project in a temp folder, with flows written by the test, a runtime on a real SQLite
 * file, and helpers to run flows through the same path the CLI uses.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineOptions } from '../../src/engine/engine.js';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import type { RunEvent } from '../../src/core/run-machine.js';

export interface Project {
  readonly dir: string;
  readonly rt: Runtime;
  write(path: string, text: string): string;
  /** Creates a run of the flow file and returns its id. */
  create(flowFile: string, params?: Record<string, unknown>): Promise<string>;
  /** Creates and executes a run to its end with a fresh engine. */
  run(flowFile: string, params?: Record<string, unknown>, engine?: Partial<EngineOptions>): Promise<string>;
  events(runId: string): Promise<RunEvent[]>;
  journal(): string[];
  close(): Promise<void>;
}

/** A task module shared by the tests: every body appends `<task> <attempt>` to journal.txt. */
export const TASKS_MJS = `
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});
function note(ctx) { appendFileSync(join(ctx.inputs.dir, 'journal.txt'), ctx.taskId + ' ' + ctx.attempt + '\\n'); }
export async function work(ctx) {
  note(ctx);
  appendFileSync(join(ctx.inputs.dir, 'spans.txt'), ctx.taskId + ' start ' + performance.now() + '\\n');
  await sleep(ctx.inputs.ms ?? 0, ctx.signal);
  appendFileSync(join(ctx.inputs.dir, 'spans.txt'), ctx.taskId + ' end ' + performance.now() + '\\n');
  if (ctx.attempt <= (ctx.inputs.failTimes ?? 0)) throw Object.assign(new Error('planned failure ' + ctx.attempt), { code: ctx.inputs.code ?? 'FLAKY' });
  return { task: ctx.taskId, upstream: ctx.upstream };
}
export function big(ctx) { note(ctx); return 'x'.repeat(ctx.inputs.bytes); }
export function notJson() { return () => 1; }
`;

export async function openProject(config = ''): Promise<Project> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-engine-'));
  mkdirSync(join(dir, 'flows'));
  if (config) writeFileSync(join(dir, 'baton.yaml'), config);
  writeFileSync(join(dir, 'flows', 'tasks.mjs'), TASKS_MJS);
  const rt = await openRuntime({ cwd: dir, env: {} });
  const project: Project = {
    dir,
    rt,
    write(path, text) {
      const full = join(dir, path);
      writeFileSync(full, text);
      return full;
    },
    async create(flowFile, params = {}) {
      const flow = await rt.catalog.find(join(dir, flowFile));
      const { run } = await createRun(rt, flow, { params });
      return run.id;
    },
    async run(flowFile, params = {}, engineOptions = {}) {
      const id = await project.create(flowFile, params);
      const engine = rt.createEngine(engineOptions);
      await engine.execute(id);
      await engine.stop();
      return id;
    },
    async events(runId) {
      return (await rt.store.readEvents(runId)).map((e) => e.event);
    },
    journal() {
      const path = join(dir, 'journal.txt');
      return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean) : [];
    },
    async close() {
      await rt.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return project;
}

/** A YAML task entry running `work` from tasks.mjs. */
export function workTask(
  id: string,
  options: { deps?: string[]; ms?: number; failTimes?: number; extra?: string; code?: string } = {},
): string {
  const lines = [
    `  ${id}:`,
    '    kind: function',
    '    module: ./tasks.mjs',
    '    export: work',
    `    with: { dir: "\${{ params.dir }}", ms: ${options.ms ?? 0}, failTimes: ${options.failTimes ?? 0}${options.code ? `, code: ${options.code}` : ''} }`,
  ];
  if (options.deps?.length) lines.push(`    depends_on: [${options.deps.join(', ')}]`);
  if (options.extra) lines.push(...options.extra.split('\n').map((l) => `    ${l}`));
  return lines.join('\n');
}

export function flowYaml(name: string, tasks: string[], head = ''): string {
  return `name: ${name}\nparams:\n  dir: { type: string }\n${head}tasks:\n${tasks.join('\n')}\n`;
}

/** Largest number of task bodies that overlapped in time, from spans.txt. */
export function maxOverlap(dir: string, only?: (task: string) => boolean): number {
  const path = join(dir, 'spans.txt');
  if (!existsSync(path)) return 0;
  const marks = readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([task]) => !only || only(task as string))
    .map(([, kind, at]) => ({ delta: kind === 'start' ? 1 : -1, at: Number(at) }))
    .sort((a, b) => a.at - b.at || a.delta - b.delta);
  let current = 0;
  let max = 0;
  for (const m of marks) {
    current += m.delta;
    max = Math.max(max, current);
  }
  return max;
}
