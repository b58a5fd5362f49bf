// The child flow of nightly_load: extract one region's rows, check them, load them.
// A subflow task's output is the child run's result: the outputs of its last tasks (here
// `load`), keyed by task id. It also runs on its own:
// Run it from this folder: npx baton run load_region --param region=eu
import { defineFlow } from 'baton-orchestrator';

const ROWS: Record<string, number> = { eu: 1200, us: 3400, apac: 900 };

const flow = defineFlow({
  name: 'load_region',
  description: 'Extract, check and load the rows of one region.',
  params: { region: { type: 'string' } },
});

const extract = flow.task('extract', ({ params, log }) => {
  const rows = ROWS[params.region];
  if (rows === undefined) {
    throw Object.assign(new Error(`no source for region ${params.region}`), { code: 'VALIDATION' });
  }
  log.info(`${params.region}: ${rows} rows`);
  return { region: params.region, rows };
});

const check = flow.task('check', { inputs: { batch: extract } }, ({ inputs }) => ({
  ok: inputs.batch.rows > 0,
}));

flow.task('load', { inputs: { batch: extract }, after: [check] }, ({ inputs, runId }) => ({
  region: inputs.batch.region,
  loaded: inputs.batch.rows,
  run: runId,
}));

export default flow;
