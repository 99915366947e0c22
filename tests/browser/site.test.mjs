// site.test.mjs - the built site (make site: dist/) as a teacher hosts it: served by a plain
// static server without COOP/COEP headers, under a sub-path. The page isolates itself with its
// service worker, trains on 2 threads, shows a test accuracy; a reload downloads nothing again;
// offline, the page still loads and trains. And the page fits a phone's screen.
// Run by `make test-browser` (which runs `make site` first).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { startServer } from '../../scripts/serve.mjs';
import { ARGS, openPage, shot, text, waitForState } from './harness.mjs';

const RUN = '?preset=custom&epochs=1&train_limit=512&test_limit=256&batch_size=64&threads=2';
let browser, server, url;
const requests = [];

before(async () => {
  assert.ok(fs.existsSync('dist/sw.js') && fs.existsSync('dist/data/cifar-10-batches-bin/test_batch.bin'), 'make site');
  // a plain host: no isolation headers, the site under /course/q4/; every file it opens is noted
  ({ server, url } = await startServer({ port: 0, quiet: true, isolation: false, root: 'dist', base: '/course/q4/',
    open: (file) => {
      requests.push(file);
      return fs.createReadStream(file);
    } }));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
});
after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
});

const dataRequests = () => requests.filter((f) => f.includes('/data/')).length;

test('served plainly under a sub-path, the site isolates itself, trains on 2 threads, and works again offline', async () => {
  const { context, page, errors } = await openPage(browser, `${url}${RUN}`);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'isolated by the service worker');
  assert.match(await text(page, 'engine-status'), /threads on/);
  assert.equal(await page.$eval('#s-threads', (i) => i.value), '2');
  await page.click('#start');
  await waitForState(page, 'finished', 300000);
  assert.match(await text(page, 'm-test'), /^\d+\.\d\d% \(best/);
  assert.ok(dataRequests() >= 2, 'the data came from the host');
  await shot(page, '20-site-trained');

  // a reload: the page, the engine and the data come from the browser's cache; the host sees
  // at most the browser's own update check of the service worker (sw.js)
  const before = requests.length;
  await page.reload();
  await page.waitForFunction(() => window.q4test && window.q4test.ready, null, { timeout: 60000 });
  await page.click('#start');
  await waitForState(page, 'finished', 300000);
  assert.deepEqual(requests.slice(before).filter((f) => !f.endsWith('/sw.js')), [],
    'after the first visit the host sees nothing but the service worker update check');

  // offline
  await context.setOffline(true);
  await page.reload();
  await page.waitForFunction(() => window.q4test && window.q4test.ready, null, { timeout: 60000 });
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  await page.click('#start');
  await waitForState(page, 'finished', 300000);
  assert.match(await text(page, 'm-test'), /%/);
  await shot(page, '21-site-offline');
  assert.deepEqual(errors.filter((e) => !/net::ERR_INTERNET_DISCONNECTED/.test(e)), []);
  await context.close();
});

test('the page fits a phone: nothing wider than 390 px', async () => {
  const { context, page } = await openPage(browser, `${url}${RUN}`, { viewport: { width: 390, height: 844 } });
  await page.click('#start');
  await waitForState(page, 'finished', 300000);
  const wide = await page.evaluate(() => ({
    width: document.documentElement.scrollWidth,
    elements: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391)
      .map((e) => `${e.tagName.toLowerCase()}#${e.id}`).slice(0, 5),
  }));
  assert.equal(wide.width, 390, `content is ${wide.width} px wide: ${wide.elements.join(', ')}`);
  await shot(page, '22-phone');
  await context.close();
});
