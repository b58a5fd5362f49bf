/**
 * Tests of the month_end flow, a YAML flow tested by its path: one child run of the
 * invoice flow per customer. The kit must know the child flow: pass it in `flows`.
 * Run them from the repository root: npx vitest run examples/testing
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, type TestKit } from 'baton-orchestrator/testing';

const flowFile = (name: string) => fileURLToPath(new URL(`../flows/${name}.yaml`, import.meta.url));

let kit: TestKit | undefined;

afterEach(async () => {
  await kit?.close();
  kit = undefined;
});

describe('month_end', () => {
  it('subflow: one child run per customer, linked to its parent; the output is each child result', async () => {
    kit = await createTestKit({ flows: [flowFile('invoice')] });
    const run = await kit.run(flowFile('month_end'), { params: { customers: ['acme', 'globex'] } });
    expect(await run.settle()).toBe('succeeded');

    const children = await run.children();
    expect(children).toHaveLength(2);
    for (const child of children) await child.refresh();
    expect(children.map((c) => c.state)).toEqual(['succeeded', 'succeeded']);
    // A subflow task's output: the outputs of the child's last tasks, by task id.
    expect(run.task('invoices').output).toEqual([
      { send: { sent_to: 'acme', amount: 400 } },
      { send: { sent_to: 'globex', amount: 600 } },
    ]);
  });

  it('subflow: a failed child fails its item with SUBFLOW_FAILED; the retry starts a new child', async () => {
    kit = await createTestKit({ flows: [flowFile('invoice')] });
    const run = await kit.run(flowFile('month_end'), { params: { customers: ['acme', 'initech'] } });
    expect(await run.settle()).toBe('failed');
    expect(run.task('invoices[1]')).toMatchObject({ state: 'failed', attempts: 2, error: { code: 'SUBFLOW_FAILED' } });
    expect(run.task('invoices').error).toMatchObject({ code: 'MAP_ITEM_FAILED' });
    // acme's child, and one child per attempt of initech's item.
    expect(await run.children()).toHaveLength(3);
  });
});
