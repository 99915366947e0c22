// bench-wasm.mjs - the WebAssembly build's speed in headless Chromium (Debian's, driven by
// playwright-core): serves the page with cross-origin isolation and, in it, starts a fresh
// training worker (web/worker.js) per thread count and runs its benchmark. Prints one JSON
// line per thread count.
// Usage: node scripts/bench-wasm.mjs [--threads 1,2] [--steps 8] [--exact]
import { chromium } from 'playwright-core';
import { startServer } from './serve.mjs';

const args = process.argv.slice(2);
const value = (flag, fallback) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : fallback);
const threadCounts = value('--threads', '1,2').split(',').map(Number);
const steps = Number(value('--steps', '8'));
const exact = args.includes('--exact') ? 1 : 0;

const { server, url } = await startServer({ port: 0, quiet: true });
const browser = await chromium.launch({
  dumpio: !!process.env.Q4_DUMPIO,
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  page.on('crash', () => console.error('the page crashed'));
  page.on('console', (m) => { if (m.type() === 'error') console.error(`console: ${m.text()}`); });
  await page.goto(url);
  await page.waitForFunction(() => crossOriginIsolated);
  for (const threads of threadCounts) {
    const result = await page.evaluate((options) => new Promise((resolve, reject) => {
      const worker = new Worker('worker.js');
      worker.onmessage = (e) => {
        const m = e.data;
        if (m.type === 'ready') worker.postMessage({ type: 'bench', ...options });
        else if (m.type === 'bench') {
          worker.terminate();
          resolve(m.result);
        } else if (m.type === 'error') reject(new Error(m.message));
      };
      worker.postMessage({ type: 'init' });
    }), { threads, steps, exact });
    console.log(JSON.stringify(result));
  }
} finally {
  await browser.close();
  server.close();
}
