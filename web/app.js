// app.js - the page: settings (presets, URL parameters), data choice, the controls, and the
// live metrics a teacher can point at. All training happens in worker.js; this module only
// sends messages and draws, so the page stays responsive while the CPU trains.
import { barChart, COLORS, drawImage, heatmap, levelHistograms, lineChart } from './charts.js';

const $ = (id) => document.getElementById(id);
const PRESETS = {
  quick: { epochs: 3, lr: 0.001, batch: 128, seed: 0, bits: 4, train: 2000, test: 1000 },
  paper: { epochs: 150, lr: 0.001, batch: 128, seed: 0, bits: 4, train: 50000, test: 10000 },
};
const FIELDS = { epochs: 'epochs', lr: 'lr', batch: 'batch', seed: 'seed', bits: 'bits', train: 'train-limit', test: 'test-limit' };

const ui = {
  worker: null, ready: false, state: 'idle', threaded: false, maxThreads: 1, data: null, dataSource: null,
  classNames: [], images: [], losses: [], epochs: [], lastEvaluation: null, lastLayers: null, saved: null,
  stepsPerEpoch: 0, pendingStart: null, drawQueued: false, dirty: new Set(), gridPredictions: null,
};
window.q4Debug = ui; // read by the browser tests
/** Test hook: the session's parameters (Float32Array) from the worker. */
window.q4Parameters = () => new Promise((resolve) => {
  ui.parametersResolve = resolve;
  ui.worker.postMessage({ type: 'parameters' });
});
/** Benchmark hook for `make bench` (scripts/bench-wasm.mjs): resolves with the worker's result. */
window.q4RunBench = (options) => new Promise((resolve) => {
  ui.benchResolve = resolve;
  ui.worker.postMessage({ type: 'bench', ...options });
});

// ---------------------------------------------------------------- settings
function setPreset(name) {
  const p = PRESETS[name];
  if (!p) return;
  for (const [key, id] of Object.entries(FIELDS)) $(id).value = p[key];
}

function readSettings() {
  const number = (id) => Number($(id).value);
  return {
    preset: $('preset').value, epochs: number('epochs'), lr: number('lr'), batch: number('batch'), seed: number('seed'),
    bits: number('bits'), train: number('train-limit'), test: number('test-limit'), threads: number('threads'),
    dataset: number('dataset'),
  };
}

function settingsFromUrl() {
  const q = new URLSearchParams(location.search);
  setPreset(q.get('preset') in PRESETS ? q.get('preset') : 'quick');
  $('preset').value = q.get('preset') || 'quick';
  for (const [key, id] of Object.entries(FIELDS)) if (q.has(key)) $(id).value = q.get(key);
  if (q.has('dataset')) $('dataset').value = q.get('dataset');
  return q;
}

function linkToSettings() {
  const s = readSettings();
  const q = new URLSearchParams();
  q.set('preset', s.preset);
  for (const key of Object.keys(FIELDS)) q.set(key, s[key]);
  q.set('threads', s.threads);
  if (s.dataset !== 10) q.set('dataset', s.dataset);
  return `${location.origin}${location.pathname}?${q}`;
}

function configFromSettings(s, classes) {
  return {
    numClasses: classes, batchSize: s.batch, epochs: s.epochs, quantized: s.bits === 4 ? 1 : 0, augment: 1,
    threads: s.threads, seed: s.seed, learningRate: s.lr,
  };
}

// ---------------------------------------------------------------- messages to the page
function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}
function clearError() { $('error').hidden = true; }

