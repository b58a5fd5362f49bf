/**
 * File-arrival triggers: every new or changed file matching a glob under a local folder
 * creates one run, with param `file` = the file's absolute path. Optionally, once that run
 * has succeeded, the file is moved (renamed) into a `move_to` folder.
 *
 * Polling every `poll` ms is the source of truth (no fs.watch: it misses events on network
 * mounts and after restarts, and polling has to run anyway to check stability).
 *
 * Invariants
 * - A file is taken only once its size and mtime were the same at two consecutive polls,
 *   so a file still being written is not taken (a writer that pauses longer than `poll`
 *   should write aside, e.g. to a dotfile, which is never matched, and rename).
 * - A file's identity is its size and mtime (default) or the sha256 of its content
 *   (`identity: hash`); the dedupe key `<trigger>:file:<relative path>:<identity>` makes
 *   one run per identity, across restarts and schedulers, whatever this module remembers.
 * - What this module remembers is an optimisation: in memory, one entry per file present
 *   (the identity last turned into a run); in the trigger's cursor, the most recent
 *   CURSOR_SEEN_LIMIT of those plus the pending moves. The cursor is written after `emit`
 *   returns, so a crash in between re-emits a few files, which the dedupe key absorbs.
 * - A file is moved only after the store says its run SUCCEEDED, and only if it still has
 *   the identity that run was for; a failed or cancelled run leaves it in place. The move
 *   is one rename (or copy aside + rename + unlink across file systems); a file of the
 *   same name already in `move_to` is kept, and the new one gets the run id as a suffix.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { escapePath, glob } from 'tinyglobby';
import { BatonError } from '../../core/errors.js';
import { isTerminalRun } from '../../core/states.js';
import type { LongTimer } from '../../engine/long-timer.js';
import { setLongTimeout } from '../../engine/long-timer.js';
import type { SourceContext, TriggerEvent, TriggerSource } from '../trigger-service.js';

/** A `file` trigger's config, as normalized from YAML (see define/trigger-schema.ts). */
export interface FileTriggerConfig {
  /** Folder to watch, relative to the flow file's folder. */
  readonly path: string;
  /** Glob relative to `path`; `**` crosses folders. Default `*`. */
  readonly glob?: string;
  /** Folder (relative to the flow file's folder) to move a file into once its run succeeded. */
  readonly moveTo?: string;
  readonly identity?: 'mtime' | 'hash';
  /** Poll period in ms. Default 1000. */
  readonly poll?: number;
}

const DEFAULT_POLL_MS = 1000;
/** Files remembered in the cursor, most recently taken first kept. */
const CURSOR_SEEN_LIMIT = 10_000;
/** Moves waiting for their run; beyond this the oldest are forgotten (the files stay). */
const PENDING_LIMIT = 10_000;
/** Events per `emit` call (one transaction each). */
const EMIT_BATCH = 100;
/** Run states read per poll for pending moves. */
const RUN_CHECKS_PER_POLL = 500;
/** Files stat'ed at once. */
const STAT_CONCURRENCY = 32;
/** After `emit` refused a file (trigger paused, params refused), it is offered again after this long. */
const REFUSED_BACKOFF_MS = 30_000;

/** A move waiting for the run a file caused. */
interface PendingMove {
  readonly run: string;
  /** Path relative to the watched folder, with `/`. */
  readonly file: string;
  /** Size and mtime when the run was created. */
  readonly stat: string;
  readonly identity: string;
}

/** What the trigger's cursor holds. */
interface FileCursor {
  readonly v: 1;
  /** `[file, stat]` (identity = stat) or `[file, stat, identity]`, oldest first. */
  readonly seen: readonly (readonly string[])[];
  readonly pending: readonly PendingMove[];
}

interface Seen {
  readonly stat: string;
  readonly identity: string;
}

interface Candidate {
  readonly rel: string;
  readonly stat: string;
  readonly identity: string;
  readonly size: string;
  readonly changed: boolean;
}

