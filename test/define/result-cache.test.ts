/**
 * `cache: inputs` of a task, from YAML and from the TypeScript builder: read into the task
 * spec for function, shell and sql tasks, and refused with a DEF_INVALID problem naming the
 * key for any other value or kind.
 */
import { describe, expect, it } from 'vitest';
import { defineFlow } from '../../src/define/builder.js';
import { parseFlowText } from '../../src/define/load-yaml.js';

const KINDS = ['function', 'shell', 'sql'];

const YAML = `name: cached
tasks:
  script:
    run: ./clean.sh
    cache: inputs
  query:
    kind: sql
    cache: inputs
    inputs: { rows: data://lake/in.csv }
    sql: SELECT count(*) FROM rows
  plain:
    run: ./plain.sh
`;

describe('cache: inputs', () => {
  it('is read from YAML into the spec of shell and sql tasks, and absent elsewhere', () => {
    const result = parseFlowText(YAML, { file: 'cached.yaml', kinds: KINDS });
    expect(result.problems).toEqual([]);
    expect(result.spec?.tasks.map((t) => [t.id, t.kind, t.cache])).toEqual([
      ['script', 'shell', 'inputs'],
      ['query', 'sql', 'inputs'],
      ['plain', 'shell', undefined],
    ]);
  });

  it('refuses another value, and a kind whose body it cannot reuse, at the key', () => {
    const bad = `name: cached
tasks:
  script:
    run: ./clean.sh
    cache: always
  pause:
    sleep: 1m
    cache: inputs
`;
    const result = parseFlowText(bad, { file: 'cached.yaml', kinds: KINDS });
    expect(result.problems.map((p) => [p.code, p.location?.path, p.location?.line])).toEqual([
      ['DEF_INVALID', 'tasks.script.cache', 5],
      ['DEF_INVALID', 'tasks.pause.cache', 8],
    ]);
    expect(result.problems[0]?.message).toContain('must be `inputs`');
    expect(result.problems[1]?.message).toContain('only function, shell and sql tasks');
  });

  it("is read from the TypeScript builder (cache: 'inputs')", () => {
    const f = defineFlow({ name: 'cached' });
    f.task('total', { cache: 'inputs' }, async () => 1);
    f.task('plain', {}, async () => 2);
    const spec = f.toSpec('cached.ts');
    expect(spec.tasks.map((t) => [t.id, t.cache])).toEqual([
      ['total', 'inputs'],
      ['plain', undefined],
    ]);
  });

  it('refuses another value from the builder', () => {
    const f = defineFlow({ name: 'cached' });
    // Written as a program could, past the types.
    f.task('total', { cache: 'always' as 'inputs' }, async () => 1);
    expect(() => f.toSpec('cached.ts')).toThrow(/cache must be 'inputs', not "always"/);
  });
});
