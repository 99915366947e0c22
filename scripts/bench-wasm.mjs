// bench-wasm.mjs - the WebAssembly build's speed in a browser: headless Chromium (Debian's,
// driven by playwright-core), Firefox ESR or WebKitGTK (tests/browser/engines.mjs). Serves the
// page with cross-origin isolation and, in it, starts a fresh training worker (web/worker.js)
// per thread count and runs its benchmark. Prints one JSON line per thread count, with the
// browser's version.
// Usage: node scripts/bench-wasm.mjs [--browser chromium|firefox|webkit] [--threads 1,2] [--steps 8] [--exact]
//        [--integer] [--act-bits B]   (evaluation in integer arithmetic; conv2-6 on B-bit activations: issue 26)
import { chromium } from 'playwright-core';
import { BROWSERS } from '../tests/browser/engines.mjs';
import { startServer } from './serve.mjs';

const args = process.argv.slice(2);
const value = (flag, fallback) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : fallback);
const browserName = value('--browser', 'chromium');
const threadCounts = value('--threads', '1,2').split(',').map(Number);
const steps = Number(value('--steps', '8'));
const exact = args.includes('--exact') ? 1 : 0;
const integer = args.includes('--integer') ? 1 : 0;
const act = Number(value('--act-bits', '32'));

/** In the page: a fresh training worker runs its benchmark; resolves with its result. */
function benchInWorker(options) {
  return new Promise((resolve, reject) => {
    const worker = new Worker('worker.js');
    worker.onmessage = (e) => {
      const m = e.data;
      if (m.type === 'ready' && options.threads > m.maxThreads) {
        worker.terminate(); // WebKitGTK runs one thread (wasm/q4.js says why)
        resolve({ threads: options.threads, skipped: `at most ${m.maxThreads} thread(s) here: ${m.reason}` });
      } else if (m.type === 'ready') worker.postMessage({ type: 'bench', ...options });
      else if (m.type === 'bench') {
        worker.terminate();
        resolve(m.result);
      } else if (m.type === 'error') reject(new Error(m.message));
    };
    worker.postMessage({ type: 'init' });
  });
}

/** A page of the chosen browser at url, with evaluate(fn, arg) and close(); and the version. */
async function openBrowser(url) {
  if (browserName !== 'chromium') {
    const browser = await BROWSERS[browserName]();
    const page = await browser.open(url);
    return { page, version: browser.version, close: async () => { await page.close(); await browser.close(); } };
  }
  const browser = await chromium.launch({
    dumpio: !!process.env.Q4_DUMPIO,
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  page.on('crash', () => console.error('the page crashed'));
  page.on('console', (m) => { if (m.type() === 'error') console.error(`console: ${m.text()}`); });
  await page.goto(url);
  return { page, version: `Chromium ${browser.version()}`, close: () => browser.close() };
}

const { server, url } = await startServer({ port: 0, quiet: true });
let opened;
try {
  opened = await openBrowser(url);
  const { page } = opened;
  for (let i = 0; !(await page.evaluate(() => crossOriginIsolated)); i++) {
    if (i > 100) throw new Error(`${browserName}: the page is not cross-origin isolated`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const threads of threadCounts) {
    const result = await page.evaluate(benchInWorker, { threads, steps, exact, integer, act });
    console.log(JSON.stringify({ ...result, browser: opened.version }));
  }
} finally {
  if (opened) await opened.close();
  server.close();
}
