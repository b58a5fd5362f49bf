// The function task of the ingest_orders flow: reads the CSV the file trigger passed in
// `params.file` (an absolute path), rendered into `inputs.file` by the task's `with:`.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { AttemptContext } from 'baton-orchestrator';

export async function parse({ inputs, log }: AttemptContext): Promise<{ file: string; rows: number; total: number }> {
  const path = String(inputs.file);
  const [header, ...lines] = (await readFile(path, 'utf8')).split(/\r?\n/).filter((l) => l.trim() !== '');
  const columns = (header ?? '').split(',');
  const amountAt = columns.indexOf('amount');
  if (amountAt < 0) {
    throw Object.assign(new Error(`${basename(path)} has no "amount" column (columns: ${columns.join(', ')})`), {
      code: 'VALIDATION',
    });
  }
  const total = lines.reduce((sum, line) => sum + Number(line.split(',')[amountAt]), 0);
  log.info(`${basename(path)}: ${lines.length} rows`);
  return { file: basename(path), rows: lines.length, total: Math.round(total * 100) / 100 };
}
