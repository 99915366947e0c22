// browsers.test.mjs - the built site (make site) in Firefox ESR and in WebKitGTK (the engine of
// Safari), as a visitor meets it on a plain static host under a sub-path: the page isolates
// itself through its service worker, with no console error; Firefox trains on 2 threads;
// WebKitGTK, which isolates the page but refuses to share memory with workers (its
// SharedArrayBuffer is off), trains on one thread and says so. In each, a run card in exact
// mode is the native trainer's, byte for byte but for the line that names the kernels; the
// browser verifies a native card and checks a native model against it; a native checkpoint resumes, its download holds the same
// weights, and the run it finishes ends on the native run's weights. Chromium's side is in the
// other test files. Run by `make test-browser`; the browsers come from scripts/setup.sh
// (firefox-esr, webkit2gtk-driver, xvfb). Each test prints the browser's version, its time to
// isolation and its speed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startServer } from '../../scripts/serve.mjs';
import { BROWSERS } from './engines.mjs';
import { checkpointParameters } from './harness.mjs';

const OUT = path.resolve('test-output');
const Q4 = path.resolve('build/q4train');
// 128 images at batch 64: 2 steps an epoch, 2 epochs, exact mode, in both trainers
const LINK = '?preset=custom&epochs=2&train_limit=128&test_limit=100&batch_size=64&seed=4&exact=1&threads=2';
const NATIVE = ['--data', 'data', '--train-limit', '128', '--test-limit', '100', '--batch', '64', '--epochs', '2',
  '--seed', '4', '--exact', '1', '--quiet'];

