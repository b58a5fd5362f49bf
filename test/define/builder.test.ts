import { describe, expect, expectTypeOf, it } from 'vitest';
import { BatonError } from '../../src/core/errors.js';
import { compileGraph } from '../../src/core/graph.js';
import type { MapSpec } from '../../src/core/model.js';
import { compilePlan } from '../../src/core/run-machine.js';
import { templateGraph } from '../../src/core/run-topology.js';
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

describe('the plan of a built flow', () => {
  /** A flow with the cases the builder and the structure check treat apart from plain `after` lists. */
  function mixedFlow() {
    const f = defineFlow({ name: 'mixed' });
    const a = f.task('a', () => [1]);
    const b = f.task('b', { after: [a, 'a', a] }, () => 2);
    f.task('c', { after: [b, 'a'], inputs: { x: a } }, () => 3);
    f.choice('pick', { after: [b], branches: ['big', 'small'] }, () => 'big');
    // Plain `after` lists that the choice then extends with itself.
    f.task('big', { after: [a] }, () => 'big');
    f.task('small', { after: [a, b] }, () => 'small');
    f.race('best', { branches: ['big', 'small'], mode: 'all' }, (output) => String(output).length);
    f.mapGroup('each', { over: a }, (g) => {
      const first = g.task('first', { after: [b] }, () => 0);
      g.task('second', { after: [first, 'first'] }, () => 0);
    });
    const many = Array.from({ length: 20 }, (_, i) => f.task(`m${i}`, { after: [a] }, () => i));
    f.task('join', { after: [...many, ...many, b] }, () => 0);
    return f;
  }

  it('lists each dependency once, with what choices and maps imply, the same at each toSpec', () => {
    const f = mixedFlow();
    const spec = f.toSpec('mixed.ts');
    expect(f.toSpec('mixed.ts')).toEqual(spec);
    const tasks = new Map(spec.tasks.map((t) => [t.id, t]));
    expect(tasks.get('b')?.dependsOn).toEqual(['a']);
    expect(tasks.get('c')?.dependsOn).toEqual(['a', 'b']);
    expect(tasks.get('big')?.dependsOn).toEqual(['a', 'pick']);
    expect(tasks.get('small')?.dependsOn).toEqual(['a', 'b', 'pick']);
    expect(tasks.get('best')?.dependsOn).toEqual(['big', 'small']);
    expect(tasks.get('each')?.dependsOn).toEqual(['a', 'b']);
    expect(tasks.get('each')?.map?.template.map((t) => [t.id, t.dependsOn])).toEqual([
      ['first', []],
      ['second', ['first']],
    ]);
    expect(tasks.get('join')?.dependsOn).toEqual([...Array.from({ length: 20 }, (_, i) => `m${i}`), 'b']);
  });

  it('compiles to the graph that checking it built, the same as one compiled afresh', () => {
    const spec = mixedFlow().toSpec('mixed.ts');
    const plan = compilePlan(spec);
    expect(plan.graph).toBe(compilePlan(spec).graph);
    expect(plan.graph).toEqual(compileGraph([...spec.tasks]));
    const each = spec.tasks.find((t) => t.id === 'each');
    expect(templateGraph(each?.map as MapSpec)).toEqual(compileGraph([...(each?.map?.template ?? [])]));
  });

  it('names where a plain dependency was written when it is wrong', () => {
    const f = defineFlow({ name: 'wrong' });
    const a = f.task('a', () => 1);
    f.task('b', { after: [a, 'nope'] }, () => 2);
    f.task('c', { after: ['c'] }, () => 3);
    expect(() => f.toSpec('wrong.ts')).toThrow(BatonError);
    try {
      f.toSpec('wrong.ts');
    } catch (error) {
      expect((error as BatonError).problems.map((p) => [p.code, p.location?.path])).toEqual([
        ['DEF_UNKNOWN_DEPENDENCY', 'tasks.b.after[1]'],
        ['DEF_CYCLE', 'tasks.c.after[0]'],
      ]);
    }
  });
});
