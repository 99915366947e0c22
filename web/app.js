// app.js - the page: settings (a form built from the engine's own table of settings, presets,
// URL parameters), data choice, the controls, and the live metrics a teacher can point at.
// All training happens in worker.js; this module only sends messages and draws, so the page
// stays responsive while the CPU trains. Every message from the worker is also announced as
// a `q4` DOM event on window (detail: the message), for pages that embed this one and for
// the browser tests.
import { barChart, COLORS, drawImage, heatmap, levelHistograms, lineChart } from './charts.js';

const $ = (id) => document.getElementById(id);
/** The built site (make site) says so in a meta tag: {data: whether the shards came with it}. */
const SITE = (() => {
  const meta = document.querySelector('meta[name="q4-site"]');
  return meta ? JSON.parse(meta.content) : null;
})();
const HAS_DATA = !SITE || SITE.data;

/** Presets: a recipe and the settings that size the run; the rest are the recipe's. */
const PRESETS = {
  quick: { recipe: 'paper', epochs: 3, train_limit: 2000, test_limit: 1000 },
  paper: { recipe: 'paper', epochs: 150, train_limit: 0, test_limit: 0 },
};
/** Presets that queue several runs, one after another: the base settings and each run's own. */
const QUEUES = {
  ablation: { base: { recipe: 'paper', epochs: 2, train_limit: 10000, test_limit: 10000 }, runs: [
    { label: 'the paper\'s method', settings: {} },
    { label: 'without tanh clipping', settings: { tanh_bound: 0 } },
    { label: 'without per-layer scaling', settings: { scale: 'global' } },
    { label: 'without gradient clipping', settings: { clip_norm: 0 } },
    { label: 'plain AdamW', settings: { recipe: 'plain-adamw' } }] },
  bits: { base: { recipe: 'paper', epochs: 2, train_limit: 10000, test_limit: 10000 },
    runs: [2, 3, 4, 6, 8].map((b) => ({ label: `${b}-bit`, settings: { weight_bits: b } })) },
};
for (const [name, queue] of Object.entries(QUEUES)) PRESETS[name] = queue.base;

/** Settings shown first; every other one is under "All settings". num_classes follows the data. */
const MAIN_SETTINGS = ['recipe', 'epochs', 'train_limit', 'test_limit', 'seed', 'threads', 'weight_bits', 'batch_size',
  'learning_rate'];
const HIDDEN_SETTINGS = ['num_classes'];
/** URL parameters that are not settings. */
const PAGE_PARAMETERS = ['preset', 'dataset', 'autostart'];

const ui = {
  worker: null, ready: false, state: 'idle', threaded: false, maxThreads: 1, fields: [], data: null, dataSource: null,
  classNames: [], images: [], losses: [], epochs: [], lastReport: null, runs: [], offered: null, stepsPerEpoch: 0,
  pendingStart: null, drawQueued: false, dirty: new Set(), gridPredictions: null, requests: new Map(), nextRequest: 1,
  verifyEpochs: [], compare: new Set(), queue: [], queueIds: [], queueSize: 0,
};

// ---------------------------------------------------------------- requests to the worker
/** Sends a message that the worker answers with {id}; resolves with the answer, rejects with its error. */
function request(message) {
  const id = ui.nextRequest++;
  return new Promise((resolve, reject) => {
    ui.requests.set(id, { resolve, reject });
    ui.worker.postMessage({ ...message, id });
  });
}

// ---------------------------------------------------------------- settings
const labelOf = (name) => name.replace(/_/g, ' ');
const fieldOf = (name) => ui.fields.find((f) => f.name === name);
const isSwitch = (f) => f.type === 'int' && f.lowest === 0 && f.highest === 1;

/** The form: one input per setting of the engine's table, with its rule and help. */
function buildSettingsForm() {
  const main = $('settings-main'), more = $('settings-more');
  main.textContent = '';
  more.textContent = '';
  const order = [...MAIN_SETTINGS, ...ui.fields.map((f) => f.name).filter((n) => !MAIN_SETTINGS.includes(n))];
  for (const name of order) {
    const f = fieldOf(name);
    if (!f || HIDDEN_SETTINGS.includes(name)) continue;
    const label = document.createElement('label');
    label.title = f.help;
    let input;
    if (f.choices) {
      input = document.createElement('select');
      for (const c of f.choices) input.append(new Option(c, c));
    } else {
      input = document.createElement('input');
      if (isSwitch(f)) input.type = 'checkbox';
      else if (f.type === 'u64') Object.assign(input, { type: 'text', inputMode: 'numeric', pattern: '[0-9]+' });
      else Object.assign(input, { type: 'number', min: f.lowest, max: name === 'threads' ? ui.maxThreads : f.highest,
        step: f.type === 'int' ? 1 : 'any' });
    }
    input.id = `s-${name}`;
    input.dataset.setting = name;
    label.append(isSwitch(f) ? '' : labelOf(name), input);
    if (isSwitch(f)) label.append(` ${labelOf(name)}`), label.className = 'switch';
    (MAIN_SETTINGS.includes(name) ? main : more).append(label);
  }
}

