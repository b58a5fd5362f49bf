/**
 * The web UI in a real headless Chromium, on a real `baton dev` over a SQLite project: the
 * journeys a data engineer takes. Start a run with params from its flow page and watch it
 * succeed live; open a failed run on its failed task and read its log; retry it from the
 * failure once the cause is fixed; cancel a running run; approve a waiting task. Each main
 * page is saved as a screenshot, light and dark, under test-results/screenshots.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTempDirs } from '../e2e/cli-helpers.js';
import type { DevServer } from './browser-helpers.js';
import { CHROMIUM, launchBrowser, openPage, screenshot, startDev } from './browser-helpers.js';

const temp = useTempDirs();

const FLOWS: Record<string, string> = {
  'greet.yaml': `name: greet
description: Says hello to someone.
params:
  name: { type: string, default: world }
tasks:
  - id: hello
    run: echo "hello $NAME"
    env: { NAME: '\${{ params.name }}' }
  - id: shout
    depends_on: [hello]
    run: echo "HELLO $NAME"
    env: { NAME: '\${{ params.name }}' }
`,
  'flaky.yaml': `name: flaky
tasks:
  - id: fetch
    run: echo fetched
  - id: load
    depends_on: [fetch]
    run: |
      if [ -f "$FIX" ]; then echo loaded; else echo "boom: the target table is missing" >&2; exit 3; fi
    env: { FIX: '${'${{ params.fix }}'}' }
params:
  fix: { type: string }
`,
  'slow.yaml': `name: slow
tasks:
  - id: wait_a_while
    run: sleep 60
`,
  'gate.yaml': `name: gate
tasks:
  - id: build
    run: echo built
  - id: go_live
    depends_on: [build]
    approval: { message: Ship it?, approvers: [alice] }
  - id: deploy
    depends_on: [go_live]
    run: echo deployed
`,
};

function project(): string {
  const dir = temp.mkdir('baton-ui-');
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'baton.yaml'), 'concurrency: 4\n');
  for (const [file, text] of Object.entries(FLOWS)) writeFileSync(join(dir, 'flows', file), text);
  return dir;
}

async function startRun(dev: DevServer, flow: string, params: Record<string, unknown> = {}): Promise<string> {
  const answer = await fetch(`${dev.url}/api/v1/flows/${flow}/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ params }),
  });
  expect(answer.status, await answer.clone().text()).toBe(201);
  return ((await answer.json()) as { id: string }).id;
}

async function runState(dev: DevServer, id: string): Promise<string> {
  return ((await (await fetch(`${dev.url}/api/v1/runs/${id}`)).json()) as { state: string }).state;
}

/** Waits until the page's run state badge reads `state` (pushed live, no reload). */
async function expectRunState(page: Page, state: string, timeoutMs = 20_000): Promise<void> {
  await page
    .getByTestId('run-state')
    .filter({ hasText: new RegExp(`^${state}$`) })
    .waitFor({ timeout: timeoutMs });
}

const browserMissing = !existsSync(CHROMIUM);

