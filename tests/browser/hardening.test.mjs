// hardening.test.mjs - the page as an unlucky or careless user meets it: threads changed while
// training and while paused (no hang, the same weights as without the changes), storage that is
// full (a warning, training goes on), files dropped while training, a checkpoint that does not
// fit uploaded while paused (refused, the paused run goes on), several saved runs kept and
// deleted, settings in a link that are out of range or need 64 bits, and a file that stops
// being readable half-way (a clear error, no memory kept). Run by `make test-browser`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { checkpointParameters, launch, openPage, shot, text, waitForState } from './harness.mjs';

const OUT = path.resolve('test-output');
const Q4 = path.resolve('build/q4train');
const SMALL = 'preset=custom&epochs=1&train_limit=512&test_limit=256&batch_size=64';

let env;
before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  env = await launch();
});
after(async () => env && env.close());

const steps = (page) => page.evaluate(() => window.q4test.losses.length);
const waitSteps = (page, n, timeout = 180000) =>
  page.waitForFunction((k) => window.q4test.losses.length >= k, n, { timeout });
const setThreads = (page, n) => page.$eval('#s-threads', (input, value) => {
  input.value = String(value);
  input.dispatchEvent(new Event('change', { bubbles: true }));
}, n);

async function downloadCheckpoint(page, name) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-checkpoint')]);
  const file = path.join(OUT, name);
  await download.saveAs(file);
  return fs.readFileSync(file);
}

test('threads change while training and while paused: no hang, and the weights do not depend on it', async () => {
  // 24 steps (not SMALL's 8): under load, a run of 8 steps could end before the pause arrived
  const url = `${env.url}?preset=custom&epochs=1&train_limit=768&test_limit=128&batch_size=32&threads=2&seed=4`;
  const { context, page, errors } = await openPage(env.browser, url, { acceptDownloads: true });
  await page.click('#start');
  await waitSteps(page, 2);
  await setThreads(page, 1); // while running
  const at = await steps(page);
  await waitSteps(page, at + 2);
  await page.click('#pause');
  assert.equal(await waitForState(page, ['paused', 'finished']), 'paused', 'the run ended before the pause arrived');
  await setThreads(page, 2); // while paused
  await page.click('#resume');
  await waitSteps(page, (await steps(page)) + 1);
  await setThreads(page, 1);
  await waitSteps(page, (await steps(page)) + 1);
  await setThreads(page, 2);
  await waitForState(page, 'finished', 300000);
  const changed = await downloadCheckpoint(page, 'threads-changed.ckpt');
  await context.close();

  const straight = await openPage(env.browser, url, { acceptDownloads: true });
  await straight.page.click('#start');
  await waitForState(straight.page, 'finished', 300000);
  const plain = await downloadCheckpoint(straight.page, 'threads-straight.ckpt');
  await straight.context.close();
  assert.deepEqual(checkpointParameters(changed), checkpointParameters(plain),
    'changing threads mid-run changed the weights');
  assert.deepEqual(errors, []);
});

test('full browser storage: a warning, and training goes on to the end', async () => {
  const { context, page } = await openPage(env.browser, `${env.url}?preset=custom&epochs=2&train_limit=256&test_limit=128&batch_size=64`);
  const cdp = await context.newCDPSession(page);
  const origin = new URL(env.url).origin;
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 1000000 });
  try {
    await page.click('#start');
    await waitForState(page, 'finished', 300000);
  } finally {
    await cdp.send('Storage.overrideQuotaForOrigin', { origin }); // the other tests save runs
  }
  assert.equal(await page.isVisible('#warning'), true, 'the user is told');
  assert.match(await text(page, 'warning'), /storage for the page is full.*training goes on/);
  assert.equal(await page.evaluate(() => window.q4test.epochs.length), 2, 'both epochs trained');
  await shot(page, '10-storage-full');
  await context.close();
});

