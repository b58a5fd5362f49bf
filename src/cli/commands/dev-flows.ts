/**
 * The flows `baton dev` runs the triggers of, reloaded when their files change. A flow
 * file that becomes invalid keeps its last good version: its triggers keep firing and
 * their runs are made from that version until the file is fixed or removed. Each reload
 * reads every file afresh (a new catalog), so that a changed task module gives the flow
 * its new version even when the flow file itself did not change.
 */
import { dirname, resolve } from 'node:path';
import { FlowCatalog } from '../../app/flow-catalog.js';
import type { Runtime } from '../../app/runtime.js';
import { triggerFlows } from '../../app/runtime.js';
import type { Problem } from '../../core/errors.js';
import { flattenTasks } from '../../core/run-topology.js';
import type { TriggerFlow, TriggerFlows } from '../../triggers/trigger-service.js';

interface GoodFlow {
  readonly flow: TriggerFlow;
  /** Task modules a YAML flow names (absolute), to watch. */
  readonly modules: readonly string[];
}

/** A flow file with problems after a reload. */
export interface InvalidFlow {
  readonly path: string;
  readonly problems: readonly Problem[];
  /** Its last good version still runs. */
  readonly kept: boolean;
}

export interface ReloadResult {
  /** Flows loaded, counting those kept at their last good version. */
  readonly flows: number;
  /** Triggers those flows declare. */
  readonly triggers: number;
  /** Files with problems whose problems were not reported before (new or changed). */
  readonly invalid: readonly InvalidFlow[];
  /** Files reported invalid before that are now valid, or gone. */
  readonly fixed: readonly string[];
  readonly modules: readonly string[];
}

export class LastGoodFlows implements TriggerFlows {
  private good = new Map<string, GoodFlow>();
  /** Problems last reported, per file, so that the same ones are not reported at every reload. */
  private reported = new Map<string, string>();

  constructor(private readonly rt: Runtime) {}

  /** Reads every flow file of the project again; `knownPools` are the pools of baton.yaml. */
  async reload(knownPools: readonly string[]): Promise<ReloadResult> {
    const catalog = new FlowCatalog(this.rt.config.projectDir, {
      knownPools,
      kinds: this.rt.executors.kinds(),
      store: this.rt.store,
      launchChecks: true,
    });
    const fresh = triggerFlows({ ...this.rt, catalog });
    const next = new Map<string, GoodFlow>();
    const invalid: InvalidFlow[] = [];
    const stillInvalid = new Set<string>();
    for (const entry of await catalog.list()) {
      const loaded = entry.flow;
      const flow = loaded ? await fresh.get(loaded.spec.name, entry.path) : null;
      if (loaded && flow) {
        const modules = flattenTasks(loaded.spec.tasks)
          .map((t) => t.config.module)
          .filter((m): m is string => typeof m === 'string')
          .map((m) => resolve(dirname(entry.path), m));
        next.set(entry.path, { flow, modules });
        continue;
      }
      const kept = this.good.get(entry.path);
      if (kept) next.set(entry.path, kept);
      stillInvalid.add(entry.path);
      const text = JSON.stringify(entry.problems);
      if (this.reported.get(entry.path) !== text) {
        this.reported.set(entry.path, text);
        invalid.push({ path: entry.path, problems: entry.problems, kept: kept !== undefined });
      }
    }
    const fixed = [...this.reported.keys()].filter((path) => !stillInvalid.has(path));
    for (const path of fixed) this.reported.delete(path);
    this.good = next;
    const all = [...next.values()];
    return {
      flows: all.length,
      triggers: all.reduce((n, g) => n + g.flow.triggers.length, 0),
      invalid,
      fixed,
      modules: [...new Set(all.flatMap((g) => g.modules))],
    };
  }

  async list(): Promise<TriggerFlow[]> {
    return [...this.good.values()].map((g) => g.flow).filter((f) => f.triggers.length > 0);
  }

  async get(name: string, sourcePath?: string): Promise<TriggerFlow | null> {
    if (sourcePath) {
      const flow = this.good.get(sourcePath)?.flow;
      return flow?.name === name ? flow : null;
    }
    return [...this.good.values()].find((g) => g.flow.name === name)?.flow ?? null;
  }
}
