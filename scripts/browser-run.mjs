// browser-run.mjs - one training run in the page, in headless Chromium, timed as a visitor
// would see it: the page served with cross-origin isolation (scripts/serve.mjs), opened with
// the given settings, Start pressed; each epoch's report (the same JSON as q4train --log) is
// written as it arrives with the wall-clock seconds since Start, until the run finishes.
// Usage: node scripts/browser-run.mjs [--query "preset=fast&threads=2&seed=0"] [--log FILE]
// Long (the fast preset: about half an hour); nothing else should run meanwhile.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './serve.mjs';

const args = process.argv.slice(2);
const value = (flag, fallback) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : fallback);
const query = value('--query', 'preset=fast&threads=2&seed=0');
const logFile = value('--log', null);
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run'];

const { server, url } = await startServer({ port: 0, quiet: true, isolation: true });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
let log = null;
if (logFile) {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  log = fs.openSync(logFile, 'w');
}
const write = (object) => log !== null && fs.writeSync(log, `${JSON.stringify(object)}\n`);
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  let started = 0;
  let finished;
  const done = new Promise((resolve) => { finished = resolve; });
  await page.exposeFunction('q4runMessage', (m) => {
    if (m.type === 'error') { console.error(`browser-run: the page says: ${m.message}`); finished(1); }
    if (m.type === 'epoch') {
      const r = m.report, wall = (Date.now() - started) / 1000;
      write({ ...r, wall_seconds: wall });
      console.log(`epoch ${r.epoch}/${r.epochs}: test ${(100 * r.test_accuracy).toFixed(2)}%` +
        (r.tta_accuracy !== null ? `, with test-time augmentation ${(100 * r.tta_accuracy).toFixed(2)}%` : '') +
        `, ${(wall / 60).toFixed(1)} min since Start`);
    }
    if (m.type === 'state' && m.state === 'finished') finished(0);
  });
  await page.addInitScript(() => window.addEventListener('q4', (e) => {
    const m = e.detail;
    if (['state', 'epoch', 'error'].includes(m.type)) window.q4runMessage(m);
  }));
  page.on('pageerror', (e) => console.error(`browser-run: page error: ${e.message}`));
  await page.goto(`${url}?${query}`);
  await page.waitForFunction(() => document.getElementById('s-epochs') && document.getElementById('s-epochs').value !== '' &&
    !document.getElementById('start').disabled, null, { timeout: 120000 });
  const settings = await page.$$eval('[data-setting]', (inputs) => Object.fromEntries(inputs.map((i) =>
    [i.dataset.setting, i.type === 'checkbox' ? (i.checked ? 1 : 0) : i.value])));
  const isolated = await page.evaluate(() => self.crossOriginIsolated);
  write({ run: { engine: 'q4 in Chromium', browser: browser.version(), query, cross_origin_isolated: isolated, settings } });
  console.log(`browser-run: Chromium ${browser.version()}, ${query}, cross-origin isolated: ${isolated}`);
  started = Date.now();
  await page.click('#start');
  process.exitCode = await done;
  await context.close();
} finally {
  if (log !== null) fs.closeSync(log);
  await browser.close();
  server.close();
}
