/**
 * Watches what `baton dev` loads: the project's `flows/` folder (recursively), `baton.yaml`,
 * and the modules that YAML flows name outside `flows/`. Changes are gathered until the
 * files have been quiet for a moment (editors write a file in several steps) and handed
 * over as one batch of project-relative paths. Batches never overlap: what changes during a
 * reload makes the next batch.
 */
import type { FSWatcher } from 'node:fs';
import { statSync, watch } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { CONFIG_FILE } from '../../app/config.js';

export interface ProjectWatcherOptions {
  readonly projectDir: string;
  /** Quiet time before a batch is handed over, in ms. Default 200. */
  readonly debounceMs?: number;
  /** Called with the changed paths, relative to the project, `/`-separated and sorted. */
  readonly onChange: (paths: readonly string[]) => Promise<void>;
  readonly onError: (message: string) => void;
}

/** Files editors and tools write beside the real one (swap, backup, probe files). */
function isNoise(name: string): boolean {
  const base = basename(name);
  return base.startsWith('.') || base.endsWith('~') || /\.(swp|swx|tmp)$/.test(base) || base === '4913';
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export class ProjectWatcher {
  private readonly flowsDir: string;
  private project: FSWatcher | undefined;
  private flows: FSWatcher | undefined;
  /** Folders outside flows/ holding modules, with the module file names watched in each. */
  private readonly moduleDirs = new Map<string, { watcher: FSWatcher | undefined; names: Set<string> }>();
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: ProjectWatcherOptions) {
    this.flowsDir = join(o.projectDir, 'flows');
  }

  start(): void {
    this.project = this.open(this.o.projectDir, false, (name) => {
      if (name === CONFIG_FILE) this.changed(join(this.o.projectDir, CONFIG_FILE));
      else if (name === 'flows' || name === null) {
        // flows/ made, removed or replaced: its watcher follows.
        this.watchFlows();
        if (name === 'flows') this.changed('flows/');
      }
    });
    this.watchFlows();
  }

  /** The module files to watch besides flows/ (absolute paths); those inside flows/ are watched already. */
  setModules(paths: readonly string[]): void {
    const wanted = new Map<string, Set<string>>();
    for (const path of paths) {
      if (!relative(this.flowsDir, path).startsWith('..')) continue;
      const dir = dirname(path);
      const names = wanted.get(dir) ?? new Set<string>();
      names.add(basename(path));
      wanted.set(dir, names);
    }
    for (const [dir, entry] of this.moduleDirs) {
      if (wanted.has(dir)) continue;
      entry.watcher?.close();
      this.moduleDirs.delete(dir);
    }
    for (const [dir, names] of wanted) {
      const entry = this.moduleDirs.get(dir);
      if (entry) {
        entry.names = names;
        continue;
      }
      const added: { watcher: FSWatcher | undefined; names: Set<string> } = { watcher: undefined, names };
      added.watcher = this.open(dir, false, (name) => {
        if (name !== null && added.names.has(name)) this.changed(join(dir, name));
      });
      this.moduleDirs.set(dir, added);
    }
  }

  /** Stops watching; resolves when a reload under way has ended. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.project?.close();
    this.flows?.close();
    for (const entry of this.moduleDirs.values()) entry.watcher?.close();
    this.moduleDirs.clear();
    await this.running;
  }

  private watchFlows(): void {
    this.flows?.close();
    this.flows = undefined;
    if (!isDirectory(this.flowsDir)) return;
    this.flows = this.open(this.flowsDir, true, (name) => {
      if (name === null) this.changed('flows/');
      else if (!isNoise(name)) this.changed(join(this.flowsDir, name));
    });
  }

  private open(dir: string, recursive: boolean, onName: (name: string | null) => void): FSWatcher | undefined {
    try {
      const watcher = watch(dir, { recursive }, (_event, name) => onName(name === null ? null : String(name)));
      watcher.on('error', (error) => {
        // A watched folder that is removed ends its watcher; flows/ is watched again when it comes back.
        watcher.close();
        if (dir !== this.flowsDir) this.o.onError(`stopped watching ${this.show(dir)}: ${error.message}`);
      });
      return watcher;
    } catch (error) {
      this.o.onError(
        `cannot watch ${this.show(dir)}: ${(error as Error).message}; restart baton dev after changing it`,
      );
      return undefined;
    }
  }

  private show(path: string): string {
    const rel = relative(this.o.projectDir, path);
    return rel === '' ? '.' : rel.startsWith('..') ? path : rel.split(sep).join('/');
  }

  private changed(path: string): void {
    if (this.closed) return;
    this.pending.add(path.endsWith('/') ? path : this.show(path));
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.o.debounceMs ?? 200);
  }

  private flush(): void {
    this.timer = undefined;
    if (this.running || this.closed || this.pending.size === 0) return;
    const paths = [...this.pending].sort();
    this.pending.clear();
    this.running = this.o
      .onChange(paths)
      .catch((error: unknown) => this.o.onError(`reloading failed: ${(error as Error).message}`))
      .finally(() => {
        this.running = undefined;
        if (this.pending.size > 0 && !this.timer && !this.closed) this.flush();
      });
  }
}
