// Group `api` of `npm run bench`, the web UI's part: `ui_run_page_10k_ms`, how long the run
// page of a finished run of 10,000 map instances takes to show in a real headless Chromium
// (playwright-core driving the system's `chromium`; BATON_BENCH_CHROMIUM names another). The
// UI and the API are served by `baton dev` over a project in a new temporary folder.
//
// "Shows" is: from `page.goto('<url>/runs/<id>')` until the run's state badge (`run-state`)
// is visible with the run's final state and the graph (`dag`) has drawn the map's node
// (`task-each`, the 10,000 instances collapsed into it). Median of 5 loads, each in a fresh
// browser context (nothing cached), after one untimed load. Without Chromium the benchmark
// says so on stderr and reports nothing.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchOk, percentile, startBatonServer } from './api.js';

const CHROMIUM = process.env.BATON_BENCH_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ITEMS = 10_000;
const LOADS = 5;
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/** playwright-core's chromium, or null (with a note on stderr) when there is no browser to drive. */
async function chromiumOrNull() {
  if (!existsSync(CHROMIUM)) {
    process.stderr.write(`bench ui: no Chromium at ${CHROMIUM}; ui_run_page_10k_ms skipped\n`);
    return null;
  }
  try {
    return (await import('playwright-core')).chromium;
  } catch {
    process.stderr.write('bench ui: playwright-core is not installed; ui_run_page_10k_ms skipped\n');
    return null;
  }
}

/** A project whose flow `map10k` maps a function task over 10,000 items. */
function writeProject(dir) {
  mkdirSync(join(dir, 'flows'));
  writeFileSync(
    join(dir, 'flows', 'steps.mjs'),
    [
      `export function list() {\n  return Array.from({ length: ${ITEMS} }, (_, i) => i);\n}`,
      'export function each() {\n  return 1;\n}',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'flows', 'map10k.yaml'),
    [
      'name: map10k',
      'tasks:',
      '  list:',
      '    kind: function',
      '    module: ./steps.mjs',
      '    export: list',
      '  each:',
      '    kind: function',
      '    module: ./steps.mjs',
      '    export: each',
      '    depends_on: [list]',
      '    map: { over: "${{ tasks.list.output }}" }',
      '',
    ].join('\n'),
  );
}

/** Starts a run of map10k and waits (up to 5 minutes) until it succeeded; returns its id. */
async function finishedRun(api) {
  const started = await (
    await fetchOk(`${api}/flows/map10k/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
  ).json();
  const deadline = Date.now() + 300_000;
  for (;;) {
    const run = await (await fetchOk(`${api}/runs/${started.id}`)).json();
    if (run.state === 'succeeded') {
      if (run.tasks.length < ITEMS) throw new Error(`map10k run has ${run.tasks.length} task runs`);
      return run.id;
    }
    if (['failed', 'cancelled'].includes(run.state)) throw new Error(`map10k run ${run.state}`);
    if (Date.now() > deadline) throw new Error(`map10k run still ${run.state} after 5 minutes`);
    await pause(1000);
  }
}

/** `ui_run_page_10k_ms`: the run page of a finished run of 10,000 map instances, median of 5 loads. */
export async function uiRunPageBench(report) {
  const chromium = await chromiumOrNull();
  if (!chromium) return;
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-ui-'));
  let server;
  let browser;
  try {
    writeProject(dir);
    server = await startBatonServer(['dev'], dir);
    const id = await finishedRun(`${server.url}/api/v1`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
    const times = [];
    for (let i = -1; i < LOADS; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      try {
        const page = await context.newPage();
        const t0 = performance.now();
        await page.goto(`${server.url}/runs/${id}`, { waitUntil: 'commit' });
        await page.locator('[data-testid="run-state"][data-state="succeeded"]').waitFor({ timeout: 60_000 });
        await page.locator('[data-testid="dag"] [data-testid="task-each"]').waitFor({ timeout: 60_000 });
        if (i >= 0) times.push(performance.now() - t0);
      } finally {
        await context.close();
      }
    }
    times.sort((a, b) => a - b);
    report('ui_run_page_10k_ms', percentile(times, 50), 'ms', 2000, 'lower');
  } finally {
    await browser?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
