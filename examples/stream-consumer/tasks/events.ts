// The function task of the order_events flow: parses the batch of stream entries that the
// redis trigger passed in `params.messages`, rendered into `inputs.messages` by `with:`.
import type { AttemptContext } from 'baton-orchestrator';

/** One element of `messages`: the entry's value (JSON parsed), its stream, id and time. */
interface StreamMessage {
  readonly data: unknown;
  readonly stream: string;
  readonly id: string;
  readonly time: string;
}

interface OrderEvent {
  readonly order: string;
  readonly amount: number;
}

function isOrderEvent(value: unknown): value is OrderEvent {
  const v = value as Partial<OrderEvent> | null;
  return typeof v === 'object' && v !== null && typeof v.order === 'string' && typeof v.amount === 'number';
}

export async function parse({ inputs, log }: AttemptContext) {
  const messages = inputs.messages as StreamMessage[];
  const orders: string[] = [];
  let total = 0;
  for (const m of messages) {
    if (!isOrderEvent(m.data)) {
      // A malformed event is logged and left out; the batch still counts as handled.
      log.warn(`entry ${m.id}: not an order event: ${JSON.stringify(m.data)}`);
      continue;
    }
    orders.push(m.data.order);
    total += m.data.amount;
  }
  log.info(`${messages.length} entries, ${orders.length} order event(s)`);
  return {
    count: orders.length,
    total: Math.round(total * 100) / 100,
    orders,
    first_id: messages[0]?.id ?? null,
    last_id: messages[messages.length - 1]?.id ?? null,
  };
}
