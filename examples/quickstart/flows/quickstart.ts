// Quick start: extract → transform → load, with a flaky step that Baton retries.
// Run it: npx baton run examples/quickstart/flows/quickstart.ts --param day=2024-03-01
import { defineFlow } from 'baton-orchestrator';

const flow = defineFlow({
  name: 'quickstart',
  params: { day: { type: 'string', default: '2024-01-01' } },
  defaults: { retry: { maxAttempts: 3, backoff: '200ms', maxBackoff: '2s' }, timeout: '1m' },
});

const extract = flow.task('extract', async ({ params, log }) => {
  log.info(`extracting orders of ${params.day}`);
  return [
    { id: 1, amount: 120 },
    { id: 2, amount: 80 },
    { id: 3, amount: 45 },
  ];
});

// Fails on its first attempt, as a call to a rate-limited API might: the retry policy
// (3 attempts, exponential backoff with full jitter) brings it through.
const enrich = flow.task('enrich', { inputs: { orders: extract } }, async ({ inputs, attempt }) => {
  if (attempt === 1) throw new Error('currency API answered 503, try again');
  return inputs.orders.map((o) => ({ ...o, eur: Math.round(o.amount * 0.92 * 100) / 100 }));
});

const transform = flow.task('transform', { inputs: { orders: enrich } }, async ({ inputs }) => ({
  count: inputs.orders.length,
  total_eur: inputs.orders.reduce((sum, o) => sum + o.eur, 0),
}));

flow.shell('load', {
  after: [transform],
  command: ['sh', '-c', 'echo "loaded run $BATON_RUN_ID into the warehouse"'],
});

export default flow;
