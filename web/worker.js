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
let state = 'idle'; // idle | loading | ready | running | paused | stopped | finished
let run = null;     // {dataSource, lastSeen}

const post = (message, transfer) => self.postMessage(message, transfer || []);
const fail = (where, e) => post({ type: 'error', where, message: e && e.message ? e.message : String(e) });

// ---------------------------------------------------------------- IndexedDB: the latest checkpoint
function openStore() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open('q4', 1);
    request.onupgradeneeded = () => request.result.createObjectStore('checkpoints');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function storeCheckpoint(bytes, meta) {
  const db = await openStore();
  await new Promise((resolve, reject) => {
    const tx = db.transaction('checkpoints', 'readwrite');
    tx.objectStore('checkpoints').put({ bytes, meta }, 'latest');
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

async function readCheckpoint() {
  const db = await openStore();
  const value = await new Promise((resolve, reject) => {
    const request = db.transaction('checkpoints').objectStore('checkpoints').get('latest');
    request.onsuccess = () => resolve(request.result || null);
    request.onerror = () => reject(request.error);
  });
  db.close();
  return value;
}

async function clearCheckpoint() {
  const db = await openStore();
  await new Promise((resolve) => {
    const tx = db.transaction('checkpoints', 'readwrite');
    tx.objectStore('checkpoints').delete('latest');
    tx.oncomplete = resolve;
    tx.onerror = resolve;
  });
  db.close();
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
async function finishEpoch(progress) {
  const report = engine.endEpoch();
  post({ type: 'epoch', report, progress, memory: engine.memoryBytes(), threads: engine.config.threads });
  try {
    const bytes = engine.save();
    const meta = { config: engine.config, epoch: report.epoch, dataSource: run.dataSource, savedAt: Date.now(),
      testAccuracy: report.test_accuracy };
    await storeCheckpoint(bytes, meta);
    post({ type: 'saved', epoch: report.epoch, bytes: bytes.length });
  } catch (e) {
    fail('checkpoint', e);
  }
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
      etaSeconds: rate > 0 ? left * engine.config.batch_size / rate : 0, memory: engine.memoryBytes() });
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
}

function startSession(settings) {
  run = { ...run, lastSeen: 0 };
  const progress = engine.createSession(settings);
  post({ type: 'session', progress, config: engine.config, info: engine.sessionInfo() });
  return progress;
}

function resumeFrom(bytes, threads) {
  const info = engine.checkpointInfo(bytes);
  startSession({ ...info.config, ...(threads ? { threads } : {}) });
  engine.load(bytes);
  const progress = engine.progress();
  run.lastSeen = progress.images_seen;
  post({ type: 'resumed', progress, config: engine.config, info });
  return progress;
}

// ---------------------------------------------------------------- benchmark (make bench)
/** Training and evaluation speed on synthetic images, as cli/q4bench.c measures natively. */
function bench({ threads = 1, steps = 8, warmup = 6, evalImages = 1024, quantized = 1 }) {
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
  engine.createSession({ threads, quantized });
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
    kernels: engine.kernels, threads, steps, trainImagesPerSecond: 128 * steps / trainSeconds,
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
self.onmessage = async (event) => {
  const m = event.data;
  try {
    switch (m.type) {
      case 'init': {
        engine = await Q4.load(new URL(m.base || 'wasm/', self.location.href).href.replace(/\/$/, ''),
          { forceSingleThread: !!m.forceSingleThread });
        const saved = await readCheckpoint().catch(() => null);
        post({ type: 'ready', kernels: engine.kernels, threaded: engine.threaded, maxThreads: engine.maxThreads,
          reason: engine.reason, fields: engine.fields, saved: saved ? saved.meta : null });
        break;
      }
      case 'resolve': // settings checked by the engine's own rules
        post({ type: 'resolved', id: m.id, config: engine.resolve(m.settings) });
        break;
      case 'load':
        await loadData(m.source, m.trainLimit || 0);
        break;
      case 'start':
        if (state === 'running') break;
        startSession(m.settings);
        await trainLoop();
        break;
      case 'pause':
        if (state === 'running') state = 'paused';
        break;
      case 'resume':
        if (state === 'paused' || state === 'stopped' || state === 'ready') await trainLoop();
        break;
      case 'stop':
        if (state === 'running' || state === 'paused') {
          state = 'stopped';
          post({ type: 'state', state });
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
        const bytes = new Uint8Array(await m.file.arrayBuffer());
        resumeFrom(bytes, m.threads);
        state = 'paused';
        post({ type: 'state', state });
        break;
      }
      case 'resume-saved': {
        const saved = await readCheckpoint();
        if (!saved) throw new Error('no saved checkpoint in this browser');
        resumeFrom(saved.bytes, m.threads);
        state = 'paused';
        post({ type: 'state', state });
        if (m.start) await trainLoop();
        break;
      }
      case 'discard-saved':
        await clearCheckpoint();
        post({ type: 'discarded' });
        break;
      case 'bench':
        post({ type: 'bench', result: bench(m) });
        break;
      default:
        throw new Error(`unknown message ${m.type}`);
    }
  } catch (e) {
    if (state === 'loading') {
      state = engine && engine.data >= 0 ? 'ready' : 'idle';
      post({ type: 'state', state });
    }
    post({ type: 'error', where: m.type, id: m.id, message: e && e.message ? e.message : String(e) });
  }
};
