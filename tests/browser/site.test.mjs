// site.test.mjs - the built site (make site: dist/) as a teacher hosts it: served by a plain
// static server without COOP/COEP headers, under a sub-path. The page isolates itself with its
// service worker, trains on 2 threads, shows a test accuracy; a reload downloads nothing again;
// over a slow connection the first download shows its progress while the bytes arrive;
// offline, the page still loads and trains. A new deploy replaces the cached page and engine at
// the next visit and keeps the cached data, and waits while a run is open. And the page fits a
// phone's screen.
// Run by `make test-browser` (which runs `make site` first).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { startServer } from '../../scripts/serve.mjs';
import { ARGS, copySite, deploy, openPage, shot, text, waitForState } from './harness.mjs';

const RUN = '?preset=custom&epochs=1&train_limit=256&test_limit=128&batch_size=64&threads=2';
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

/** A file as a slow host sends it: the data shards (.bin) in 128 KB pieces 20 ms apart (about 5 s for
 * a 30 MB shard), everything else at once; sent[file] is when its last byte went out.
 * serve.mjs waits for the stream's 'open'. */
function slowHost(sent) {
  return (file) => {
    const out = new PassThrough();
    const bytes = fs.readFileSync(file);
    process.nextTick(() => out.emit('open'));
    if (!file.includes(`${path.sep}data${path.sep}`) || !file.endsWith('.bin')) {
      out.end(bytes);
      return out;
    }
    let at = 0;
    const next = () => {
      if (out.destroyed) return;
      const end = Math.min(at + 131072, bytes.length);
      out.write(bytes.subarray(at, end));
      at = end;
      if (at < bytes.length) setTimeout(next, 20);
      else {
        sent[path.basename(file)] = Date.now();
        out.end();
      }
    };
    next();
    return out;
  };
}

// The worker reports a shard's bytes as they come (worker.js, at most every 100 ms). A service
// worker that answered only once it had stored the whole shard (awaiting cache.put before
// responding) held them back until the host had sent the last byte: a first visitor's bar stood
// still through each shard. Here the reports reach the test as they are made, and some of each
// shard's must come while the host is still sending it (measured beside three training runs:
// 48 of 48 and 44 of 45 did; with the awaiting service worker 0 of 5 and 0 of 6).
test('on a first visit over a slow connection the download shows its progress while the bytes arrive', async () => {
  const sent = {}, reports = {};
  const host = await startServer({ port: 0, quiet: true, isolation: false, root: 'dist', base: '/course/q4/',
    open: slowHost(sent) });
  let context;
  try {
    let page;
    ({ context, page } = await openPage(browser, `${host.url}${RUN}`));
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'isolated by the service worker');
    await page.exposeFunction('q4report', (name, done) => (reports[name] ||= []).push({ done, at: Date.now() }));
    await page.evaluate(() => window.addEventListener('q4', (e) => { // from here on through the service worker
      if (e.detail.type === 'load-progress' && !e.detail.parsing) window.q4report(e.detail.name, e.detail.done);
    }));
    await page.click('#start');
    await waitForState(page, 'finished', 300000);
    const shards = Object.keys(sent);
    assert.ok(shards.length >= 2, `shards sent: ${shards.join(', ')}`);
    for (const name of shards) {
      const early = (reports[name] || []).filter((r) => r.at < sent[name]);
      assert.ok(early.length >= 2, `${name}: ${early.length} of ${(reports[name] || []).length} progress reports came ` +
        'before the host had sent the whole shard');
    }
    const cachedData = await page.evaluate(async () => (await (await caches.open('q4-data')).keys()).length);
    assert.ok(cachedData >= 2, `the data is cached as well (${cachedData} files)`);
  } finally {
    if (context) await context.close();
    host.server.close();
  }
});

/** Waits (through the page's own reloads) until the page of deploy n is up with its engine. */
async function waitForDeploy(page, n) {
  for (let i = 0; i < 1200; i++) {
    try {
      if (await page.evaluate((d) => document.querySelector(`meta[name="q4-deploy"][content="${d}"]`) !== null &&
        window.q4test.ready, n)) return;
    } catch { /* the page is navigating */ }
    await page.waitForTimeout(100);
  }
  throw new Error(`the page of deploy ${n} never came up`);
}