function setSetting(name, value) {
  const input = $(`s-${name}`);
  if (!input) return;
  if (input.type === 'checkbox') input.checked = String(value) === '1';
  else input.value = String(value);
}

/** Every setting in the form as {name: text}. */
function formSettings() {
  const settings = {};
  for (const input of document.querySelectorAll('[data-setting]')) {
    settings[input.dataset.setting] = input.type === 'checkbox' ? (input.checked ? '1' : '0') : input.value.trim();
  }
  return settings;
}

/** Fills the form with a configuration (the engine's JSON). */
function showConfig(config) {
  for (const [name, value] of Object.entries(config)) if (name !== 'threads') setSetting(name, value);
}

/** What the chosen recipe is: the settings in which it departs from the paper's. */
async function describeRecipe() {
  const recipe = formSettings().recipe;
  if (!recipe) return;
  const [mine, paper] = await Promise.all([request({ type: 'resolve', settings: { recipe } }),
    request({ type: 'resolve', settings: { recipe: 'paper' } })]);
  const changes = ui.fields.filter((f) => f.method && String(mine[f.name]) !== String(paper[f.name]))
    .map((f) => `${labelOf(f.name)} ${mine[f.name]}`);
  $('recipe-note').textContent = recipe === 'paper'
    ? 'The paper\'s recipe: AdamW at 1e-3 with gradient clipping to 0.5 and tanh soft clipping, a cosine schedule ' +
      'over 100 epochs, dropout 0.5 (PAPER.md, every constant).'
    : `The ${recipe} recipe: the paper's network and 4-bit quantizer, trained with ${changes.join(', ')}.`;
}

/** A preset: its recipe's settings, then the preset's own. */
async function applyPreset(name, extra = {}) {
  const preset = PRESETS[name] || {};
  const config = await request({ type: 'resolve', settings: { recipe: preset.recipe || formSettings().recipe } });
  showConfig({ ...config, ...preset, ...extra });
}

/** The settings a link carries: preset, then every setting named in it. */
async function settingsFromUrl() {
  const q = new URLSearchParams(location.search);
  const preset = q.get('preset') || 'quick';
  $('preset').value = preset in PRESETS ? preset : 'custom';
  if (q.has('dataset')) $('dataset').value = q.get('dataset');
  const given = {};
  const unknown = [];
  for (const [key, value] of q) {
    if (PAGE_PARAMETERS.includes(key)) continue;
    if (fieldOf(key)) given[key] = value;
    else unknown.push(key);
  }
  await applyPreset(preset in PRESETS ? preset : 'quick');
  for (const [key, value] of Object.entries(given)) setSetting(key, value);
  describeRecipe();
  const threads = Number(q.get('threads')) || ui.maxThreads;
  setSetting('threads', Math.min(Math.max(1, threads), ui.maxThreads));
  if (unknown.length) showError(`The link names settings this page does not have: ${unknown.join(', ')}.`);
  // the engine checks every setting with the same rules as the native trainer
  try {
    await request({ type: 'resolve', settings: { ...given, num_classes: 10 } });
  } catch (e) {
    showError(`A setting in the link is not valid: ${e.message}.`);
  }
}

function linkToSettings() {
  const q = new URLSearchParams();
  q.set('preset', $('preset').value);
  for (const [key, value] of Object.entries(formSettings())) q.set(key, value);
  const dataset = Number($('dataset').value);
  if (dataset !== 10) q.set('dataset', dataset);
  return `${location.origin}${location.pathname}?${q}`;
}

// ---------------------------------------------------------------- messages to the page
function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}
function clearError() { $('error').hidden = true; $('warning').hidden = true; }
function showWarning(message) {
  $('warning').textContent = message;
  $('warning').hidden = false;
}