function setState(state) {
  ui.state = state;
  const running = state === 'running';
  $('start').disabled = !ui.ready || running || state === 'loading' || state === 'paused';
  $('pause').disabled = !running;
  $('resume').disabled = !(state === 'paused' || state === 'stopped');
  $('stop').disabled = !(running || state === 'paused');
  $('download-checkpoint').disabled = !(state === 'paused' || state === 'stopped' || state === 'finished');
  $('export-model').disabled = $('download-checkpoint').disabled;
  for (const id of ['load-default', 'load-url', 'file-input', 'dataset']) $(id).disabled = running || state === 'loading';
  const labels = { idle: 'Ready to start.', loading: 'Loading data…', ready: 'Data loaded: press Start.',
    running: 'Training…', paused: 'Paused.', stopped: 'Stopped.', finished: 'Finished all epochs.' };
  $('run-status').textContent = state === 'paused' && ui.resumeNote ? ui.resumeNote : labels[state] || state;
  if (state === 'running') ui.resumeNote = null;
}

function formatTime(seconds) {
  if (!isFinite(seconds) || seconds <= 0) return '–';
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
  return h ? `${h}h ${m}m` : `${m}:${String(s).padStart(2, '0')}`;
}

/* Charts are redrawn one per animation frame, and only those whose data changed, so no
 * single main-thread task grows long enough to make the page stutter. */
function scheduleDraw(...names) {
  for (const name of names.length ? names : Object.keys(CHARTS)) ui.dirty.add(name);
  if (ui.drawQueued) return;
  ui.drawQueued = true;
  const frame = () => {
    const [name] = ui.dirty;
    if (name) {
      ui.dirty.delete(name);
      CHARTS[name]();
    }
    if (ui.dirty.size) requestAnimationFrame(frame);
    else ui.drawQueued = false;
  };
  requestAnimationFrame(frame);
}

/** Loss points averaged into at most 600 buckets, so drawing stays cheap however long the run. */
function lossSeries() {
  const n = ui.losses.length, buckets = Math.min(n, 600), points = [];
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * n) / buckets), to = Math.floor(((b + 1) * n) / buckets);
    let sum = 0;
    for (let i = from; i < to; i++) sum += ui.losses[i][1];
    points.push([ui.losses[to - 1][0], sum / (to - from)]);
  }
  return points;
}

const CHARTS = {
  loss() {
    const perEpoch = ui.stepsPerEpoch || 1;
    lineChart($('chart-loss'), [{ name: 'loss', points: lossSeries().map(([s, v]) => [s / perEpoch, v]) }],
      { xLabel: 'epochs', yMin: 0 });
  },
  accuracy() {
    lineChart($('chart-accuracy'), [
      { name: 'train', color: COLORS[0], points: ui.epochs.map((e) => [e.epoch, e.train]) },
      { name: 'test', color: COLORS[1], points: ui.epochs.map((e) => [e.epoch, e.test]) },
    ], { yMin: 0, yMax: 1, percent: true, xLabel: 'epoch' });
  },
  classes() {
    const e = ui.lastEvaluation;
    if (!e) return placeholder('chart-classes');
    const perClass = e.classTotal.map((t, c) => (t ? e.classCorrect[c] / t : 0));
    barChart($('chart-classes'), ui.classNames.slice(0, perClass.length), perClass, { max: 1, percent: true,
      color: (i, v) => (v >= e.accuracy ? COLORS[2] : COLORS[4]) });
  },
  confusion() {
    const e = ui.lastEvaluation;
    if (e) heatmap($('chart-confusion'), e.confusion, e.classTotal.length, ui.classNames);
    else placeholder('chart-confusion');
  },
  levels() {
    if (ui.lastLayers) barChart($('chart-levels'), ui.lastLayers.map((l) => l.name), ui.lastLayers.map((l) => l.unique),
      { max: 15, text: (i, v) => String(v) });
    else placeholder('chart-levels');
  },
  histograms() {
    if (ui.lastLayers) levelHistograms($('chart-histograms'), ui.lastLayers);
    else placeholder('chart-histograms');
  },
};

function placeholder(id) {
  lineChart($(id), [], {});
  const g = $(id).getContext('2d');
  g.fillStyle = '#fff';
  g.fillRect(0, 0, 400, 60);
  g.fillStyle = '#9ca3af';
  g.fillText('after the first epoch', 40, 36);
}