test('a file dropped while training is refused and the run goes on; loading is disabled', async () => {
  const { context, page } = await openPage(env.browser, `${env.url}?preset=custom&epochs=1&train_limit=1024&test_limit=128&batch_size=64`);
  await page.click('#start');
  await waitSteps(page, 2);
  assert.equal(await page.isDisabled('#load-default'), true);
  assert.equal(await page.isDisabled('#checkpoint-input'), true);
  const transfer = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(3073)], 'data_batch_1.bin'));
    return dt;
  });
  await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: transfer });
  assert.match(await text(page, 'error'), /Pause or stop training before loading other data/);
  assert.equal(await page.evaluate(() => window.q4test.state), 'running');
  await waitForState(page, 'finished', 300000);
  assert.equal(await page.evaluate(() => window.q4test.epochs.length), 1);
  await context.close();
});

test('a checkpoint that does not fit, uploaded while paused, is refused and the paused run goes on', async () => {
  // natively: a run on 20,000 images; the page below has loaded one shard (10,000)
  const foreign = path.join(OUT, 'needs-20000.ckpt');
  execFileSync(Q4, ['--data', 'data', '--train-limit', '20000', '--test-limit', '128', '--batch', '64', '--epochs', '1',
    '--max-steps', '1', '--checkpoint', foreign, '--quiet']);
  const corrupt = path.join(OUT, 'corrupt.ckpt');
  const bytes = fs.readFileSync(foreign);
  bytes[bytes.length >> 1] ^= 1;
  fs.writeFileSync(corrupt, bytes);

  const { context, page } = await openPage(env.browser, `${env.url}?preset=custom&epochs=1&train_limit=640&test_limit=128&batch_size=64&seed=2`);
  await page.click('#start');
  await waitSteps(page, 3);
  await page.click('#pause');
  await waitForState(page, 'paused');
  const before = await page.evaluate(() => window.q4test.losses.at(-1)[0]);
  await page.setInputFiles('#checkpoint-input', foreign);
  await page.waitForFunction(() => /20,000 training/.test(document.getElementById('error').textContent));
  await page.setInputFiles('#checkpoint-input', corrupt);
  await page.waitForFunction(() => /CRC-32/.test(document.getElementById('error').textContent));
  assert.equal(await page.evaluate(() => window.q4test.state), 'paused');
  await page.click('#resume');
  await waitForState(page, 'finished', 300000);
  const stepsAfter = await page.evaluate(() => window.q4test.losses.map((l) => l[0]));
  assert.equal(stepsAfter[stepsAfter.indexOf(before) + 1], before + 1, 'the paused run continued from where it was');
  assert.equal(stepsAfter.at(-1), 10, 'and finished its 10 steps');
  await context.close();
});

test('several saved runs are kept, named by their settings, and can be deleted', async () => {
  const { context, page } = await openPage(env.browser, `${env.url}?preset=custom&epochs=1&train_limit=128&test_limit=64&batch_size=64`);
  await page.click('#start');
  await waitForState(page, 'finished', 300000);
  await page.fill('#s-seed', '9');
  await page.click('#start');
  await page.waitForFunction(() => window.q4test.state === 'running');
  await waitForState(page, 'finished', 300000);
  await page.waitForFunction(() => document.querySelectorAll('#runs-table tbody tr').length >= 2);
  const rows = await page.$$eval('#runs-table tbody tr', (trs) => trs.map((tr) => tr.cells[1].textContent)); // cells[0]: compare
  assert.ok(rows.some((r) => /seed 9/.test(r)) && rows.some((r) => /seed 0/.test(r)), `runs: ${rows.join(' | ')}`);
  assert.match(rows[0], /paper recipe · 1 epoch · 128 images · seed 9 · batch_size 64/);
  await shot(page, '11-saved-runs');
  const count = rows.length;
  await page.click('#runs-table tbody tr:last-child button.secondary');
  await page.waitForFunction((n) => document.querySelectorAll('#runs-table tbody tr').length === n - 1, count);
  await context.close();
});

// The page's own link reader (settings.js settingsFromUrl, what the page runs on load) on another link,
// in a page already open: its address changed to the link, the element `clear` emptied (the error box
// hidden, or the recipe note cleared) so that what shows after is this link's. Its verdict: valid or not.
const readLink = (page, query, clear) => page.evaluate(async ([q, id]) => {
  const box = document.getElementById(id);
  if (id === 'error') box.hidden = true;
  else box.textContent = '';
  history.replaceState(null, '', `?${q}`);
  return (await import(new URL('settings.js', location.href).href)).settingsFromUrl();
}, [query, clear]);

