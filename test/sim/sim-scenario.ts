/**
 * What a simulation runs: a seeded flow (and the signals the outside world sends to its
 * run), and the fault injected at one commit. Everything here is a function of the seed.
 */
import type { FlowSpec } from '../../src/core/model.js';
import { parseFlowText } from '../../src/define/load-yaml.js';

/** Where virtual time starts in every simulation. */
export const SIM_START = Date.UTC(2030, 0, 1);

/** The test file that runs each mode, for the replay line of a failure. */
export const REPLAY_FILE = {
  local: 'npx vitest run test/sim/crash-points.test.ts',
  dispatch: 'npx vitest run test/sim/dispatch.test.ts',
} as const;

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same simulation. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}

function between(rng: () => number, low: number, high: number): number {
  return low + Math.floor(rng() * (high - low + 1));
}

/** A signal the simulated outside world sends to the run, at a virtual time. */
export interface PlannedSignal {
  readonly event: string;
  readonly at: number;
}

/** One seeded flow and the signals the outside world sends to its run. */
export interface Scenario {
  readonly seed: number;
  readonly yaml: string;
  readonly spec: FlowSpec;
  readonly signals: readonly PlannedSignal[];
}

/**
 * A seeded flow of 4-8 tasks: `sim` tasks that fail a planned number of times and retry
 * after a backoff (or always fail), sleeps, wait_until, and waits for events with a timeout
 * (signalled before or after it, or never), joined with all_success or all_done; some
 * flows have a deadline.
 */
export function scenario(seed: number): Scenario {
  const rng = prng(seed);
  const count = between(rng, 4, 8);
  const lines: string[] = [`name: sim_${seed}`];
  // A run deadline, off the whole second so that no other timer is due at the same instant.
  if (rng() < 0.35) lines.push(`timeout: ${between(rng, 3, 8) * 3_600_000 + 13}`);
  lines.push('tasks:');
  const signals: PlannedSignal[] = [];
  for (let i = 0; i < count; i++) {
    const id = `t${i}`;
    lines.push(`  - id: ${id}`);
    const deps =
      i === 0 ? [] : [...new Set([between(rng, 0, i - 1), between(rng, 0, i - 1)])].slice(0, between(rng, 1, 2));
    // The first task is always a body, so that every flow has effects to order.
    const kind = i === 0 ? 'sim' : pick(rng, ['sim', 'sim', 'sleep', 'wait_until', 'event']);
    if (kind === 'sim') {
      const fail = pick(rng, [0, 0, 0, 1, 2, 99]);
      lines.push('    kind: sim', `    with: { fail: ${fail} }`);
      lines.push(
        `    retry: { max_attempts: 3, backoff: ${pick(rng, ['1s', '30s', '5m', '1h'])}, max_backoff: 2h, jitter: none }`,
      );
    } else if (kind === 'sleep') {
      lines.push(`    sleep: ${pick(rng, ['1s', '90s', '20m', '3h'])}`);
    } else if (kind === 'wait_until') {
      lines.push(`    wait_until: '${new Date(SIM_START + between(rng, 0, 4 * 3600) * 1000).toISOString()}'`);
    } else {
      const event = `ev${i}`;
      lines.push(`    wait_for_event: { event: ${event}, timeout: ${pick(rng, ['10m', '1h', '4h'])} }`);
      // Never on the instant of a timeout or a retry (whole seconds): the order stays certain.
      if (rng() < 0.7) signals.push({ event, at: SIM_START + between(rng, 1, 3 * 3600) * 1000 + 7 });
    }
    if (deps.length > 0) lines.push(`    depends_on: [${deps.map((d) => `t${d}`).join(', ')}]`);
    if (i > 0 && rng() < 0.5) lines.push('    trigger_rule: all_done');
  }
  const yaml = `${lines.join('\n')}\n`;
  const parsed = parseFlowText(yaml, { file: `sim_${seed}.yaml`, kinds: ['sim', 'function'] });
  if (!parsed.spec)
    throw new Error(`seed ${seed}: generated flow does not load: ${JSON.stringify(parsed.problems)}\n${yaml}`);
  return { seed, yaml, spec: parsed.spec, signals };
}

/**
 * What happens at one commit (counted from 0 across every engine of a simulation):
 * `fail` the commit throws and nothing is written; `crash_before` the engine dies and the
 * commit is not written; `crash_after` the commit is written and the engine dies before it
 * hears back; `freeze_after` the commit is written and the engine pauses, to wake up as a
 * zombie once another engine took the run over.
 */
export type FaultKind = 'fail' | 'crash_before' | 'crash_after' | 'freeze_after';
export const FAULT_KINDS: readonly FaultKind[] = ['fail', 'crash_before', 'crash_after', 'freeze_after'];

/** One fault of a simulation: its kind, at the commit with this index. */
export interface Fault {
  readonly at: number;
  readonly kind: FaultKind;
}

/** `crash_after@3`, as SIM_FAULT takes it; `none` for no fault. */
export function describeFault(fault: Fault | null): string {
  return fault ? `${fault.kind}@${fault.at}` : 'none';
}

/** `SIM_FAULT=crash_after@3` → that fault. */
export function parseFault(text: string): Fault {
  const [kind, at] = text.split('@');
  if (!FAULT_KINDS.includes(kind as FaultKind) || !/^\d+$/.test(at ?? '')) {
    throw new Error(`SIM_FAULT: expected <${FAULT_KINDS.join('|')}>@<commit index>, got ${text}`);
  }
  return { kind: kind as FaultKind, at: Number(at) };
}
