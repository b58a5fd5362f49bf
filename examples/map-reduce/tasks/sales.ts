// Function tasks of the regional_sales flow. Each receives the attempt context; `inputs`
// holds the task's rendered `with:` values, which read the map's item.
interface Context<I> {
  inputs: I;
  log: { info(message: string): void };
}

interface Region {
  name: string;
  stores: string[];
}

export async function listStores({ inputs }: Context<{ region: Region }>) {
  return inputs.region.stores;
}

// Stands in for a call to each store's till system: a fixed figure per store.
export async function storeSales({ inputs, log }: Context<{ region: string; store: string }>) {
  const amount = inputs.store.length * 1000;
  log.info(`${inputs.region}/${inputs.store}: ${amount}`);
  return { store: inputs.store, amount };
}

export async function regionTotal({ inputs }: Context<{ region: string; sales: { store: string; amount: number }[] }>) {
  return {
    region: inputs.region,
    stores: inputs.sales.length,
    total: inputs.sales.reduce((sum, s) => sum + s.amount, 0),
  };
}

export async function report({ inputs, log }: Context<{ regions: { region: string; total: number }[] }>) {
  const total = inputs.regions.reduce((sum, r) => sum + r.total, 0);
  log.info(inputs.regions.map((r) => `${r.region} ${r.total}`).join(', '));
  return { regions: inputs.regions.length, total };
}
