// threads-choice.test.mjs - what wasm/q4.js decides before any engine runs, under Node.js:
// which thread count it offers from the probe's timings (a browser may report more cores than
// it runs: WebKitGTK says 4 on this 2-core machine), and why it refuses threads where the page
// is not cross-origin isolated. Run by `make test-browser`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../wasm/q4.js';

const { usefulThreads, noThreadsReason } = globalThis.Q4;
/** A probe answering from a table of seconds per thread count, noting what it was asked. */
const probe = (seconds) => {
  const asked = [];
  const fn = (t) => {
    asked.push(t);
    return seconds[t];
  };
  fn.asked = asked;
  return fn;
};

test('the threads offered: what the cores reported, less what a measurement shows does not pay', () => {
  // 2 or fewer reported: offered as they are, nothing measured
  const none = probe({});
  assert.equal(usefulThreads(none, 2), 2);
  assert.equal(usefulThreads(none, 1), 1);
  assert.deepEqual(none.asked, []);
  // 4 reported, 2 real cores: 3 and 4 threads take as long as 2
  assert.equal(usefulThreads(probe({ 2: 1.0, 3: 1.02, 4: 0.99 }), 4), 2);
  // 4 real cores, an all-core clock 10% below the one-core one: all 4 pay
  assert.equal(usefulThreads(probe({ 2: 1.0, 3: 0.73, 4: 0.55 }), 4), 4);
  // 8 reported, 6 real: 7 and 8 do not pay (each must save half of what perfect scaling would)
  const six = probe({ 2: 1.0, 3: 0.67, 4: 0.5, 5: 0.4, 6: 0.34, 7: 0.33, 8: 0.335 });
  assert.equal(usefulThreads(six, 8), 6);
  assert.deepEqual(six.asked, [2, 3, 4, 5, 6, 7, 8]);
  // a probe that fails (threads could not be had): the reported count stands
  assert.equal(usefulThreads(probe({ 2: -1 }), 4), 4);
});

test('no threads where the page is not cross-origin isolated, and the reason says so', () => {
  assert.equal(globalThis.crossOriginIsolated, undefined);
  assert.match(noThreadsReason(), /^the page is not cross-origin isolated \(serve it with COOP\/COEP headers for threads\)$/);
  globalThis.crossOriginIsolated = true; // Node shares WebAssembly memory over MessageChannel
  try {
    assert.equal(noThreadsReason(), null);
  } finally {
    delete globalThis.crossOriginIsolated;
  }
});