test('settings in a link: out of range refused with the rule, 64-bit seeds kept exactly', async () => {
  let linkPage = null;
  for (const [query, words] of [['epochs=1e9', /epochs must be a whole number from 1 to 10000, not '1e9'/],
    ['weight_bits=4.0', /weight_bits must be a whole number from 2 to 32, not '4.0'/],
    ['weight_bits=16', /weight_bits must be 2 to 8, or 32 \(FP32 weights\), not '16'/],
    ['train_limit=-5', /train_limit must be a whole number from 0 to 1000000, not '-5'/],
    ['seed=-1', /seed must be a whole number from 0 to 18446744073709551615/],
    ['learning_rte=0.1', /settings this page does not have: learning_rte/],
    // a preset the page does not have (one renamed since the link was made): said, not replaced by another in silence
    ['preset=headline20&autostart=1', /a preset this page does not have: 'headline20' \(it has quick, fast, .*headline18/],
    ['preset=fast&seed=', /The link gives no value for seed/],
    ['preset=fast&learning_rate=abc', /learning_rate must be a number from .*, not 'abc'/]]) {
    // the first link opens a page; each other one is read by the same page's own link reader
    // (settings.js settingsFromUrl, what the page runs on load) after the address changes to it
    if (!linkPage) {
      linkPage = await openPage(env.browser, `${env.url}?${query}`);
      await linkPage.page.waitForSelector('#error:not([hidden])');
    } else {
      assert.equal(await readLink(linkPage.page, query, 'error'), false, query);
      assert.equal(await linkPage.page.$eval('#error', (e) => e.hidden), false, query);
    }
    assert.match(await text(linkPage.page, 'error'), words, query);
    assert.match(await text(linkPage.page, 'error'), /Nothing was started/, query);
  }
  // each preset of a README run: the form it fills (preset, then settings), and what the recipe note says it
  // changes in its recipe (null: nothing). The same page reads each preset's link as above (the note
  // cleared first); the form is read once the note has been drawn for the preset.
  const presetForm = async (preset, settings, changed) => {
    const { page } = linkPage;
    assert.equal(await readLink(page, `preset=${preset}`, 'recipe-note'), true, preset);
    await page.waitForFunction((c) => document.getElementById('recipe-note').textContent.includes('The fast15 recipe') &&
      (c === null || document.getElementById('recipe-note').textContent.includes(`Changed here: ${c}.`)), changed);
    const form = await page.evaluate((names) => ['preset', ...names.map((n) => `s-${n}`)]
      .map((id) => document.getElementById(id).value).join(' '), settings);
    const note = await text(page, 'recipe-note');
    if (changed === null) assert.doesNotMatch(note, /Changed here/, preset);
    else assert.match(note, new RegExp(`^The fast15 recipe: .* Changed here: ${changed.replace(/\./g, '\\.')}\\.$`), preset);
    return form;
  };
  // fast15: the configuration of the README's headline runs (make headline)
  assert.equal(await presetForm('fast15', ['recipe', 'epochs', 'flip', 'cutout', 'train_limit', 'learning_rate', 'batch_size'], null),
    'fast15 fast15 15 alternate 0 0 0.07 64');
  // headline: fast15 with lookahead 5, which the recipe note names as the preset's own change
  assert.equal(await presetForm('headline', ['recipe', 'epochs', 'flip', 'lookahead', 'train_limit'], 'lookahead 5'),
    'headline fast15 15 alternate 5 0');
  // headline18: the same planned for 18 epochs (the README's 18-epoch lookahead runs)
  assert.equal(await presetForm('headline18', ['recipe', 'epochs', 'flip', 'lookahead', 'train_limit'], 'lookahead 5'),
    'headline18 fast15 18 alternate 5 0');
  // three: fast15 planned for 3 epochs at peak learning rate 0.1 (the README's 3-epoch runs)
  assert.equal(await presetForm('three', ['recipe', 'epochs', 'learning_rate', 'batch_size', 'train_limit'], 'learning rate 0.1'),
    'three fast15 3 0.1 64 0');
  await linkPage.context.close();
  // an invalid link never starts a run, even with autostart; Start refuses the empty box it left
  const { context: c2, page: p2 } = await openPage(env.browser, `${env.url}?preset=fast&learning_rate=&autostart=1`);
  await p2.waitForSelector('#error:not([hidden])');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await p2.evaluate(() => window.q4test.state), 'idle', 'an invalid link started a run');
  await p2.click('#start');
  await p2.waitForFunction(() => /These settings have no valid value: learning_rate/.test(document.getElementById('error').textContent));
  assert.equal(await p2.evaluate(() => window.q4test.state), 'idle');
  await c2.close();
  // a native checkpoint with the largest seed resumes in the page with that exact seed
  const big = '18446744073709551615';
  const native = path.join(OUT, 'big-seed.ckpt');
  execFileSync(Q4, ['--data', 'data', '--train-limit', '256', '--test-limit', '64', '--batch', '64', '--epochs', '1',
    '--seed', big, '--max-steps', '2', '--checkpoint', native, '--quiet']);
  const { context, page } = await openPage(env.browser, `${env.url}?${SMALL}&seed=${big}`, { acceptDownloads: true });
  assert.equal(await page.$eval('#s-seed', (i) => i.value), big);
  await page.setInputFiles('#checkpoint-input', native);
  await waitForState(page, 'paused', 180000);
  assert.equal(await page.$eval('#s-seed', (i) => i.value), big, 'the form shows the checkpoint\'s seed');
  const copy = await downloadCheckpoint(page, 'big-seed-from-page.ckpt');
  assert.match(copy.toString('latin1'), /\nseed=18446744073709551615\n/);
  assert.deepEqual(checkpointParameters(copy), checkpointParameters(fs.readFileSync(native)));
  await context.close();
});