export async function createSource(context: SourceContext, _env: NodeJS.ProcessEnv): Promise<TriggerSource> {
  const source = new FileSource(context);
  await source.start();
  return source;
}

/** Size and mtime (ns) of a regular file, or null if it is gone or not a file. */
async function statKey(path: string): Promise<string | null> {
  try {
    const s = await stat(path, { bigint: true });
    return s.isFile() ? `${s.size}-${s.mtimeNs}` : null;
  } catch (error) {
    if (isGone(error)) return null;
    throw error;
  }
}

function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** `sha256-<hex>` of a file's content, or null if it is gone. */
async function sha256(path: string): Promise<string | null> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (error) {
    if (isGone(error)) return null;
    throw error;
  }
  return `sha256-${hash.digest('hex')}`;
}

/** Renames, or across file systems copies aside in the target folder and renames there. */
async function moveFile(from: string, to: string, tag: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    const aside = join(dirname(to), `.baton-move-${tag}`);
    await copyFile(from, aside);
    await rename(aside, to);
    await unlink(from);
  }
}

function isFileCursor(value: unknown): value is FileCursor {
  const c = value as Partial<FileCursor> | null;
  return typeof c === 'object' && c !== null && c.v === 1 && Array.isArray(c.seen) && Array.isArray(c.pending);
}

class FileSource implements TriggerSource {
  private readonly dir: string;
  private readonly moveTo: string | null;
  private readonly pattern: string;
  private readonly ignore: string[];
  private readonly hashMode: boolean;
  private readonly pollMs: number;
  /** Per file present: the identity last turned into a run; insertion order = recency. */
  private readonly seen = new Map<string, Seen>();
  /** Stat of every matching file at the previous poll. */
  private observed = new Map<string, string>();
  private pending: PendingMove[] = [];
  private readonly refusedUntil = new Map<string, number>();
  /** The cursor as stored (what `setCursor` expects). */
  private stored: unknown = null;
  private dirty = false;
  private timer: LongTimer | undefined;
  private stopped = false;
  private running: Promise<void> | null = null;
  private readonly reported = new Map<string, string>();

  constructor(private readonly context: SourceContext) {
    const { trigger } = context;
    const config = trigger.spec.config as unknown as FileTriggerConfig;
    const base = dirname(trigger.sourcePath);
    this.dir = resolve(base, config.path);
    this.moveTo = config.moveTo === undefined ? null : resolve(base, config.moveTo);
    this.pattern = config.glob ?? '*';
    this.hashMode = config.identity === 'hash';
    this.pollMs = config.poll ?? DEFAULT_POLL_MS;
    this.ignore = [];
    if (this.moveTo !== null) {
      const inside = relative(this.dir, this.moveTo);
      if (inside === '') {
        throw new BatonError('DEF_INVALID', `trigger ${trigger.id}: move_to is the watched folder ${this.dir}`, {
          hint: 'Give move_to another folder, e.g. move_to: done (relative to the flow file).',
          location: { file: trigger.sourcePath, path: `triggers.${trigger.name}.move_to` },
        });
      }
      // Moved files must never match again (they would look like new files there).
      if (inside !== '..' && !inside.startsWith(`..${sep}`) && !isAbsolute(inside))
        this.ignore.push(`${escapePath(inside)}/**`);
    }
  }

  async start(): Promise<void> {
    this.stored = await this.context.cursor();
    if (isFileCursor(this.stored)) {
      for (const [file, stat, identity] of this.stored.seen) {
        if (typeof file === 'string' && typeof stat === 'string')
          this.seen.set(file, { stat, identity: identity ?? stat });
      }
      this.pending = [...this.stored.pending];
    } else if (this.stored !== null) {
      this.context.diagnostic('its cursor is not a file cursor; starting afresh (the dedupe key prevents duplicates)');
    }
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    // `poll` is a setting of up to 366 days, beyond what setTimeout holds.
    this.timer = setLongTimeout(() => {
      this.running = this.pollOnce().finally(() => {
        this.running = null;
        this.schedule(this.pollMs);
      });
    }, ms);
  }

