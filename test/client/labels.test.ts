/**
 * Run labels through the public client, on a SQLite file and a fresh PostgreSQL database:
 * `start` and `startMany` keep them, `list({ labels })` finds the runs that have every
 * label given, and a bad label is RUN_LABEL_INVALID naming it, with nothing created.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatonError, defineFlow, openClient } from '../../src/index.js';
import type { BatonClient } from '../../src/index.js';
import { createTestDatabase } from '../store/pg-helpers.js';

const report = defineFlow({ name: 'client_labels', params: { day: { type: 'string', default: 'today' } } });
report.task('build', async ({ params }) => ({ day: params.day }));

type Setup = { database: string; cleanup: () => Promise<void> };
const stores: Record<string, () => Promise<Setup>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-client-labels-'));
    return { database: join(dir, 'baton.db'), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  postgres: async () => {
    const db = await createTestDatabase();
    return { database: db.url, cleanup: db.drop };
  },
};

/** What a refused call threw, checked to be a BatonError. */
async function refusal(call: Promise<unknown>): Promise<BatonError> {
  const error = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BatonError);
  return error as BatonError;
}

for (const [storeName, makeStore] of Object.entries(stores)) {
  describe(`run labels through the client on ${storeName}`, () => {
    let setup: Setup;
    let baton: BatonClient;

    beforeEach(async () => {
      setup = await makeStore();
      baton = await openClient({ database: setup.database, flows: [report] });
    });

    afterEach(async () => {
      await baton.close();
      await setup.cleanup();
    });

    it('keeps the labels given to start and startMany, and lists runs by every label given', async () => {
      const prod = await baton.start(report, { day: 'mon' }, { labels: { team: 'growth', env: 'prod' } });
      const plain = await baton.start(report, {});
      const [dev, data] = await baton.startMany([
        { flow: report, labels: { team: 'growth', env: 'dev' } },
        { flow: 'client_labels', params: { day: 'tue' }, labels: { team: 'data', 'example.com/tier': 'gold' } },
      ]);
      expect((await prod.status()).labels).toEqual({ team: 'growth', env: 'prod' });
      expect((await plain.status()).labels).toEqual({});
      expect((await baton.status(data?.id as string)).labels).toEqual({ team: 'data', 'example.com/tier': 'gold' });

      const ids = async (labels: Record<string, string>) => (await baton.list({ labels })).map((r) => r.id).sort();
      expect(await ids({ team: 'growth' })).toEqual([prod.id, dev?.id].sort());
      expect(await ids({ team: 'growth', env: 'dev' })).toEqual([dev?.id]);
      expect(await ids({ 'example.com/tier': 'gold' })).toEqual([data?.id]);
      expect(await ids({ team: 'growth', env: 'staging' })).toEqual([]);
      expect(await ids({})).toHaveLength(4);
      expect((await baton.list({ labels: { team: 'growth' }, state: 'succeeded' })).length).toBe(0);

      // A run found again by its dedupe key keeps the labels it was created with.
      const first = await baton.start(report, {}, { dedupeKey: 'k1', labels: { team: 'growth' } });
      const again = await baton.start(report, {}, { dedupeKey: 'k1', labels: { team: 'other' } });
      expect([again.created, again.id]).toEqual([false, first.id]);
      expect((await again.status()).labels).toEqual({ team: 'growth' });
    });

    it('refuses bad labels with RUN_LABEL_INVALID naming each, and creates nothing', async () => {
      const start = (labels: Record<string, string>) => baton.start(report, {}, { labels });
      const cases: [Record<string, string>, string][] = [
        [{ '': 'x' }, 'a label key is empty'],
        [{ team: '' }, 'label "team": the value is empty'],
        [{ 'team!': 'x' }, 'label "team!": the key must be letters, digits and _ . / -'],
        [{ _team: 'x' }, 'label "_team": the key must be'],
        [{ ['k'.repeat(64)]: 'x' }, 'the key has 64 characters; at most 63 are allowed'],
        [{ team: 'v'.repeat(257) }, 'label "team": the value has 257 characters; at most 256 are allowed'],
        [Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])), '65 labels; at most 64'],
      ];
      for (const [labels, says] of cases) {
        const error = await refusal(start(labels));
        expect(error.code).toBe('RUN_LABEL_INVALID');
        expect(error.message).toContain(says);
      }
      // A value that is not a string, from JavaScript callers without types.
      const notText = await refusal(start({ n: 3 } as unknown as Record<string, string>));
      expect(notText.message).toContain('label "n": the value must be a string, not number');
      // One bad input of startMany creates none, and says which it is.
      const many = await refusal(
        baton.startMany([
          { flow: report, labels: { team: 'growth' } },
          { flow: report, labels: { team: 'growth', 'bad key': 'x' } },
        ]),
      );
      expect(many.code).toBe('RUN_LABEL_INVALID');
      expect(many.message).toContain('run 1 of 2');
      expect(many.message).toContain('label "bad key"');
      expect(await baton.list({})).toEqual([]);
      // A filter is held to the same rules.
      expect((await refusal(baton.list({ labels: { 'a b': 'c' } }))).code).toBe('RUN_LABEL_INVALID');
      // The limits themselves are accepted.
      const edge = await start({
        ['k'.repeat(63)]: 'v'.repeat(256),
        ...Object.fromEntries(Array.from({ length: 63 }, (_, i) => [`k${i}`, 'v'])),
      });
      expect(Object.keys((await edge.status()).labels)).toHaveLength(64);
    });
  });
}
