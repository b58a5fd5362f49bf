/**
 * Live updates over Server-Sent Events: `run` (a run's state changed), `task` (a task
 * run's state changed) and `log` (a log line) events, each with an id monotonic in this
 * server, so that a client reconnecting with `Last-Event-ID` gets what it missed (from a
 * bounded buffer of recent events).
 *
 * One shared scanner per server reads what changed from the application layer and fans it
 * out to every client: woken by the store's notifications where it has them (PostgreSQL
 * LISTEN/NOTIFY; SQLite for this process's own commits), and on a short interval besides
 * (SQLite: commits of other processes announce nothing). No client polls on its own.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isTerminalRun } from '../core/states.js';
import { listRuns, getRun, readRunLogs, readTaskRuns } from '../app/runs.js';
import type { Runtime } from '../app/runtime.js';
import type { RunRecord } from '../store/store.js';
import { logOut, runOut, taskOut } from './serialize.js';

/** One event of the stream. */
interface LiveEvent {
  readonly id: number;
  readonly event: 'run' | 'task' | 'log';
  readonly runId: string;
  readonly flow: string;
  readonly data: unknown;
}

interface Client {
  /** Takes the events published since the last batch, in order. */
  readonly send: (batch: readonly LiveEvent[]) => void;
  readonly end: () => void;
}

export interface LiveEventsOptions {
  /** How often the shared scanner reads the store without a notification, in ms. */
  readonly pollMs?: number;
  /** Events kept for clients that reconnect with Last-Event-ID. */
  readonly buffer?: number;
  /** How often a comment line keeps an idle stream open, in ms. */
  readonly pingMs?: number;
}

/** The text/event-stream frames of events, made once however many clients get them. */
const frames = new WeakMap<LiveEvent, string>();

