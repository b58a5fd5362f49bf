/**
 * Read commands: runs, show, logs, flows, validate. Each has --json. Run references
 * (`last`, a unique id prefix) are resolved to the full id before anything is read.
 */
import { BatonError } from '../../core/errors.js';
import type { Problem } from '../../core/errors.js';
import { RUN_STATES, isTerminalRun } from '../../core/states.js';
import type { RunStateName } from '../../core/states.js';
import type { TaskError } from '../../core/model.js';
import { isFlowFile, problemsOf } from '../../app/flow-catalog.js';
import { loadRunView } from '../../app/run-views.js';
import type { ShowData } from '../../app/run-views.js';
import { resolveRunRef } from '../../app/run-refs.js';
import { parseLabelAssignments } from '../../app/runs.js';
import type { Runtime } from '../../app/runtime.js';
import { openCatalog, openRuntime } from '../../app/runtime.js';
import type { RunRecord, StoredEvent, StoredLogLine } from '../../store/store.js';
import type { CliContext } from '../context.js';
import {
  failureJson,
  failureSummary,
  renderAttemptFailure,
  renderProblem,
  renderRuns,
  renderShow,
  runJson,
  span,
  table,
  taskJsonWith,
  time,
} from '../render.js';
import { renderTaskDetail, taskAttempts, taskDetailJson } from '../task-detail.js';
import { renderRunAssets, runAssetJson } from '../render-assets.js';
import { statSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export async function runsCommand(
  ctx: CliContext,
  flags: { flow?: string; state?: string; parent?: string; label?: string[]; limit?: number; json?: boolean },
): Promise<number> {
  const labels = parseLabelAssignments(flags.label ?? []);
  if (flags.state !== undefined && !(flags.state in RUN_STATES)) {
    throw new BatonError('USAGE', `--state ${flags.state}: not a run state`, {
      hint: `Run states: ${Object.keys(RUN_STATES).join(', ')}.`,
    });
  }
  const rt = await openRuntime(ctx.runtime);
  try {
    // Here --flow filters the listing: `--parent last` is the newest run of the project.
    const parent = flags.parent === undefined ? undefined : (await resolveRunRef(rt, flags.parent)).id;
    const runs = await rt.store.listRuns({
      ...(flags.flow ? { flow: flags.flow } : {}),
      ...(flags.state ? { state: flags.state as RunStateName } : {}),
      ...(parent !== undefined ? { parentRunId: parent } : {}),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      limit: flags.limit ?? 50,
    });
    if (flags.json) {
      const shape = parent !== undefined ? (r: RunRecord) => ({ ...runJson(r), parent_task: r.parentTask }) : runJson;
      ctx.stdout(JSON.stringify(runs.map(shape), null, 2));
    } else if (parent !== undefined && runs.length > 0) {
      ctx.stdout(
        table(
          ['RUN', 'FLOW', 'STATE', 'PARENT TASK', 'CREATED', 'DURATION'],
          runs.map((r) => [
            r.id,
            r.flow,
            r.state,
            r.parentTask ?? '-',
            time(r.createdAt),
            span(r.startedAt, r.endedAt),
          ]),
        ),
      );
    } else {
      ctx.stdout(runs.length === 0 && parent !== undefined ? `run ${parent} has no child runs` : renderRuns(runs));
    }
    return 0;
  } finally {
    await rt.close();
  }
}

export type { ShowData } from '../../app/run-views.js';

/** `loadRunView` with its notices on stderr. */
export async function loadShowData(ctx: CliContext, rt: Runtime, runId: string): Promise<ShowData> {
  return loadRunView(rt, runId, ctx.stderr);
}

/** What the run materialized and the results of its checks, under the rest of `show`; empty if nothing. */
export function assetsSection(data: ShowData): string {
  return data.assets.length === 0 ? '' : `\n\n${renderRunAssets(data.assets, data.moreAssets)}`;
}

/** The JSON printed by `show --json` (and by `run --json` once the run ended). */
export function showJson(data: ShowData): Record<string, unknown> {
  const { run } = data;
  return {
    ...runJson(run),
    parent: run.parentRunId ? { run: run.parentRunId, task: run.parentTask } : null,
    children: data.children.map((c) => ({ ...runJson(c), parent_task: c.parentTask })),
    tasks: data.tasks.map((t) => taskJsonWith(t, data.state)),
    assets: data.assets.map(runAssetJson),
    failure: failureJson(failureSummary(run, data.tasks)),
  };
}

export interface ShowFlags {
  readonly json?: boolean;
  readonly events?: boolean;
  readonly expand?: boolean;
  /** Outputs whole in the OUTPUT column. */
  readonly full?: boolean;
  /** Show this one task run in full instead. */
  readonly task?: string;
  /** With the run reference `last`: the newest run of this flow. */
  readonly flow?: string;
}

/** `show --task`: one task run with its attempts, its whole error and output. */
function showTask(
  ctx: CliContext,
  data: ShowData,
  events: readonly StoredEvent[],
  taskId: string,
  json: boolean,
): void {
  const task = data.tasks.find((t) => t.taskId === taskId);
  if (!task) {
    const ids = data.tasks.map((t) => t.taskId);
    throw new BatonError('TASK_NOT_FOUND', `run ${data.run.id} has no task "${taskId}"`, {
      hint: `Tasks: ${ids.slice(0, 20).join(', ')}${ids.length > 20 ? ', …' : ''}.`,
    });
  }
  const detail = {
    run: data.run,
    task,
    attempts: taskAttempts(
      events.map((e) => e.event),
      taskId,
    ),
    state: data.state,
  };
  ctx.stdout(json ? JSON.stringify(taskDetailJson(detail), null, 2) : renderTaskDetail(detail));
}

export async function showCommand(ctx: CliContext, ref: string, flags: ShowFlags): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  try {
    const runId = (await resolveRunRef(rt, ref, { flow: flags.flow })).id;
    const data = await loadShowData(ctx, rt, runId);
    const events = flags.events || flags.task !== undefined ? await rt.store.readEvents(runId) : [];
    if (flags.task !== undefined) {
      showTask(ctx, data, events, flags.task, flags.json ?? false);
      return 0;
    }
    if (flags.json) {
      ctx.stdout(
        JSON.stringify(
          {
            ...showJson(data),
            ...(flags.events ? { events: events.map((e) => ({ seq: e.seq, ...e.event })) } : {}),
          },
          null,
          2,
        ),
      );
    } else {
      ctx.stdout(
        renderShow(data.run, data.tasks, {
          state: data.state,
          expand: flags.expand ?? false,
          children: data.children,
          full: flags.full ?? false,
        }) + assetsSection(data),
      );
      if (flags.events) {
        ctx.stdout(
          '\n' +
            table(
              ['SEQ', 'AT', 'EVENT', 'DETAIL'],
              events.map((e) => {
                const { type, at, ...rest } = e.event;
                return [String(e.seq), time(at), type, JSON.stringify(rest).slice(0, 120)];
              }),
            ),
        );
      }
    }
    return 0;
  } finally {
    await rt.close();
  }
}

