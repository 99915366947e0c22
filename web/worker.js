// worker.js - owns the engine: loads the WebAssembly build, the data, runs the training
// loop a step at a time (so pause, resume and stop act between steps), ends each epoch with
// the engine's one call (evaluation, best accuracy, layer statistics, profile), keeps the
// latest checkpoint in IndexedDB, and reports everything to the page by messages. The page's
// main thread never trains. A classic worker: Emscripten 3.1.6's pthread workers load the
// engine script with importScripts. Every URL is relative to this script.
/* global Q4 */
'use strict';

importScripts('wasm/q4.js');

const CIFAR10_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin',
  'data_batch_5.bin', 'test_batch.bin', 'batches.meta.txt'];
const CIFAR100_FILES = ['train.bin', 'test.bin', 'fine_label_names.txt', 'coarse_label_names.txt'];
const GRID = 32; // test images shown with their predictions (the engine's reports carry 32)

let engine = null;
let state = 'idle'; // idle | loading | ready | running | paused | stopped | finished | verifying | checking
let run = null;     // {dataSource, lastSeen}
let asking = null;  // the model Try the model asks: null (the training run's), or {name} of a loaded export

const post = (message, transfer) => {
  // every state change says how much of the engine's memory is in use (it goes back down
  // after a failed load: nothing is kept)
  if (message.type === 'state' && engine) message.memoryInUse = engine.memoryInUse();
  self.postMessage(message, transfer || []);
};
const fail = (where, e) => post({ type: 'error', where, message: e && e.message ? e.message : String(e) });

// ---------------------------------------------------------------- IndexedDB: saved runs
// Database 'q4', version 2: store 'runs' holds each run's description (meta, small: listing
// reads only these), store 'checkpoints' its latest checkpoint (bytes), both keyed by the
// run's id. Version 1 kept one checkpoint under 'latest'; the upgrade makes it a run.
const RUNS = 'runs', CHECKPOINTS = 'checkpoints';

function openStore() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open('q4', 2);
    request.onupgradeneeded = (event) => {
      const db = request.result, tx = request.transaction;
      if (event.oldVersion < 1) {
        db.createObjectStore(RUNS, { keyPath: 'id' });
        db.createObjectStore(CHECKPOINTS);
        return;
      }
      // version 1: 'checkpoints' holds {bytes, meta} under 'latest'
      db.createObjectStore(RUNS, { keyPath: 'id' });
      const old = tx.objectStore(CHECKPOINTS);
      old.get('latest').onsuccess = (e) => {
        const value = e.target.result;
        old.delete('latest');
        if (!value) return;
        const id = `run-${value.meta && value.meta.savedAt ? value.meta.savedAt : Date.now()}`;
        old.put(value.bytes, id);
        tx.objectStore(RUNS).put({ id, savedAt: value.meta ? value.meta.savedAt : Date.now(), migrated: true });
      };
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Runs a transaction to its end; rejects on error and on abort (how quota errors arrive). */
function transact(db, stores, mode, work) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(stores, mode);
    let result;
    tx.oncomplete = () => resolve(result);
    // the failed request's error (Firefox reports a full storage there, QuotaExceededError, before the transaction has one)
    tx.onerror = (e) => reject((e.target && e.target.error) || tx.error || new Error('storage error'));
    tx.onabort = () => reject(tx.error || new DOMException('the browser aborted the save', 'AbortError'));
    result = work(tx);
  });
}

