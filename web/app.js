// app.js - the page: settings (a form built from the engine's own table of settings, presets,
// URL parameters), data choice, the controls, and the live metrics a teacher can point at.
// All training happens in worker.js; this module only sends messages and draws, so the page
// stays responsive while the CPU trains. Every message from the worker is also announced as
// a `q4` DOM event on window (detail: the message), for pages that embed this one and for
// the browser tests.
import { barChart, COLORS, drawImage, heatmap, levelHistograms, lineChart } from './charts.js';
import { drawFilters, showLayers, showTop5, wireDrawing } from './model-view.js';
import { $, clearError, grouped, HAS_DATA, percent, request, showError, showWarning, SITE, ui } from './page.js';
import {
  applyPreset, buildSettingsForm, describeRecipe, emptySettings, formSettings, linkToSettings, PRESETS, QUEUES, setSetting, settingsFromUrl,
  showConfig,
} from './settings.js';

function setState(state) {
  ui.state = state;
  updateControls();
  const labels = { idle: 'Ready to start.', loading: 'Loading data…', ready: 'Data loaded: press Start.',
    running: 'Training…', paused: 'Paused.', stopped: 'Stopped.', finished: 'Finished all epochs.',
    verifying: 'Checking a run card…', checking: 'Evaluating a model…' };
  $('run-status').textContent = state === 'paused' && ui.resumeNote ? ui.resumeNote : labels[state] || state;
  if (state === 'running') ui.resumeNote = null;
  if (ui.offerUpdate) ui.offerUpdate();
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
  // nothing may replace the data or the session while a run trains (pause or stop first)
  const busy = running || state === 'loading' || state === 'verifying' || state === 'checking';
  $('verify-input').disabled = busy;
  $('verify-cancel').disabled = state !== 'verifying';
  $('check-cancel').disabled = state !== 'checking';
  for (const id of ['model-input', 'model-card-input']) $(id).disabled = busy;
  $('check-model').disabled = busy || !$('model-input').files.length;
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
      `${r.config.epochs} done${r.stepInEpoch ? ` and step ${r.stepInEpoch} of epoch ${r.epoch + 1}` : ''}, best test accuracy ${r.bestAccuracy ? percent(r.bestAccuracy) : '–'}, ` +
      `saved ${new Date(r.savedAt).toISOString().slice(0, 16).replace('T', ' ')} UTC.`;
  }
  $('resume-banner').hidden = !ui.offered;
  updateControls();
}


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
        (!m.threaded ? (ui.isolationNote ? ` (${ui.isolationNote}).` : '.')
          : m.maxThreads < Math.min(m.reportedCores, 16)
            ? ` (up to ${m.maxThreads} threads: the browser reports ${m.reportedCores} cores, and more than ${m.maxThreads} threads measured no faster).`
            : ` (up to ${m.maxThreads} threads on this machine).`);
      $('engine-status').className = m.threaded ? 'status ok' : 'status warn';
      setState('idle');
      settingsFromUrl().then((valid) => {
        if (valid && new URLSearchParams(location.search).get('autostart') === '1') start();
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
      $('try-source').textContent = m.model ? `Answered by the model loaded from ${m.model} (Check a published run).`
        : 'Answered by the training run\'s model.';
      break;
    case 'model-loaded':
      $('model-status').className = 'note';
      $('model-status').textContent = `Evaluating ${m.name} on ${m.info.test_limit ? grouped(m.info.test_limit) : 'all'} ` +
        `test images${m.card ? `, as the run of ${m.card} did` : ''}…`;
      break;
    case 'model-progress':
      ui.checkProgress = m;
      $('model-status').textContent = (m.augmented ? `Test accuracy ${percent(ui.checkPlain.accuracy)} ` +
        `(${ui.checkPlain.correct}/${ui.checkPlain.count}); now with test-time augmentation, each image seen several times: `
        : 'Evaluating: ') + `${grouped(m.evaluated)} of ${grouped(m.count)} test images…`;
      break;
    case 'model-evaluation':
      ui.checkPlain = m.plain;
      $('model-status').textContent = `Test accuracy ${percent(m.plain.accuracy)} (${m.plain.correct}/${m.plain.count})` +
        (m.augmentedNext ? '; now with test-time augmentation, each image seen several times…' : '');
      break;
    case 'model-checked': {
      const e = m.plain, a = m.augmented, p = ui.checkProgress;
      if (m.cancelled) {
        $('model-status').textContent = `${m.name}: cancelled after ${grouped(p ? p.evaluated : 0)} of ` +
          `${grouped(p ? p.count : 0)} test images${p && p.augmented ? ' with test-time augmentation' : ''}` +
          (e ? ` (test accuracy without it ${percent(e.accuracy)}, ${e.correct}/${e.count})` : '') +
          `: ${m.info.card ? 'NOT compared with its run card' : 'not evaluated to the end'}. It now answers Try the model.`;
        $('model-status').className = 'note';
        break;
      }
      $('model-status').textContent = `${m.name}: test accuracy ${percent(e.accuracy)} (${e.correct}/${e.count})` +
        (a ? `, with test-time augmentation ${percent(a.accuracy)} (${a.correct}/${a.count})` : '') +
        (m.verdict ? `. ${m.verdict.message}.` : '. No run card given: nothing to compare with.') +
        ' It now answers Try the model.';
      $('model-status').className = !m.verdict ? 'note' : m.verdict.same ? 'note ok' : 'note bad';
      break;
    }
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
      $('m-memory').textContent = `${(m.memoryInUse / 1048576).toFixed(0)} of ${(m.memory / 1048576).toFixed(0)} MiB`;
      scheduleDraw('loss');
      break;
    }
    case 'epoch': {
      const r = m.report;
      ui.lastReport = r;
      ui.epochs.push(r);
      $('m-test').textContent = `${percent(r.test_accuracy)} (best ${percent(r.best_accuracy)})` +
        (r.tta_accuracy !== null ? `; with test-time augmentation ${percent(r.tta_accuracy)}` : '');
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
        $('run-status').textContent = `Epoch ${m.epoch} done; the run is saved in this browser (${(m.bytes / 1048576).toFixed(1)} MiB).`;
      else if ((m.status === 'paused' || m.status === 'stopped') && ui.state === m.status)
        $('run-status').textContent = `${$('run-status').textContent.replace(/ The run is saved.*$/, '')} The run is saved in this browser.`;
      break;
    case 'card-text':
      download(new TextEncoder().encode(m.text), `q4-run-step${m.step}.json`);
      break;
    case 'verify-progress':
      $('verify-status').textContent = `Checking: step ${m.step} of ${m.total}, ${m.compared} fingerprints and ` +
        `${m.claims} figures identical so far…`;
      break;
    case 'verify-epoch':
      ui.verifyEpochs.push(`epoch ${m.epoch}: test accuracy ${percent(m.testAccuracy)}` +
        (m.cardAccuracy !== null ? ` (the card: ${percent(m.cardAccuracy)})` : ''));
      break;
    case 'verified':
      $('verify-status').textContent = `${m.cancelled ? 'Cancelled' : !m.identical ? 'DIFFERENT' : m.complete ? 'Verified'
        : 'Partly checked'}: ${m.message}` + (ui.verifyEpochs.length ? `; ${ui.verifyEpochs.join('; ')}` : '') +
        ` (card made by ${m.engine}, ${m.kernels}).`;
      $('verify-status').className = m.identical && m.complete ? 'note ok' : m.identical || m.cancelled ? 'note' : 'note bad';
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
      if (m.where === 'check-model') $('model-status').textContent = '';
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
  const empty = emptySettings(settings);
  if (empty.length) { // the engine would fill them with its defaults: a run the visitor did not choose
    showError(`These settings have no valid value: ${empty.join(', ')}. Fill them in, then press Start.`);
    return;
  }
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
      if (e.target.dataset.setting === 'recipe') {
        const config = await request({ type: 'resolve', settings: { recipe: e.target.value } });
        for (const f of ui.fields) if (f.method) setSetting(f.name, config[f.name]);
      }
      describeRecipe(); /* the note names what the form changes in the recipe */
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
  $('verify-cancel').addEventListener('click', () => ui.worker.postMessage({ type: 'cancel-verify' }));
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
  $('model-input').addEventListener('change', updateControls);
  $('check-cancel').addEventListener('click', () => ui.worker.postMessage({ type: 'cancel-check' }));
  $('check-model').addEventListener('click', async () => {
    const model = $('model-input').files[0], card = $('model-card-input').files[0] || null;
    if (!model) return;
    clearError();
    let kind = 10, trainLimit = 0; // the card's MD5s cover the training shards its run read
    if (card) {
      try {
        const parsed = JSON.parse(await card.text());
        kind = parsed.data && parsed.data.kind === 100 ? 100 : 10;
        trainLimit = (parsed.config && parsed.config.train_limit) || 0;
      } catch {
        return showError(`${card.name}: not a run card (not JSON)`);
      }
    }
    const go = () => {
      ui.checkProgress = null;
      ui.checkPlain = null;
      $('model-status').className = 'note';
      $('model-status').textContent = `Loading ${model.name}…`;
      ui.worker.postMessage({ type: 'check-model', model, card, threads: Number(formSettings().threads) });
    };
    if (ui.data && ui.data.kind === kind && ui.data.train >= (trainLimit || 50000)) return go();
    $('dataset').value = String(kind);
    ui.pendingStart = go;
    loadDefault(trainLimit);
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
  let registration;
  try {
    registration = await navigator.serviceWorker.register('sw.js');
    await navigator.serviceWorker.ready;
  } catch (e) {
    return `its service worker could not start (${e.message})`;
  }
  if (crossOriginIsolated) {
    sessionStorage.removeItem('q4-isolating');
    watchUpdates(registration);
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

/**
 * A new deploy of the site (sw.js: its worker installs and waits). The page switches to it at
 * once while nothing would be lost: no run shown, no data but the site's own (which the browser
 * keeps), nothing loading or being checked. Otherwise a banner offers the reload, and the run
 * goes on with the files it started with. The browser looks for a new sw.js at each visit.
 */
function watchUpdates(registration) {
  const waiting = () => (navigator.serviceWorker.controller ? registration.waiting : null);
  let switching = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => switching && location.reload());
  const takeOver = () => {
    const worker = waiting();
    if (!worker || switching) return;
    switching = true;
    worker.postMessage('q4-take-over');
  };
  ui.offerUpdate = () => {
    if (!waiting()) return;
    const nothingToLose = ui.epochs.length === 0 && ui.losses.length === 0 &&
      (ui.state === 'idle' || (ui.state === 'ready' && ui.dataSource === 'default'));
    if (nothingToLose) takeOver();
    else $('update-banner').hidden = false;
  };
  $('update-now').addEventListener('click', takeOver);
  const follow = (worker) => worker && worker.addEventListener('statechange', () => worker.state === 'installed' && ui.offerUpdate());
  registration.addEventListener('updatefound', () => follow(registration.installing));
  follow(registration.installing);
  ui.offerUpdate();
}

wire();
wireDrawing();
if (!HAS_DATA) $('load-default').hidden = true;
/*
 * The engine's start, watched. Firefox ESR 153 now and then never returns from one of the
 * `new Worker` calls that create the engine's threads, and the worker's own thread stays blocked
 * (the page said "Loading the engine…" for good: 1 first visit of the built site in 68, and 1 in
 * 17 of visitor.test.mjs's Firefox test, beside two training runs, 2026-12-07; twice in earlier
 * full `make test` runs). A thread blocked there answers no message, so while the engine loads the
 * page asks the worker every second, and a worker silent for ENGINE_SILENT_MS is replaced by a new
 * one (a healthy start answered within 0.5 s in those runs; the engine is 0.3 MB, already in the
 * browser's cache on the site); after ENGINE_THREADED_TRIES threaded starts it starts on one
 * thread, with no threads to create, and says why; if that one hangs too, the page says so.
 * (The browser tests shorten the wait: window.q4EngineSilentMs, set before this script runs.)
 */
const ENGINE_SILENT_MS = Number(window.q4EngineSilentMs) || 8000;
const ENGINE_THREADED_TRIES = 2;

function startEngine(tries = 0) {
  const worker = new Worker('worker.js');
  ui.worker = worker;
  let heard = performance.now();
  const watch = setInterval(() => {
    if (performance.now() - heard < ENGINE_SILENT_MS) {
      worker.postMessage({ type: 'ping' });
      return;
    }
    clearInterval(watch);
    worker.terminate();
    if (tries >= ENGINE_THREADED_TRIES) {
      $('engine-status').textContent = 'The engine did not start.';
      showError(`The engine did not start: its worker stopped answering, ${tries} times with threads and once on one thread. Reload the page to try again.`);
      return;
    }
    const next = tries + 1;
    $('engine-status').textContent = next < ENGINE_THREADED_TRIES
      ? `Loading the engine… (its start hung for ${ENGINE_SILENT_MS / 1000} s: trying again)`
      : `Loading the engine on one thread… (its threads did not start, ${next} tries)`;
    startEngine(next);
  }, 1000);
  worker.onmessage = (e) => {
    heard = performance.now();
    if (e.data.type === 'pong') return;
    if (e.data.type === 'ready' || e.data.type === 'error') clearInterval(watch);
    onMessage(e.data);
    window.dispatchEvent(new CustomEvent('q4', { detail: e.data }));
  };
  worker.onerror = (e) => {
    clearInterval(watch);
    showError(`The training worker failed: ${e.message}`);
  };
  const single = tries >= ENGINE_THREADED_TRIES;
  worker.postMessage({ type: 'init', forceSingleThread: single,
    singleThreadReason: single ? `its threads did not start in this browser (${tries} tries)` : null });
}

isolateSite().then((note) => {
  ui.isolationNote = note;
  startEngine();
});
scheduleDraw();