/** The frame of an event on the stream. */
function frameOf(e: LiveEvent): string {
  let frame = frames.get(e);
  if (frame === undefined) {
    frame = `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
    frames.set(e, frame);
  }
  return frame;
}

/** The frames of a batch of events, joined once for every client that takes the whole batch. */
const batchTexts = new WeakMap<readonly LiveEvent[], string>();

/** The text of `events` on the stream. */
function textOf(events: readonly LiveEvent[]): string {
  let text = batchTexts.get(events);
  if (text === undefined) {
    text = events.map(frameOf).join('');
    batchTexts.set(events, text);
  }
  return text;
}

/** Newest runs read per scan; runs still active beyond them stay followed by id. */
const SCAN_RUNS = 200;

/** What of a run, or a task run, makes an event when it changes. */
const runKey = (r: RunRecord): string => `${r.state}|${r.startedAt}|${r.endedAt}|${r.taskCount}`;

export class LiveEvents {
  private nextId = 1;
  private readonly recent: LiveEvent[] = [];
  private readonly clients = new Set<Client>();
  /** Events published and not yet sent: they leave together, one write per client. */
  private pending: LiveEvent[] = [];
  private flushing: NodeJS.Immediate | undefined;
  private readonly runs = new Map<string, { key: string; tasks: Map<string, string>; logSeq: number }>();
  private seeded = false;
  private scanning: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly pollMs: number;
  private readonly bufferSize: number;
  private readonly pingMs: number;

  constructor(
    private readonly rt: Runtime,
    options: LiveEventsOptions = {},
  ) {
    this.pollMs = options.pollMs ?? (rt.store.dialect === 'sqlite' ? 500 : 2000);
    this.bufferSize = options.buffer ?? 10_000;
    this.pingMs = options.pingMs ?? 15_000;
  }

  /** Starts the shared scanner (reading where the runs are now, without events for them). */
  async start(): Promise<void> {
    await this.scan();
    for (const channel of ['runs', 'tasks', 'results'] as const) {
      const off = this.rt.store.subscribe?.(channel, () => this.wake());
      if (off) this.unsubscribe.push(off);
    }
    const off = this.rt.store.onRunEnd?.(() => this.wake());
    if (off) this.unsubscribe.push(off);
    this.timer = setInterval(() => this.wake(), this.pollMs);
    this.timer.unref();
  }

  /** Stops the scanner and ends every stream. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const off of this.unsubscribe.splice(0)) off();
    await this.scanning;
    this.flush();
    for (const c of [...this.clients]) c.end();
  }

  /** Asks for a scan now (one at a time; a wake during a scan runs one more after it). */
  wake(): void {
    if (this.scanning) {
      this.again = true;
      return;
    }
    this.scanning = this.scan()
      .catch(() => {
        // The store away for a moment: the next wake or tick reads again.
      })
      .finally(() => {
        this.scanning = null;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** Reads what changed since the last scan and publishes it. */
  private async scan(): Promise<void> {
    const newest = await listRuns(this.rt, { limit: SCAN_RUNS });
    const seen = new Set(newest.map((r) => r.id));
    const followed = [...this.runs.keys()].filter((id) => !seen.has(id));
    const others = await Promise.all(followed.map((id) => getRun(this.rt, id).catch(() => null)));
    const runs = [...newest, ...others.filter((r): r is RunRecord => r !== null)];
    for (const run of runs.sort((a, b) => a.createdAt - b.createdAt)) {
      const known = this.runs.get(run.id);
      const key = runKey(run);
      if (known && known.key === key && isTerminalRun(run.state)) {
        // Ended and told: stop following it (it stays among the newest and is seen as unchanged).
        continue;
      }
      if (known && known.key === key && run.state === 'queued') {
        // Still waiting for a worker: its tasks and logs change only once it starts, which
        // changes its key. A backlog of queued runs then costs each scan nothing.
        continue;
      }
      const entry = known ?? { key: '', tasks: new Map<string, string>(), logSeq: 0 };
      if (!known) this.runs.set(run.id, entry);
      const quiet = !this.seeded;
      const tasks = await readTaskRuns(this.rt, run.id);
      for (const t of tasks) {
        const tkey = `${t.state}|${t.attempts}|${t.endedAt}`;
        if (entry.tasks.get(t.taskId) !== tkey) {
          entry.tasks.set(t.taskId, tkey);
          if (!quiet) this.publish('task', run, { run_id: run.id, task: taskOut(t, null) });
        }
      }
      for (;;) {
        const lines = await readRunLogs(this.rt, run.id, { afterSeq: entry.logSeq, limit: 1000 });
        for (const l of lines) {
          entry.logSeq = l.seq;
          if (!quiet) this.publish('log', run, { ...logOut(l), run_id: run.id });
        }
        if (lines.length < 1000) break;
      }
      if (entry.key !== key) {
        entry.key = key;
        if (!quiet) this.publish('run', run, runOut(run));
      }
    }
    // Forget runs no longer among the newest once they ended.
    for (const [id, entry] of this.runs) {
      if (!seen.has(id) && /^(succeeded|failed|cancelled)\|/.test(entry.key)) this.runs.delete(id);
    }
    this.seeded = true;
  }

  private publish(event: LiveEvent['event'], run: RunRecord, data: unknown): void {
    const e: LiveEvent = { id: this.nextId++, event, runId: run.id, flow: run.flow, data };
    this.recent.push(e);
    if (this.recent.length > this.bufferSize) this.recent.splice(0, this.recent.length - this.bufferSize);
    this.pending.push(e);
    // Many events come out of one scan: a write per client and event would cost a syscall
    // each, the whole batch costs one.
    this.flushing ??= setImmediate(() => this.flush());
  }

  /** Sends the pending events to every client. */
  private flush(): void {
    clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    for (const c of this.clients) c.send(batch);
  }

  /**
   * Opens an event stream on `reply` (the caller must not answer it afterwards); `onEvents`
   * gets every batch of published events and writes what it wants with `writeText` (the
   * text of events: `textOf`) or the returned `write`.
   */
  private open(
    request: FastifyRequest,
    reply: FastifyReply,
    onEvents: (batch: readonly LiveEvent[], writeText: (text: string) => void) => void,
  ): { write: (e: LiveEvent) => void; end: () => void } {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': connected\n\n');
    const ping = setInterval(() => res.write(': ping\n\n'), this.pingMs);
    ping.unref();
    const writeText = (text: string): void => {
      if (!res.writableEnded) res.write(text);
    };
    const write = (e: LiveEvent): void => writeText(frameOf(e));
    const client: Client = {
      send: (batch) => onEvents(batch, writeText),
      end: () => {
        clearInterval(ping);
        this.clients.delete(client);
        if (!res.writableEnded) res.end();
      },
    };
    request.raw.once('close', () => client.end());
    this.clients.add(client);
    return { write, end: client.end };
  }

  /**
   * `GET /api/v1/events`: every event (of one run, or of one flow's runs), after those the
   * client missed when it gives `Last-Event-ID`.
   */
  stream(request: FastifyRequest, reply: FastifyReply, filter: { run?: string; flow?: string }): void {
    const accepts = (e: LiveEvent) =>
      (filter.run === undefined || e.runId === filter.run) && (filter.flow === undefined || e.flow === filter.flow);
    const header = request.headers['last-event-id'];
    const last = Number(Array.isArray(header) ? header[0] : header);
    const { write } = this.open(request, reply, (batch, writeText) => {
      const mine = batch.every(accepts) ? batch : batch.filter(accepts);
      if (mine.length > 0) writeText(textOf(mine));
    });
    if (Number.isInteger(last) && last > 0) {
      // Events still pending reach this client with their batch.
      const sent = this.pending[0]?.id ?? Infinity;
      for (const e of this.recent) if (e.id > last && e.id < sent && accepts(e)) write(e);
    }
  }

  /**
   * `GET /api/v1/runs/{id}/logs?follow=true`: the run's log lines after `after` (those
   * stored first, then each new one), ids being the lines' seqs, until the run ends.
   */
  async followLogs(
    request: FastifyRequest,
    reply: FastifyReply,
    runId: string,
    options: { task?: string | undefined; attempt?: number | undefined; after: number },
  ): Promise<void> {
    const header = request.headers['last-event-id'];
    const resumeAt = Number(Array.isArray(header) ? header[0] : header);
    let sent = Number.isInteger(resumeAt) && resumeAt > options.after ? resumeAt : options.after;
    let chain = Promise.resolve();
    let ended = false;
    // Everything goes through one chain, so that lines go out once and in order.
    const sendStored = async (write: (e: LiveEvent) => void): Promise<void> => {
      for (;;) {
        const lines = await readRunLogs(this.rt, runId, {
          task: options.task,
          attempt: options.attempt,
          afterSeq: sent,
          limit: 1000,
        });
        for (const l of lines) {
          sent = Math.max(sent, l.seq);
          write({ id: l.seq, event: 'log', runId, flow: '', data: { ...logOut(l), run_id: runId } });
        }
        if (lines.length < 1000) return;
      }
    };
    const stream = this.open(request, reply, (batch) => {
      const mine = batch.filter((e) => e.runId === runId);
      if (mine.length === 0 || ended) return;
      const over = mine.some(
        (e) => e.event === 'run' && isTerminalRun((e.data as { state: RunRecord['state'] }).state),
      );
      chain = chain
        .then(async () => {
          await sendStored(stream.write);
          if (over) finish();
        })
        .catch(() => finish());
    });
    const finish = (): void => {
      ended = true;
      stream.end();
    };
    chain = chain
      .then(async () => {
        await sendStored(stream.write);
        const run = await getRun(this.rt, runId);
        if (isTerminalRun(run.state)) {
          await sendStored(stream.write);
          finish();
        }
      })
      .catch(() => finish());
    await chain;
  }
}