let server, url;
const native = {};

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const weightsDigest = (file) => {
  const p = checkpointParameters(fs.readFileSync(file));
  return sha256(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
};
/** A card's text without the entry naming the kernels (which differ between machines by design)
 * and the newline the native trainer ends its file with. */
const withoutKernels = (text) => text.replace(/"kernels":"[^"]*",/, '').trimEnd();

before(async () => {
  assert.ok(fs.existsSync('dist/sw.js'), 'make site');
  fs.mkdirSync(OUT, { recursive: true });
  ({ server, url } = await startServer({ port: 0, quiet: true, isolation: false, root: 'dist', base: '/course/q4/' }));
  native.card = path.join(OUT, 'browsers-native-card.json');
  native.model = path.join(OUT, 'browsers-native-model.q4');
  execFileSync(Q4, [...NATIVE, '--threads', '2', '--card', native.card, '--export', native.model]);
  native.checkpoint = path.join(OUT, 'browsers-native-step1.ckpt');
  execFileSync(Q4, [...NATIVE, '--max-steps', '1', '--checkpoint', native.checkpoint]);
  const end = path.join(OUT, 'browsers-native-end.ckpt');
  execFileSync(Q4, ['--data', 'data', '--resume', native.checkpoint, '--checkpoint', end, '--quiet']);
  native.step1 = weightsDigest(native.checkpoint);
  native.end = weightsDigest(end);
});
after(() => server && server.close());

/* Runs in the page once it is ready: follows its `q4` events, and keeps what it downloads (a
 * checkpoint as the SHA-256 of its weights, as checkpointParameters reads them) while letting
 * the browser download it as usual. */
function record() {
  const r = { state: 'idle', epochs: 0, card: null, checkpoints: [], errors: [] };
  window.q4rec = r;
  // what a console would show as an error (WebDriver classic has no console of its own)
  window.addEventListener('error', (e) => r.errors.push(e.message));
  window.addEventListener('unhandledrejection', (e) => r.errors.push(String(e.reason)));
  const consoleError = console.error;
  console.error = (...args) => { r.errors.push(args.join(' ')); consoleError.apply(console, args); };
  window.addEventListener('q4', (e) => {
    const m = e.detail;
    if (m.type === 'state') r.state = m.state;
    if (m.type === 'epoch') r.epochs++;
    if (m.type === 'card-text') r.card = m.text;
  });
  const click = HTMLAnchorElement.prototype.click;
  HTMLAnchorElement.prototype.click = function () {
    if (this.download && this.download.endsWith('.ckpt')) {
      fetch(this.href).then((res) => res.arrayBuffer()).then(async (buffer) => {
        const view = new DataView(buffer);
        const header = view.getUint32(12, true);
        const count = Number(view.getBigUint64(16 + 76, true));
        const at = 16 + header + 4 + view.getUint32(16 + header, true);
        const digest = await crypto.subtle.digest('SHA-256', buffer.slice(at, at + 4 * count));
        r.checkpoints.push({ name: this.download, weights: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('') });
      });
    }
    return click.call(this);
  };
  return true;
}

/* Waits for one of the wanted states; a timeout says where the page stood (its state, status
 * lines, error box and last progress), so that a stall names its phase. */
async function state(page, wanted, timeout = 300000) {
  try {
    return await page.waitFor((s) => s.includes(window.q4rec.state), [wanted], { timeout, what: `state ${wanted}` });
  } catch (e) {
    const where = await page.evaluate(() => {
      const t = (id) => document.getElementById(id).textContent.trim();
      return JSON.stringify({ state: window.q4rec.state, epochs: window.q4rec.epochs, run: t('run-status'),
        data: t('data-status'), engine: t('engine-status'), step: t('m-epoch'),
        error: document.getElementById('error').hidden ? '' : t('error'), errors: window.q4rec.errors });
    }).catch((e2) => `(the page did not answer: ${e2.message})`);
    throw new Error(`${e.message}; the page: ${where}`);
  }
}

/* What each browser can do here: Firefox ESR 153 runs the threaded build; WebKitGTK 2.50 posts
 * no shared memory to a worker (DataCloneError), so it gets the one-thread build. */
const EXPECTED = {
  firefox: { threads: '2', status: /threads on \(up to 2 threads on this machine\)/ },
  webkit: { threads: '1', status: /one thread: this browser does not share memory between workers \(its SharedArrayBuffer is turned off\)/ },
};

for (const name of Object.keys(BROWSERS)) {
  test(`${name}: the site isolates itself and trains (${EXPECTED[name].threads} thread(s)); cards and checkpoints identical to the native trainer's`, async () => {
    const started = Date.now();
    const browser = await BROWSERS[name]();
    let page;
    try {
      const opened = Date.now();
      page = await browser.open(`${url}${LINK}`);
      const status = await page.waitFor(() => {
        const s = document.getElementById('engine-status').textContent;
        return /^Engine ready/.test(s) && document.getElementById('s-epochs').value !== '' && s;
      }, [], { timeout: 120000, what: 'the engine' });
      const isolation = Date.now() - opened;
      assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'isolated by the service worker');
      assert.match(status, EXPECTED[name].status, status);
      const threads = await page.evaluate(() => document.getElementById('s-threads').value);
      assert.equal(threads, EXPECTED[name].threads);
      // the native card of the same run on as many threads (a card records the thread count)
      const nativeCard = path.join(OUT, `browsers-native-card-${threads}.json`);
      execFileSync(Q4, [...NATIVE, '--threads', threads, '--card', nativeCard]);
      await page.evaluate(record);

      // a run in exact mode: its card is the native card
      const t0 = Date.now();
      await page.click('#start');
      await state(page, ['finished']);
      const seconds = (Date.now() - t0) / 1000;
      const speed = await page.text('m-speed');
      await page.click('#download-card');
      const card = await page.waitFor(() => window.q4rec.card, [], { what: 'the card' });
      assert.match(card, /"kernels":"[^"]*wasmsimd"/);
      assert.equal(withoutKernels(card), withoutKernels(fs.readFileSync(nativeCard, 'utf8')),
        'the card is the native card but for its kernels');

      // the browser verifies the native card
      await page.evaluate(() => { document.getElementById('verify-status').textContent = ''; return true; });
      await page.upload('#verify-input', native.card);
      const verdict = await page.waitFor(() => {
        const error = document.getElementById('error');
        const v = document.getElementById('verify-status').textContent;
        return (!error.hidden && `ERROR: ${error.textContent}`) || (/^(Verified|Partly|DIFFERENT|Cancelled)/.test(v) && v);
      }, [], { timeout: 300000, what: 'the verdict' });
      assert.match(verdict, /^Verified: every claim of the card recomputed and identical: 4 steps trained, 6 fingerprints/);
      await state(page, ['ready', 'idle', 'finished', 'stopped']);

      // the native run's exported model scores its card's claim here too (Check a published run)
      await page.evaluate(() => { document.getElementById('model-status').textContent = ''; return true; });
      await page.upload('#model-input', native.model);
      await page.upload('#model-card-input', native.card);
      await page.click('#check-model');
      const checked = await page.waitFor(() => {
        const error = document.getElementById('error');
        const v = document.getElementById('model-status').textContent;
        return (!error.hidden && `ERROR: ${error.textContent}`) || (/AS CLAIMED|DIFFERENT|No run card/.test(v) && v);
      }, [], { timeout: 120000, what: 'the model check' });
      assert.match(checked, /^browsers-native-model\.q4: test accuracy [\d.]+% \(\d+\/100\)\. AS CLAIMED: the card browsers-native-card\.json claims/);
      await state(page, ['ready', 'idle', 'finished', 'stopped']);

      // a native checkpoint resumes here; the page's download holds its weights; the run ends on the native weights
      await page.upload('#checkpoint-input', native.checkpoint);
      await state(page, ['paused'], 120000);
      assert.match(await page.text('run-status'), /Resumed at epoch 1, step 1/);
      await page.click('#download-checkpoint');
      const first = await page.waitFor(() => window.q4rec.checkpoints[0], [], { what: 'the checkpoint download' });
      assert.equal(first.name, 'q4-step1.ckpt');
      assert.equal(first.weights, native.step1, 'the downloaded checkpoint holds the native weights');
      await page.click('#resume');
      await state(page, ['finished']);
      await page.click('#download-checkpoint');
      const last = await page.waitFor(() => window.q4rec.checkpoints[1], [], { what: 'the second download' });
      assert.equal(last.name, 'q4-step4.ckpt');
      assert.equal(last.weights, native.end, 'the resumed run ends on the native run\'s weights');
      assert.deepEqual(page.errors, []);
      assert.deepEqual(await page.evaluate(() => window.q4rec.errors), []);
      console.log(`# ${browser.version}: isolated and ready ${(isolation / 1000).toFixed(1)} s after opening the page ` +
        `(browser start ${((opened - started) / 1000).toFixed(1)} s); ${status.replace(/^Engine ready: /, '')}; ` +
        `2 epochs of 128 images in ${seconds.toFixed(1)} s (the page's speed: ${speed}); card, verification, model check and checkpoints identical`);
    } finally {
      if (page) await page.close().catch(() => {});
      await browser.close();
    }
  });
}
