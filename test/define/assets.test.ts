/**
 * `produces:` and `consumes:` of a task, from YAML and from the TypeScript builder: read
 * into the same asset declarations, and every mistake reported at load time as a
 * DEF_INVALID problem naming the file, line and key, all at once.
 */
import { describe, expect, it } from 'vitest';
import { BatonError } from '../../src/core/errors.js';
import { defineFlow } from '../../src/define/builder.js';
import { parseFlowText } from '../../src/define/load-yaml.js';

const YAML = `name: orders
tasks:
  clean_orders:
    run: ./clean.sh
    produces:
      - asset: orders_clean
        path: data://curated/orders.parquet
        checks:
          - { not_null: [order_id, customer_id] }
          - { unique: [order_id] }
          - { accepted_values: { column: status, values: [open, shipped, cancelled] } }
          - { range: { column: total, min: 0, max: 100000 } }
          - { row_count: { min: 1, max: 10000000 } }
          - { freshness: { column: updated_at, max_age: 1d } }
          - { schema: { order_id: BIGINT, total: DOUBLE } }
          - { references: { column: customer_id, asset: customers, column_in_asset: id } }
          - { sql: "SELECT * FROM asset WHERE total < 0", name: no_negative_totals }
          - { unique: [email], severity: warn }
    consumes: [orders_raw]
`;

describe('asset declarations in YAML', () => {
  it('reads every check type into the task spec', () => {
    const result = parseFlowText(YAML, { file: 'orders.yaml' });
    expect(result.problems).toEqual([]);
    const task = result.spec?.tasks[0];
    expect(task?.consumes).toEqual(['orders_raw']);
    expect(task?.produces?.[0]?.key).toBe('orders_clean');
    expect(task?.produces?.[0]?.checks).toEqual([
      {
        kind: 'not_null',
        columns: ['order_id', 'customer_id'],
        name: 'not_null(order_id,customer_id)',
        severity: 'error',
      },
      { kind: 'unique', columns: ['order_id'], name: 'unique(order_id)', severity: 'error' },
      {
        kind: 'accepted_values',
        column: 'status',
        values: ['open', 'shipped', 'cancelled'],
        name: 'accepted_values(status)',
        severity: 'error',
      },
      { kind: 'range', column: 'total', min: 0, max: 100000, name: 'range(total)', severity: 'error' },
      { kind: 'row_count', min: 1, max: 10000000, name: 'row_count', severity: 'error' },
      {
        kind: 'freshness',
        column: 'updated_at',
        maxAgeMs: 86_400_000,
        name: 'freshness(updated_at)',
        severity: 'error',
      },
      { kind: 'schema', columns: { order_id: 'BIGINT', total: 'DOUBLE' }, name: 'schema', severity: 'error' },
      {
        kind: 'references',
        column: 'customer_id',
        asset: 'customers',
        columnInAsset: 'id',
        name: 'references(customer_id)',
        severity: 'error',
      },
      { kind: 'sql', sql: 'SELECT * FROM asset WHERE total < 0', name: 'no_negative_totals', severity: 'error' },
      { kind: 'unique', columns: ['email'], name: 'unique(email)', severity: 'warn' },
    ]);
  });

  it('reports an unknown check, a bad severity, a path that is no data path and more, with file and line, at once', () => {
    const bad = YAML.replace('{ unique: [order_id] }', '{ uniq: [order_id] }')
      .replace('severity: warn', 'severity: fatal')
      .replace('path: data://curated/orders.parquet', 'path: /srv/orders.parquet')
      .replace('max_age: 1d', 'max_age: soon')
      .replace('consumes: [orders_raw]', 'consumes: [orders_raw, "bad key!"]');
    const result = parseFlowText(bad, { file: 'orders.yaml' });
    expect(
      result.problems.map((p) => [
        p.code,
        p.location?.line,
        p.location?.path,
        p.message.split(': ').slice(1).join(': '),
      ]),
    ).toEqual([
      [
        'DEF_INVALID',
        7,
        'tasks.clean_orders.produces[0].path',
        '"/srv/orders.parquet" is not a data path: it must start with data://',
      ],
      [
        'DEF_INVALID',
        10,
        'tasks.clean_orders.produces[0].checks[1].uniq',
        'unknown check type "uniq" (did you mean "unique"?)',
      ],
      [
        'DEF_INVALID',
        14,
        'tasks.clean_orders.produces[0].checks[5].freshness.max_age',
        'must be a duration such as 90m or 1d, got "soon"',
      ],
      ['DEF_INVALID', 18, 'tasks.clean_orders.produces[0].checks[9].severity', 'must be error or warn, got "fatal"'],
      [
        'DEF_INVALID',
        19,
        'tasks.clean_orders.consumes[1]',
        'must be an asset key: letters, digits and _ - . / (starting with a letter, digit or _), got "bad key!"',
      ],
    ]);
  });

  it('refuses two checks of one name and an asset declared twice', () => {
    const twice = `name: t
tasks:
  a:
    run: ./a.sh
    produces:
      - asset: x
        path: data://m/x.csv
        checks: [{ unique: [id] }, { unique: id }]
      - asset: x
        path: data://m/y.csv
`;
    const result = parseFlowText(twice, { file: 't.yaml' });
    expect(result.problems.map((p) => p.message)).toEqual([
      'tasks.a.produces[0].checks[1]: a second check is named unique(id)',
      'tasks.a.produces[1].asset: asset x is declared twice in this task',
    ]);
  });
});

describe('asset declarations in TypeScript', () => {
  it('reads the same declarations as YAML', () => {
    const f = defineFlow({ name: 'orders' });
    f.task(
      'clean_orders',
      {
        produces: [
          {
            asset: 'orders_clean',
            path: 'data://curated/orders.parquet',
            checks: [{ not_null: ['order_id'] }, { unique: ['email'], severity: 'warn' }],
          },
        ],
        consumes: ['orders_raw'],
      },
      async () => null,
    );
    const task = f.toSpec('orders.ts').tasks[0];
    expect(task?.produces).toEqual([
      {
        key: 'orders_clean',
        path: 'data://curated/orders.parquet',
        checks: [
          { kind: 'not_null', columns: ['order_id'], name: 'not_null(order_id)', severity: 'error' },
          { kind: 'unique', columns: ['email'], name: 'unique(email)', severity: 'warn' },
        ],
      },
    ]);
    expect(task?.consumes).toEqual(['orders_raw']);
  });

  it('reports a bad declaration where it was written', () => {
    const f = defineFlow({ name: 'orders' });
    f.task(
      'clean_orders',
      // Written as a program could, past the types: the checks are made at definition.
      { produces: [{ asset: 'orders_clean', path: 'curated/orders.parquet', checks: [{ nope: 1 } as never] }] },
      async () => null,
    );
    let error: unknown;
    try {
      f.toSpec('orders.ts');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BatonError);
    expect((error as BatonError).problems.map((p) => [p.code, p.location?.path])).toEqual([
      ['DEF_INVALID', 'tasks.clean_orders.produces[0].path'],
      ['DEF_INVALID', 'tasks.clean_orders.produces[0].checks[0].nope'],
    ]);
  });
});