/* The test-image grid, built a few cells per animation frame. */
function updateGrid(predictions) {
  const grid = $('image-grid');
  if (predictions) ui.gridPredictions = predictions;
  const paint = () => {
    for (let made = 0; grid.children.length < ui.images.length && made < 4; made++) {
      const img = ui.images[grid.children.length];
      const cell = document.createElement('div');
      cell.className = 'cell';
      const canvas = document.createElement('canvas');
      drawImage(canvas, img.pixels);
      const caption = document.createElement('span');
      caption.textContent = `? (${ui.classNames[img.label] || img.label})`;
      cell.append(canvas, caption);
      grid.append(cell);
    }
    if (grid.children.length < ui.images.length) {
      requestAnimationFrame(paint);
      return;
    }
    if (!ui.gridPredictions) return;
    [...grid.children].forEach((cell, i) => {
      const truth = ui.images[i].label, guess = ui.gridPredictions[i];
      cell.className = `cell ${guess === truth ? 'right' : 'wrong'}`;
      cell.lastChild.textContent = `${ui.classNames[guess] || guess} (${ui.classNames[truth] || truth})`;
    });
  };
  requestAnimationFrame(paint);
}

/* 50000 -> "50,000". Not toLocaleString: its first call loads the locale data on the main
 * thread (measured: 30-39 ms, enough to make a long task while training starts). */
const grouped = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

