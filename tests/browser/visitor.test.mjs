// visitor.test.mjs - what else a visitor meets on the built site (make site), in Firefox ESR and
// WebKitGTK as in Chromium (whose side is in site.test.mjs and hardening.test.mjs): the page in
// a phone-sized window, the official files dropped on the page, a checkpoint saved as a real
// download, a new deploy replacing the cached page and engine while keeping the cached data,
// and (Firefox) a storage limit that the saved run does not fit. The site is served as a plain
// host serves it: no COOP/COEP headers, under a sub-path. Run by `make test-browser`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startServer } from '../../scripts/serve.mjs';
import { BROWSERS, firefox, webkit } from './engines.mjs';
import { checkpointParameters, copySite, deploy } from './harness.mjs';

const ROOT = path.resolve('test-output/visitor-site');
// 256 images, 4 steps an epoch
const RUN = '?preset=custom&epochs=1&train_limit=256&test_limit=100&batch_size=64&threads=1';
const PARAMETERS = 3251018; // the paper's VGG
const SHARDS = ['data_batch_1.bin', 'test_batch.bin'];
let host, url;
const seen = [];

before(async () => {
  assert.ok(fs.existsSync('dist/sw.js'), 'make site');
  fs.rmSync(ROOT, { recursive: true, force: true });
  copySite('dist', ROOT);
  host = await startServer({ port: 0, quiet: true, isolation: false, root: ROOT, base: '/q4/',
    open: (file) => { seen.push(path.relative(ROOT, file)); return fs.createReadStream(file); } });
  url = host.url;
});
after(() => host && host.server.close());

/* Runs in the page: follows its `q4` events into window.q4visit (WebDriver classic has no
 * console of its own, so errors are collected here too). */
function record() {
  const r = { state: 'idle', epochs: 0, errors: [], saveFailed: null };
  window.q4visit = r;
  window.addEventListener('error', (e) => r.errors.push(e.message));
  window.addEventListener('unhandledrejection', (e) => r.errors.push(String(e.reason)));
  window.addEventListener('q4', (e) => {
    const m = e.detail;
    if (m.type === 'state') r.state = m.state;
    if (m.type === 'epoch') r.epochs++;
    if (m.type === 'save-failed') r.saveFailed = m.message;
  });
  return true;
}

/* Waits for the engine and for the link's settings in the form (the page applies them after the
 * engine is ready; a click before that can load all 50,000 training images instead of the link's
 * 256, as once in 7 runs of this file beside training runs, 2026-12-06). A timeout says where the
 * page stood (its engine status, whether the service worker controls it, isolation), so that a
 * stall names its phase. */
async function ready(page) {
  try {
    return await page.waitFor(() => /^Engine ready/.test(document.getElementById('engine-status').textContent) &&
      ['epochs', 'train_limit', 'test_limit'].every((k) => {
        const field = document.getElementById(`s-${k}`), link = new URLSearchParams(location.search).get(k);
        return field && field.value !== '' && (link === null || field.value === link);
      }), [], { timeout: 120000, what: 'the engine and the link\'s settings' });
  } catch (e) {
    const where = await page.evaluate(() => JSON.stringify({ url: location.href, engine: document.getElementById('engine-status').textContent,
      controlled: !!(navigator.serviceWorker && navigator.serviceWorker.controller), isolated: crossOriginIsolated,
      error: document.getElementById('error').hidden ? '' : document.getElementById('error').textContent }))
      .catch((e2) => `(the page did not answer: ${e2.message})`);
    throw new Error(`${e.message}; the page: ${where}`);
  }
}
const finished = (page) => page.waitFor(() => window.q4visit.state === 'finished', [], { timeout: 300000, what: 'the run\'s end' });
const deployed = async (page, n) => {
  await page.waitFor((d) => {
    const meta = document.querySelector('meta[name="q4-deploy"]');
    return (meta ? meta.content : '1') === d && /^Engine ready/.test(document.getElementById('engine-status').textContent);
  }, [String(n)], { timeout: 120000, what: `the page of deploy ${n}` });
  return ready(page);
};

