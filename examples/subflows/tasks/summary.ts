// The last task of nightly_load: totals what the child runs loaded. Each item of
// `children` is one child run's result: { load: <output of its load task> }.
interface Loaded {
  load: { region: string; loaded: number; run: string };
}

export async function summarize({ inputs, log }: { inputs: { children: Loaded[] }; log: { info(m: string): void } }) {
  const rows = inputs.children.reduce((sum, child) => sum + child.load.loaded, 0);
  log.info(`${inputs.children.length} regions, ${rows} rows`);
  return {
    regions: inputs.children.map((child) => child.load.region),
    rows,
    child_runs: inputs.children.map((child) => child.load.run),
  };
}
