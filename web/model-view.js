// model-view.js - the trained model looked at and asked: conv1's filters (FP32 beside
// quantized), the per-layer table, and the model's top 5 for a photo, a drawing or a test image.
import { drawImage } from './charts.js';
import { $, clearError, grouped, percent, showError, ui } from './page.js';

/** conv1's filters: 8x8 tiles of 3x3 colour pixels, FP32 left, quantized right, each filter
 * scaled to its own range (so the pattern, not the size, shows). */
export function drawFilters(canvas, f) {
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
export function showLayers(layers) {
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
export function showTop5(m) {
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

export function wireDrawing() {
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