function setState(state) {
  ui.state = state;
  updateControls();
  const labels = { idle: 'Ready to start.', loading: 'Loading data…', ready: 'Data loaded: press Start.',
    running: 'Training…', paused: 'Paused.', stopped: 'Stopped.', finished: 'Finished all epochs.',
    verifying: 'Checking a run card…' };
  $('run-status').textContent = state === 'paused' && ui.resumeNote ? ui.resumeNote : labels[state] || state;
  if (state === 'running') ui.resumeNote = null;
}

/** Which buttons and inputs work in the current state. */
function updateControls() {
  const state = ui.state, running = state === 'running';
  $('start').disabled = !ui.ready || running || state === 'loading' || state === 'paused';
  $('pause').disabled = !running;
  $('resume').disabled = !(state === 'paused' || state === 'stopped');
  $('stop').disabled = !(running || state === 'paused');
  $('download-checkpoint').disabled = !(state === 'paused' || state === 'stopped' || state === 'finished');
  $('export-model').disabled = $('download-checkpoint').disabled;
  $('download-card').disabled = $('download-checkpoint').disabled;
  $('verify-input').disabled = running || state === 'loading' || state === 'verifying';
  // nothing may replace the data or the session while a run trains (pause or stop first)
  const busy = running || state === 'loading' || state === 'verifying';
  for (const id of ['load-default', 'load-url', 'file-input', 'dataset', 'checkpoint-input']) $(id).disabled = busy;
  $('drop-zone').classList.toggle('disabled', busy);
  for (const b of document.querySelectorAll('#runs-table button')) b.disabled = busy;
  $('resume-saved').disabled = busy;
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

/** The saved runs chosen for comparison, each with a label saying how it differs. */
function comparedRuns() {
  const runs = ui.runs.filter((r) => ui.compare.has(r.id) && r.id !== ui.currentRun && r.history && r.history.length);
  if (!runs.length) return [];
  const reference = (ui.runs.find((r) => r.id === ui.currentRun) || runs[0]).config;
  return runs.map((r) => ({ ...r, label: r.label || differences(reference, r.config) || r.name }));
}

/** The settings in which config b differs from a, as "name value" (runtime ones left out). */
function differences(a, b) {
  const ignore = ['threads', 'epochs'];
  return Object.keys(b).filter((k) => !ignore.includes(k) && String(a[k]) !== String(b[k]))
    .map((k) => (k === 'weight_bits' ? (b[k] === 32 ? 'FP32' : `${b[k]}-bit`) : `${k} ${b[k]}`)).join(', ');
}

const CHARTS = {
  loss() {
    const perEpoch = ui.stepsPerEpoch || 1;
    const others = comparedRuns().map((r, i) => ({ name: r.label, color: COLORS[(i + 2) % COLORS.length],
      points: r.history.map((h) => [h.epoch, h.loss]) }));
    lineChart($('chart-loss'), [{ name: 'loss', points: lossSeries().map(([s, v]) => [s / perEpoch, v]) }, ...others],
      { xLabel: 'epochs', yMin: 0 });
  },
  accuracy() {
    const others = comparedRuns().map((r, i) => ({ name: `${r.label} (test)`, color: COLORS[(i + 2) % COLORS.length],
      points: r.history.map((h) => [h.epoch, h.test_accuracy]) }));
    lineChart($('chart-accuracy'), [
      { name: 'train', color: COLORS[0], points: ui.epochs.map((e) => [e.epoch, e.train_accuracy]) },
      { name: 'test', color: COLORS[1], points: ui.epochs.map((e) => [e.epoch, e.test_accuracy]) }, ...others,
    ], { yMin: 0, yMax: 1, percent: true, xLabel: 'epoch' });
  },
  filters() {
    if (ui.filters) drawFilters($('chart-filters'), ui.filters);
  },
  classes() {
    const r = ui.lastReport;
    if (!r) return placeholder('chart-classes');
    const perClass = r.class_total.map((t, c) => (t ? r.class_correct[c] / t : 0));
    barChart($('chart-classes'), ui.classNames.slice(0, perClass.length), perClass, { max: 1, percent: true,
      color: (i, v) => (v >= r.test_accuracy ? COLORS[2] : COLORS[4]) });
  },
  confusion() {
    const r = ui.lastReport;
    if (r) heatmap($('chart-confusion'), r.confusion, r.class_total.length, ui.classNames);
    else placeholder('chart-confusion');
  },
  levels() {
    const r = ui.lastReport;
    if (r && r.layers[0].levels) barChart($('chart-levels'), r.layers.map((l) => l.name), r.layers.map((l) => l.unique_levels),
      { max: r.layers[0].levels, text: (i, v) => String(v) });
    else placeholder('chart-levels');
  },
  histograms() {
    if (ui.lastReport && ui.lastReport.layers[0].levels) levelHistograms($('chart-histograms'), ui.lastReport.layers);
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
      if (i >= ui.gridPredictions.length) return;
      const truth = ui.images[i].label, guess = ui.gridPredictions[i];
      cell.className = `cell ${guess === truth ? 'right' : 'wrong'}`;
      cell.lastChild.textContent = `${ui.classNames[guess] || guess} (${ui.classNames[truth] || truth})`;
    });
  };
  requestAnimationFrame(paint);
}

