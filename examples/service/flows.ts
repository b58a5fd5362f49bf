/**
 * The flow the service runs, defined in code and registered with the client: no flow file
 * and no project folder are needed.
 */
import { defineFlow } from 'baton-orchestrator';

export const quote = defineFlow({
  name: 'quote',
  params: {
    sku: { type: 'string' },
    quantity: { type: 'integer', default: 1 },
  },
});

const price = quote.task('price', async ({ params }) => {
  // Stands for a call to a pricing service; a thrown error would be retried.
  const unit = params.sku.startsWith('pro-') ? 25 : 10;
  return { unit, subtotal: unit * params.quantity };
});

/** The task whose output is the quote: `start(quote, …, { output: total })` types the result by it. */
export const total = quote.task('total', { inputs: { price } }, async ({ inputs, params }) => ({
  sku: params.sku,
  quantity: params.quantity,
  total: Math.round(inputs.price.subtotal * 1.2 * 100) / 100,
}));