/** Cache Storage: the shell caches, the last line of the cached engine, the number of cached data files. */
const cached = (page) => page.evaluate(async () => {
  const keys = await caches.keys();
  const shells = keys.filter((k) => k.startsWith('q4-shell-'));
  const engine = shells.length ? await (await caches.open(shells[0])).match(new URL('wasm/q4.js', location.href).href) : null;
  const data = await (await caches.open('q4-data')).keys();
  return { shells, engineTail: engine ? (await engine.text()).trim().split('\n').pop() : null, data: data.length };
});

for (const name of Object.keys(BROWSERS)) {
  test(`${name}: a phone-sized window, dropped files, a real download, and a new deploy that keeps the data`, async () => {
    fs.rmSync(ROOT, { recursive: true, force: true });
    copySite('dist', ROOT); // deploy 1, as make site wrote it
    const downloads = fs.mkdtempSync(path.join(os.tmpdir(), `q4-downloads-${name}-`));
    const browser = await (name === 'firefox' ? firefox({ prefs: {
      'browser.download.folderList': 2, 'browser.download.dir': downloads, 'browser.download.useDownloadDir': true,
      'browser.download.always_ask_before_handling_new_types': false } }) : webkit({ home: downloads }));
    let page;
    try {
      page = await browser.open(`${url}${RUN}`);
      await ready(page);
      await page.evaluate(record);

      // a phone-sized window (WebKit's MiniBrowser goes no narrower than 447 px, its toolbar's
      // width): nothing wider than the window
      await page.resize(390, 844);
      const wide = await page.waitFor(() => window.innerWidth <= 450 && {
        inner: window.innerWidth,
        width: document.documentElement.scrollWidth,
        elements: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
          .map((e) => `${e.tagName.toLowerCase()}#${e.id}`).slice(0, 5),
      }, [], { what: 'a window at most 450 px wide' });
      assert.ok(wide.width <= wide.inner, `content is ${wide.width} px wide in a ${wide.inner} px window: ${wide.elements.join(', ')}`);

      // the official files dropped on the page: they load and a run trains on them
      const dropped = await page.evaluate(async (names) => {
        const transfer = new DataTransfer();
        for (const n of names) {
          const bytes = await (await fetch(`data/cifar-10-batches-bin/${n}`)).arrayBuffer();
          transfer.items.add(new File([bytes], n));
        }
        const zone = document.getElementById('drop-zone');
        zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
        return transfer.files.length;
      }, SHARDS);
      assert.equal(dropped, 2);
      const status = await page.waitFor(() => {
        const error = document.getElementById('error');
        const s = document.getElementById('data-status').textContent;
        return (!error.hidden && `ERROR: ${error.textContent}`) || (/^CIFAR-10: 10,000 training/.test(s) && s);
      }, [], { what: 'the dropped files' });
      assert.match(status, /^CIFAR-10: 10,000 training and 10,000 test images, 10 classes\./);
      await page.click('#start');
      await finished(page);
      assert.match(await page.text('m-test'), /^\d+\.\d\d% \(best/);

      // a checkpoint saved as a real download, into the download folder (Firefox names the file at
      // once and fills it through a .part file it renames at the end; WebKit fills the named file
      // itself, so a download is complete only when its size has held for one poll: reading it at
      // the first non-zero size read a part of it, 3 times in 4 runs of 2026-12-06)
      await page.click('#download-checkpoint');
      const file = path.join(downloads, 'q4-step4.ckpt');
      let lastSize = -1;
      const complete = () => {
        const size = fs.existsSync(file) ? fs.statSync(file).size : 0;
        const held = size > 0 && size === lastSize && !fs.readdirSync(downloads).some((f) => f.endsWith('.part'));
        lastSize = size;
        return held;
      };
      for (let i = 0; i < 240 && !complete(); i++) await new Promise((resolve) => setTimeout(resolve, 250));
      assert.ok(complete(), `no complete q4-step4.ckpt in the download folder: ${fs.readdirSync(downloads).join(' ')}`);
      assert.equal(checkpointParameters(fs.readFileSync(file)).length, PARAMETERS, 'a whole checkpoint was saved');

      // a new deploy while the page is open: the next visit brings the new page and engine, and
      // the data stays cached (no shard is fetched again)
      const first = await cached(page);
      assert.equal(first.shells.length, 1, `shell caches: ${first.shells.join(' ')}`);
      assert.ok(first.data >= 2, `the data is cached (${first.data} files)`);
      deploy(ROOT, 2);
      const from = seen.length;
      await page.evaluate(() => { location.reload(); return true; });
      await deployed(page, 2);
      await page.evaluate(record);
      const second = await cached(page);
      assert.deepEqual(second.shells, [`${first.shells[0]}-deploy2`], 'the old version\'s files are gone');
      assert.equal(second.engineTail, '// deploy 2', 'the new engine is cached');
      assert.equal(second.data, first.data, 'the data is still cached');
      await page.click('#load-default');
      const loaded = await page.waitFor(() => {
        const error = document.getElementById('error');
        const s = document.getElementById('data-status').textContent;
        return (!error.hidden && `ERROR: ${error.textContent}`) || (/^CIFAR-10: [\d,]+ training/.test(s) && s);
      }, [], { what: 'the cached data' });
      assert.match(loaded, /^CIFAR-10: 10,000 training and 10,000 test images/);
      const fetched = seen.slice(from);
      assert.ok(fetched.includes('index.html') && fetched.includes(path.join('wasm', 'q4.js')), `fetched: ${fetched.join(' ')}`);
      // (the class names, batches.meta.txt, were never fetched before: the first run trained on dropped files)
      assert.deepEqual(fetched.filter((f) => f.endsWith('.bin')), [], 'the new version loads the cached shards');
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
      assert.deepEqual(page.errors, []);
      assert.deepEqual(await page.evaluate(() => window.q4visit.errors), []);
      console.log(`# ${browser.version}: ${wide.inner} px window, content ${wide.width} px; dropped files trained; ` +
        `deploy 2 took over and loaded the ${second.data} data files it found cached`);
    } finally {
      if (page) await page.close().catch(() => {});
      await browser.close();
      fs.rmSync(downloads, { recursive: true, force: true });
    }
  });
}

// Firefox with a storage limit of 20 MB for everything (its temporary storage; a site gets a
// share of it): the page, the data it caches and the run it saves do not fit. The shards and the
// saved run are refused; the page says so and trains to the end. (WebKitGTK's MiniBrowser has no
// setting for its quota; Chromium's side is in hardening.test.mjs.)
test('firefox: full storage: the data is served though it cannot all be kept, a warning, and training goes on to the end', async () => {
  fs.rmSync(ROOT, { recursive: true, force: true });
  copySite('dist', ROOT);
  const browser = await firefox({ prefs: { 'dom.quotaManager.temporaryStorage.fixedLimit': 20000 } });
  const from = seen.length;
  let page;
  try {
    page = await browser.open(`${url}?preset=custom&epochs=1&train_limit=256&test_limit=100&batch_size=64&threads=2`);
    await ready(page);
    await page.evaluate(record);
    await page.click('#start');
    await page.waitFor(() => window.q4visit.state === 'finished' || (!document.getElementById('error').hidden &&
      document.getElementById('error').textContent), [], { timeout: 300000, what: 'the run\'s end' });
    assert.equal(await page.evaluate(() => document.getElementById('error').hidden || document.getElementById('error').textContent), true);
    assert.equal(await page.evaluate(() => window.q4visit.epochs), 1, 'the epoch trained');
    assert.match(await page.evaluate(() => window.q4visit.saveFailed || ''), /storage for the page is full.*training goes on/);
    assert.equal(await page.evaluate(() => !document.getElementById('warning').hidden), true, 'the visitor is told');
    const kept = await cached(page);
    const fetched = seen.slice(from).filter((f) => f.startsWith('data'));
    assert.ok(kept.data < fetched.length, `${kept.data} of ${fetched.length} data files kept: some must not fit`);
    assert.deepEqual(page.errors, []);
    assert.deepEqual(await page.evaluate(() => window.q4visit.errors), []);
    console.log(`# ${browser.version} with 20 MB of storage: ${kept.data} of ${fetched.length} data files kept; ` +
      `"${await page.evaluate(() => document.getElementById('warning').textContent)}"`);
  } finally {
    if (page) await page.close().catch(() => {});
    await browser.close();
  }
});