/* The saved runs: the table, and the banner offering the latest unfinished one. */
function showRuns(runs) {
  ui.runs = runs;
  const body = $('runs-table').tBodies[0];
  body.textContent = '';
  const current = ui.currentRun;
  for (const r of runs) {
    const row = body.insertRow();
    const pick = document.createElement('input');
    pick.type = 'checkbox';
    pick.checked = ui.compare.has(r.id);
    pick.title = 'draw this run on the accuracy and loss charts';
    pick.addEventListener('change', () => {
      if (pick.checked) ui.compare.add(r.id);
      else ui.compare.delete(r.id);
      scheduleDraw('accuracy', 'loss');
    });
    row.insertCell().append(pick);
    const progress = r.status === 'finished' ? `finished ${r.config.epochs} epoch${r.config.epochs === 1 ? '' : 's'}`
      : `epoch ${r.epoch + (r.stepInEpoch ? 1 : 0)} of ${r.config.epochs}${r.stepInEpoch ? `, step ${r.stepInEpoch}` : ''} (${r.status})`;
    const cells = [(r.label ? `${r.label}: ` : '') + r.name + (current === r.id ? ' (this one)' : ''), new Date(r.savedAt).toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
      progress, r.bestAccuracy ? percent(r.bestAccuracy) : '–'];
    for (const text of cells) row.insertCell().textContent = text;
    const actions = row.insertCell();
    if (r.status !== 'finished' && current !== r.id) {
      const resume = document.createElement('button');
      resume.textContent = 'Resume';
      resume.addEventListener('click', () => resumeRun(r));
      actions.append(resume, ' ');
    }
    const remove = document.createElement('button');
    remove.className = 'secondary';
    remove.textContent = 'Delete';
    remove.addEventListener('click', () => ui.worker.postMessage({ type: 'delete-run', run: r.id }));
    actions.append(remove);
  }
  $('runs-panel').hidden = runs.length === 0;
  scheduleDraw('accuracy', 'loss');
  const latest = runs.find((r) => r.status !== 'finished' && r.id !== current);
  ui.offered = ui.state === 'running' || current ? null : latest || null;
  if (ui.offered) {
    const r = ui.offered;
    $('resume-text').textContent = `A run saved in this browser can be resumed: ${r.name}; epoch ${r.epoch} of ` +
      `${r.config.epochs} done, best test accuracy ${r.bestAccuracy ? percent(r.bestAccuracy) : '–'}, ` +
      `saved ${new Date(r.savedAt).toISOString().slice(0, 16).replace('T', ' ')} UTC.`;
  }
  $('resume-banner').hidden = !ui.offered;
  updateControls();
}

/* 50000 -> "50,000". Not toLocaleString: its first call loads the locale data on the main
 * thread (measured: 30-39 ms, enough to make a long task while training starts). */
const grouped = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
const percent = (v) => `${(100 * v).toFixed(2)}%`;

