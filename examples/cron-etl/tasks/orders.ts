// Function tasks of the daily_orders flow. `inputs` holds each task's rendered `with:`
// values: here the run's data interval, which the cron trigger fills in.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttemptContext } from 'baton-orchestrator';

export interface Order {
  readonly id: string;
  readonly at: string;
  readonly amount: number;
}

const HOUR_MS = 3_600_000;
const WAREHOUSE = join(dirname(fileURLToPath(import.meta.url)), '..', 'warehouse');

/** The run's data interval, or a clear error for a run started by hand without one. */
function interval(inputs: AttemptContext['inputs']): { start: number; end: number } {
  const start = Date.parse(String(inputs.start));
  const end = Date.parse(String(inputs.end));
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) {
    throw Object.assign(
      new Error(
        `no data interval (interval_start "${String(inputs.start)}", interval_end "${String(inputs.end)}"): ` +
          'let the cron trigger start the run, or pass --param interval_start=<ISO> --param interval_end=<ISO>',
      ),
      { code: 'VALIDATION' },
    );
  }
  return { start, end };
}

/** Reads the orders placed in [start, end): a stand-in source with one order per hour. */
export async function extract({ inputs, log }: AttemptContext): Promise<Order[]> {
  const { start, end } = interval(inputs);
  const orders: Order[] = [];
  for (let t = start; t < end; t += HOUR_MS) {
    const at = new Date(t).toISOString();
    orders.push({ id: `o-${at}`, at, amount: 10 + (new Date(t).getUTCHours() % 5) });
  }
  log.info(`${orders.length} orders between ${new Date(start).toISOString()} and ${new Date(end).toISOString()}`);
  return orders;
}

/**
 * Writes the interval's orders to warehouse/orders_<interval start>.json, atomically (write
 * aside, then rename), so that a retried or re-run load replaces the file whole.
 */
export async function load({ inputs, idempotencyKey }: AttemptContext): Promise<{ file: string; count: number }> {
  const { start, end } = interval(inputs);
  const orders = inputs.orders as Order[];
  const name = `orders_${new Date(start).toISOString().slice(0, 13)}.json`;
  const file = join(WAREHOUSE, name);
  await mkdir(WAREHOUSE, { recursive: true });
  const aside = `${file}.${idempotencyKey.replace(/\W/g, '_')}.tmp`;
  const total = orders.reduce((sum, o) => sum + o.amount, 0);
  const body = {
    interval_start: new Date(start).toISOString(),
    interval_end: new Date(end).toISOString(),
    total,
    orders,
  };
  await writeFile(aside, `${JSON.stringify(body, null, 2)}\n`);
  await rename(aside, file);
  return { file: `warehouse/${name}`, count: orders.length };
}
