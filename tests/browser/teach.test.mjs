// teach.test.mjs - the page in a lesson: runs at other bit widths overlaid on one chart, the
// paper's ablation queued as one preset, the trained model asked about a photo and a test
// image, and conv1's filters drawn. Run by `make test-browser`; screenshots in test-output/.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, openPage, shot, waitForState } from './harness.mjs';

const TINY = 'epochs=1&train_limit=256&test_limit=128&batch_size=64';
let env;
before(async () => { env = await launch(); });
after(async () => env && env.close());

/** Pixels of a colour in a canvas (the charts draw each series in its own colour). */
const colourPixels = (page, id, rgb) => page.$eval(`#${id}`, (c, [r, g, b]) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 30) n++;
  return n;
}, rgb);

test('a 2-bit and a 4-bit run overlaid; the model answers about a photo and a test image; filters drawn', async () => {
  const { context, page, errors } = await openPage(env.browser, `${env.url}?preset=custom&${TINY}&weight_bits=2`);
  await page.click('#start');
  await waitForState(page, 'finished', 300000);
  const two = await page.evaluate(() => window.q4test.lastReport.layers.map((l) => [l.levels, l.histogram.length]));
  assert.deepEqual(two[0], [3, 3], '2-bit weights: 3 levels');
  await page.fill('#s-weight_bits', '4');
  await page.dispatchEvent('#s-weight_bits', 'input');
  await page.click('#start');
  await page.waitForFunction(() => window.q4test.state === 'running');
  await waitForState(page, 'finished', 300000);
  const four = await page.evaluate(() => window.q4test.lastReport.layers[0].levels);
  assert.equal(four, 15);

  // overlay the 2-bit run: its test accuracy appears on the chart in the third colour (green)
  const green = [0x16, 0xa3, 0x4a];
  const before = await colourPixels(page, 'chart-accuracy', green);
  const row = page.locator('#runs-table tbody tr', { hasText: '2-bit' });
  await row.locator('input[type=checkbox]').check();
  await page.waitForTimeout(500);
  const afterOverlay = await colourPixels(page, 'chart-accuracy', green);
  assert.ok(afterOverlay > before + 10, `the 2-bit run is drawn (${before} -> ${afterOverlay} green pixels)`);

  // a photo, made here as a PNG of any size, dropped on the page
  const answer = page.evaluate(() => new Promise((resolve) => window.addEventListener('q4', (e) => {
    if (e.detail.type === 'classified') resolve(e.detail.probabilities);
  })));
  const photo = await page.evaluateHandle(async () => {
    const c = document.createElement('canvas');
    c.width = 200;
    c.height = 120;
    const g = c.getContext('2d');
    g.fillStyle = '#3b82f6';
    g.fillRect(0, 0, 200, 120);
    g.fillStyle = '#f59e0b';
    g.fillRect(70, 30, 60, 60);
    const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'photo.png', { type: 'image/png' }));
    return dt;
  });
  await page.dispatchEvent('#photo-zone', 'drop', { dataTransfer: photo });
  const probabilities = await answer;
  assert.equal(probabilities.length, 10);
  assert.ok(Math.abs(probabilities.reduce((s, p) => s + p, 0) - 1) < 1e-6, 'the probabilities sum to 1');
  await page.waitForFunction(() => document.querySelectorAll('#top5 li').length === 5);
  const top = await page.$$eval('#top5 li', (items) => items.map((li) => li.textContent));
  const shown = top.map((t) => Number(/([\d.]+)%/.exec(t)[1]) / 100);
  assert.ok(shown.every((p, i) => i === 0 || p <= shown[i - 1]), `top 5 in order: ${top.join(' | ')}`);
  assert.ok(shown.reduce((s, p) => s + p, 0) <= 1.0001, 'the top 5 take at most all the probability');
  assert.ok(await colourPixels(page, 'seen-image', [0xf5, 0x9e, 0x0b]) > 0, 'the 32x32 image the model saw is shown');

  // a test image from the grid
  // (the top 5 still shows the photo's answer: wait for the model's view to become the clicked
  // image, pixel for pixel, and for a new top 5)
  const previous = await page.$eval("#top5", (l) => l.textContent);
  await page.click('#image-grid .cell:nth-child(3)');
  await page.waitForFunction((old) => {
    const pixels = (c) => c.getContext('2d').getImageData(0, 0, 32, 32).data.join();
    const cell = document.querySelector('#image-grid .cell:nth-child(3) canvas');
    return pixels(document.getElementById('seen-image')) === pixels(cell) &&
      document.querySelectorAll('#top5 li').length === 5 && document.getElementById('top5').textContent !== old;
  }, previous);
  // conv1's filters: both halves drawn
  const painted = await page.$eval('#chart-filters', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] < 700) n++;
    return n;
  });
  assert.ok(painted > 500, `filters drawn (${painted} coloured pixels)`);
  assert.equal(await page.$$eval('#layers-table tbody tr', (r) => r.length), 8);
  await shot(page, '40-teaching');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the ablation preset queues its five runs and overlays them', async () => {
  const { context, page } = await openPage(env.browser, `${env.url}?preset=ablation&${TINY}`);
  await page.click('#start');
  await page.waitForFunction(() => document.querySelectorAll('#runs-table tbody tr').length >= 5 &&
    window.q4test.state === 'finished' && document.querySelectorAll('#runs-table input:checked').length >= 4,
  null, { timeout: 600000 });
  const rows = await page.$$eval('#runs-table tbody tr', (trs) => trs.map((tr) => tr.cells[1].textContent));
  for (const label of ['the paper\'s method', 'without tanh clipping', 'without per-layer scaling',
    'without gradient clipping', 'plain AdamW']) assert.ok(rows.some((r) => r.startsWith(label)), `${label} in ${rows.join(' | ')}`);
  await shot(page, '41-ablation');
  await context.close();
});

