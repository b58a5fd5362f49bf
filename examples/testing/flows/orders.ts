// An order pipeline, tested in test/orders.test.ts with baton-orchestrator/testing: a map with retries
// on a transient error, a choice and its join, a failure handler that recovers, and a
// finally task.
// Run it from this folder: npx baton run orders
import { defineFlow } from 'baton-orchestrator';

export interface Line {
  readonly sku: string;
  readonly qty: number;
}

const PRICES: Readonly<Record<string, number>> = { 'A-1': 12.5, 'B-2': 40, 'C-3': 7.25, 'D-4': 99 };

const flow = defineFlow({
  name: 'orders',
  description: 'Price the lines of an order, route it, label it, release the stock.',
  params: {
    order_id: { type: 'string', default: 'o-1' },
    lines: {
      type: 'array',
      default: [
        { sku: 'A-1', qty: 2 },
        { sku: 'B-2', qty: 1 },
      ],
    },
    express_from: { type: 'number', default: 100, description: 'orders of this total or more ship express' },
    flaky_pricing: { type: 'boolean', default: false, description: 'the pricing service fails every first call' },
    printer_online: { type: 'boolean', default: true },
  },
});

const lines = flow.task('lines', ({ params }) => params.lines as Line[]);

// One instance per line, two at a time. A `transient` error (the kind thrown below) is
// retried after 30 s; an unknown SKU is a `validation` error, never retried.
const priced = flow.map(
  'price',
  {
    over: lines,
    maxParallel: 2,
    retry: { maxAttempts: 3, backoff: '30s', maxBackoff: '5m', jitter: 'none', retryOn: ['transient'] },
  },
  ({ item, attempt, params }) => {
    const unit = PRICES[item.sku];
    if (unit === undefined) {
      throw Object.assign(new Error(`unknown SKU ${item.sku}`), { code: 'UNKNOWN_SKU', kind: 'validation' });
    }
    if (params.flaky_pricing && attempt === 1) {
      throw Object.assign(new Error('pricing service answered 503'), { code: 'HTTP_503', kind: 'transient' });
    }
    return { sku: item.sku, qty: item.qty, amount: unit * item.qty };
  },
);

const total = flow.task('total', { inputs: { priced } }, ({ inputs }) =>
  inputs.priced.reduce((sum, line) => sum + line.amount, 0),
);

// A choice by function: it returns the branch to run; the other is skipped.
flow.choice('route', { after: [total], branches: ['express', 'standard'] }, ({ upstream, params }) =>
  (upstream.total as number) >= params.express_from ? 'express' : 'standard',
);
flow.task('express', () => ({ carrier: 'courier', days: 1 }));
flow.task('standard', () => ({ carrier: 'post', days: 3 }));

// The join: runs after whichever branch ran (the other was skipped, not failed).
const shipping = flow.task(
  'shipping',
  { after: ['express', 'standard'], triggerRule: 'none_failed_min_one_success' },
  ({ upstream }) => upstream.express ?? upstream.standard,
);

// The printer may be offline: the handler writes the label by hand, and with recover its
// output stands for the label's.
flow.task(
  'label',
  {
    inputs: { shipping },
    onFailure: {
      on: ['PRINTER_OFFLINE'],
      recover: true,
      run: ({ error }) => ({ printed: false, handwritten: true, reason: error.code }),
    },
  },
  ({ params }) => {
    if (!params.printer_online) throw Object.assign(new Error('label printer offline'), { code: 'PRINTER_OFFLINE' });
    return { printed: true, handwritten: false };
  },
);

// Runs last, however the run ends: after a success, a failure or a cancel.
flow.task('release_stock', { finally: true }, ({ params }) => ({ released: params.order_id }));

export default flow;