function onMessage(m) {
  if (m.id && ui.requests.has(m.id)) {
    const { resolve, reject } = ui.requests.get(m.id);
    ui.requests.delete(m.id);
    if (m.type === 'error') reject(new Error(m.message));
    else resolve(m.config);
    return;
  }
  switch (m.type) {
    case 'ready': {
      ui.ready = true;
      ui.threaded = m.threaded;
      ui.maxThreads = m.maxThreads;
      ui.fields = m.fields;
      buildSettingsForm();
      $('engine-status').textContent = `Engine ready: WebAssembly ${m.kernels} kernels, ${m.reason}` +
        (m.threaded ? ` (up to ${m.maxThreads} threads on this machine).` : ui.isolationNote ? ` (${ui.isolationNote}).` : '.');
      $('engine-status').className = m.threaded ? 'status ok' : 'status warn';
      setState('idle');
      settingsFromUrl().then(() => {
        if (new URLSearchParams(location.search).get('autostart') === '1') start();
      });
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
      if (m.state === 'finished' && ui.queue.length) setTimeout(startQueued, 0); /* the next run of a queue */
      else if (m.state === 'finished' && ui.queueIds.length) {
        for (const id of ui.queueIds) ui.compare.add(id); /* a finished queue: all its runs on one chart */
        ui.queueIds = [];
        ui.queueSize = 0;
        showRuns(ui.runs);
      } else if (m.state === 'stopped') { /* stopping ends a queue */
        ui.queue = [];
        ui.queueIds = [];
        ui.queueSize = 0;
      }
      break;
    case 'classified':
      showTop5(m);
      break;
    case 'runs':
      showRuns(m.runs);
      break;
    case 'session':
    case 'resumed':
      ui.stepsPerEpoch = m.progress.steps_per_epoch;
      ui.currentRun = m.run.id;
      if (m.type === 'session' && ui.queueIds.length < ui.queueSize) ui.queueIds.push(m.run.id);
      $('resume-banner').hidden = true;
      if (m.type === 'resumed') {
        ui.resumeNote = `Resumed at epoch ${m.progress.epoch + 1}, step ${m.progress.step_in_epoch}: press Resume to train on.`;
        showConfig(m.config);
        $('preset').value = 'custom';
      }
      break;
    case 'step': {
      const p = m.progress;
      ui.stepsPerEpoch = p.steps_per_epoch;
      ui.losses.push([p.global_step, p.last_loss]);
      $('m-epoch').textContent = `${p.epoch + 1} · ${p.step_in_epoch}/${p.steps_per_epoch}`;
      $('m-loss').textContent = p.last_loss.toFixed(4);
      $('m-train').textContent = percent(p.epoch_accuracy);
      $('m-lr').textContent = p.learning_rate.toExponential(3);
      $('m-speed').textContent = `${m.imagesPerSecond.toFixed(1)} · ${formatTime(m.etaSeconds)}`;
      $('m-memory').textContent = `${(m.memoryInUse / 1048576).toFixed(0)} of ${(m.memory / 1048576).toFixed(0)} MB`;
      scheduleDraw('loss');
      break;
    }
    case 'epoch': {
      const r = m.report;
      ui.lastReport = r;
      ui.epochs.push(r);
      $('m-test').textContent = `${percent(r.test_accuracy)} (best ${percent(r.best_accuracy)})`;
      updateGrid(r.predictions);
      ui.filters = m.filters;
      showLayers(r.layers);
      if (r.layers[0].levels) {
        const levels = r.layers[0].levels, top = (levels - 1) / 2;
        $('levels-caption').textContent = `Unique weight levels per layer (of ${levels} at ${Math.log2(levels + 1)} bits)`;
        $('histograms-caption').textContent = `Quantized weights per layer: how many at each level −${top}…${top}`;
      }
      scheduleDraw('accuracy', 'classes', 'confusion', 'levels', 'histograms', 'filters');
      break;
    }
    case 'saved':
      if (m.status === 'in progress' || m.status === 'finished')
        $('run-status').textContent = `Epoch ${m.epoch} done; the run is saved in this browser (${(m.bytes / 1048576).toFixed(1)} MB).`;
      break;
    case 'card-text':
      download(new TextEncoder().encode(m.text), `q4-run-step${m.step}.json`);
      break;
    case 'verify-progress':
      $('verify-status').textContent = `Checking: step ${m.step} of ${m.total}, ${m.compared} fingerprints identical so far…`;
      break;
    case 'verify-epoch':
      ui.verifyEpochs.push(`epoch ${m.epoch}: test accuracy ${percent(m.testAccuracy)}` +
        (m.cardAccuracy !== null ? ` (the card: ${percent(m.cardAccuracy)})` : ''));
      break;
    case 'verified':
      $('verify-status').textContent = `${m.identical ? 'Identical' : 'DIFFERENT'}: ${m.message}` +
        (ui.verifyEpochs.length ? `; ${ui.verifyEpochs.join('; ')}` : '') + ` (card made by ${m.engine}, ${m.kernels}).`;
      $('verify-status').className = m.identical ? 'note ok' : 'note bad';
      break;
    case 'save-failed':
      showWarning(m.message);
      break;
    case 'checkpoint-bytes':
      download(m.bytes, `q4-step${m.step}.ckpt`);
      break;
    case 'model-bytes':
      download(m.bytes, 'q4-model.q4');
      $('run-status').textContent = `Exported the 4-bit model: ${(m.bytes.length / 1048576).toFixed(2)} MB.`;
      break;
    case 'error':
      if (m.where === 'verify') $('verify-status').textContent = '';
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
const DEFAULT_DATA = { 10: 'data/cifar-10-batches-bin/', 100: 'data/cifar-100-binary/' };

function loadDefault(trainLimit) {
  clearError();
  if (!HAS_DATA) {
    ui.pendingStart = null;
    showError('This copy of the page comes without data: choose the CIFAR-10 files (cifar-10-binary.tar.gz or the ' +
      '.bin shards) above, or give the URL of a folder that holds them.');
    return;
  }
  ui.loadingSource = 'default';
  const dataset = Number($('dataset').value);
  ui.worker.postMessage({ type: 'load', trainLimit, source: { type: 'url', url: DEFAULT_DATA[dataset], kind: dataset } });
}

function loadFiles(files) {
  if (!files.length) return;
  clearError();
  if (ui.state === 'running' || ui.state === 'loading') {
    showError('Pause or stop training before loading other data: the run would end.');
    return;
  }
  ui.loadingSource = 'files';
  ui.worker.postMessage({ type: 'load', source: { type: 'files', files: [...files], kind: Number($('dataset').value) } });
}

async function start() {
  clearError();
  const settings = formSettings();
  let config;
  try { // checked before any data is fetched
    config = await request({ type: 'resolve', settings: { ...settings, num_classes: Number($('dataset').value) } });
  } catch (e) {
    showError(e.message);
    return;
  }
  const wanted = config.train_limit || 50000;
  const needDefault = !ui.data || (ui.dataSource === 'default' && ui.data.train < Math.min(wanted, 50000));
  if (needDefault) {
    ui.pendingStart = start;
    loadDefault(config.train_limit);
    return;
  }
  const queue = QUEUES[$('preset').value];
  if (queue && !ui.queue.length && !ui.queueIds.length) { /* a preset of several runs: queue them all */
    ui.queue = queue.runs.map((r) => ({ label: r.label, settings: { ...settings, ...r.settings } }));
    ui.queueSize = ui.queue.length;
    ui.queueIds = [];
    startQueued();
    return;
  }
  ui.losses = [];
  ui.epochs = [];
  ui.lastReport = null;
  ui.worker.postMessage({ type: 'start', settings: { ...settings, num_classes: ui.data.classes } });
}

/** The next run of a queued preset. */
function startQueued() {
  const next = ui.queue.shift();
  if (!next) return;
  ui.losses = [];
  ui.epochs = [];
  ui.lastReport = null;
  $('run-status').textContent = `Run ${ui.queueSize - ui.queue.length} of ${ui.queueSize}: ${next.label}`;
  ui.worker.postMessage({ type: 'start', settings: { ...next.settings, num_classes: ui.data.classes }, label: next.label });
}

// ---------------------------------------------------------------- looking at the model
/** conv1's filters: 8x8 tiles of 3x3 colour pixels, FP32 left, quantized right, each filter
 * scaled to its own range (so the pattern, not the size, shows). */
function drawFilters(canvas, f) {
  const tile = 3, gap = 1, side = 8 * (tile + gap), width = 2 * side + 6;
  canvas.width = width;
  canvas.height = side;
  const g = canvas.getContext('2d');
  g.fillStyle = '#fff';
  g.fillRect(0, 0, width, side);
  const image = g.createImageData(width, side);
  image.data.fill(255);
  [f.weights, f.quantized].forEach((w, half) => {
    for (let k = 0; k < 64; k++) {
      const values = w.slice(k * 27, k * 27 + 27);
      const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
      const x0 = half * (side + 6) + (k % 8) * (tile + gap), y0 = Math.floor(k / 8) * (tile + gap);
      for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) {
        const at = 4 * ((y0 + y) * width + x0 + x);
        for (let c = 0; c < 3; c++) image.data[at + c] = Math.round(255 * (values[c * 9 + y * 3 + x] - lo) / span);
      }
    }
  });
  g.putImageData(image, 0, 0);
}

/** Per layer: its weights, the quantizer scale, the levels used and the share of weights at 0. */
function showLayers(layers) {
  const body = $('layers-table').tBodies[0];
  body.textContent = '';
  for (const l of layers) {
    const total = l.rows * l.cols, zero = l.levels ? l.histogram[(l.levels - 1) / 2] / total : null;
    const row = body.insertRow();
    for (const text of [l.name, grouped(total), l.levels ? l.scale.toExponential(3) : 'FP32',
      l.levels ? `${l.unique_levels} of ${l.levels}` : '–', zero === null ? '–' : percent(zero)]) row.insertCell().textContent = text;
  }
}

/** The model's answer: the 32x32 image it saw and its five likeliest classes. */
function showTop5(m) {
  drawImage($('seen-image'), m.pixels);
  const ranked = m.probabilities.map((p, c) => [p, c]).sort((a, b) => b[0] - a[0]).slice(0, 5);
  const list = $('top5');
  list.textContent = '';
  for (const [p, c] of ranked) {
    const item = document.createElement('li');
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${Math.round(120 * p)}px`;
    item.append(`${ui.classNames[c] || c} ${percent(p)}`, bar);
    if (c === m.label) item.append(' (the true class)');
    list.append(item);
  }
  ui.lastTop5 = ranked;
}

/** Pixels of a canvas region as CIFAR's layout: 3072 bytes, R, G, B planes of 32x32. */
function cifarPixels(source, sx, sy, side) {
  const small = document.createElement('canvas');
  small.width = small.height = 32;
  const g = small.getContext('2d');
  g.imageSmoothingQuality = 'high';
  g.drawImage(source, sx, sy, side, side, 0, 0, 32, 32);
  const rgba = g.getImageData(0, 0, 32, 32).data, out = new Uint8Array(3072);
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) out[c * 1024 + p] = rgba[4 * p + c];
  return out;
}

function classify(pixels) {
  clearError();
  ui.worker.postMessage({ type: 'classify', pixels });
}

async function classifyPhoto(file) {
  if (!file) return;
  try {
    const bitmap = await createImageBitmap(file);
    const side = Math.min(bitmap.width, bitmap.height); /* the centre square */
    classify(cifarPixels(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side));
  } catch {
    showError(`${file.name}: not an image this browser can read`);
  }
}

function wireDrawing() {
  const pad = $('draw-pad'), g = pad.getContext('2d');
  const clear = () => {
    g.fillStyle = '#fff';
    g.fillRect(0, 0, pad.width, pad.height);
  };
  clear();
  let drawing = false;
  const at = (e) => {
    const box = pad.getBoundingClientRect();
    return [(e.clientX - box.left) * pad.width / box.width, (e.clientY - box.top) * pad.height / box.height];
  };
  pad.addEventListener('pointerdown', (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    g.beginPath();
    g.moveTo(...at(e));
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    g.lineTo(...at(e));
    g.strokeStyle = $('pen-color').value;
    g.lineWidth = 12;
    g.lineCap = g.lineJoin = 'round';
    g.stroke();
  });
  pad.addEventListener('pointerup', () => { drawing = false; });
  $('clear-drawing').addEventListener('click', clear);
  $('classify-drawing').addEventListener('click', () => classify(cifarPixels(pad, 0, 0, pad.width)));
  $('photo-input').addEventListener('change', (e) => {
    classifyPhoto(e.target.files[0]);
    e.target.value = '';
  });
  const zone = $('photo-zone');
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    e.stopPropagation();
    zone.classList.remove('over');
    classifyPhoto(e.dataTransfer.files[0]);
  });
  $('image-grid').addEventListener('click', (e) => {
    const cell = e.target.closest('.cell');
    if (!cell) return;
    ui.worker.postMessage({ type: 'classify', testIndex: [...cell.parentNode.children].indexOf(cell) });
  });
}

/** Resumes a saved run, loading the data it trained on first if it is not loaded. */
function resumeRun(saved) {
  clearError();
  $('resume-banner').hidden = true;
  const go = () => ui.worker.postMessage({ type: 'resume-saved', run: saved.id, start: true,
    threads: Number(formSettings().threads) });
  const source = saved.dataSource;
  if (source && source.type === 'files') {
    if (ui.data && ui.dataSource === 'files' && ui.data.train >= saved.config.train_limit) return go();
    showError(`This run trained on files you chose (${source.names.join(', ')}): choose them again, then press Resume.`);
    ui.pendingStart = go;
    return;
  }
  const wanted = saved.config.train_limit;
  if (ui.data && ui.data.train >= wanted && ui.data.classes === saved.config.num_classes) return go();
  ui.pendingStart = go;
  if (source && source.type === 'url' && source.url !== DEFAULT_DATA[source.kind]) {
    ui.loadingSource = 'url';
    ui.worker.postMessage({ type: 'load', trainLimit: wanted, source });
  } else {
    loadDefault(wanted);
  }
}

function wire() {
  $('preset').addEventListener('change', () => {
    if ($('preset').value in PRESETS) applyPreset($('preset').value).then(describeRecipe);
  });
  for (const id of ['settings-main', 'settings-more']) {
    $(id).addEventListener('input', (e) => {
      if (e.target.dataset.setting !== 'threads') $('preset').value = 'custom';
    });
    $(id).addEventListener('change', async (e) => { /* a recipe resets the recipe settings to its own */
      if (e.target.dataset.setting !== 'recipe') return;
      const config = await request({ type: 'resolve', settings: { recipe: e.target.value } });
      for (const f of ui.fields) if (f.method) setSetting(f.name, config[f.name]);
      describeRecipe();
    });
  }
  $('load-default').addEventListener('click', () => loadDefault(Number(formSettings().train_limit) || 0));
  $('file-input').addEventListener('change', (e) => loadFiles(e.target.files));
  $('load-url').addEventListener('click', () => {
    clearError();
    const url = $('data-url').value.trim();
    if (!url) return showError('Enter the URL of a folder holding the official shards.');
    ui.loadingSource = 'url';
    ui.worker.postMessage({ type: 'load', trainLimit: Number(formSettings().train_limit) || 0,
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
  $('settings-main').addEventListener('change', (e) => {
    if (e.target.dataset.setting === 'threads') ui.worker.postMessage({ type: 'threads', threads: Number(e.target.value) });
  });
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
  $('download-card').addEventListener('click', () => ui.worker.postMessage({ type: 'card' }));
  $('verify-input').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (!file) return;
    clearError();
    let card;
    try {
      card = JSON.parse(await file.text());
    } catch {
      return showError(`${file.name}: not a run card (not JSON)`);
    }
    const go = () => {
      ui.verifyEpochs = [];
      $('verify-status').className = 'note';
      $('verify-status').textContent = 'Checking…';
      ui.worker.postMessage({ type: 'verify', file, steps: Number($('verify-steps').value) || 0,
        threads: Number(formSettings().threads) });
    };
    const config = card.config || {};
    const kind = card.data && card.data.kind === 100 ? 100 : 10;
    if (ui.data && ui.data.kind === kind && ui.data.train >= (config.train_limit || 50000)) return go();
    $('dataset').value = String(kind);
    ui.pendingStart = go;
    loadDefault(config.train_limit || 0);
  });
  $('checkpoint-input').addEventListener('change', (e) => {
    const file = e.target.files[0];
    if (!file) return;
    clearError();
    const threads = Number(formSettings().threads);
    const resumeWith = () => ui.worker.postMessage({ type: 'upload-checkpoint', file, threads });
    if (!ui.data) {
      ui.pendingStart = resumeWith;
      loadDefault(0);
    } else resumeWith();
    e.target.value = '';
  });
  $('resume-saved').addEventListener('click', () => ui.offered && resumeRun(ui.offered));
  $('discard-saved').addEventListener('click', () => ui.offered && ui.worker.postMessage({ type: 'delete-run', run: ui.offered.id }));
  window.addEventListener('resize', () => scheduleDraw());
}

/**
 * The built site makes itself cross-origin isolated with its service worker (sw.js), which
 * adds the COOP/COEP headers hosts do not send, and keeps the files for offline use. On the
 * first visit the page reloads once, when the worker controls it. Resolves with a note when
 * threads stay off, or null; never resolves when the page is about to reload.
 */
async function isolateSite() {
  if (!SITE) return null;
  if (!('serviceWorker' in navigator)) return 'this browser offers no service worker to the page';
  try {
    await navigator.serviceWorker.register('sw.js');
    await navigator.serviceWorker.ready;
  } catch (e) {
    return `its service worker could not start (${e.message})`;
  }
  if (crossOriginIsolated) {
    sessionStorage.removeItem('q4-isolating');
    return null;
  }
  if (sessionStorage.getItem('q4-isolating') === '1') return 'its service worker could not isolate the page';
  sessionStorage.setItem('q4-isolating', '1');
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) => {
      navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true });
      setTimeout(resolve, 5000);
    });
  }
  location.reload();
  return new Promise(() => {});
}

wire();
wireDrawing();
if (!HAS_DATA) $('load-default').hidden = true;
isolateSite().then((note) => {
  ui.isolationNote = note;
  ui.worker = new Worker('worker.js');
  ui.worker.onmessage = (e) => {
    onMessage(e.data);
    window.dispatchEvent(new CustomEvent('q4', { detail: e.data }));
  };
  ui.worker.onerror = (e) => showError(`The training worker failed: ${e.message}`);
  ui.worker.postMessage({ type: 'init' });
});
scheduleDraw();