async function withStore(fn) {
  const db = await openStore();
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

const putRun = (meta, bytes) => withStore((db) => transact(db, [RUNS, CHECKPOINTS], 'readwrite', (tx) => {
  tx.objectStore(RUNS).put(meta);
  tx.objectStore(CHECKPOINTS).put(bytes, meta.id);
}));

const deleteRun = (id) => withStore((db) => transact(db, [RUNS, CHECKPOINTS], 'readwrite', (tx) => {
  tx.objectStore(RUNS).delete(id);
  tx.objectStore(CHECKPOINTS).delete(id);
}));

function readAll(db, store) {
  return transact(db, [store], 'readonly', (tx) => {
    const out = [];
    tx.objectStore(store).openCursor().onsuccess = (e) => {
      const cursor = e.target.result;
      if (cursor) {
        out.push(cursor.value);
        cursor.continue();
      }
    };
    return out;
  });
}

const readCheckpoint = (id) => withStore((db) => new Promise((resolve, reject) => {
  const request = db.transaction(CHECKPOINTS).objectStore(CHECKPOINTS).get(id);
  request.onsuccess = () => resolve(request.result || null);
  request.onerror = () => reject(request.error);
}));

/** Every saved run's description, newest first (a migrated one described from its checkpoint). */
async function listRuns() {
  const runs = await withStore((db) => readAll(db, RUNS));
  for (const meta of runs.filter((m) => m.migrated)) {
    const bytes = await readCheckpoint(meta.id);
    const info = bytes ? engine.checkpointInfo(bytes) : null;
    if (!info) continue;
    Object.assign(meta, { migrated: false, config: info.config, epoch: info.epoch, stepInEpoch: info.step_in_epoch,
      globalStep: info.global_step, bestAccuracy: info.best_accuracy, history: [], createdAt: meta.savedAt,
      status: 'stopped', dataSource: null });
    meta.name = runName(info.config);
    await withStore((db) => transact(db, [RUNS], 'readwrite', (tx) => tx.objectStore(RUNS).put(meta)));
  }
  return runs.sort((a, b) => b.savedAt - a.savedAt);
}

async function postRuns() {
  try {
    post({ type: 'runs', runs: await listRuns() });
  } catch (e) {
    fail('runs', e);
  }
}

// ---------------------------------------------------------------- data
async function fetchWithProgress(url, name, index, count) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${name}: ${response.status} ${response.statusText} (${url})`);
  const total = Number(response.headers.get('Content-Length')) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let done = 0;
  let last = 0;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    chunks.push(value);
    done += value.length;
    const now = performance.now();
    if (now - last > 100) {
      last = now;
      post({ type: 'load-progress', name, done, total, index, count });
    }
  }
  const bytes = new Uint8Array(done);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/** Official files from a folder URL (the default: the shards `make data` prepared). */
async function filesFromFolder(folder, kind, trainLimit) {
  let names = kind === 100 ? CIFAR100_FILES : CIFAR10_FILES;
  if (kind === 10 && trainLimit > 0) {
    // only the training shards the subset needs (10,000 images each)
    const shards = Math.min(5, Math.ceil(trainLimit / 10000));
    names = names.filter((n) => !n.startsWith('data_batch_') || Number(n[11]) <= shards);
  }
  const base = new URL(folder.endsWith('/') ? folder : `${folder}/`, self.location.href);
  const files = [];
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    try {
      files.push({ name, bytes: await fetchWithProgress(new URL(name, base).href, name, i, names.length) });
    } catch (e) {
      if (name.endsWith('.txt')) continue; // label names are optional
      throw e;
    }
  }
  return files;
}

async function loadData(source, trainLimit) {
  state = 'loading';
  post({ type: 'state', state });
  const kind = source.kind || 10;
  let files;
  if (source.type === 'files') {
    files = source.files.map((f) => ({ name: f.name, blob: f }));
  } else {
    files = await filesFromFolder(source.url, kind, trainLimit);
  }
  let lastPost = 0;
  const info = engine.loadData(files, kind, {
    requireComplete: false,
    onProgress: (name, done, total) => {
      const now = performance.now();
      if (now - lastPost > 100 || done === total) {
        lastPost = now;
        post({ type: 'load-progress', name, done, total, parsing: true });
      }
    },
  });
  const images = [];
  for (let i = 0; i < Math.min(GRID, info.test); i++) images.push({ pixels: engine.testImage(i), label: engine.testLabel(i) });
  run = { ...(run || {}), dataSource: source.type === 'files' ? { type: 'files', names: files.map((f) => f.name), kind }
    : { type: 'url', url: source.url, kind } };
  state = 'ready';
  post({ type: 'data', info, images });
  post({ type: 'state', state });
  return info;
}

// ---------------------------------------------------------------- training
const grouped = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** The settings of a configuration that differ from its recipe's, as "name value". */
function changedSettings(config) {
  const recipe = engine.resolve({ recipe: config.recipe, num_classes: config.num_classes });
  return engine.fields.filter((f) => f.method && String(recipe[f.name]) !== String(config[f.name]))
    .map((f) => `${f.name} ${config[f.name]}`);
}

/** A run's name: its recipe, size and seed, and what it changed. */
function runName(config) {
  const changes = changedSettings(config);
  const epochs = `${config.epochs} epoch${config.epochs === 1 ? '' : 's'}`;
  return `${config.recipe} recipe · ${epochs} · ${grouped(config.train_limit)} images · seed ${config.seed}` +
    (config.weight_bits === 32 ? ' · FP32' : config.weight_bits !== 4 ? ` · ${config.weight_bits}-bit` : '') +
    (config.scale === 'global' ? ' · one scale' : '') + (changes.length ? ` · ${changes.join(', ')}` : '');
}

/** Keeps the run's state in the browser; a failure (storage full) is reported, never fatal. */
async function saveRun(status) {
  if (!run || !run.meta || engine.session < 0) return;
  const p = engine.progress();
  Object.assign(run.meta, { savedAt: Date.now(), epoch: p.epoch, stepInEpoch: p.step_in_epoch,
    globalStep: p.global_step, bestAccuracy: p.best_accuracy, status });
  try {
    const bytes = engine.save();
    try {
      run.meta.card = engine.card();
    } catch {
      run.meta.card = null; /* no card (out of memory when the run began): training goes on */
    }
    await putRun(run.meta, bytes);
    post({ type: 'saved', epoch: p.epoch, step: p.step_in_epoch, bytes: bytes.length, id: run.meta.id, status });
  } catch (e) {
    const full = e && (e.name === 'QuotaExceededError' || /quota/i.test(e.message || ''));
    post({ type: 'save-failed', message: full ? 'This browser\'s storage for the page is full, so the run could not be ' +
      'kept here; training goes on. Delete saved runs to make room, or download the checkpoint.'
      : `The run could not be kept in this browser (${e && e.message ? e.message : e}); training goes on.` });
  }
  await postRuns();
}

async function finishEpoch(progress) {
  const report = engine.endEpoch();
  run.meta.history.push({ epoch: report.epoch, train_accuracy: report.train_accuracy,
    test_accuracy: report.test_accuracy, loss: report.loss, tta_accuracy: report.tta_accuracy });
  run.meta.testAccuracy = report.test_accuracy;
  post({ type: 'epoch', report, progress, memory: engine.memoryBytes(), threads: engine.config.threads,
    filters: engine.conv1() });
  await saveRun(report.epoch >= engine.config.epochs ? 'finished' : 'in progress');
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

async function trainLoop() {
  state = 'running';
  post({ type: 'state', state });
  let rate = 0;
  while (state === 'running') {
    const t0 = performance.now();
    let p;
    try {
      p = engine.train(1);
    } catch (e) {
      state = 'stopped';
      fail('training', e);
      break;
    }
    const seconds = (performance.now() - t0) / 1000;
    const images = p.images_seen - (run.lastSeen || 0);
    run.lastSeen = p.epoch_done ? 0 : p.images_seen;
    const now = images / seconds;
    rate = rate ? 0.8 * rate + 0.2 * now : now;
    const left = (p.steps_per_epoch - p.step_in_epoch) + (engine.config.epochs - p.epoch - 1) * p.steps_per_epoch;
    post({ type: 'step', progress: p, imagesPerSecond: rate, stepSeconds: seconds,
      etaSeconds: rate > 0 ? left * engine.config.batch_size / rate : 0, memory: engine.memoryBytes(),
      memoryInUse: engine.memoryInUse() });
    if (p.epoch_done) {
      await finishEpoch(p);
      if (p.epoch + 1 >= engine.config.epochs) {
        state = 'finished';
        break;
      }
    }
    await tick();
  }
  post({ type: 'state', state });
  if (state === 'paused' || state === 'stopped') await saveRun(state);
}

/** A new run: a new session and a new saved-run record (other saved runs stay). */
function startSession(settings, label) {
  engine.createSession(settings);
  asking = null;
  const now = Date.now();
  run = { ...run, lastSeen: 0, meta: { id: `run-${now}`, name: runName(engine.config), label: label || null, config: engine.config,
    dataSource: run && run.dataSource, createdAt: now, savedAt: now, epoch: 0, history: [], status: 'in progress' } };
  post({ type: 'session', progress: engine.progress(), config: engine.config, info: engine.sessionInfo(),
    run: run.meta });
}

/**
 * Continues a checkpoint (bytes) as run `meta` (a saved run's, or a new one for an uploaded
 * file). Checked before anything is replaced: a foreign, corrupt or mismatched checkpoint
 * leaves the current session and run as they were.
 */
function resumeFrom(bytes, meta, threads) {
  const info = engine.checkpointInfo(bytes); // throws on corrupt or foreign bytes
  const data = engine.dataInfo();
  if (info.config.num_classes < data.classes || info.train_count > data.train || info.test_count > data.test)
    throw new Error(`this checkpoint was made with ${grouped(info.train_count)} training and ${grouped(info.test_count)} ` +
      `test images of ${info.config.num_classes} classes; the loaded data has ${grouped(data.train)} and ` +
      `${grouped(data.test)} of ${data.classes}`);
  engine.createSession({ ...info.config, ...(threads ? { threads } : {}) }, bytes); // the old session stays on error
  asking = null;
  if (meta && meta.card) {
    try {
      engine.continueCard(meta.card);
    } catch { /* the run goes on without its card */ }
  }
  const progress = engine.progress();
  const now = Date.now();
  run = { ...run, lastSeen: progress.images_seen, meta: meta || { id: `run-${now}`, name: runName(engine.config),
    config: engine.config, dataSource: run && run.dataSource, createdAt: now, savedAt: now, epoch: progress.epoch,
    history: [], status: 'stopped' } };
  post({ type: 'resumed', progress, config: engine.config, info, run: run.meta });
  return progress;
}

// ---------------------------------------------------------------- run cards
let verifyCancelled = false;
/**
 * Re-runs a run card (JSON text) on the loaded data through the core's verifier, which reads the
 * card strictly, refuses one that cannot be honest, and compares every fingerprint and every
 * figure it claims. This only relays progress: 'verify-epoch', 'verify-progress', and at the
 * end 'verified' {identical, complete, cancelled, message}. A 'cancel-verify' message stops it.
 */
async function verifyCard(text, steps, threads) {
  const settings = engine.cardSettings(text); // strict reading; checks the data's MD5s against the card's
  engine.createSession({ ...settings, ...(threads ? { threads } : {}) });
  run = { ...run, lastSeen: 0, meta: null };
  let v = engine.verifyBegin(text, steps);
  state = 'verifying';
  verifyCancelled = false;
  post({ type: 'state', state });
  while (!v.done && !verifyCancelled) {
    v = engine.verifyStep();
    if (v.epoch_ended && v.epoch_ended <= v.claimed_epochs && !v.different) {
      post({ type: 'verify-epoch', epoch: v.epoch_ended, testAccuracy: v.test_accuracy, cardAccuracy: v.card_test_accuracy });
    }
    post({ type: 'verify-progress', step: v.step, total: v.stop, compared: v.fingerprints, claims: v.claims });
    await tick();
  }
  state = 'ready';
  post({ type: 'verified', identical: !!v.identical, complete: !!v.complete, cancelled: !v.done,
    message: v.done ? v.message : `cancelled after step ${v.step} of ${v.stop}: ${v.fingerprints} fingerprints and ` +
      `${v.claims} figures identical so far; the rest NOT checked`, step: v.step, kernels: v.kernels, engine: v.engine });
  post({ type: 'state', state });
}

// ---------------------------------------------------------------- exported models
let checkCancelled = false;
/**
 * Checks an exported model (a File) on the loaded test images, against its run card (a File, or
 * null) when one is given: the core loads it in the card's arithmetic, evaluates it as the card's
 * run did and gives the verdict (q4train --eval-model M --card C does the same). The evaluation
 * goes a batch at a time (the same sums as at once), relaying 'model-loaded', 'model-progress'
 * {augmented, evaluated, count}, 'model-evaluation' and at the end 'model-checked' {info, plain,
 * augmented, verdict, cancelled}; a 'cancel-check' message stops it between batches (no verdict).
 * The model then answers Try the model, until a run starts or resumes.
 */
async function checkModel(modelFile, cardFile, threads) {
  const bytes = new Uint8Array(await modelFile.arrayBuffer());
  const cardText = cardFile ? await cardFile.text() : '';
  const info = engine.loadModel(bytes, cardText, threads || 1,
    { modelName: modelFile.name, cardName: cardFile ? cardFile.name : '' });
  asking = { name: modelFile.name };
  const before = state;
  state = 'checking';
  checkCancelled = false;
  post({ type: 'state', state });
  post({ type: 'model-loaded', info, name: modelFile.name, card: cardFile ? cardFile.name : null });
  const evaluate = async (augmented) => { // the evaluation's figures, or null if cancelled
    engine.evaluateModelBegin(augmented);
    for (;;) {
      await tick();
      if (checkCancelled) return null;
      const r = engine.evaluateModelStep(MODEL_CHECK_IMAGES);
      post({ type: 'model-progress', augmented, evaluated: r.evaluated, count: r.count });
      if (r.done) return { accuracy: r.accuracy, loss: r.loss, count: r.count, correct: r.correct };
    }
  };
  try {
    const plain = await evaluate(false);
    if (plain) post({ type: 'model-evaluation', plain, augmentedNext: !!info.augmented });
    const augmented = plain && info.augmented ? await evaluate(true) : null;
    const cancelled = !plain || (info.augmented && !augmented);
    const verdict = info.card && !cancelled ? engine.modelVerdict(cardFile.name) : null;
    post({ type: 'model-checked', info, plain, augmented, verdict, cancelled, name: modelFile.name });
  } finally {
    state = before;
    post({ type: 'state', state });
  }
}
/* test images per part of a model check: one batch of the engine's evaluation (128), a fraction of
 * a second here, so that progress shows and a cancel is soon heard */
const MODEL_CHECK_IMAGES = 128;

// ---------------------------------------------------------------- benchmark (make bench)
/** Training and evaluation speed on synthetic images, as cli/q4bench.c measures natively. */
function bench({ threads = 1, steps = 8, warmup = 6, evalImages = 1024, bits = 4, exact = 0, integer = 0, act = 32 }) {
  const train = 128 * (steps + warmup + 1);
  const shard = (count, seed) => {
    const bytes = new Uint8Array(count * 3073);
    let x = seed >>> 0;
    for (let i = 0; i < bytes.length; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      bytes[i] = x & 255;
    }
    for (let i = 0; i < count; i++) bytes[i * 3073] = i % 10;
    return bytes;
  };
  engine.loadData([{ name: 'data_batch_1.bin', bytes: shard(train, 7) }, { name: 'test_batch.bin', bytes: shard(evalImages, 9) }], 10);
  engine.createSession({ threads, weight_bits: bits, exact, integer_eval: integer, act_bits: act });
  for (let i = 0; i < warmup; i++) engine.train(1); // first touches, and time for the JIT to optimize
  engine.profile(true);
  let t0 = performance.now();
  for (let i = 0; i < steps; i++) engine.train(1);
  const trainSeconds = (performance.now() - t0) / 1000;
  const profile = engine.profile(false);
  engine.evaluate();
  t0 = performance.now();
  engine.evaluate();
  const evalSeconds = (performance.now() - t0) / 1000;
  const result = {
    kernels: engine.sessionInfo().kernels, exact, integer, act, threads, steps, trainImagesPerSecond: 128 * steps / trainSeconds,
    evalImagesPerSecond: evalImages / evalSeconds, trainFlopsPerImage: profile.flops_per_image, wasmMemory: engine.memoryBytes(),
    phases: profile.phases.map((p) => ({ name: p.name, msPerStep: 1000 * p.seconds / steps,
      gflops: p.seconds > 0 ? p.flops_per_image * profile.images / p.seconds / 1e9 : 0 })),
  };
  result.trainGflops = result.trainImagesPerSecond * profile.flops_per_image / 1e9;
  result.evalGflops = result.evalImagesPerSecond * profile.forward_flops_per_image / 1e9;
  engine.destroySession();
  return result;
}

// ---------------------------------------------------------------- messages
const busy = () => state === 'running' || state === 'loading' || state === 'verifying' || state === 'checking';

self.onmessage = async (event) => {
  const m = event.data;
  try {
    switch (m.type) {
      case 'init': {
        engine = await Q4.load(new URL(m.base || 'wasm/', self.location.href).href.replace(/\/$/, ''),
          { forceSingleThread: !!m.forceSingleThread, singleThreadReason: m.singleThreadReason || null });
        post({ type: 'ready', kernels: engine.kernels, threaded: engine.threaded, maxThreads: engine.maxThreads,
          reportedCores: engine.reportedCores, reason: engine.reason, fields: engine.fields });
        await postRuns();
        break;
      }
      case 'ping': // the page's watch over the engine's start (app.js, startEngine): this thread is not blocked
        post({ type: 'pong' });
        break;
      case 'resolve': // settings checked by the engine's own rules
        post({ type: 'resolved', id: m.id, config: engine.resolve(m.settings) });
        break;
      case 'load':
        if (busy()) throw new Error('pause or stop training before loading other data');
        await loadData(m.source, m.trainLimit || 0);
        break;
      case 'start':
        if (busy()) break;
        startSession(m.settings, m.label);
        await trainLoop();
        break;
      case 'pause':
        if (state === 'running') state = 'paused';
        break;
      case 'resume':
        if (state === 'paused' || state === 'stopped') await trainLoop();
        break;
      case 'stop':
        if (state === 'running') state = 'stopped';
        else if (state === 'paused') {
          state = 'stopped';
          post({ type: 'state', state });
          await saveRun('stopped');
        }
        break;
      case 'threads':
        if (engine && engine.session >= 0) engine.setThreads(m.threads);
        post({ type: 'threads', threads: m.threads });
        break;
      case 'download-checkpoint': {
        const bytes = engine.save();
        post({ type: 'checkpoint-bytes', bytes, step: engine.progress().global_step }, [bytes.buffer]);
        break;
      }
      case 'export': {
        const bytes = engine.exportModel();
        post({ type: 'model-bytes', bytes }, [bytes.buffer]);
        break;
      }
      case 'upload-checkpoint': {
        if (busy()) throw new Error('pause or stop training before loading a checkpoint');
        const bytes = new Uint8Array(await m.file.arrayBuffer());
        resumeFrom(bytes, null, m.threads);
        state = 'paused';
        post({ type: 'state', state });
        await saveRun('stopped');
        break;
      }
      case 'resume-saved': {
        if (busy()) throw new Error('pause or stop training before resuming another run');
        const runs = await listRuns();
        const meta = runs.find((r) => r.id === m.run);
        const bytes = meta && await readCheckpoint(meta.id);
        if (!bytes) throw new Error('that saved run is gone from this browser');
        resumeFrom(bytes, meta, m.threads);
        state = 'paused';
        post({ type: 'state', state });
        if (m.start) await trainLoop();
        break;
      }
      case 'delete-run':
        if (run && run.meta && run.meta.id === m.run && busy()) throw new Error('stop training before deleting this run');
        await deleteRun(m.run);
        await postRuns();
        break;
      case 'bench':
        post({ type: 'bench', result: bench(m) });
        break;
      case 'classify': {
        const loaded = asking && engine && engine.model >= 0;
        if (!loaded && (!engine || engine.session < 0))
          throw new Error('train a model first (or resume a saved run, or check an exported model): there is none to ask');
        const pixels = m.testIndex !== undefined ? engine.testImage(m.testIndex) : m.pixels;
        post({ type: 'classified', probabilities: loaded ? engine.classifyWithModel(pixels) : engine.classify(pixels),
          pixels, testIndex: m.testIndex, label: m.testIndex !== undefined ? engine.testLabel(m.testIndex) : -1,
          model: loaded ? asking.name : null });
        break;
      }
      case 'check-model':
        if (busy()) throw new Error('pause or stop training before checking a model');
        await checkModel(m.model, m.card || null, m.threads);
        break;
      case 'card':
        post({ type: 'card-text', text: engine.card(), step: engine.progress().global_step });
        break;
      case 'cancel-verify':
        verifyCancelled = true;
        break;
      case 'cancel-check':
        checkCancelled = true;
        break;
      case 'verify':
        if (busy()) throw new Error('pause or stop training before verifying a run card');
        await verifyCard(await m.file.text(), m.steps || 0, m.threads);
        break;
      default:
        throw new Error(`unknown message ${m.type}`);
    }
  } catch (e) {
    if (state === 'verifying') {
      state = 'ready';
      post({ type: 'state', state });
    }
    if (state === 'loading') {
      state = engine && engine.data >= 0 ? 'ready' : 'idle';
      post({ type: 'state', state });
    }
    post({ type: 'error', where: m.type, id: m.id, message: e && e.message ? e.message : String(e) });
  }
};