/** Log lines read from the store at a time by `logs`. */
const LOG_PAGE = 5000;

/** A failed attempt as `logs` prints it. */
interface AttemptFailure {
  readonly task: string;
  readonly attempt: number;
  readonly at: number;
  readonly error: TaskError;
}

export async function logsCommand(
  ctx: CliContext,
  ref: string,
  task: string | undefined,
  flags: { follow?: boolean; json?: boolean; flow?: string },
): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  try {
    const runId = (await resolveRunRef(rt, ref, { flow: flags.flow })).id;
    if (task !== undefined) {
      const tasks = await rt.store.getTaskRuns(runId);
      if (!tasks.some((t) => t.taskId === task)) {
        throw new BatonError('TASK_NOT_FOUND', `run ${runId} has no task "${task}"`, {
          hint: `Tasks: ${tasks
            .slice(0, 20)
            .map((t) => t.taskId)
            .join(', ')}`,
        });
      }
    }
    const emitLine = (l: StoredLogLine) =>
      ctx.stdout(
        flags.json
          ? JSON.stringify({
              task: l.taskId,
              attempt: l.attempt,
              stream: l.stream,
              at: new Date(l.at).toISOString(),
              text: l.text,
            })
          : `${new Date(l.at).toISOString().slice(11, 23)} ${l.taskId}#${l.attempt} ${l.stream === 'stderr' ? '! ' : ''}${l.text}`,
      );
    const emitFailure = (f: AttemptFailure) =>
      ctx.stdout(
        flags.json
          ? JSON.stringify({ task: f.task, attempt: f.attempt, at: new Date(f.at).toISOString(), error: f.error })
          : renderAttemptFailure(f.task, f.attempt, f.at, f.error),
      );
    let afterLog = 0;
    let afterEvent = 0;
    /**
     * Prints what was stored since the last call, lines and failures merged by time: an
     * attempt's failure comes after the attempt's own lines (even when clocks disagree)
     * and before later lines. Returns how many entries it printed.
     */
    const print = async (): Promise<number> => {
      // Events first: the lines of a failed attempt are stored no later than its failure.
      const events = await rt.store.readEvents(runId, afterEvent);
      afterEvent = events.at(-1)?.seq ?? afterEvent;
      const failures: AttemptFailure[] = events.flatMap(({ event: e }) =>
        e.type === 'attempt_failed' && (task === undefined || e.task === task) ? [e] : [],
      );
      let printed = 0;
      /** Prints the failures due before line `i` of `page` (all that are left without a line). */
      const failuresBefore = (page: readonly StoredLogLine[], i: number, lastOf: Map<string, number>) => {
        const line = page[i];
        for (let f = failures[0]; f !== undefined; f = failures[0]) {
          if (line && (line.at <= f.at || (lastOf.get(`${f.task}#${f.attempt}`) ?? -1) >= i)) return;
          failures.shift();
          emitFailure(f);
          printed++;
        }
      };
      for (;;) {
        const page = await rt.store.readLogs(runId, { ...(task ? { task } : {}), afterSeq: afterLog, limit: LOG_PAGE });
        // Where each attempt's last line of the page is: its failure comes after it, whatever the clocks say.
        const lastOf = new Map(page.map((l, i) => [`${l.taskId}#${l.attempt}`, i]));
        for (const [i, l] of page.entries()) {
          failuresBefore(page, i, lastOf);
          emitLine(l);
          printed++;
        }
        afterLog = page.at(-1)?.seq ?? afterLog;
        if (page.length < LOG_PAGE) break;
      }
      failuresBefore([], 0, new Map());
      return printed;
    };
    await print();
    if (flags.follow) {
      for (;;) {
        const current = await rt.store.getRun(runId);
        const n = await print();
        if (current && isTerminalRun(current.state) && n === 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    return 0;
  } finally {
    await rt.close();
  }
}

export async function flowsCommand(ctx: CliContext, flags: { json?: boolean }): Promise<number> {
  const { catalog } = await openCatalog(ctx.runtime);
  const entries = await catalog.list();
  if (flags.json) {
    ctx.stdout(
      JSON.stringify(
        entries.map((e) => ({
          path: e.path,
          name: e.flow?.spec.name ?? null,
          version: e.flow?.version ?? null,
          tasks: e.flow?.spec.tasks.length ?? null,
          params: e.flow?.spec.params ?? null,
          problems: e.problems,
        })),
        null,
        2,
      ),
    );
  } else if (entries.length === 0) {
    ctx.stdout(`no flows in ${catalog.flowsDir}`);
  } else {
    ctx.stdout(
      table(
        ['FLOW', 'VERSION', 'TASKS', 'PARAMS', 'FILE'],
        entries.map((e) => [
          e.flow?.spec.name ?? '(invalid)',
          e.flow?.version ?? `${e.problems.length} problem(s)`,
          e.flow ? String(e.flow.spec.tasks.length) : '-',
          e.flow ? Object.keys(e.flow.spec.params).join(', ') || '-' : '-',
          e.path,
        ]),
      ),
    );
  }
  return entries.some((e) => e.problems.length > 0) ? 3 : 0;
}

/**
 * Flow files under a path: the path itself unless it is a folder, or flow files in a folder
 * (and its flows/). A device or a FIFO is returned as a file, for the loader to refuse with
 * a problem that says what it is (it never reads one).
 */
function flowFilesUnder(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new BatonError('FLOW_NOT_FOUND', `${path} does not exist`);
  }
  if (!st.isDirectory()) return [path];
  const here = readdirSync(path)
    .filter(isFlowFile)
    .map((n) => join(path, n));
  const flowsDir = join(path, 'flows');
  let nested: string[] = [];
  try {
    nested = readdirSync(flowsDir)
      .filter(isFlowFile)
      .map((n) => join(flowsDir, n));
  } catch {
    nested = [];
  }
  return [...(nested.length > 0 ? nested : here)].sort();
}

export async function validateCommand(
  ctx: CliContext,
  path: string | undefined,
  flags: { json?: boolean; types?: boolean },
): Promise<number> {
  const { catalog, config } = await openCatalog(ctx.runtime);
  const target = resolve(ctx.runtime.cwd, path ?? config.projectDir);
  const files = flowFilesUnder(target);
  const explicitFile = files.length === 1 && files[0] === target;
  const results: { file: string; name: string | null; version: string | null; problems: Problem[] }[] = [];
  for (const file of files) {
    try {
      const flow = await catalog.load(file);
      results.push({ file, name: flow.spec.name, version: flow.version, problems: [] });
    } catch (error) {
      // Helper modules beside flows export no flow; only a file named explicitly must.
      if (!explicitFile && error instanceof BatonError && error.details.noFlow === true) continue;
      results.push({ file, name: null, version: null, problems: problemsOf(error, file) });
    }
  }
  const types = flags.types ? await catalog.typeCheck(files) : undefined;
  const typeErrors = types?.diagnostics.filter((d) => d.category === 'error').length ?? 0;
  const total = results.reduce((n, r) => n + r.problems.length, 0);
  if (types && !types.tsconfig) {
    ctx.stderr(
      `baton: no tsconfig.json in ${config.projectDir} or above; type-checking with defaults (strict, module NodeNext, target ES2022)`,
    );
  }
  if (flags.json) {
    ctx.stdout(
      JSON.stringify({ ok: total === 0 && typeErrors === 0, files: results, ...(types ? { types } : {}) }, null, 2),
    );
  } else {
    for (const r of results) {
      if (r.problems.length === 0) ctx.stdout(`ok    ${r.file} (flow ${r.name}, version ${r.version})`);
      else {
        ctx.stdout(`FAIL  ${r.file}: ${r.problems.length} problem(s)`);
        for (const p of r.problems) ctx.stdout(`  ${renderProblem(p).replace(/\n/g, '\n  ')}`);
      }
    }
    if (files.length === 0) ctx.stdout('no flow files found');
    if (types) {
      const what = `${types.files.length} TypeScript file(s) with ${types.tsconfig ?? 'default options'} (TypeScript ${types.version})`;
      ctx.stdout(typeErrors === 0 ? `ok    types: ${what}` : `FAIL  types: ${typeErrors} error(s) in ${what}`);
      // `file:line:col  TSxxxx message`: the form editors and terminals link to the source.
      for (const d of types.diagnostics) {
        const where =
          d.file === null ? 'tsconfig' : [d.file, d.line, d.column].filter((x) => x !== undefined).join(':');
        ctx.stdout(`${where}  ${d.code} ${d.message.replace(/\n/g, '\n  ')}`);
      }
    }
  }
  return total > 0 || typeErrors > 0 ? 3 : 0;
}