describe.skipIf(browserMissing)('web UI journeys in Chromium', () => {
  let browser: Browser;
  let dev: DevServer;
  let dir: string;

  beforeAll(async () => {
    browser = await launchBrowser();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  // A project and a baton dev per test: the temp dirs and processes of a test end with it.
  beforeEach(async () => {
    dir = project();
    dev = await startDev(dir);
  }, 30_000);

  afterEach(async () => {
    await dev?.stop();
  });

  it('starts a run with params from the flow page and watches it succeed live', async () => {
    const { page, errors, context } = await openPage(browser);
    try {
      await page.goto(`${dev.url}/`);
      await page.getByTestId('flow-greet').waitFor();
      await screenshot(page, 'home-light');
      await page.goto(`${dev.url}/flows/greet`);
      await page.getByTestId('start-run').click();
      await page.getByTestId('params-form').waitFor();
      await page.getByTestId('param-name').fill('Ada');
      await page.getByTestId('params-submit').click();
      await page.waitForURL(/\/runs\/r[0-9a-z]+/);
      await expectRunState(page, 'succeeded');
      const runId = /\/runs\/(r[0-9a-z]+)/.exec(page.url())?.[1] as string;
      const detail = (await (await fetch(`${dev.url}/api/v1/runs/${runId}`)).json()) as {
        params: Record<string, unknown>;
      };
      expect(detail.params).toEqual({ name: 'Ada' });
      await expect
        .poll(() => page.getByTestId('task-shout').first().getAttribute('data-state'), { timeout: 10_000 })
        .toBe('succeeded');
      await screenshot(page, 'run-light');
      await page.goto(`${dev.url}/flows/greet`);
      await page.getByTestId('run-grid').waitFor();
      await screenshot(page, 'flow-light');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('opens a failed run on its failed task with the log, and retries it from the failure', async () => {
    const fix = join(dir, 'fixed');
    const id = await startRun(dev, 'flaky', { fix });
    const { page, errors, context } = await openPage(browser);
    try {
      await page.goto(`${dev.url}/runs/${id}`);
      await expectRunState(page, 'failed');
      // The page opens on the first failed task: its error and the tail of its log.
      await page.getByTestId('task-panel').filter({ hasText: 'load' }).waitFor();
      await page.getByTestId('log-panel').filter({ hasText: 'boom: the target table is missing' }).waitFor();
      await screenshot(page, 'run-failed-light');

      writeFileSync(fix, '');
      await page.getByTestId('action-retry').first().click();
      expect(await page.getByTestId('cli-command').textContent()).toContain(`baton retry ${id}`);
      await page.getByTestId('confirm').click();
      await expectRunState(page, 'succeeded');
      expect(await runState(dev, id)).toBe('succeeded');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('cancels a running run after confirmation', async () => {
    const id = await startRun(dev, 'slow');
    const { page, errors, context } = await openPage(browser, { colorScheme: 'dark' });
    try {
      await page.goto(`${dev.url}/runs/${id}`);
      await expectRunState(page, 'running');
      await page.getByTestId('action-cancel').first().click();
      expect(await page.getByTestId('cli-command').textContent()).toContain(`baton cancel ${id}`);
      await page.getByTestId('confirm').click();
      await expectRunState(page, 'cancelled');
      expect(await runState(dev, id)).toBe('cancelled');
      await screenshot(page, 'run-cancelled-dark');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('approves a task that waits for an approval', async () => {
    const id = await startRun(dev, 'gate');
    const { page, errors, context } = await openPage(browser);
    try {
      await page.goto(`${dev.url}/runs/${id}?task=go_live`);
      await page.getByTestId('action-approve').waitFor({ timeout: 20_000 });
      await page.getByTestId('action-approve').click();
      await page.getByTestId('approval-by').fill('alice');
      expect(await page.getByTestId('cli-command').textContent()).toContain(`baton approve ${id} go_live --by alice`);
      await page.getByTestId('confirm').click();
      await expectRunState(page, 'succeeded');
      expect(await runState(dev, id)).toBe('succeeded');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('renders every main page in light and dark at 1280x800 and 1920x1080', async () => {
    // Some history to show: runs that succeeded and one that failed.
    const ids = [await startRun(dev, 'greet'), await startRun(dev, 'greet', { name: 'Ada' })];
    const failed = await startRun(dev, 'flaky', { fix: join(dir, 'never') });
    for (const id of [...ids, failed]) {
      await expect.poll(() => runState(dev, id), { timeout: 20_000 }).toMatch(/^(succeeded|failed)$/);
    }
    const pages: [string, string][] = [
      ['home', '/'],
      ['runs', '/runs'],
      ['run', `/runs/${failed}`],
      ['flow', '/flows/greet'],
      ['triggers', '/triggers'],
      ['backfills', '/backfills'],
      ['assets', '/assets'],
    ];
    for (const [width, height] of [
      [1280, 800],
      [1920, 1080],
    ] as const) {
      for (const scheme of ['light', 'dark'] as const) {
        const { page, errors, context } = await openPage(browser, { width, height, colorScheme: scheme });
        try {
          for (const [name, path] of pages) {
            await page.goto(`${dev.url}${path}`);
            await page.waitForLoadState('networkidle');
            // The run's graph is laid out after its chunk loads: wait for the drawing.
            if (name === 'run') await page.locator('.react-flow__node').first().waitFor();
            if (name === 'flow') await page.getByTestId('run-grid').waitFor();
            // Nothing wider than the window: no horizontal scrolling of the page itself.
            const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
            expect(overflow, `${name} at ${width}x${height} overflows by ${overflow}px`).toBeLessThanOrEqual(0);
            if (width === 1280) await screenshot(page, `${name}-${scheme}`);
          }
          expect(errors).toEqual([]);
        } finally {
          await context.close();
        }
      }
    }
  });
});
