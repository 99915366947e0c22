// cards.test.mjs - run cards across the native trainer and the page, in exact mode: a card
// made natively verifies in the page bit for bit, a card made in the page verifies natively,
// (evaluated in integer arithmetic: the same figures), a tampered card fails with the step named,
// a forged accuracy with the figure named, a card
// without fingerprints is refused before any training, the fast recipe is as exact as the
// paper's, a run resumed in the page has a card that begins at its checkpoint (verified natively
// from it), and a check can be cancelled. The
// verdicts come from the core's verifier, the same code as `q4train --verify`. Run by
// `make test-browser`.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch, openPage, shot, text, waitForState } from './harness.mjs';

const OUT = path.resolve('test-output');
const Q4 = path.resolve('build/q4train');
// 128 images at batch 64: 2 steps an epoch, 2 epochs: 4 step fingerprints and 2 epoch ones
const RUN = ['--train-limit', '128', '--test-limit', '100', '--batch', '64', '--epochs', '2'];

let env;
before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  env = await launch();
});
after(async () => env && env.close());

async function verifyInPage(page, card, steps = 0) {
  await page.fill('#verify-steps', String(steps));
  // clear the previous verdict first, or the wait below could see it before the page reacts
  await page.evaluate(() => { document.getElementById('verify-status').textContent = ''; });
  await page.evaluate(() => { document.getElementById('error').hidden = true; });
  await page.setInputFiles('#verify-input', card);
  await page.waitForFunction(() => /^(Verified|Partly checked|DIFFERENT|Cancelled)/.test(
    document.getElementById('verify-status').textContent) || !document.getElementById('error').hidden,
  null, { timeout: 300000 });
  const error = await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
  return error ? `ERROR: ${error}` : text(page, 'verify-status');
}

/** The card at `from` with `change` applied to its JSON, written to OUT/name. */
function altered(from, name, change) {
  const json = JSON.parse(fs.readFileSync(from, 'utf8'));
  change(json);
  const to = path.join(OUT, name);
  fs.writeFileSync(to, JSON.stringify(json));
  return to;
}

