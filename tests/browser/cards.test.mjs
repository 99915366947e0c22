// cards.test.mjs - run cards across the native trainer and the page, in exact mode: a card
// made natively verifies in the page bit for bit, a card made in the page verifies natively,
// and a tampered card fails with the step named. Run by `make test-browser`.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch, openPage, shot, text, waitForState } from './harness.mjs';

const OUT = path.resolve('test-output');
const Q4 = path.resolve('build/q4train');
// 256 images at batch 64: 4 steps an epoch, 2 epochs: 8 step fingerprints and 2 epoch ones
const RUN = ['--train-limit', '256', '--test-limit', '100', '--batch', '64', '--epochs', '2'];

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
  await page.setInputFiles('#verify-input', card);
  await page.waitForFunction(() => /^(Identical|DIFFERENT)/.test(document.getElementById('verify-status').textContent),
    null, { timeout: 300000 });
  return text(page, 'verify-status');
}

test('a card made natively in exact mode verifies in the page bit for bit; a tampered one fails at its step', async () => {
  const card = path.join(OUT, 'native-card.json');
  execFileSync(Q4, ['--data', 'data', ...RUN, '--seed', '3', '--exact', '1', '--card', card, '--quiet']);
  const { context, page } = await openPage(env.browser, env.url);
  const status = await verifyInPage(page, card);
  assert.match(status, /^Identical: bit-identical to the card: 8 steps, 10 fingerprints compared/);
  assert.match(status, /epoch 2: test accuracy [\d.]+% \(the card: [\d.]+%\)/);
  await shot(page, '30-card-verified');

  const tampered = path.join(OUT, 'tampered-card.json');
  const json = JSON.parse(fs.readFileSync(card, 'utf8'));
  json.steps[2] = json.steps[2].replace(/^./, (c) => (c === '0' ? '1' : '0'));
  fs.writeFileSync(tampered, JSON.stringify(json));
  assert.match(await verifyInPage(page, tampered), /^DIFFERENT: the training state after step 3 differs from the card's/);
  await context.close();
});

test('a card made in the page in exact mode verifies natively', async () => {
  const { context, page } = await openPage(env.browser,
    `${env.url}?preset=custom&epochs=2&train_limit=256&test_limit=100&batch_size=64&seed=4&exact=1`, { acceptDownloads: true });
  await page.click('#start');
  await waitForState(page, 'finished', 300000);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-card')]);
  const card = path.join(OUT, 'page-card.json');
  await download.saveAs(card);
  await context.close();
  const json = JSON.parse(fs.readFileSync(card, 'utf8'));
  assert.equal(json.exact, 1);
  assert.equal(json.steps.length, 8);
  assert.equal(json.epochs.length, 2);
  assert.match(json.kernels, /wasmsimd/);
  const native = spawnSync(Q4, ['--data', 'data', '--verify', card, '--quiet'], { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stdout + native.stderr);
  assert.match(native.stdout, /bit-identical to the card: 8 steps trained, 10 fingerprints compared/);
});