function onMessage(m) {
  switch (m.type) {
    case 'ready': {
      ui.ready = true;
      ui.threaded = m.threaded;
      ui.maxThreads = m.maxThreads;
      const select = $('threads');
      select.textContent = '';
      for (let t = 1; t <= m.maxThreads; t++) select.append(new Option(String(t), String(t)));
      const wanted = Number(new URLSearchParams(location.search).get('threads')) || m.maxThreads;
      select.value = String(Math.min(Math.max(1, wanted), m.maxThreads));
      $('engine-status').textContent = `Engine ready: WebAssembly ${m.kernels} kernels, ${m.reason}` +
        (m.threaded ? ` (up to ${m.maxThreads} threads on this machine).` : '.');
      $('engine-status').className = m.threaded ? 'status ok' : 'status warn';
      if (m.saved) {
        ui.saved = m.saved;
        $('resume-text').textContent = `A run saved in this browser can be resumed: epoch ${m.saved.epoch} of ` +
          `${m.saved.config.epochs}, test accuracy ${(100 * m.saved.testAccuracy).toFixed(2)}%, ` +
          `saved ${new Date(m.saved.savedAt).toISOString().slice(0, 16).replace('T', ' ')} UTC.`;
        $('resume-banner').hidden = false;
      }
      setState('idle');
      if (new URLSearchParams(location.search).get('autostart') === '1') start();
      break;
    }
    case 'load-progress': {
      const bar = $('load-progress');
      bar.hidden = false;
      bar.value = m.total ? m.done / m.total : 0;
      $('data-status').textContent = `${m.parsing ? 'Reading' : 'Downloading'} ${m.name}: ` +
        `${(m.done / 1048576).toFixed(1)} of ${(m.total / 1048576).toFixed(1)} MB`;
      break;
    }
    case 'data': {
      ui.data = m.info;
      ui.dataSource = ui.loadingSource;
      ui.classNames = m.info.names;
      ui.images = m.images;
      $('load-progress').hidden = true;
      $('image-grid').textContent = '';
      ui.gridPredictions = null;
      updateGrid(null);
      $('data-status').textContent = `${m.info.kind === 100 ? 'CIFAR-100' : 'CIFAR-10'}: ${grouped(m.info.train)} ` +
        `training and ${grouped(m.info.test)} test images, ${m.info.classes} classes.`;
      if (ui.pendingStart) { // in a task of its own: this one has just built the page's data views
        const go = ui.pendingStart;
        ui.pendingStart = null;
        setTimeout(go, 0);
      }
      break;
    }
    case 'state':
      setState(m.state);
      break;
    case 'session':
    case 'resumed':
      ui.stepsPerEpoch = m.progress.stepsPerEpoch;
      if (m.type === 'resumed') {
        ui.resumeNote = `Resumed at epoch ${m.progress.epoch + 1}, step ${m.progress.stepInEpoch}: press Resume to train on.`;
        for (const [key, id] of Object.entries({ epochs: 'epochs', seed: 'seed', batch: 'batch' })) $(id).value = m.config[key === 'batch' ? 'batchSize' : key];
        $('bits').value = m.config.quantized ? '4' : '32';
        $('lr').value = m.config.learningRate;
      }
      break;
    case 'step': {
      const p = m.progress;
      ui.stepsPerEpoch = p.stepsPerEpoch;
      ui.losses.push([p.globalStep, p.lastLoss]);
      $('m-epoch').textContent = `${p.epoch + 1} · ${p.stepInEpoch}/${p.stepsPerEpoch}`;
      $('m-loss').textContent = p.lastLoss.toFixed(4);
      $('m-train').textContent = `${(100 * p.epochAccuracy).toFixed(2)}%`;
      $('m-lr').textContent = p.learningRate.toExponential(3);
      $('m-speed').textContent = `${m.imagesPerSecond.toFixed(1)} · ${formatTime(m.etaSeconds)}`;
      $('m-memory').textContent = `${(m.wasmMemory / 1048576).toFixed(0)} MB`;
      scheduleDraw('loss');
      break;
    }
    case 'epoch': {
      const e = m.evaluation;
      ui.lastEvaluation = e;
      ui.lastLayers = m.layers;
      ui.epochs.push({ epoch: m.epoch, train: m.progress.epochAccuracy, test: e.accuracy, loss: m.progress.epochLoss });
      $('m-test').textContent = `${(100 * e.accuracy).toFixed(2)}% (best ${(100 * e.best).toFixed(2)}%)`;
      updateGrid(e.predictions);
      scheduleDraw('accuracy', 'classes', 'confusion', 'levels', 'histograms');
      break;
    }
    case 'saved':
      $('run-status').textContent = `Epoch ${m.epoch} done; checkpoint saved in this browser (${(m.bytes / 1048576).toFixed(1)} MB).`;
      break;
    case 'checkpoint-bytes':
      download(m.bytes, `q4-step${m.step}.ckpt`);
      break;
    case 'model-bytes':
      download(m.bytes, 'q4-model.q4');
      $('run-status').textContent = `Exported the 4-bit model: ${(m.bytes.length / 1048576).toFixed(2)} MB.`;
      break;
    case 'bench':
      if (ui.benchResolve) ui.benchResolve(m.result);
      break;
    case 'parameters':
      if (ui.parametersResolve) ui.parametersResolve(m.parameters);
      break;
    case 'discarded':
      $('resume-banner').hidden = true;
      break;
    case 'error':
      showError(`${m.message}`);
      if (m.where === 'load') ui.pendingStart = null;
      if (m.where === 'load' || m.where === 'upload-checkpoint') $('load-progress').hidden = true;
      break;
    default:
      break;
  }
}

