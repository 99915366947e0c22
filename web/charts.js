// charts.js - a compact canvas renderer for the page's charts: lines, bars, a heatmap and
// small-multiple histograms. Ours rather than a charting library: a few hundred lines, no
// dependency to fetch or audit, and the exact pictures a teacher needs (15 quantization
// levels, a confusion matrix) without fighting a general API. Crisp on high-DPI screens.

const FONT = '11px system-ui, sans-serif';
export const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d'];

/** Sizes the canvas to its CSS box times devicePixelRatio; returns a 2D context in CSS pixels. */
function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 300, height = canvas.clientHeight || 160;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.font = FONT;
  return { g, width, height };
}

function niceTicks(min, max, count = 4) {
  const span = max - min || 1;
  const step = 10 ** Math.floor(Math.log10(span / count));
  const unit = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= count) || step * 10;
  const ticks = [];
  for (let v = Math.ceil(min / unit) * unit; v <= max + 1e-12; v += unit) ticks.push(v);
  return ticks;
}

function format(v) {
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(1)}k`;
  if (Math.abs(v) >= 10 || v === 0) return v.toFixed(0);
  return Math.abs(v) >= 1 ? v.toFixed(1) : v.toPrecision(2);
}

/** series: [{name, color, points: [[x, y], ...]}]; options: {yMin, yMax, xLabel, percent} */
export function lineChart(canvas, series, options = {}) {
  const { g, width, height } = prepare(canvas);
  const left = 40, right = 8, top = 16, bottom = 20;
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    g.fillStyle = '#888';
    g.fillText('no data yet', left, top + 20);
    return;
  }
  let xMin = Math.min(...all.map((p) => p[0])), xMax = Math.max(...all.map((p) => p[0]));
  let yMin = options.yMin ?? Math.min(...all.map((p) => p[1])), yMax = options.yMax ?? Math.max(...all.map((p) => p[1]));
  if (xMax === xMin) xMax = xMin + 1;
  if (yMax === yMin) yMax = yMin + 1;
  const x = (v) => left + ((v - xMin) / (xMax - xMin)) * (width - left - right);
  const y = (v) => top + (1 - (v - yMin) / (yMax - yMin)) * (height - top - bottom);
  g.strokeStyle = '#e5e7eb';
  g.fillStyle = '#6b7280';
  g.lineWidth = 1;
  for (const t of niceTicks(yMin, yMax)) {
    g.beginPath();
    g.moveTo(left, y(t));
    g.lineTo(width - right, y(t));
    g.stroke();
    g.fillText(options.percent ? `${format(100 * t)}%` : format(t), 2, y(t) + 4);
  }
  for (const t of niceTicks(xMin, xMax, 5)) g.fillText(format(t), x(t) - 6, height - 5);
  if (options.xLabel) g.fillText(`x: ${options.xLabel}`, width - right - g.measureText(`x: ${options.xLabel}`).width, 11);
  series.forEach((s, i) => {
    g.strokeStyle = s.color || COLORS[i % COLORS.length];
    g.lineWidth = 1.5;
    g.beginPath();
    s.points.forEach((p, k) => (k ? g.lineTo(x(p[0]), y(p[1])) : g.moveTo(x(p[0]), y(p[1]))));
    g.stroke();
    if (s.points.length < 40) {
      g.fillStyle = g.strokeStyle;
      for (const p of s.points) g.fillRect(x(p[0]) - 2, y(p[1]) - 2, 4, 4);
    }
    g.fillStyle = g.strokeStyle;
    g.fillText(s.name, left + 6 + i * 70, 11);
  });
}

/** One bar per label; values in [0, max]; optional per-bar text. */
export function barChart(canvas, labels, values, { max = null, color = COLORS[0], text = null, percent = false } = {}) {
  const { g, width, height } = prepare(canvas);
  const left = 34, bottom = labels.length > 12 ? 6 : 30, top = text ? 18 : 8, right = 4; // room above a full bar for its value
  const top_value = max ?? Math.max(1e-9, ...values);
  const slot = (width - left - right) / Math.max(1, labels.length);
  g.fillStyle = '#6b7280';
  for (const t of niceTicks(0, top_value, 3)) {
    const yy = top + (1 - t / top_value) * (height - top - bottom);
    g.fillText(percent ? `${format(100 * t)}%` : format(t), 2, yy + 4);
    g.fillStyle = '#e5e7eb';
    g.fillRect(left, yy, width - left - right, 1);
    g.fillStyle = '#6b7280';
  }
  values.forEach((v, i) => {
    const h = (Math.max(0, v) / top_value) * (height - top - bottom);
    g.fillStyle = typeof color === 'function' ? color(i, v) : color;
    g.fillRect(left + i * slot + slot * 0.15, height - bottom - h, slot * 0.7, h);
    if (labels.length <= 12) {
      g.save();
      g.fillStyle = '#374151';
      g.translate(left + i * slot + slot / 2, height - bottom + 4);
      g.rotate(labels.length > 6 ? Math.PI / 5 : 0);
      g.fillText(labels[i].slice(0, 10), labels.length > 6 ? 0 : -g.measureText(labels[i]).width / 2, 8);
      g.restore();
    }
    if (text) {
      g.fillStyle = '#111827';
      g.fillText(text(i, v), left + i * slot + slot / 2 - 6, height - bottom - h - 3);
    }
  });
}

/** k x k matrix (row-major counts); rows normalized to their totals. */
export function heatmap(canvas, matrix, k, labels = []) {
  const { g, width, height } = prepare(canvas);
  const pad = k <= 10 ? 64 : 6;
  const size = Math.min(width - pad - 4, height - 4 - (k <= 10 ? 4 : 0));
  const cell = size / k;
  for (let r = 0; r < k; r++) {
    let total = 0;
    for (let c = 0; c < k; c++) total += matrix[r * k + c];
    for (let c = 0; c < k; c++) {
      const v = total ? matrix[r * k + c] / total : 0;
      const shade = Math.round(255 * (1 - v));
      g.fillStyle = r === c ? `rgb(${shade},${Math.round(255 - 0.6 * (255 - shade))},${shade})` : `rgb(255,${shade},${shade})`;
      g.fillRect(pad + c * cell, 2 + r * cell, Math.ceil(cell), Math.ceil(cell));
      if (k <= 10 && matrix[r * k + c]) {
        g.fillStyle = v > 0.5 ? '#fff' : '#374151';
        g.fillText(String(matrix[r * k + c]), pad + c * cell + 3, 2 + r * cell + cell / 2 + 4);
      }
    }
    if (k <= 10) {
      g.fillStyle = '#374151';
      g.fillText((labels[r] || String(r)).slice(0, 9), 2, 2 + r * cell + cell / 2 + 4);
    }
  }
}

/** One small histogram per layer of its weight levels (-7..7 for 4 bits: the histogram's length decides). */
export function levelHistograms(canvas, layers) {
  const { g, width, height } = prepare(canvas);
  const n = layers.length || 1;
  const w = width / n;
  layers.forEach((layer, i) => {
    const levels = layer.histogram.length, extreme = (levels - 1) / 2;
    const max = Math.max(1, ...layer.histogram);
    const x0 = i * w + 4, bar = (w - 8) / levels, base = height - 16;
    layer.histogram.forEach((count, level) => {
      const h = (count / max) * (base - 18);
      g.fillStyle = count ? COLORS[i % COLORS.length] : '#f3f4f6';
      g.fillRect(x0 + level * bar, base - Math.max(h, count ? 1 : 0), Math.max(1, bar - 1), Math.max(h, count ? 1 : 0));
    });
    g.fillStyle = '#374151';
    g.fillText(`${layer.name} · ${layer.unique_levels}/${levels}`, x0, 12);
    g.fillStyle = '#9ca3af';
    g.fillText(`−${extreme}`, x0, height - 3);
    g.fillText(`+${extreme}`, x0 + (levels - 1) * bar - 4, height - 3);
  });
}

/** Draws a CIFAR image (3072 bytes: R, G, B planes of 32x32) into a canvas. */
export function drawImage(canvas, pixels) {
  canvas.width = 32;
  canvas.height = 32;
  const g = canvas.getContext('2d');
  const data = g.createImageData(32, 32);
  for (let p = 0; p < 1024; p++) {
    data.data[4 * p] = pixels[p];
    data.data[4 * p + 1] = pixels[1024 + p];
    data.data[4 * p + 2] = pixels[2048 + p];
    data.data[4 * p + 3] = 255;
  }
  g.putImageData(data, 0, 0);
}
