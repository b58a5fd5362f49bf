/**
 * Crash injection for the crash test: `BATON_CRASH_AT=<point>:<n>` kills this process
 * with SIGKILL the n-th time the engine passes the named point (after_claim, after_body,
 * mid_commit, retry_timer; after_emit in the stream trigger sources). Read once, when the
 * app is wired; inert when unset.
 */
import type { CrashPointName, EngineFaults } from './engine.js';

export function crashPointsFromEnv(env: NodeJS.ProcessEnv): EngineFaults | undefined {
  const spec = env.BATON_CRASH_AT;
  if (!spec) return undefined;
  const [name, countText] = spec.split(':');
  const target = Number(countText ?? '1');
  let seen = 0;
  return {
    crashPoint(point: CrashPointName) {
      if (point !== name) return;
      seen++;
      if (seen >= target) process.kill(process.pid, 'SIGKILL');
    },
  };
}
