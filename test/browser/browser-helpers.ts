/**
 * The parts of a browser test: a real headless Chromium driven by playwright-core (the
 * Debian `chromium` package, never a downloaded browser), a real `baton dev` process on a
 * free port serving the UI and the API over a project on a SQLite file, and screenshots
 * saved under test-results/ (not committed).
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import type { BatonProcess } from '../e2e/cli-helpers.js';
import { REPO_ROOT, startBaton, waitFor } from '../e2e/cli-helpers.js';

/** Where Debian's package puts it; BATON_TEST_CHROMIUM names another. */
export const CHROMIUM = process.env.BATON_TEST_CHROMIUM ?? '/usr/bin/chromium';

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

export const SCREENSHOTS_DIR = join(REPO_ROOT, 'test-results', 'screenshots');

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
}

/** A page of the given size and colour scheme, failing the test on an uncaught page error. */
export async function openPage(
  browser: Browser,
  options: { width?: number; height?: number; colorScheme?: 'light' | 'dark' } = {},
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
    colorScheme: options.colorScheme ?? 'light',
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  return { context, page, errors };
}

/** Saves a full-page screenshot as test-results/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS_DIR, `${name}.png`), fullPage: true });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A running `baton dev` and the URL of its UI. */
export interface DevServer {
  readonly url: string;
  readonly process: BatonProcess;
  stop(): Promise<void>;
}

/** Starts `baton dev --port <free>` in `cwd` and waits until its API answers. */
export async function startDev(cwd: string, env: Record<string, string> = {}): Promise<DevServer> {
  const port = await freePort();
  const process = startBaton(['dev', '--port', String(port)], { cwd, env, timeoutMs: 300_000 });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      const answer = await fetch(`${url}/api/v1/health`).catch(() => null);
      return answer?.ok ? true : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `baton dev on port ${port} (stderr: ${process.stderr()})` },
  );
  return {
    url,
    process,
    async stop() {
      process.kill('SIGTERM');
      await process.done.catch(() => undefined);
    },
  };
}