  /** Reports a problem once until it changes or clears. */
  private report(key: string, message: string | null): void {
    if (message === null) {
      this.reported.delete(key);
    } else if (this.reported.get(key) !== message) {
      this.reported.set(key, message);
      this.context.diagnostic(message);
    }
  }

  private async pollOnce(): Promise<void> {
    try {
      try {
        await this.movePending();
        if (!this.stopped) await this.takeNewFiles();
      } finally {
        await this.save();
      }
      this.report('poll', null);
    } catch (error) {
      this.report('poll', `polling ${this.dir} failed: ${(error as Error).message}`);
    }
  }

  /** Each matching file's stat, or null when the folder does not exist. */
  private async list(): Promise<Map<string, string> | null> {
    try {
      if (!(await stat(this.dir)).isDirectory()) throw new Error(`${this.dir} is not a folder`);
    } catch (error) {
      if (!isGone(error)) throw error;
      this.report('folder', `folder ${this.dir} does not exist; waiting for it`);
      return null;
    }
    this.report('folder', null);
    const files = await glob(this.pattern, {
      cwd: this.dir,
      onlyFiles: true,
      dot: false,
      expandDirectories: false,
      ignore: this.ignore,
    });
    const out = new Map<string, string>();
    const inside = files.filter((f) => !f.startsWith('../') && !isAbsolute(f)).sort();
    for (let i = 0; i < inside.length; i += STAT_CONCURRENCY) {
      const chunk = inside.slice(i, i + STAT_CONCURRENCY);
      const stats = await Promise.all(chunk.map((f) => statKey(join(this.dir, f))));
      chunk.forEach((f, j) => {
        const s = stats[j];
        if (s) out.set(f, s);
      });
    }
    return out;
  }

  private async takeNewFiles(): Promise<void> {
    const listing = await this.list();
    if (listing === null) return;
    const now = this.context.now();
    const candidates: Candidate[] = [];
    for (const [rel, st] of listing) {
      // Stable: the same size and mtime as at the previous poll.
      if (this.observed.get(rel) !== st) continue;
      const known = this.seen.get(rel);
      if (known?.stat === st) continue;
      if ((this.refusedUntil.get(rel) ?? 0) > now) continue;
      const identity = this.hashMode ? await sha256(join(this.dir, rel)) : st;
      if (identity === null) continue;
      if (known?.identity === identity) {
        // Touched, same content (identity: hash): remember the new stat, no run.
        this.remember(rel, { stat: st, identity });
        continue;
      }
      candidates.push({ rel, stat: st, identity, size: st.split('-')[0] as string, changed: known !== undefined });
    }
    this.observed = listing;
    for (const rel of this.seen.keys()) {
      if (!listing.has(rel)) {
        this.seen.delete(rel);
        this.dirty = true;
      }
    }
    for (const rel of this.refusedUntil.keys()) if (!listing.has(rel)) this.refusedUntil.delete(rel);
    for (let i = 0; i < candidates.length && !this.stopped; i += EMIT_BATCH) {
      await this.emit(candidates.slice(i, i + EMIT_BATCH), now);
    }
  }

