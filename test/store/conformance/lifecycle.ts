/**
 * Conformance of the lifecycle port (src/store/ports/lifecycle.ts).
 */
import { expect, it } from 'vitest';
import { describePort } from './shared.js';
import type { StoreFactory } from './shared.js';

export function lifecycleConformance(factory: StoreFactory): void {
  describePort(factory, 'lifecycle', (t) => {
    it('reads the database clock', async () => {
      const { store } = t;
      const before = Date.now();
      const now = await store.now();
      expect(Math.abs(now - before)).toBeLessThan(5000);
    });
  });
}
