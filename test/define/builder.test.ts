import { describe, expect, expectTypeOf, it } from 'vitest';
import { BatonError } from '../../src/core/errors.js';
import { defineFlow, isFlowDefinition } from '../../src/define/builder.js';

describe('TypeScript flow builder', () => {
  it('types upstream outputs as task inputs and params from their declarations', () => {
    const f = defineFlow({
      name: 'typed',
      params: { day: { type: 'string', default: 'x' }, n: { type: 'integer', default: 1 } },
    });
    const rows = f.task('rows', async ({ params }) => {
      expectTypeOf(params.day).toEqualTypeOf<string>();
      expectTypeOf(params.n).toEqualTypeOf<number>();
      return [{ id: 1 }];
    });
    const count = f.task('count', { inputs: { rows } }, ({ inputs }) => {
      expectTypeOf(inputs.rows).toEqualTypeOf<{ id: number }[]>();
      return inputs.rows.length;
    });
    expectTypeOf(count).toMatchTypeOf<{ id: string }>();
    expect(isFlowDefinition(f)).toBe(true);
  });

  it('normalizes to the same model as YAML: inputs become templates and edges', () => {
    const f = defineFlow({
      name: 'etl',
      defaults: { retry: { maxAttempts: 3, backoff: '2s', maxBackoff: '1m' }, timeout: '10m' },
      pools: { cpu: 2 },
    });
    const extract = f.shell('extract', { command: ['sh', '-c', 'echo 1'] });
    const transform = f.task(
      'transform',
      { inputs: { raw: extract }, retry: { maxAttempts: 5 }, timeout: '30s', pool: 'cpu' },
      () => 1,
    );
    f.shell('report', { command: ['echo', 'done'], after: [transform], triggerRule: 'all_done' });
    const spec = f.toSpec('etl.ts');
    expect(spec.tasks.map((t) => [t.id, t.kind, t.dependsOn, t.triggerRule])).toEqual([
      ['extract', 'shell', [], 'all_success'],
      ['transform', 'function', ['extract'], 'all_success'],
      ['report', 'shell', ['transform'], 'all_done'],
    ]);
    const t = spec.tasks[1];
    expect(t?.with).toEqual({ raw: '${{ tasks.extract.output }}' });
    expect(t?.retry).toMatchObject({ maxAttempts: 5, backoffMs: 2000, maxBackoffMs: 60_000, jitter: 'full' });
    expect(t?.timeoutMs).toBe(30_000);
    expect(spec.tasks[0]?.timeoutMs).toBe(600_000);
    expect(t?.pool).toBe('cpu');
  });

  it('reports every problem at once: duplicate ids, bad durations, unknown pools, cycles', () => {
    const f = defineFlow({ name: 'bad', params: { n: { type: 'integer', default: 'x' } } });
    const a = f.task('a', { timeout: 'soon', pool: 'gpu' }, () => 1);
    f.task('a', { after: [a], retry: { maxAttempts: 0 } }, () => 2);
    let error: unknown;
    try {
      f.toSpec('bad.ts');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BatonError);
    const messages = (error as BatonError).problems.map((p) => `${p.code} ${p.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^DEF_INVALID params\.n: .*integer/),
        expect.stringMatching(/^DEF_INVALID tasks\.a\.timeout: "soon" is not a duration/),
        expect.stringMatching(/^DEF_INVALID tasks\.a\.pool: pool "gpu" is not declared/),
        expect.stringMatching(/^DEF_INVALID tasks\.a\.retry\.maxAttempts: must be an integer from 1 to 100, got 0/),
        expect.stringMatching(/^DEF_DUPLICATE_TASK tasks\.a: duplicate task id "a"/),
      ]),
    );
  });
});
