/**
 * A flow's version is the short sha256 of `JSON.stringify(spec)` and its sources: the
 * catalog feeds the hash that text in pieces, and must give the very same version, since
 * versions already stored pin the runs made from them.
 */
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { flowVersion } from '../../src/app/flow-catalog.js';
import { defineFlow } from '../../src/define/builder.js';
import type { FlowSpec } from '../../src/core/model.js';

function versionOfText(spec: unknown, sources: readonly string[]): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(spec));
  for (const s of sources) h.update('\u0000').update(s);
  return h.digest('hex').slice(0, 12);
}

it('hashes a spec of many tasks as the text of JSON.stringify, byte for byte', () => {
  const f = defineFlow({ name: 'many', params: { day: { type: 'string', default: '2024-01-01' } } });
  let previous = f.task('t0', async (): Promise<unknown> => 'é ünïcode ✓');
  for (let i = 1; i < 300; i++) previous = f.task(`t${i}`, { after: [previous] }, async (): Promise<unknown> => i);
  const spec = f.toSpec('many');
  expect(spec.tasks.length).toBe(300);
  expect(flowVersion(spec, ['src a', 'src b'])).toBe(versionOfText(spec, ['src a', 'src b']));
});

it('hashes keys whose values have no JSON text, holes and number-like keys as JSON.stringify writes them', () => {
  const odd = {
    name: 'odd',
    skipped: undefined,
    fn: () => 1,
    '10': 'ten',
    '2': 'two',
    tasks: [{ id: 'a', note: undefined }, undefined, { id: 'b', nested: { '1': [1, undefined] } }],
    tail: 'ß',
  } as unknown as FlowSpec;
  expect(flowVersion(odd, [])).toBe(versionOfText(odd, []));
});
