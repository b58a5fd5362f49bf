/**
 * The test's side of the case worker (case-worker.ts): sends one case at a time, and turns
 * a case that outlives its deadline into a `hang` (the thread is terminated and the next
 * case gets a new one) and a thread that dies into a `crash`.
 */
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AnswerMessage, Job, JobMessage, WorkerSetup } from './case-worker.js';
import type { Findings, Outcome } from './oracle.js';
import { CASE_DEADLINE_MS, judgeOutcome, preview } from './oracle.js';

const BOOT = fileURLToPath(new URL('./worker-boot.mjs', import.meta.url));
const ENTRY = fileURLToPath(new URL('./case-worker.ts', import.meta.url));

/** Heap of the thread: past it a case is an out-of-memory crash, not a swapping machine. */
const HEAP_MB = 1024;
/** About the stack of a process's main thread (V8's default of 984 KiB). */
const STACK_MB = 1;
/** Loading the loaders through tsx, on a loaded machine. */
const START_DEADLINE_MS = 120_000;

interface Live {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  base: string | undefined;
  /** The case in flight: settles it when the thread answers, fails or exits. */
  pending: ((outcome: Outcome) => void) | undefined;
}

export class CaseRunner {
  private live: Live | undefined;
  private nextId = 0;

  constructor(private readonly setup: WorkerSetup) {}

  private start(): Live {
    const worker = new Worker(BOOT, {
      workerData: { entry: ENTRY, setup: this.setup },
      resourceLimits: { maxOldGenerationSizeMb: HEAP_MB, stackSizeMb: STACK_MB },
      // What the loaders print is not the case's answer; read and dropped so that it cannot fill a pipe.
      stdout: true,
      stderr: true,
    });
    worker.stdout.resume();
    worker.stderr.resume();
    let greet: () => void = () => undefined;
    let fail: (error: Error) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      greet = resolve;
      fail = reject;
    });
    const live: Live = { worker, ready, base: undefined, pending: undefined };
    const end = (message: string) => {
      fail(new Error(`the case worker did not start: ${message}`));
      live.pending?.({ kind: 'crash', message });
      live.pending = undefined;
      if (this.live === live) this.live = undefined;
      this.cleanUp(live);
    };
    worker.on('message', (m: AnswerMessage | { ready: string }) => {
      if ('ready' in m) {
        live.base = m.ready;
        greet();
        return;
      }
      live.pending?.(m.outcome);
      live.pending = undefined;
    });
    worker.on('error', (error: Error & { code?: string }) => end(`${error.code ?? error.name}: ${error.message}`));
    worker.on('exit', (code) => end(`the thread exited with ${code}`));
    return live;
  }

  private cleanUp(live: Live): void {
    if (live.base) rmSync(live.base, { recursive: true, force: true });
    live.base = undefined;
  }

  /** Runs one case; resolves with what it ended with and how long it took. */
  async run(job: Job, deadlineMs: number): Promise<{ outcome: Outcome; ms: number }> {
    this.live ??= this.start();
    const live = this.live;
    let startTimer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        live.ready,
        new Promise((_, reject) => {
          startTimer = setTimeout(() => reject(new Error('the case worker did not start in time')), START_DEADLINE_MS);
        }),
      ]);
    } finally {
      clearTimeout(startTimer);
    }
    const started = performance.now();
    const outcome = await new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => {
        live.pending = undefined;
        if (this.live === live) this.live = undefined;
        void live.worker.terminate().then(() => this.cleanUp(live));
        resolve({ kind: 'hang', ms: performance.now() - started });
      }, deadlineMs);
      live.pending = (o) => {
        clearTimeout(timer);
        resolve(o);
      };
      live.worker.postMessage({ id: this.nextId++, job } satisfies JobMessage);
    });
    return { outcome, ms: performance.now() - started };
  }

  async close(): Promise<void> {
    const live = this.live;
    this.live = undefined;
    if (!live) return;
    live.pending = undefined;
    await live.worker.terminate();
    this.cleanUp(live);
  }
}

/** An outcome in a line, for failure reports. */
export function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'ok':
      return `ok: ${o.summary}`;
    case 'error':
      return `${o.code}: ${o.message.slice(0, 300)} (${o.problemCodes.length} problems, ${o.printedBytes} bytes as printed)`;
    case 'threw':
      return `${o.name}: ${o.message}\n${o.stack}`;
    case 'hang':
      return `no answer after ${Math.round(o.ms)} ms`;
    case 'crash':
      return o.message;
  }
}

/** One in-process case: what to run, and how a report names it and shows its input. */
export interface InProcessCase {
  readonly job: Job;
  readonly label: string;
  readonly input: string | Uint8Array;
}

/**
 * Runs `count` cases one at a time (`next(i)` makes case i when its turn comes, so that
 * only one big input exists at a time) and records each in `findings`; stops after too
 * many hangs.
 */
export async function runInProcess(
  runner: CaseRunner,
  findings: Findings,
  count: number,
  next: (index: number) => InProcessCase,
): Promise<void> {
  for (let i = 0; i < count && !findings.tooManyHangs(); i++) {
    const c = next(i);
    const { outcome, ms } = await runner.run(c.job, CASE_DEADLINE_MS);
    findings.record(
      i,
      c.label,
      ms,
      judgeOutcome(outcome),
      () => `input ${preview(c.input)}\n→ ${describeOutcome(outcome)}`,
    );
  }
}