/** What Cache Storage holds: the shell caches, and the tail of the cached engine (wasm/q4.js). */
const cached = (page) => page.evaluate(async () => {
  const keys = await caches.keys();
  const shells = keys.filter((k) => k.startsWith('q4-shell-'));
  const engine = await (await caches.open(shells[0])).match(new URL('wasm/q4.js', location.href).href);
  const data = await (await caches.open('q4-data')).keys();
  return { shells, engineTail: engine ? (await engine.text()).trim().split('\n').pop() : null, data: data.length };
});

test('a new deploy replaces the cached page and engine, keeps the cached data, and waits while a run is open', async () => {
  const root = path.resolve('test-output/deployed-site');
  fs.rmSync(root, { recursive: true, force: true });
  copySite('dist', root);
  const seen = [];
  const host = await startServer({ port: 0, quiet: true, isolation: false, root, base: '/course/q4/',
    open: (file) => { seen.push(path.relative(root, file)); return fs.createReadStream(file); } });
  try {
    const { context, page, errors } = await openPage(browser, `${host.url}${RUN}`);
    await page.click('#start');
    await waitForState(page, 'finished', 300000);
    const first = await cached(page);
    assert.equal(first.shells.length, 1);
    assert.ok(first.data >= 2, `the data is cached (${first.data} files)`);

    // deploy 2 while the page is open; the next visit brings it, and the data stays cached
    deploy(root, 2);
    let from = seen.length;
    await page.reload();
    await waitForDeploy(page, 2);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const second = await cached(page);
    assert.deepEqual(second.shells, [`${first.shells[0]}-deploy2`], 'the old version\'s files are gone');
    assert.equal(second.engineTail, '// deploy 2', 'the new engine is cached');
    assert.equal(second.data, first.data, 'the data is still cached');
    const fetched = seen.slice(from);
    assert.ok(fetched.includes('index.html') && fetched.includes(path.join('wasm', 'q4.js')), `fetched: ${fetched.join(' ')}`);
    from = seen.length;
    await page.click('#start');
    await waitForState(page, 'finished', 300000);
    assert.deepEqual(seen.slice(from).filter((f) => f.includes('data')), [], 'the new version trains on the cached data');

    // deploy 3 while a run is paused: the page offers the reload and keeps its files until asked
    await page.goto(`${host.url}?preset=custom&epochs=1&train_limit=4096&test_limit=256&batch_size=64&threads=2`);
    await waitForDeploy(page, 2);
    await page.click('#start');
    await page.waitForFunction(() => window.q4test.losses.length >= 2, null, { timeout: 120000 });
    await page.click('#pause');
    await waitForState(page, 'paused');
    deploy(root, 3);
    await page.evaluate(() => navigator.serviceWorker.getRegistration().then((r) => r.update()));
    await page.waitForSelector('#update-banner:not([hidden])', { timeout: 60000 });
    await shot(page, '23-update-offered');
    const during = await cached(page);
    assert.ok(during.shells.includes(`${first.shells[0]}-deploy2`), 'the open run keeps its version\'s files');
    const steps = await page.evaluate(() => window.q4test.losses.length);
    await page.click('#resume');
    await page.waitForFunction((s) => window.q4test.losses.length >= s + 2, steps, { timeout: 120000 });
    assert.equal(await page.evaluate(() => document.querySelector('meta[name="q4-deploy"]').content), '2', 'no reload during the run');
    await page.click('#stop');
    await waitForState(page, 'stopped');
    await page.click('#update-now');
    await waitForDeploy(page, 3);
    const third = await cached(page);
    assert.deepEqual(third.shells, [`${first.shells[0]}-deploy3`]);
    assert.equal(third.engineTail, '// deploy 3');
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    host.server.close();
  }
});

// (the page after a run, its charts drawn, is checked at 390 px in Firefox: visitor.test.mjs)
test('the page fits a phone: nothing wider than 390 px', async () => {
  const { context, page } = await openPage(browser, `${url}${RUN}`, { viewport: { width: 390, height: 844 } });
  const wide = await page.evaluate(() => ({
    width: document.documentElement.scrollWidth,
    elements: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391)
      .map((e) => `${e.tagName.toLowerCase()}#${e.id}`).slice(0, 5),
  }));
  assert.equal(wide.width, 390, `content is ${wide.width} px wide: ${wide.elements.join(', ')}`);
  await shot(page, '22-phone');
  await context.close();
});