test('a file that stops being readable half-way: one clear error, and nothing kept in memory', async () => {
  // an uncompressed tar of the real shards, changed on disk after it was chosen: the browser then
  // refuses to read the rest of it (its snapshot no longer matches)
  const tar = path.join(OUT, 'cifar-10-binary.tar');
  execFileSync('tar', ['-C', 'data', '-cf', tar, 'cifar-10-batches-bin']);
  const { context, page } = await openPage(env.browser, env.url);
  const inUse = () => page.evaluate(() => window.q4test.memoryInUse);
  // the baseline: what was in use when the first load began (its 'loading' state), before any of
  // it was read; a first failed load that kept its data would now show above it
  await page.evaluate(() => window.addEventListener('q4', (e) => {
    if (e.detail.memoryInUse === undefined) return;
    window.q4test.memoryInUse = e.detail.memoryInUse;
    if (e.detail.state === 'loading' && window.q4test.memoryBeforeLoad === undefined)
      window.q4test.memoryBeforeLoad = e.detail.memoryInUse;
  }));
  let baseline = null;
  for (let round = 0; round < 3; round++) {
    await page.setInputFiles('#file-input', tar);
    // polled from here (not in the page's animation frames): change the file once a part is read
    for (let t = 0; t < 600; t++) {
      const status = await text(page, 'data-status');
      const m = /Reading cifar-10-binary\.tar: ([\d.]+) of/.exec(status);
      if (m && Number(m[1]) > 20) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    fs.appendFileSync(tar, Buffer.alloc(512)); // changes its size and time
    await page.waitForSelector('#error:not([hidden])', { timeout: 120000 });
    assert.match(await text(page, 'error'), /cifar-10-binary\.tar: could not be read/);
    await page.waitForFunction(() => ['idle', 'ready'].includes(window.q4test.state));
    const now = await inUse();
    if (baseline === null) baseline = await page.evaluate(() => window.q4test.memoryBeforeLoad);
    assert.ok(typeof baseline === 'number', 'no memory figure when the first load began');
    assert.ok(now <= baseline + 65536, `round ${round}: ${now} bytes in use after the failed load, ${baseline} before the first`);
    await page.evaluate(() => {
      document.getElementById('error').hidden = true;
      document.getElementById('data-status').textContent = '';
      document.getElementById('file-input').value = '';
    });
  }
  await context.close();
});
