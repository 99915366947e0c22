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

/* Runs in the page before its scripts: follows the page's `q4` events (every message of its
 * worker) into window.q4test, which the tests read. */
function recordEvents() {
  const s = { ready: false, settingsReady: false, state: 'idle', losses: [], epochs: [], lastReport: null, errors: [] };
  window.q4test = s;
  window.addEventListener('q4', (e) => {
    const m = e.detail;
    if (m.type === 'ready') s.ready = true;
    if (m.type === 'state') s.state = m.state;
    if (m.type === 'session') { s.losses = []; s.epochs = []; s.lastReport = null; }
    if (m.type === 'step') s.losses.push([m.progress.global_step, m.progress.last_loss]);
    if (m.type === 'epoch') { s.epochs.push(m.report); s.lastReport = m.report; }
    if (m.type === 'error') s.errors.push(m.message);
  });
}

/** A fresh context and page; collects console errors and page errors. */
export async function openPage(browser, url, { acceptDownloads = false, viewport = { width: 1400, height: 1000 }, prepare = null } = {}) {
  const context = await browser.newContext({ acceptDownloads, viewport });
  await context.addInitScript(recordEvents);
  if (prepare) await prepare(context); // e.g. routes, before the page loads
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await waitForReady(page);
  return { context, page, errors };
}

/** The engine is loaded and the settings form filled (from the link). */
export async function waitForReady(page) {
  await page.waitForFunction(() => window.q4test && window.q4test.ready, null, { timeout: 60000 });
  await page.waitForSelector('#s-epochs');
  await page.waitForFunction(() => document.getElementById('s-epochs').value !== '', null, { timeout: 60000 });
}

export const text = (page, id) => page.$eval(`#${id}`, (e) => e.textContent);

export async function waitForState(page, states, timeout = 300000) {
  const list = Array.isArray(states) ? states : [states];
  await page.waitForFunction((s) => s.includes(window.q4test.state), list, { timeout });
  return page.evaluate(() => window.q4test.state);
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** dist/ copied to `to` (the data linked, not copied: it is never changed). */
export function copySite(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, entry.name), b = path.join(to, entry.name);
    if (entry.isDirectory()) copySite(a, b);
    else if (a.includes(`${path.sep}data${path.sep}`)) fs.linkSync(a, b);
    else fs.copyFileSync(a, b);
  }
}

/** What `make site` would write for a new version: the page, the engine and sw.js changed. */
export function deploy(root, n) {
  const edit = (name, change) => fs.writeFileSync(path.join(root, name), change(fs.readFileSync(path.join(root, name), 'utf8')));
  edit('index.html', (t) => t.replace(/\n {2}<meta name="q4-deploy"[^>]*>/, '')
    .replace('<meta charset="utf-8">', `<meta charset="utf-8">\n  <meta name="q4-deploy" content="${n}">`));
  edit('wasm/q4.js', (t) => `${t}\n// deploy ${n}\n`);
  edit('sw.js', (t) => t.replace(/const VERSION = '([0-9a-f]+)[^']*'/, `const VERSION = '$1-deploy${n}'`));
}

/** The float parameters of a checkpoint file (version 2, core/session/checkpoint.c: a 16-byte
 * preamble, the header, the settings text with its length, then the parameters). */
export function checkpointParameters(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8, true) !== 2) throw new Error('not a version 2 checkpoint');
  const header = view.getUint32(12, true);
  const count = Number(view.getBigUint64(16 + 76, true));
  const at = 16 + header + 4 + view.getUint32(16 + header, true);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + 4 * count));
}

/* The page's short run (page.test.mjs; its thresholds measured by scripts/measure-page-run.mjs):
 * 2,000 training images, 2 epochs, batch 128, 1,000 test images; the seed is added. */
export const SHORT_RUN = 'preset=custom&epochs=2&train_limit=2000&test_limit=1000&batch_size=128&learning_rate=0.001&weight_bits=4';

/** Resident memory of Chromium's renderer processes (the page and its workers). */
export function renderersRss() {
  let total = 0;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('chromium') || !cmd.includes('--type=renderer')) continue;
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      total += 1024 * Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
    } catch {
      /* the process ended */
    }
  }
  return total;
}