function download(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---------------------------------------------------------------- actions
function loadDefault(trainLimit) {
  clearError();
  ui.loadingSource = 'default';
  const dataset = Number($('dataset').value);
  ui.worker.postMessage({ type: 'load', trainLimit,
    source: { type: 'url', url: dataset === 100 ? '/data/cifar-100-binary/' : '/data/cifar-10-batches-bin/', kind: dataset } });
}

function loadFiles(files) {
  if (!files.length) return;
  clearError();
  ui.loadingSource = 'files';
  ui.worker.postMessage({ type: 'load', source: { type: 'files', files: [...files], kind: Number($('dataset').value) } });
}

function start() {
  clearError();
  const s = readSettings();
  const needDefault = !ui.data || (ui.dataSource === 'default' && ui.data.train < Math.min(s.train, 50000));
  if (needDefault) {
    ui.pendingStart = start;
    loadDefault(s.train);
    return;
  }
  const trainLimit = Math.min(s.train, ui.data.train), testLimit = Math.min(s.test, ui.data.test);
  ui.losses = [];
  ui.epochs = [];
  ui.lastEvaluation = null;
  ui.lastLayers = null;
  ui.worker.postMessage({ type: 'start', config: configFromSettings(s, ui.data.classes), trainLimit, testLimit });
}

function wire() {
  $('preset').addEventListener('change', () => setPreset($('preset').value));
  for (const id of Object.values(FIELDS)) $(id).addEventListener('input', () => { $('preset').value = 'custom'; });
  $('load-default').addEventListener('click', () => loadDefault(readSettings().train));
  $('file-input').addEventListener('change', (e) => loadFiles(e.target.files));
  $('load-url').addEventListener('click', () => {
    clearError();
    const url = $('data-url').value.trim();
    if (!url) return showError('Enter the URL of a folder holding the official shards.');
    ui.loadingSource = 'url';
    ui.worker.postMessage({ type: 'load', trainLimit: readSettings().train,
      source: { type: 'url', url, kind: Number($('dataset').value) } });
  });
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    loadFiles(e.dataTransfer.files);
  });
  $('start').addEventListener('click', start);
  $('pause').addEventListener('click', () => ui.worker.postMessage({ type: 'pause' }));
  $('resume').addEventListener('click', () => ui.worker.postMessage({ type: 'resume' }));
  $('stop').addEventListener('click', () => ui.worker.postMessage({ type: 'stop' }));
  $('threads').addEventListener('change', () => ui.worker.postMessage({ type: 'threads', threads: Number($('threads').value) }));
  $('copy-link').addEventListener('click', async () => {
    const link = linkToSettings();
    history.replaceState(null, '', link);
    try {
      await navigator.clipboard.writeText(link);
      $('run-status').textContent = 'Link copied: it reproduces these settings.';
    } catch {
      $('run-status').textContent = `Link to these settings: ${link}`;
    }
  });
  $('download-checkpoint').addEventListener('click', () => ui.worker.postMessage({ type: 'download-checkpoint' }));
  $('export-model').addEventListener('click', () => ui.worker.postMessage({ type: 'export' }));
  $('checkpoint-input').addEventListener('change', (e) => {
    const file = e.target.files[0];
    if (!file) return;
    clearError();
    const resumeWith = () => ui.worker.postMessage({ type: 'upload-checkpoint', file, threads: Number($('threads').value) });
    if (!ui.data) {
      ui.pendingStart = resumeWith;
      loadDefault(50000);
    } else resumeWith();
    e.target.value = '';
  });
  $('resume-saved').addEventListener('click', () => {
    $('resume-banner').hidden = true;
    const saved = ui.saved;
    const go = () => ui.worker.postMessage({ type: 'resume-saved', start: true, threads: Number($('threads').value) });
    if (saved.dataSource && saved.dataSource.type === 'files') {
      showError(`This run trained on files you chose (${saved.dataSource.names.join(', ')}): choose them again, then press Resume.`);
      ui.pendingStart = () => { $('resume-banner').hidden = true; go(); };
      $('resume-banner').hidden = false;
      return;
    }
    if (!ui.data || ui.data.train < saved.trainLimit) {
      ui.pendingStart = go;
      if (saved.dataSource && saved.dataSource.type === 'url' && !saved.dataSource.url.startsWith('/data/')) {
        ui.loadingSource = 'url';
        ui.worker.postMessage({ type: 'load', trainLimit: saved.trainLimit, source: saved.dataSource });
      } else {
        loadDefault(saved.trainLimit);
      }
    } else go();
  });
  $('discard-saved').addEventListener('click', () => ui.worker.postMessage({ type: 'discard-saved' }));
  window.addEventListener('resize', () => scheduleDraw());
}

settingsFromUrl();
wire();
ui.worker = new Worker('/worker.js');
ui.worker.onmessage = (e) => onMessage(e.data);
ui.worker.onerror = (e) => showError(`The training worker failed: ${e.message}`);
ui.worker.postMessage({ type: 'init', base: '/wasm' });
scheduleDraw();
