// Function tasks of the daily_sales flow. Each receives the attempt context and
// returns JSON; `inputs` holds the task's rendered `with:` values.
interface Context<I> {
  inputs: I;
  log: { info(message: string): void };
}

export async function aggregate({ inputs, log }: Context<{ day: string; totals: Record<string, string> }>) {
  const byRegion = Object.fromEntries(Object.entries(inputs.totals).map(([region, value]) => [region, Number(value)]));
  const total = Object.values(byRegion).reduce((a, b) => a + b, 0);
  log.info(`${inputs.day}: ${total} in all`);
  return { day: inputs.day, byRegion, total };
}

export async function qualityGate({ inputs }: Context<{ total: number }>) {
  if (!(inputs.total > 0))
    throw Object.assign(new Error(`total is ${inputs.total}; expected a positive number`), { code: 'VALIDATION' });
  return { checked: true };
}