  private async emit(batch: readonly Candidate[], now: number): Promise<void> {
    const id = this.context.trigger.id;
    const events: TriggerEvent[] = batch.map((c) => ({
      dedupeKey: `${id}:file:${c.rel}:${c.identity}`,
      params: { file: join(this.dir, c.rel) },
      reason: `file ${c.rel} ${c.changed ? 'changed' : 'arrived'} (${c.size} bytes)`,
    }));
    const results = await this.context.emit(events);
    results.forEach((r, i) => {
      const c = batch[i] as Candidate;
      if (r.outcome === 'refused') {
        this.refusedUntil.set(c.rel, now + REFUSED_BACKOFF_MS);
        this.report('refused', `file ${c.rel} was not turned into a run: ${r.error?.message ?? 'refused'}`);
        return;
      }
      this.refusedUntil.delete(c.rel);
      this.remember(c.rel, { stat: c.stat, identity: c.identity });
      if (this.moveTo !== null && r.runId !== null && !this.pending.some((p) => p.run === r.runId)) {
        this.pending.push({ run: r.runId, file: c.rel, stat: c.stat, identity: c.identity });
      }
    });
    if (this.pending.length > PENDING_LIMIT) {
      const dropped = this.pending.splice(0, this.pending.length - PENDING_LIMIT);
      this.context.diagnostic(
        `${dropped.length} file(s) waiting for their run will not be moved (more than ${PENDING_LIMIT} wait), e.g. ${dropped[0]?.file}`,
      );
    }
    this.dirty = true;
  }

  private remember(rel: string, seen: Seen): void {
    this.seen.delete(rel);
    this.seen.set(rel, seen);
    this.dirty = true;
  }

  /** Moves the files whose run succeeded; forgets those whose run failed, was cancelled or is gone. */
  private async movePending(): Promise<void> {
    if (this.moveTo === null || this.pending.length === 0) return;
    const checked = this.pending.slice(0, RUN_CHECKS_PER_POLL);
    const runs = new Map((await this.context.runs(checked.map((p) => p.run))).map((r) => [r.id, r]));
    const keep: PendingMove[] = [];
    for (const p of checked) {
      if (this.stopped) {
        keep.push(p);
        continue;
      }
      const run = runs.get(p.run);
      if (run && !isTerminalRun(run.state)) {
        keep.push(p);
      } else if (run?.state === 'succeeded') {
        try {
          await this.move(p);
          this.report(`move:${p.file}`, null);
        } catch (error) {
          this.report(`move:${p.file}`, `could not move ${p.file} to ${this.moveTo}: ${(error as Error).message}`);
          keep.push(p);
        }
      }
    }
    this.pending = [...keep, ...this.pending.slice(checked.length)];
    if (keep.length !== checked.length) this.dirty = true;
  }

  private async move(p: PendingMove): Promise<void> {
    const from = join(this.dir, p.file);
    const st = await statKey(from);
    if (st === null) return;
    // Changed since its run was created: that version is another run's, and stays.
    if (st !== p.stat && (!this.hashMode || (await sha256(from)) !== p.identity)) return;
    let to = join(this.moveTo as string, p.file);
    await mkdir(dirname(to), { recursive: true });
    if ((await statKey(to)) !== null) {
      const ext = extname(to);
      to = `${to.slice(0, to.length - ext.length)}.${p.run}${ext}`;
    }
    await moveFile(from, to, p.run);
    this.seen.delete(p.file);
    this.observed.delete(p.file);
    this.dirty = true;
  }

  private encode(): FileCursor {
    const seen: string[][] = [];
    const entries = [...this.seen].slice(-CURSOR_SEEN_LIMIT);
    for (const [file, s] of entries) seen.push(s.identity === s.stat ? [file, s.stat] : [file, s.stat, s.identity]);
    return { v: 1, seen, pending: [...this.pending] };
  }

  /** Writes the cursor if anything changed since it was last written. */
  private async save(): Promise<void> {
    if (!this.dirty) return;
    const next = this.encode();
    if (JSON.stringify(next) === JSON.stringify(this.stored)) {
      this.dirty = false;
      return;
    }
    let moved = await this.context.setCursor(next, this.stored);
    if (!moved) {
      // Someone else wrote it (an operator, a second process): ours is as good, and dedupe keys guard runs.
      moved = await this.context.setCursor(next, await this.context.cursor());
    }
    if (moved) {
      this.stored = next;
      this.dirty = false;
    }
  }
}
