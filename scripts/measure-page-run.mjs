// measure-page-run.mjs - the page's short run (SHORT_RUN, tests/browser/harness.mjs) in
// Debian's Chromium, seeds 0-4: the test accuracy at its end, and while it trains the engine's
// memory in use (the page's memory figure) and the resident memory of Chromium's renderer
// processes. The measurements behind tests/browser/page.test.mjs's thresholds; run by
// scripts/measure-thresholds.sh. Usage: node scripts/measure-page-run.mjs [SEEDS...]
import { launch, openPage, renderersRss, SHORT_RUN, waitForState } from '../tests/browser/harness.mjs';

const seeds = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [0, 1, 2, 3, 4];
const env = await launch();
try {
  for (const seed of seeds) {
    const { context, page } = await openPage(env.browser, `${env.url}?${SHORT_RUN}&seed=${seed}`);
    await page.click('#start');
    await page.waitForFunction(() => window.q4test.losses.length >= 3, null, { timeout: 300000 });
    const memory = await page.$eval('#m-memory', (e) => e.textContent);
    const rss = renderersRss();
    await waitForState(page, 'finished', 600000);
    const accuracy = await page.evaluate(() => window.q4test.lastReport.test_accuracy);
    console.log(`page short run seed ${seed}: test accuracy ${(100 * accuracy).toFixed(2)}%, engine memory ${memory}, ` +
      `renderer RSS ${(rss / 1048576).toFixed(0)} MiB`);
    await context.close();
  }
} finally {
  await env.close();
}
