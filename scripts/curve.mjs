// curve.mjs - `make curve`: trains each named run that has no complete log yet (build/q4train
// with --log and --checkpoint, so an interrupted run resumes), then draws test accuracy per
// epoch for every run side by side as an SVG, with the paper's published log points for
// reference. Long: run it in the background (nohup make curve &); the logs it cites are kept.
// Usage: node scripts/curve.mjs [--out results/curve.svg] [--logs results/logs] [--draw-only]
//          [--run "LABEL=q4train options"]... [--epochs N] (a run's own --epochs plans its budget) [--seeds 0,1] [--title TEXT]
//          [--no-paper-log] [--trainer build/q4train] [--artifacts] [--paper-lines] [--finals] [--curves LABEL,...]
// --artifacts: each run also writes its run card and exported model beside its log
// (LOGS/LABEL-sSEED.card.json, .q4). --paper-lines: the paper's final results (92.34% 4-bit, its
// best at epoch 110; 92.5% FP32) as horizontal lines, for budgets that end before them. --finals:
// a panel of each run's seeds at its last planned epoch, on one scale beside those two results.
// Without --run: the paper recipe and the fast recipe, EPOCHS (default 10) epochs each.
// Each run's log is LOGS/LABEL-sSEED.jsonl (LABEL lower-cased, spaces as dashes).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const value = (flag, fallback) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : fallback);
const all = (flag) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
const out = value('--out', 'results/curve.svg');
const logs = value('--logs', 'results/logs');
const epochs = Number(value('--epochs', process.env.EPOCHS || 10));
const seeds = value('--seeds', process.env.SEEDS || '0').split(',').map(Number);
const title = value('--title', `CIFAR-10 test accuracy per epoch, 4-bit weights (q4, natively)`);
const data = value('--data', 'data');
const trainer = value('--trainer', 'build/q4train');
const paperLog = !args.includes('--no-paper-log');
// --curves: the runs drawn epoch by epoch (by label; default all); the others keep their legend row
// and, with --finals, their last epoch, so that many budgets fit in one readable plot
const curves = args.includes('--curves') ? new Set(value('--curves', '').split(',').map((l) => l.trim())) : null;
const runs = (all('--run').length ? all('--run') : ['paper recipe=--recipe paper', 'fast recipe=--recipe fast'])
  .map((spec) => {
    const at = spec.indexOf('=');
    const options = spec.slice(at + 1).trim().split(/\s+/).filter(Boolean);
    // a run may plan its own budget (--epochs N among its options; the others plan EPOCHS) and
    // name its own seeds (--seeds S,T: the others take SEEDS); neither is passed on as such
    const own = options.indexOf('--epochs'), ownSeeds = options.indexOf('--seeds'), drop = new Set();
    for (const at of [own, ownSeeds]) if (at >= 0) drop.add(at).add(at + 1);
    return { label: spec.slice(0, at).trim(), epochs: own >= 0 ? Number(options[own + 1]) : epochs,
      seeds: ownSeeds >= 0 ? options[ownSeeds + 1].split(',').map(Number) : null,
      options: options.filter((_, i) => !drop.has(i)) };
  });
for (const label of curves || []) {
  if (!runs.some((run) => run.label === label)) {
    console.error(`curve: --curves names '${label}', which is no run's label (${runs.map((run) => run.label).join(', ')})`);
    process.exit(1);
  }
}
/** The paper's own log (PAPER.md: "CIFAR-10 log checkpoints"), drawn as reference points. */
const PAPER_LOG = [[1, 66.84], [5, 81.59], [10, 84.65], [20, 87.32], [50, 89.97], [75, 91.11], [100, 92.21]];

const slug = (label) => label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
const logPath = (run, seed) => path.join(logs, `${slug(run.label)}-s${seed}.jsonl`);

/** The epoch lines of a log (a resumed run's log repeats no epoch: the CLI logs after saving). */
function readLog(file) {
  if (!fs.existsSync(file)) return [];
  const byEpoch = new Map();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const j = JSON.parse(line);
    if (j.epoch) byEpoch.set(j.epoch, j);
  }
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

function train(run, seed) {
  const file = logPath(run, seed);
  const done = readLog(file);
  const epochs = run.epochs;
  if (done.length >= epochs) return;
  fs.mkdirSync(logs, { recursive: true });
  const checkpoint = path.join('build', 'curve', slug(logs), `${slug(run.label)}-s${seed}.ckpt`);
  fs.mkdirSync(path.dirname(checkpoint), { recursive: true });
  const resume = done.length && fs.existsSync(checkpoint);
  const options = resume ? ['--resume', checkpoint, '--epochs', String(epochs)]
    : [...run.options, '--epochs', String(epochs), '--seed', String(seed)];
  if (!resume && fs.existsSync(file)) fs.rmSync(file);
  console.log(`curve: ${run.label}, seed ${seed}: ${resume ? `resuming after epoch ${done.length}` : 'training'} ` +
    `(log ${file})`);
  const base = file.replace(/\.jsonl$/, '');
  const artifacts = args.includes('--artifacts') ? ['--card', `${base}.card.json`, '--export', `${base}.q4`] : [];
  if (artifacts.length && !resume) fs.rmSync(`${base}.card.json`, { force: true });
  execFileSync(trainer, ['--data', data, ...options, '--checkpoint', checkpoint, '--log', file, ...artifacts, '--quiet'],
    { stdio: 'inherit' });
}

