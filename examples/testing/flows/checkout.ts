// A checkout that waits: for the payment event of its order (up to 2 h), for dana to
// approve the shipment (up to a day), then 15 minutes to let a customer cancel. Tested in
// test/checkout.test.ts, where the virtual clock makes the waits take no time.
// Run it from this folder: npx baton run checkout --param order_id=o-7
//   then: npx baton signal <run> payment.received --key o-7 --data '{"amount": 80}'
//         npx baton approve <run> review --by dana
import { defineFlow } from 'baton-orchestrator';

const flow = defineFlow({
  name: 'checkout',
  description: 'Wait for the payment and an approval, let the order cool off, ship it.',
  params: { order_id: { type: 'string', default: 'o-1' } },
});

const payment = flow.waitForEvent('payment', {
  event: 'payment.received',
  match: '${{ params.order_id }}',
  timeout: '2h',
});

const review = flow.approval('review', {
  after: [payment],
  message: 'Ship order ${{ params.order_id }}?',
  approvers: ['dana'],
  timeout: '1d',
});

const coolOff = flow.sleep('cool_off', { after: [review], duration: '15m' });

flow.task('ship', { after: [payment, coolOff] }, ({ upstream, params }) => ({
  order: params.order_id,
  paid: (upstream.payment as { amount: number }).amount,
}));

flow.task('notify', { finally: true }, ({ params }) => `checkout of ${params.order_id} ended`);

export default flow;
