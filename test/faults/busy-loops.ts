/**
 * Global setup of the fault suite: load on the machine while it runs. CI machines are
 * shared and busy, and the fault tests must hold there too; so the suite starts
 * `FAULTS_BUSY_LOOPS` processes (default 2, 0 for none) that do nothing but spin the CPU,
 * beside every scheduler, worker and CLI process of the tests, and ends them with the suite.
 *
 * Invariants
 * - Every spinner ends when the suite does: at teardown (passed or failed), when the vitest
 *   process exits, and, should that process be killed outright, by itself, when the end of
 *   its stdin (a pipe from the vitest process) tells it so.
 * - A spinner only spins the CPU: no IO but that pipe, no timers, no memory growth.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';

/** The variable that sets how many spinners run; documented in docs/deploy.md. */
export const BUSY_LOOPS_VARIABLE = 'FAULTS_BUSY_LOOPS';
const DEFAULT_BUSY_LOOPS = 2;
/** Far more than any CI machine has cores: a typo such as 200 would stall the machine. */
const MAX_BUSY_LOOPS = 16;

// The spinner gives its event loop a turn every 50 ms, to hear that its stdin (a pipe from
// this process) has closed: the kernel closes it when this process ends in any way, even
// SIGKILL. (process.ppid cannot tell: Node reads it once and keeps the value.)
const SPIN = [
  'const quit = () => process.exit(0);',
  "process.stdin.on('end', quit).on('close', quit).on('error', quit).resume();",
  'const spin = () => { const until = Date.now() + 50; while (Date.now() < until); setImmediate(spin); };',
  'spin();',
].join(' ');

/** How many spinners `env` asks for; throws on anything but an integer 0..MAX_BUSY_LOOPS. */
export function busyLoopCount(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[BUSY_LOOPS_VARIABLE];
  if (text === undefined || text.trim() === '') return DEFAULT_BUSY_LOOPS;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > MAX_BUSY_LOOPS) {
    throw new Error(`${BUSY_LOOPS_VARIABLE} must be an integer from 0 to ${MAX_BUSY_LOOPS}, got "${text}"`);
  }
  return n;
}

/** Waits until `child` has exited, SIGKILLing it first; bounded, since teardown must end. */
function end(child: ChildProcess): Promise<void> {
  child.stdin?.destroy();
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const bound = setTimeout(resolve, 5000);
    child.once('exit', () => {
      clearTimeout(bound);
      resolve();
    });
    child.kill('SIGKILL');
  });
}

/** Starts the spinners; returns the teardown that ends them. */
export default function setup(): () => Promise<void> {
  const count = busyLoopCount();
  const spinners: ChildProcess[] = [];
  // Synchronous, so that it also runs when vitest leaves through process.exit.
  const killAll = () => {
    for (const c of spinners) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.once('exit', killAll);
  for (let i = 0; i < count; i++) {
    const child = spawn(process.execPath, ['-e', SPIN], { stdio: ['pipe', 'ignore', 'ignore'] });
    // The pipe is only there to close when this process ends.
    child.stdin?.on('error', () => undefined);
    // An error here (spawn failed) must not crash the suite: it runs with less load.
    child.on('error', (error) => console.log(`fault suite: a busy loop failed: ${error.message}`));
    spinners.push(child);
  }
  if (count > 0) {
    console.log(
      `fault suite: ${count} busy loop(s) spinning beside the tests (pids ${spinners.map((c) => c.pid).join(', ')}); ${BUSY_LOOPS_VARIABLE}=0 turns them off`,
    );
  }
  return async () => {
    process.removeListener('exit', killAll);
    await Promise.all(spinners.map(end));
  };
}