test('the fast preset picks the fast recipe, on all the data, and says what the recipe contains; so does a link', async () => {
  const { context, page } = await openPage(env.browser, `${env.url}?preset=fast`);
  await page.waitForFunction(() => document.getElementById('recipe-note').textContent.includes('fast'));
  const value = (name) => page.$eval(`#s-${name}`, (i) => i.value);
  assert.equal(await value('recipe'), 'fast');
  assert.equal(await value('epochs'), '3');
  assert.equal(await value('train_limit'), '0');
  assert.equal(await value('optimizer'), 'sgd');
  const note = await page.$eval('#recipe-note', (p) => p.textContent);
  assert.match(note, /optimizer sgd/);
  assert.match(note, /schedule onecycle/);
  await context.close();
  // a link naming the recipe gets the recipe's settings, refined by the others it names
  const link = await openPage(env.browser, `${env.url}?preset=custom&recipe=fast&epochs=2&learning_rate=0.05`);
  const linked = (name) => link.page.$eval(`#s-${name}`, (i) => i.value);
  assert.deepEqual([await linked('recipe'), await linked('batch_size'), await linked('crop'), await linked('optimizer'),
    await linked('learning_rate'), await linked('epochs')], ['fast', '64', '2', 'sgd', '0.05', '2']);
  // the note names what the link changes in the recipe (not the plan: epochs), and follows an edit
  await link.page.waitForFunction(() => /Changed here/.test(document.getElementById('recipe-note').textContent));
  assert.match(await link.page.$eval('#recipe-note', (p) => p.textContent), /\. Changed here: learning rate 0\.05\.$/);
  await link.page.fill('#s-batch_size', '32');
  await link.page.dispatchEvent('#s-batch_size', 'change');
  await link.page.waitForFunction(() => /batch size 32/.test(document.getElementById('recipe-note').textContent));
  assert.match(await link.page.$eval('#recipe-note', (p) => p.textContent), /Changed here: batch size 32, learning rate 0\.05\.$/);
  await link.context.close();
});
