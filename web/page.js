// page.js - what the page's modules share: the element lookup, the page's state (ui), requests
// to the training worker that it answers, messages to the user, number formats, and whether this
// is the built site (make site) and whether its data came with it.

export const $ = (id) => document.getElementById(id);
/** The built site (make site) says so in a meta tag: {data: whether the shards came with it}. */
export const SITE = (() => {
  const meta = document.querySelector('meta[name="q4-site"]');
  return meta ? JSON.parse(meta.content) : null;
})();
export const HAS_DATA = !SITE || SITE.data;

export const ui = {
  worker: null, ready: false, state: 'idle', threaded: false, maxThreads: 1, fields: [], data: null, dataSource: null,
  classNames: [], images: [], losses: [], epochs: [], lastReport: null, runs: [], offered: null, stepsPerEpoch: 0,
  pendingStart: null, drawQueued: false, dirty: new Set(), gridPredictions: null, requests: new Map(), nextRequest: 1,
  verifyEpochs: [], compare: new Set(), queue: [], queueIds: [], queueSize: 0,
  checkProgress: null, checkPlain: null, // the model check under way: its last progress, its plain figures
};

// ---------------------------------------------------------------- requests to the worker
/** Sends a message that the worker answers with {id}; resolves with the answer, rejects with its error. */
export function request(message) {
  const id = ui.nextRequest++;
  return new Promise((resolve, reject) => {
    ui.requests.set(id, { resolve, reject });
    ui.worker.postMessage({ ...message, id });
  });
}

// ---------------------------------------------------------------- messages to the page
export function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}
export function clearError() { $('error').hidden = true; $('warning').hidden = true; }
export function showWarning(message) {
  $('warning').textContent = message;
  $('warning').hidden = false;
}

/* 50000 -> "50,000". Not toLocaleString: its first call loads the locale data on the main
 * thread (measured: 30-39 ms, enough to make a long task while training starts). */
export const grouped = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
export const percent = (v) => `${(100 * v).toFixed(2)}%`;
