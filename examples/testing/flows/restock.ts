// Restocking, tested in test/restock.test.ts: three suppliers are asked to confirm stock
// (a group), two confirmations are enough (k_of_n, the slowest is cancelled), and the
// cheapest of two carrier quotes wins (a race in mode all, scored by a function).
// Run it from this folder: npx baton run restock
import { setTimeout as delay } from 'node:timers/promises';
import { defineFlow } from 'baton-orchestrator';

const flow = defineFlow({
  name: 'restock',
  description: 'Reserve stock once two suppliers confirm; book the cheapest carrier.',
  params: {
    sku: { type: 'string', default: 'A-1' },
    slow: { type: 'array', default: ['west'], description: 'suppliers that take 10 s to answer' },
    out_of_stock: { type: 'array', default: [], description: 'suppliers that have none' },
    carriers_down: { type: 'array', default: [], description: 'carriers that do not quote' },
  },
  groups: { suppliers: { description: 'each supplier confirms it has the stock' } },
});

for (const supplier of ['north', 'east', 'west']) {
  flow.task(`confirm_${supplier}`, { group: 'suppliers' }, async ({ params, signal }) => {
    if (params.out_of_stock.includes(supplier)) {
      throw Object.assign(new Error(`${supplier} has no ${params.sku}`), { code: 'OUT_OF_STOCK' });
    }
    // A slow supplier; the signal aborts the wait when the task is cancelled.
    if (params.slow.includes(supplier)) await delay(10_000, undefined, { signal });
    return { supplier, sku: params.sku, qty: 10 };
  });
}

const reserve = flow.task(
  'reserve',
  { after: ['suppliers'], triggerRule: { kOfN: 2, cancelRest: true } },
  ({ upstream }) => ({ confirmed_by: Object.keys(upstream).sort() }),
);

const quote = (carrier: string, price: number) =>
  flow.task(`quote_${carrier}`, { after: [reserve] }, ({ params }) => {
    if (params.carriers_down.includes(carrier)) throw new Error(`${carrier} did not answer`);
    return { carrier, price };
  });
const dhl = quote('dhl', 18.5);
const ups = quote('ups', 16.0);

// Mode all: wait for both quotes; the score function ranks the successes, highest first.
flow.race('best_quote', { branches: [dhl, ups], mode: 'all' }, (q) => -q.price);

export default flow;
