// harness.mjs - shared set-up for the browser tests: Debian's Chromium driven by
// playwright-core, the page served by scripts/serve.mjs, screenshots kept in
// test-output/screenshots/ (look at them), and small helpers to read the page's state.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../../scripts/serve.mjs';

export const SHOTS = path.resolve('test-output/screenshots');
export const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run'];

export async function launch({ isolation = true } = {}) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const { server, url } = await startServer({ port: 0, quiet: true, isolation });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
  return { browser, url, close: async () => { await browser.close(); server.close(); } };
}

/** A fresh context and page; collects console errors and page errors. */
export async function openPage(browser, url, { acceptDownloads = false } = {}) {
  const context = await browser.newContext({ acceptDownloads, viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => window.q4Debug && window.q4Debug.ready, null, { timeout: 60000 });
  return { context, page, errors };
}

export const text = (page, id) => page.$eval(`#${id}`, (e) => e.textContent);

export async function waitForState(page, states, timeout = 300000) {
  const list = Array.isArray(states) ? states : [states];
  await page.waitForFunction((s) => s.includes(window.q4Debug.state), list, { timeout });
  return page.evaluate(() => window.q4Debug.state);
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** The float parameters of a checkpoint file (after the 16-byte preamble and 256-byte header). */
export function checkpointParameters(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = Number(view.getBigUint64(16 + 176, true));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset + 272, bytes.byteOffset + 272 + 4 * count));
}
