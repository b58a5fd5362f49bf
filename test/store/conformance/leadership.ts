/**
 * Conformance of the leadership port (src/store/ports/leadership.ts): one holder at a time,
 * and the run leases of a holder that lost it.
 */
import { expect, it } from 'vitest';
import type { LeaderLease } from '../../../src/store/store.js';
import { describePort, sleep } from './shared.js';
import type { StoreFactory } from './shared.js';

export function leadershipConformance(factory: StoreFactory): void {
  describePort(factory, 'leadership', (t) => {
    const { newRun } = t;

    it('gives leadership to one holder at a time, and to another after the lease lapses', async () => {
      const { store } = t;
      const a = await store.acquireLeadership('scheduler', 'A', 60);
      expect(a).toMatchObject({ holder: 'A' });
      expect(await store.acquireLeadership('scheduler', 'B', 60)).toBeNull();
      expect((await store.acquireLeadership('scheduler', 'A', 60))?.epoch).toBe(a?.epoch);
      await new Promise((r) => setTimeout(r, 120));
      const b = await store.acquireLeadership('scheduler', 'B', 10_000);
      expect(b?.epoch).toBe((a?.epoch ?? 0) + 1);
      await store.releaseLeadership(b as NonNullable<typeof b>);
      expect(await store.acquireLeadership('scheduler', 'C', 10_000)).toMatchObject({ holder: 'C' });
    });

    it("ends the previous holder's run leases when another takes the leadership, and no one else's", async () => {
      const { store } = t;
      const mine = await newRun();
      const other = await newRun();
      const a = await store.acquireLeadership('scheduler', 'A', 60);
      expect(await store.claimRun(mine.id, { owner: 'A', leaseMs: 60_000 })).not.toBeNull();
      expect(await store.claimRun(other.id, { owner: 'X', leaseMs: 60_000 })).not.toBeNull();
      // Keeping the leadership ends nothing.
      expect((await store.acquireLeadership('scheduler', 'A', 60))?.epoch).toBe(a?.epoch);
      expect(await store.claimRuns({ owner: 'B', leaseMs: 60_000, limit: 10 })).toEqual([]);
      await new Promise((r) => setTimeout(r, 120));
      expect(await store.acquireLeadership('scheduler', 'B', 60_000)).toMatchObject({ holder: 'B' });
      // A's run is B's to take at once, a minute before its own lease would have lapsed.
      const taken = await store.claimRuns({ owner: 'B', leaseMs: 60_000, limit: 10 });
      expect(taken.map((l) => l.runId)).toEqual([mine.id]);
      expect((await store.getRun(other.id))?.owner).toBe('X');
    });

    it('gives a leadership to exactly one of eight contenders at once, and each epoch to one holder', async () => {
      const contenders = await t.connectMany(8);
      // A first leadership apiece, so that every contender is connected before the race
      // (on PostgreSQL, its session lock is taken).
      await Promise.all(contenders.map((other, i) => other.acquireLeadership(`warm-${i}`, `H${i}`, 10_000)));
      const holdersOf = new Map<number, Set<string>>();
      for (let round = 0; round < 3; round++) {
        const got = await Promise.all(
          contenders.map((other, i) => other.acquireLeadership('scheduler', `H${i}`, 1000)),
        );
        const won = got.filter((lease): lease is LeaderLease => lease !== null);
        expect(won).toHaveLength(1);
        for (const lease of won)
          holdersOf.set(lease.epoch, (holdersOf.get(lease.epoch) ?? new Set()).add(lease.holder));
        // The round's lease lapses: the next round is a race again.
        await sleep(1100);
      }
      for (const holders of holdersOf.values()) expect(holders.size).toBe(1);
    });
  });
}