// ---------------------------------------------------------------- drawing
// One colour per run; its first seed solid, the others dashed. The legend has a row per run;
// with --finals each row also shows where that run's seeds ended (plain test accuracy after the
// last planned epoch; a run whose log is not complete shows nothing there), on one scale beside
// the paper's results, so the rows read as a table of the budgets against the target.
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d', '#854d0e', '#4b5563', '#f59e0b', '#14b8a6'];
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
/** The paper's final results (PAPER.md, "What the paper reports"): value, label. */
const PAPER_FINALS = [[92.5, 'FP32: 92.5%'], [92.34, '4-bit: 92.34% (epoch 110)']];

function draw(rows, reference) {
  const finals = args.includes('--finals');
  const plotW = 520, legendW = finals ? 150 : 190, finalsW = finals ? 250 : 0;
  const left = 56, top = 40, bottom = 46, rowH = 20;
  const W = left + plotW + legendW + finalsW + (finals ? 16 : 0);
  const H = Math.max(420, top + 24 + (rows.length + 4) * rowH + bottom);
  const series = rows.filter((r) => r.curve).flatMap((r) => r.seeds);
  const maxEpoch = Math.max(epochs, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const yMin = Math.max(0, Math.floor((Math.min(...ys, 90) - 2) / 5) * 5);
  const yMax = Math.min(100, Math.ceil((Math.max(...ys, 90) + 1) / 5) * 5);
  const plotRight = left + plotW;
  const x = (e) => left + ((e - 0.5) / maxEpoch) * plotW;
  const y = (v) => top + (1 - (v - yMin) / (yMax - yMin)) * (H - top - bottom);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" ` +
    'font-family="system-ui, sans-serif" font-size="12">', `<rect width="${W}" height="${H}" fill="#fff"/>`,
  `<text x="${left}" y="22" font-size="14" font-weight="600">${esc(title)}</text>`];
  for (let v = yMin; v <= yMax; v += 5) {
    parts.push(`<line x1="${left}" x2="${plotRight}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>`,
      `<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end" fill="#6b7280">${v}%</text>`);
  }
  const step = maxEpoch > 20 ? 5 : maxEpoch > 10 ? 2 : 1;
  for (let e = 1; e <= maxEpoch; e += e === 1 && step > 1 ? step - 1 : step) {
    parts.push(`<text x="${x(e)}" y="${H - bottom + 18}" text-anchor="middle" fill="#6b7280">${e}</text>`);
  }
  parts.push(`<text x="${left + plotW / 2}" y="${H - 8}" text-anchor="middle" fill="#374151">epoch</text>`);
  if (args.includes('--paper-lines')) {
    PAPER_FINALS.forEach(([v, label], k) => parts.push(
      `<line x1="${left}" x2="${plotRight}" y1="${y(v)}" y2="${y(v)}" stroke="#111827" stroke-dasharray="2 3"/>`,
      `<text x="${left + 6}" y="${y(v) + (k ? 12 : -4)}" fill="#111827" font-size="11">the paper, ${esc(label)}</text>`));
  }
  for (const row of rows.filter((r) => r.curve)) {
    for (const s of row.seeds) {
      const d = s.points.map(([e, v], k) => `${k ? 'L' : 'M'}${x(e).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${row.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
      for (const [e, v] of s.points) parts.push(`<circle cx="${x(e)}" cy="${y(v)}" r="2.5" fill="${row.color}"/>`);
    }
  }
  if (reference) for (const [e, v] of reference) {
    parts.push(`<circle cx="${x(e)}" cy="${y(v)}" r="4.5" fill="none" stroke="#111827" stroke-width="2"/>`);
  }

  // the legend: a row per run, then the seeds' line styles and the paper's log
  const lx = plotRight + 16, rowY = (i) => top + 24 + i * rowH;
  const seedNames = [...new Set(rows.flatMap((r) => r.seeds.map((s) => s.seed)))];
  const legend = [...rows.map((r) => ({ name: r.label, color: r.color, curve: r.curve })),
    ...(seedNames.length > 1 ? seedNames.map((seed, k) => ({ name: `seed ${seed}`, color: '#6b7280', dashed: k > 0 })) : []),
    ...(reference ? [{ name: "the paper's log", color: '#111827', reference: true }] : [])];
  parts.push(`<text x="${lx}" y="${top + 4}" fill="#374151" font-weight="600">run</text>`);
  legend.forEach((entry, i) => {
    const ly = rowY(i);
    if (entry.reference) {
      parts.push(`<circle cx="${lx + 10}" cy="${ly - 4}" r="4.5" fill="none" stroke="${entry.color}" stroke-width="2"/>`);
    } else if (entry.curve === false) { // no curve drawn: a short stub, the run's colour for its finals
      parts.push(`<line x1="${lx + 6}" x2="${lx + 14}" y1="${ly - 4}" y2="${ly - 4}" stroke="${entry.color}" stroke-width="4"/>`);
    } else {
      parts.push(`<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${entry.color}" stroke-width="2"` +
        `${entry.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    }
    if (finals && entry.name.startsWith('seed ')) {
      parts.push(`<circle cx="${lx + 10}" cy="${ly - 4}" r="4" stroke="${entry.color}" stroke-width="2" fill="${entry.dashed ? '#fff' : entry.color}"/>`);
    }
    parts.push(`<text x="${lx + 26}" y="${ly}" fill="#111827">${esc(entry.name)}</text>`);
  });
  if (finals) drawFinals(parts, rows, lx + legendW, rowY, top + 4);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Each run's seeds after the last planned epoch, on one accuracy scale, in the legend's rows. */
function drawFinals(parts, rows, fx, rowY, headY) {
  const ends = rows.flatMap((r) => r.seeds.filter((s) => s.final != null).map((s) => s.final));
  const marks = [...ends, ...PAPER_FINALS.map(([v]) => v)];
  const lo = Math.floor(Math.min(...marks) * 2 - 1) / 2, hi = Math.ceil(Math.max(...marks) * 2 + 1) / 2;
  const width = 230, fxv = (v) => fx + ((v - lo) / (hi - lo)) * width;
  const y0 = rowY(0) - 14, y1 = rowY(rows.length - 1) + 6;
  parts.push(`<text x="${fx}" y="${headY}" fill="#374151" font-weight="600">at the last planned epoch, %</text>`);
  for (let v = lo; v <= hi + 1e-9; v += 0.5) {
    parts.push(`<line x1="${fxv(v)}" x2="${fxv(v)}" y1="${y0}" y2="${y1}" stroke="#e5e7eb"/>`,
      `<text x="${fxv(v)}" y="${y1 + 14}" text-anchor="middle" fill="#6b7280" font-size="11">${v.toFixed(1)}</text>`);
  }
  PAPER_FINALS.forEach(([v, label], k) => parts.push(
    `<line x1="${fxv(v)}" x2="${fxv(v)}" y1="${y0}" y2="${y1}" stroke="#111827" stroke-dasharray="2 3"/>`,
    `<text x="${fxv(v) + (k ? -3 : 3)}" y="${y1 + 28}" text-anchor="${k ? 'end' : 'start'}" fill="#111827" font-size="11">${esc(label.replace(/ \(.*/, ''))}</text>`));
  rows.forEach((r, i) => {
    const ry = rowY(i) - 4;
    r.seeds.forEach((s) => {
      if (s.final == null) return;
      parts.push(`<circle cx="${fxv(s.final).toFixed(1)}" cy="${ry}" r="4" stroke="${r.color}" stroke-width="2" ` +
        `fill="${s.dashed ? '#fff' : r.color}"><title>${esc(`${r.label}, seed ${s.seed}: ${s.final.toFixed(2)}%`)}</title></circle>`);
    });
  });
}

const seedsOf = (run) => run.seeds || seeds;
if (!args.includes('--draw-only')) for (const run of runs) for (const seed of seedsOf(run)) train(run, seed);

const rows = [];
let lastEpoch = epochs;
runs.forEach((run, r) => {
  const row = { label: run.label, color: COLORS[r % COLORS.length], curve: !curves || curves.has(run.label), seeds: [] };
  seedsOf(run).forEach((seed, k) => {
    const lines = readLog(logPath(run, seed));
    if (!lines.length) return;
    const last = lines[lines.length - 1];
    if (row.curve) lastEpoch = Math.max(lastEpoch, last.epoch); // the paper's log up to the last epoch drawn
    row.seeds.push({ seed, dashed: k > 0, points: lines.map((j) => [j.epoch, 100 * j.test_accuracy]),
      final: last.epoch >= run.epochs ? 100 * last.test_accuracy : null });
  });
  if (row.seeds.length) rows.push(row);
});
const reference = paperLog ? PAPER_LOG.filter(([e]) => e <= lastEpoch) : null;
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, draw(rows, reference));
console.log(`curve: wrote ${out}`);
for (const r of rows) for (const s of r.seeds) {
  console.log(`  ${`${r.label}, seed ${s.seed}`.padEnd(28)} ${s.points.map(([e, v]) => `${e}:${v.toFixed(2)}`).join(' ')}`);
}
