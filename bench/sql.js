// Group `data`: a `sql` task over a Parquet file of 5,000,000 rows, read through the data
// namespace (a local mount), joined with a small dimension table (CSV), aggregated, and
// written as Parquet through the namespace's atomic write; and the same query run directly
// with DuckDB's Node API, files named by path. Each is run several times and the medians
// are compared. Figures: sql_rows_per_s (input rows per second through Baton),
// sql_peak_rss_mb (the process's largest resident set while Baton's runs went on), and
// sql_overhead_pct ((baton - direct) / direct × 100).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DataNamespace } from '../dist/data/namespace.js';
import { taskDataProvider } from '../dist/data/task-data.js';
import { parseFlowText } from '../dist/define/load-yaml.js';
import { createSqlExecutor } from '../dist/engine/executors/sql.js';

const ROWS = 5_000_000;
const CUSTOMERS = 1000;
const RUNS = 7;

const QUERY = `SELECT c.segment, count(*) AS orders, sum(o.total) AS total, avg(o.total) AS mean
  FROM orders o JOIN customers c ON c.id = o.customer_id
  WHERE o.day >= $from
  GROUP BY c.segment ORDER BY c.segment`;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function makeData(raw) {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  await connection.run(
    `COPY (SELECT i AS id, (i * 7919) % ${CUSTOMERS} AS customer_id, (i % 365)::INTEGER AS day,
             ((i * 31) % 10000) / 100.0 AS total
           FROM range(${ROWS}) t(i))
     TO '${join(raw, 'orders.parquet')}' (FORMAT parquet)`,
  );
  connection.closeSync();
  instance.closeSync();
  const lines = ['id,segment'];
  for (let i = 0; i < CUSTOMERS; i++) lines.push(`${i},segment_${i % 12}`);
  writeFileSync(join(raw, 'customers.csv'), `${lines.join('\n')}\n`);
}

/** The same query with DuckDB alone: fresh database, views over the files, COPY to Parquet. */
async function direct(raw, out) {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await connection.run(`CREATE VIEW orders AS SELECT * FROM read_parquet('${join(raw, 'orders.parquet')}')`);
    await connection.run(`CREATE VIEW customers AS SELECT * FROM read_csv_auto('${join(raw, 'customers.csv')}')`);
    const prepared = await connection.prepare(`COPY (${QUERY}) TO '${out}' (FORMAT parquet)`);
    prepared.bind({ from: 100 });
    await prepared.run();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

export async function sqlTaskBench(report) {
  const root = mkdtempSync(join(tmpdir(), 'baton-bench-sql-'));
  const raw = join(root, 'lake', 'raw');
  mkdirSync(raw, { recursive: true });
  mkdirSync(join(root, 'lake', 'curated'), { recursive: true });
  const namespace = new DataNamespace({
    mounts: { raw: { kind: 'local', path: 'lake/raw' }, curated: { kind: 'local', path: 'lake/curated' } },
    context: { root, env: {} },
  });
  try {
    await makeData(raw);
    const loaded = parseFlowText(
      `name: bench_sql
tasks:
  totals:
    kind: sql
    inputs: { orders: data://raw/orders.parquet, customers: data://raw/customers.csv }
    sql: |
${QUERY.split('\n')
  .map((l) => `      ${l.trim()}`)
  .join('\n')}
    params: { from: 100 }
    output: { to: data://curated/totals.parquet }
`,
      { file: join(root, 'bench.yaml'), kinds: ['function', 'shell', 'sql'] },
    );
    if (!loaded.spec) throw new Error(loaded.problems.map((p) => p.message).join('\n'));
    const task = loaded.spec.tasks[0];
    const executor = createSqlExecutor();
    const provider = taskDataProvider(namespace);
    const attempt = (n) =>
      executor.execute({
        task,
        context: {
          runId: `r${n}`,
          flow: 'bench_sql',
          taskId: 'totals',
          attempt: 1,
          idempotencyKey: `r${n}/totals/0`,
          params: {},
          inputs: {},
          upstream: {},
          signal: new AbortController().signal,
          log: { info() {}, warn() {}, error() {} },
          data: provider({ runId: `r${n}`, taskId: 'totals', attempt: 1 }),
        },
        flowDir: root,
        resolveFunction: () => undefined,
        writeLog: () => undefined,
        killGraceMs: 1000,
        templateScope: { params: {}, tasks: {} },
      });
    // Warm both paths once (DuckDB's binary, the file cache of the OS).
    await attempt(0);
    await direct(raw, join(root, 'direct.parquet'));
    const baton = [];
    const plain = [];
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    try {
      // Interleaved, so that drift of the machine weighs on both alike.
      for (let i = 1; i <= RUNS; i++) {
        let t0 = performance.now();
        const out = await attempt(i);
        baton.push(performance.now() - t0);
        if (out.rows !== 12) throw new Error(`sql bench: expected 12 rows, got ${JSON.stringify(out)}`);
        t0 = performance.now();
        await direct(raw, join(root, 'direct.parquet'));
        plain.push(performance.now() - t0);
      }
    } finally {
      clearInterval(sampler);
    }
    const batonMs = median(baton);
    const directMs = median(plain);
    report('sql_rows_per_s', ROWS / (batonMs / 1000), 'rows/s', 2_000_000, 'higher');
    report('sql_peak_rss_mb', peak / 1024 / 1024, 'MB', 1024, 'lower');
    report('sql_overhead_pct', ((batonMs - directMs) / directMs) * 100, '%', 10, 'lower');
  } finally {
    await namespace.close();
    rmSync(root, { recursive: true, force: true });
  }
}