test('a card made natively in exact mode verifies in the page bit for bit; a tampered one fails at its step', async () => {
  const card = path.join(OUT, 'native-card.json');
  execFileSync(Q4, ['--data', 'data', ...RUN, '--seed', '3', '--exact', '1', '--card', card, '--quiet']);
  const { context, page } = await openPage(env.browser, env.url);
  const status = await verifyInPage(page, card);
  assert.match(status, /^Verified: every claim of the card recomputed and identical: 4 steps trained, 6 fingerprints \(4 steps, 2 epochs\) and 8 figures/);
  assert.match(status, /epoch 2: test accuracy [\d.]+% \(the card: [\d.]+%\)/);
  await shot(page, '30-card-verified');

  const tampered = altered(card, 'tampered-card.json', (c) => { c.steps[2] = c.steps[2].replace(/^./, (x) => (x === '0' ? '1' : '0')); });
  assert.match(await verifyInPage(page, tampered), /^DIFFERENT: the training state after step 3 differs from the card's/);
  // genuine fingerprints, a false accuracy: the figure is recomputed, not only the state
  const forged = altered(card, 'forged-card.json', (c) => { c.epochs[1].test_accuracy = 0.99; });
  assert.match(await verifyInPage(page, forged), /^DIFFERENT: epoch 2's test accuracy: recomputed [\d.]+% \([\d.]+\), the card claims 99\.00% \(0\.99\)/);
  const bare = altered(card, 'bare-card.json', (c) => { c.steps = []; c.epochs = []; });
  assert.match(await verifyInPage(page, bare), /^ERROR: .*the run card has no fingerprints/);
  const twice = path.join(OUT, 'twice-card.json'); // the same key twice: JSON.parse would take the last
  fs.writeFileSync(twice, fs.readFileSync(card, 'utf8').replace('"card":1,', '"card":1,"engine":"q4 9.9",'));
  assert.match(await verifyInPage(page, twice), /^ERROR: .*the card has the key 'engine' twice/);
  const partial = await verifyInPage(page, card, 3);
  assert.match(partial, /^Partly checked: the first 3 of the card's 4 steps identical \(4 fingerprints, 4 figures\); NOT checked: epochs 2-2/);
  await context.close();
});

test('the fast recipe in exact mode: a native card verifies in the page bit for bit', async () => {
  // SGD with Nesterov momentum, the per-step one-cycle schedule, label smoothing, alternating
  // flips and test-time augmentation: none of it in the paper recipe the test above uses
  const card = path.join(OUT, 'native-fast15-card.json');
  execFileSync(Q4, ['--data', 'data', ...RUN, '--recipe', 'fast15', '--seed', '6', '--exact', '1',
    '--card', card, '--quiet']);
  const json = JSON.parse(fs.readFileSync(card, 'utf8'));
  assert.equal(json.config.recipe, 'fast15');
  const { context, page } = await openPage(env.browser, env.url);
  assert.match(await verifyInPage(page, card),
    /^Verified: every claim of the card recomputed and identical: 4 steps trained, 6 fingerprints \(4 steps, 2 epochs\)/);
  const forged = altered(card, 'forged-fast15-card.json', (c) => { c.steps[3] = c.steps[3].replace(/^./, (x) => (x === '0' ? '1' : '0')); });
  assert.match(await verifyInPage(page, forged), /^DIFFERENT: the training state after step 4 differs from the card's/);
  await context.close();
});

test('a verification can be cancelled, and says what it did not check', async () => {
  // a card of a run stopped after 20 steps (of 96 planned): 20 step fingerprints to check
  const card = path.join(OUT, 'long-card.json');
  execFileSync(Q4, ['--data', 'data', '--train-limit', '2048', '--test-limit', '100', '--batch', '64', '--epochs', '3',
    '--seed', '5', '--exact', '1', '--card', card, '--max-steps', '20', '--quiet']);
  const { context, page, errors } = await openPage(env.browser, env.url);
  await page.fill('#verify-steps', '0');
  await page.setInputFiles('#verify-input', card);
  await page.waitForFunction(() => /^Checking: step [1-9]/.test(document.getElementById('verify-status').textContent),
    null, { timeout: 120000 });
  await page.click('#verify-cancel');
  await page.waitForFunction(() => /^Cancelled/.test(document.getElementById('verify-status').textContent), null,
    { timeout: 60000 });
  assert.match(await text(page, 'verify-status'), /^Cancelled: cancelled after step \d+ of 20: .*the rest NOT checked/);
  await waitForState(page, 'ready', 10000);
  assert.deepEqual(errors, []);
  await context.close();
});

// ... evaluated in integer arithmetic (issue 26): the page's SIMD128 integer kernels and the native
// ones (AVX-512 VNNI, AVX2) give the same test accuracies, which the verification recomputes
test('a card made in the page in exact mode, evaluated in integer arithmetic, verifies natively', async () => {
  const { context, page } = await openPage(env.browser,
    `${env.url}?preset=custom&epochs=2&train_limit=128&test_limit=100&batch_size=64&seed=4&exact=1&integer_eval=1`,
    { acceptDownloads: true });
  await page.click('#start');
  await waitForState(page, 'finished', 300000);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-card')]);
  const card = path.join(OUT, 'page-card.json');
  await download.saveAs(card);
  await context.close();
  const json = JSON.parse(fs.readFileSync(card, 'utf8'));
  assert.equal(json.exact, 1);
  assert.equal(json.config.integer_eval, 1);
  assert.equal(json.steps.length, 4);
  assert.equal(json.epochs.length, 2);
  assert.match(json.kernels, /wasmsimd/);
  const native = spawnSync(Q4, ['--data', 'data', '--verify', card, '--quiet'], { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stdout + native.stderr);
  assert.match(native.stdout, /VERIFIED: every claim of the card recomputed and identical: 4 steps trained, 6 fingerprints/);
});

test('a run resumed in the page from a native checkpoint: its card begins there, equals the native one, and verifies natively from that checkpoint only', async () => {
  const settings = ['--data', 'data', ...RUN, '--seed', '4', '--exact', '1', '--quiet'];
  const checkpoint = path.join(OUT, 'cards-step1.ckpt'), nativeCard = path.join(OUT, 'cards-resumed-native.json');
  fs.rmSync(nativeCard, { force: true });
  execFileSync(Q4, [...settings, '--max-steps', '1', '--checkpoint', checkpoint]);
  execFileSync(Q4, ['--data', 'data', '--resume', checkpoint, '--card', nativeCard, '--threads', '2', '--quiet']);
  const { context, page, errors } = await openPage(env.browser, env.url, { acceptDownloads: true });
  await page.setInputFiles('#checkpoint-input', checkpoint);
  await waitForState(page, 'paused', 180000);
  await page.click('#resume');
  await waitForState(page, 'finished', 300000);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-card')]);
  const card = path.join(OUT, 'cards-resumed-page.json');
  await download.saveAs(card);
  const json = JSON.parse(fs.readFileSync(card, 'utf8'));
  assert.deepEqual([json.start.step, json.start.epoch, json.steps.length, json.epochs.length], [1, 0, 3, 2]);
  const withoutKernels = (t) => t.replace(/"kernels":"[^"]*",/, '').trimEnd();
  assert.equal(withoutKernels(fs.readFileSync(card, 'utf8')), withoutKernels(fs.readFileSync(nativeCard, 'utf8')),
    'the page\'s card of the resumed run is the native trainer\'s but for its kernels');
  // the page cannot verify it without the checkpoint, and says how
  const verdict = await verifyInPage(page, card);
  assert.match(verdict, /^ERROR: .*continues a checkpoint at step 1 .*--resume CHECKPOINT/);
  await context.close();
  assert.deepEqual(errors, []);
  const native = spawnSync(Q4, ['--data', 'data', '--verify', card, '--resume', checkpoint, '--quiet'], { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stdout + native.stderr);
  assert.match(native.stdout, /VERIFIED: every claim of the card recomputed and identical: 3 steps trained from its checkpoint at step 1/);
  const wrong = spawnSync(Q4, ['--data', 'data', '--verify', card], { encoding: 'utf8' });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /this card's run resumed a checkpoint at step 1/);
});

/** Checks an exported model (with its card, or none) in the page: the final status, or ERROR: the message. */
async function checkModelInPage(page, model, card) {
  await page.evaluate(() => {
    document.getElementById('model-status').textContent = '';
    document.getElementById('error').hidden = true;
  });
  await page.setInputFiles('#model-input', model);
  await page.setInputFiles('#model-card-input', card || []);
  await page.click('#check-model');
  await page.waitForFunction(() => /AS CLAIMED|DIFFERENT|No run card/.test(document.getElementById('model-status').textContent) ||
    !document.getElementById('error').hidden, null, { timeout: 300000 });
  const error = await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
  return error ? `ERROR: ${error}` : text(page, 'model-status');
}

// issue 21: a published model (q4train --export) scores its card's claim in the page as natively
// (q4train --eval-model M --card C: test_cli.sh); the card's run in exact mode, so the bits agree
test('an exported model checked in the page against its run card: AS CLAIMED, a false claim and other data named, a check cancelled; it then answers Try the model', async () => {
  const model = path.join(OUT, 'native-model.q4'), card = path.join(OUT, 'native-model-card.json');
  execFileSync(Q4, ['--data', 'data', ...RUN, '--recipe', 'fast15', '--seed', '7', '--exact', '1', '--card', card,
    '--export', model, '--quiet']);
  const native = spawnSync(Q4, ['--data', 'data', '--eval-model', model, '--card', card], { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stdout + native.stderr);
  const last = JSON.parse(fs.readFileSync(card, 'utf8')).epochs.at(-1);
  const pct = (x) => `${(100 * x).toFixed(2)}%`.replace('.', '\\.');
  const { context, page, errors } = await openPage(env.browser, env.url);

  const status = await checkModelInPage(page, model, card);
  assert.match(status, new RegExp(`^native-model\\.q4: test accuracy ${pct(last.test_accuracy)} \\(\\d+/100\\), with ` +
    `test-time augmentation ${pct(last.tta_accuracy)} \\(\\d+/100\\)\\. AS CLAIMED: the card native-model-card\\.json ` +
    `claims test accuracy ${pct(last.test_accuracy)} \\(${pct(last.tta_accuracy)} with test-time augmentation\\) after epoch 2`));
  assert.equal(await page.$eval('#model-status', (e) => e.className), 'note ok');
  await shot(page, '33-model-as-claimed');

  // it now answers Try the model (a drawing), and says which model answered
  await page.click('#classify-drawing');
  await page.waitForFunction(() => document.querySelectorAll('#top5 li').length === 5);
  assert.match(await text(page, 'try-source'), /^Answered by the model loaded from native-model\.q4/);

  const forged = altered(card, 'forged-model-card.json', (c) => { c.epochs[1].test_accuracy = 0.99; });
  assert.match(await checkModelInPage(page, model, forged),
    /DIFFERENT: the card forged-model-card\.json claims test accuracy 99\.00% .*the model does not score what the card says\. It now answers Try the model\.$/);
  assert.equal(await page.$eval('#model-status', (e) => e.className), 'note bad');
  const otherData = altered(card, 'other-data-model-card.json', (c) => { c.data.files['test_batch.bin'] = '0'.repeat(32); });
  assert.match(await checkModelInPage(page, model, otherData), /^ERROR: other-data-model-card\.json: test_batch\.bin differs from the run card's/);
  assert.match(await checkModelInPage(page, card, card), /^ERROR: native-model-card\.json: not a q4 model file/);
  // a check in progress shows how far it is and can be cancelled between batches: no verdict, the
  // page free again (without a card: every test image, 79 batches of 128)
  await page.setInputFiles('#model-input', model);
  await page.setInputFiles('#model-card-input', []);
  await page.click('#check-model');
  await page.waitForFunction(() => /^Evaluating: [\d,]+ of 10,000 test images…$/.test(document.getElementById('model-status').textContent));
  assert.equal(await page.isDisabled('#check-cancel'), false, 'Cancel works while a model is checked');
  await page.click('#check-cancel');
  await page.waitForFunction(() => /cancelled/.test(document.getElementById('model-status').textContent));
  const cancelled = await text(page, 'model-status');
  const stopped = Number(/cancelled after ([\d,]+) of/.exec(cancelled)[1].replace(/,/g, ''));
  assert.match(cancelled, /^native-model\.q4: cancelled after [\d,]+ of 10,000 test images: not evaluated to the end\. It now answers Try the model\.$/);
  assert.ok(stopped >= 128 && stopped < 10000 && stopped % 128 === 0, `stopped between batches (${stopped})`);
  await page.waitForFunction(() => !document.getElementById('check-model').disabled);
  assert.equal(await page.isDisabled('#check-cancel'), true, 'Cancel is off once the check has stopped');
  // without a card: the plain accuracy on every test image, nothing to compare with
  assert.match(await checkModelInPage(page, model, null),
    /^native-model\.q4: test accuracy [\d.]+% \(\d+\/10000\)\. No run card given: nothing to compare with\./);
  assert.deepEqual(errors, []);
  await context.close();
});
