// check-readme.mjs - `make check-readme` (part of `make test`): every accuracy figure in the
// README's result tables is compared with the run log under results/ it comes from, and the
// script fails, naming the row and the cell, when one differs or a log is missing. The tables
// and their logs (JSON-lines run logs, or the text of scripts/measure-thresholds.sh) are listed
// below, table by table; a row the list names must exist.
//
// Usage: node scripts/check-readme.mjs [README.md]
import fs from 'node:fs';
import path from 'node:path';

const readme = process.argv[2] || 'README.md';

/** The epoch lines of a run log (JSON lines; the first line, {"run": ...}, describes the run). */
function epochs(file) {
  if (!fs.existsSync(file)) return null;
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
    .filter((l) => typeof l.epoch === 'number');
}

/** The measurements of a text log (scripts/measure-thresholds.sh): 'NAME: test accuracy X%'
 * lines, as a Map from NAME to X. */
function measurements(file) {
  if (!fs.existsSync(file)) return null;
  const found = new Map();
  for (const m of fs.readFileSync(file, 'utf8').matchAll(/^(.+?): test accuracy ([\d.]+)%/gm)) found.set(m[1], m[2]);
  return found;
}

/** What a cell shows, from a log: `e7` the test accuracy after epoch 7, `tta` the test-time
 * augmentation accuracy of the last epoch, `-` a cell not checked. Percentages, 2 decimals;
 * '' (a cell without a number) where the log has no such figure. */
function expected(lines, what) {
  if (what === '-') return null;
  if (lines instanceof Map) return lines.get(what) ?? ''; // a text log: the measurement's name
  if (what === 'tta') {
    const last = lines[lines.length - 1];
    return last && last.tta_accuracy != null ? (100 * last.tta_accuracy).toFixed(2) : '';
  }
  const line = lines.find((l) => l.epoch === Number(what.slice(1)));
  return line ? (100 * line.test_accuracy).toFixed(2) : '';
}

const slug = (label) => label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, ''); // as scripts/curve.mjs
const range = (first, last) => Array.from({ length: last - first + 1 }, (_, i) => `e${first + i}`);
const headline = (name) => `results/headline/${name}.jsonl`;

/** Per table: the section it sits in, and for each row checked its first cells (the row's
 * start, as written), its log, and what each following cell must show. */
const TABLES = [
  { section: '### Accuracy per epoch', rows: [
    ['| paper recipe, seed 0 |', 'results/logs/paper-recipe-s0.jsonl', range(1, 10)],
    ['| fast recipe, 10 planned epochs, seed 0 |', 'results/logs/fast-recipe-s0.jsonl', range(1, 10)],
    ['| the same with engine 0.10\'s kernels', 'results/logs/v0.10/fast-recipe-s0.jsonl', range(1, 10)],
    ['| 0 (the seed the recipe was chosen on) |', 'results/logs/fast-recipe-search/e3-b64-crop2.jsonl', range(1, 3)],
    ['| 1 |', 'results/logs/fast-3-epochs/fast-recipe-s1.jsonl', [...range(1, 3), 'tta']],
  ] },
  { section: '### The headline', rows: [
    ['| 4-bit | 0 |', headline('4bit-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit | 1 |', headline('4bit-s1'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| FP32 | 0 |', headline('fp32-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| FP32 | 1 |', headline('fp32-s1'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, cutout 8 | 0 |', headline('4bit-cutout8-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, cutout 8 | 1 |', headline('4bit-cutout8-s1'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, moving average 0.999 | 0 |', headline('4bit-ema999-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, batch 32, peak learning rate 0.05 | 0 |', headline('4bit-b32-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, no weight decay on biases and BatchNorm | 0 |', headline('4bit-nodecaybn-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, batch 128, peak learning rate 0.1 | 0 |', headline('4bit-b128-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, label smoothing 0.1 | 0 |', headline('4bit-ls01-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, lookahead every 5 steps | 0 |', headline('4bit-la5-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, lookahead every 5 steps | 1 |', headline('4bit-la5-s1'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ...[2, 3].map((seed) => [`| 4-bit, lookahead every 5 steps | ${seed} (the spread: outside the target's seeds) |`,
      headline(`4bit-la5-s${seed}`), ['e1', 'e5', 'e10', 'e15', 'tta']]),
    ['| 4-bit, lookahead every 5 steps, weight decay 1e-3 | 0 |', headline('4bit-la5-wd1e3-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, lookahead every 5 steps, peak learning rate 0.1 | 0 |', headline('4bit-la5-lr01-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ...[0, 1].map((seed) => [`| 4-bit, lookahead every 5 steps, no weight decay on biases and BatchNorm | ${seed} |`,
      headline(`4bit-la5-nodecaybn-s${seed}`), ['e1', 'e5', 'e10', 'e15', 'tta']]),
    ['| 4-bit, lookahead every 5 steps, crops of a 3-pixel padding | 0 |', headline('4bit-la5-crop3-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ...[0, 1].map((seed) => [`| 4-bit, lookahead every 5 steps, quantizer range capped at 4 RMS | ${seed} |`,
      headline(`4bit-la5-rms4-s${seed}`), ['e1', 'e5', 'e10', 'e15', 'tta']]),
    ['| 4-bit, lookahead every 5 steps, weight decay 2.5e-4 | 0 |', headline('4bit-la5-wd25-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, lookahead every 5 steps, warm-up 0.1 | 0 |', headline('4bit-la5-wu01-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, lookahead every 5 steps, warm-up 0.3 | 0 |', headline('4bit-la5-wu03-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, lookahead every 5 steps, momentum 0.95, peak learning rate 0.035 | 0 |', headline('4bit-la5-m95-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, lookahead every 5 steps, BatchNorm momentum 0.4 | 0 |', headline('4bit-la5-bn04-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 4-bit, lookahead every 5 steps, quantizer range capped at 3 RMS | 0 |', headline('4bit-la5-rms3-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ...[0, 1].map((seed) => [`| 4-bit, lookahead every 5 steps, quantizer range capped at 2.5 RMS | ${seed} |`,
      headline(`4bit-la5-rms25-s${seed}`), ['e1', 'e5', 'e10', 'e15', 'tta']]),
    ['| 4-bit, lookahead every 5 steps, quantizer range capped at 2 RMS | 0 |', headline('4bit-la5-rms2-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ...[0, 1].map((seed) => [`| 4-bit, lookahead every 5 steps, BatchNorm shifts at 8 times the learning rate | ${seed} |`,
      headline(`4bit-la5-shift8-s${seed}`), ['e1', 'e5', 'e10', 'e15', 'tta']]),
    ['| 4-bit, lookahead every 5 steps, BatchNorm scales frozen at 1, shifts at 8 times the learning rate | 0 |',
      headline('4bit-la5-frozen-shift8-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| FP32, lookahead every 5 steps (the headline preset\'s recipe) | 0 |', headline('fp32-la5-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| FP32, lookahead every 5 steps (the headline preset\'s recipe) | 1 |', headline('fp32-la5-s1'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ...[2, 3].map((seed) => [`| FP32, lookahead every 5 steps (the headline preset's recipe) | ${seed} (the spread: outside the target's seeds) |`,
      headline(`fp32-la5-s${seed}`), ['e1', 'e5', 'e10', 'e15', 'tta']]),
    ['| the headline preset in Chromium, 2 threads | 0 |', headline('tab-headline-s0'), ['e1', 'e5', 'e10', 'e15', 'tta']],
    ['| 3 epochs | 0 |', headline('4bit-e3-s0'), ['e1', 'e2', 'e3', 'tta']],
    ['| 3 epochs | 1 |', headline('4bit-e3-s1'), ['e1', 'e2', 'e3', 'tta']],
    ['| 3 epochs | 3 |', headline('4bit-e3-s3'), ['e1', 'e2', 'e3', 'tta']],
    ...[0, 1, 3].map((seed) => [`| 3 epochs, lookahead every 5 steps | ${seed} |`, headline(`4bit-e3-la5-s${seed}`),
      ['e1', 'e2', 'e3', 'tta']]),
    ...[0, 1].map((seed) => [`| 3 epochs, batch 32, peak learning rate 0.05 | ${seed} |`, headline(`4bit-e3-b32-s${seed}`),
      ['e1', 'e2', 'e3', 'tta']]),
    ...[0, 1, 3].map((seed) => [`| 3 epochs, peak learning rate 0.1 | ${seed} |`, headline(`4bit-e3-lr01-s${seed}`),
      ['e1', 'e2', 'e3', 'tta']]),
    ...[0, 1, 3].map((seed) => [`| 3 epochs, peak learning rate 0.15 | ${seed} |`, headline(`4bit-e3-lr015-s${seed}`),
      ['e1', 'e2', 'e3', 'tta']]),
    ['| 3 epochs, label smoothing 0.1 | 0 |', headline('4bit-e3-ls01-s0'), ['e1', 'e2', 'e3', 'tta']],
    ['| 3 epochs, peak learning rate 0.1 | 2 (a check outside the target\'s seeds) |', headline('4bit-e3-lr01-s2'), ['e1', 'e2', 'e3', 'tta']],
    ...[0, 1].map((seed) => [`| 3 epochs, peak learning rate 0.1, quantizer range capped at 4 RMS | ${seed} |`,
      headline(`4bit-e3-lr01-rms4-s${seed}`), ['e1', 'e2', 'e3', 'tta']]),
    ['| 6 epochs | 0 |', headline('4bit-e6-s0'), ['e1', 'e3', 'e6', 'tta']],
    ['| 6 epochs | 1 |', headline('4bit-e6-s1'), ['e1', 'e3', 'e6', 'tta']],
    ...[0, 1].map((seed) => [`| 6 epochs, lookahead every 5 steps, peak learning rate 0.1 | ${seed} |`,
      headline(`4bit-e6-la5-lr01-s${seed}`), ['e1', 'e3', 'e6', 'tta']]),
    ['| 20 epochs | 0 |', headline('4bit-e20-s0'), ['e1', 'e5', 'e10', 'e15', 'e20', '-', 'tta']],
    ['| 20 epochs | 1 |', headline('4bit-e20-s1'), ['e1', 'e5', 'e10', 'e15', 'e20', '-', 'tta']],
    ['| 25 epochs | 0 |', headline('4bit-e25-s0'), ['e1', 'e5', 'e10', 'e15', 'e20', 'e25', 'tta']],
    ['| 25 epochs | 1 |', headline('4bit-e25-s1'), ['e1', 'e5', 'e10', 'e15', 'e20', 'e25', 'tta']],
    ['| 25 epochs, FP32 | 0 |', headline('fp32-e25-s0'), ['e1', 'e5', 'e10', 'e15', 'e20', 'e25', 'tta']],
    ['| 25 epochs, FP32 | 1 |', headline('fp32-e25-s1'), ['e1', 'e5', 'e10', 'e15', 'e20', 'e25', 'tta']],
    ...[0, 1].map((seed) => [`| 20 epochs, lookahead every 5 steps | ${seed} |`, headline(`4bit-la5-e20-s${seed}`),
      ['e1', 'e5', 'e10', 'e15', 'e20', '-', 'tta']]),
    ...[0, 1].map((seed) => [`| 18 epochs, lookahead every 5 steps | ${seed} |`, headline(`4bit-la5-e18-s${seed}`),
      ['e1', 'e5', 'e10', 'e15', 'e18', 'tta']]),
    ...[0, 1].map((seed) => [`| 18 epochs, FP32, lookahead every 5 steps | ${seed} |`, headline(`fp32-la5-e18-s${seed}`),
      ['e1', 'e5', 'e10', 'e15', 'e18', 'tta']]),
    ...[0, 1].map((seed) => [`| 17 epochs, lookahead every 5 steps | ${seed} |`, headline(`4bit-la5-e17-s${seed}`),
      ['e1', 'e5', 'e10', 'e15', 'e17', 'tta']]),
    ['| 16 epochs, lookahead every 5 steps | 0 |', headline('4bit-la5-e16-s0'), ['e1', 'e5', 'e10', 'e15', 'e16', 'tta']],
  ] },
  { section: '### The accuracy test', rows: [0, 1, 2].map((i) => {
    const [start, name] = [['| paper recipe, 4-bit |', 'paper-4bit'], ['| paper recipe, FP32 switch |', 'paper-fp32'],
      ['| fast recipe, 4-bit |', 'fast-4bit']][i];
    return [start, 'results/logs/thresholds.txt', [0, 1, 2, 3, 4].map((seed) => `${name} seed ${seed}`)];
  }) },
  { section: '## Integer arithmetic', rows: [
    ['| 8-bit activations, 10 epochs, seed 0 |', 'results/integer/act8-fast-e10-s0.jsonl', ['e1', 'e3', 'e5', 'e10', 'tta']],
    ['| floats, 10 epochs, seed 0 (engine 0.10\'s kernels) |', 'results/logs/v0.10/fast-recipe-s0.jsonl',
      ['e1', 'e3', 'e5', 'e10', 'tta']],
    ...[0, 1].flatMap((seed) => [
      [`| fast15 planned for 3 epochs, 8-bit activations, seed ${seed} |`, `results/integer/act8-fast15-e3-s${seed}.jsonl`,
        ['e1', 'e3', 'e5', 'e10', 'tta']],
      [`| fast15 planned for 3 epochs, floats, seed ${seed} |`, headline(`4bit-e3-s${seed}`), ['e1', 'e3', 'e5', 'e10', 'tta']],
    ]),
  ] },
  // rows that name their run in backticks: results/logs/fast-recipe-search/NAME.jsonl
  { section: '### How the fast recipe was chosen', byName: (name) => `results/logs/fast-recipe-search/${name}.jsonl`,
    cells: range(1, 3) },
  // rows named as `make curve` names their logs
  { section: '### The paper\'s ablation', byLabel: (label) => `results/logs/short-budget/${slug(label)}-s0.jsonl`,
    cells: ['e2'] },
];

const lines = fs.readFileSync(readme, 'utf8').split('\n');
const problems = [];
let checked = 0;

/** The README's lines of a section: from its heading to the next heading of its level or above. */
function sectionLines(heading) {
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) return null;
  const level = heading.match(/^#+/)[0].length;
  let end = start + 1;
  while (end < lines.length && !(/^#+ /.test(lines[end]) && lines[end].match(/^#+/)[0].length <= level)) end++;
  return lines.slice(start, end).map((text, i) => ({ text, number: start + i + 1 }));
}

/** Compares a table row's cells (after its first `skip`) with what its log says. */
function checkRow(row, skip, log, cells) {
  const found = log.endsWith('.txt') ? measurements(log) : epochs(log);
  if (!found) {
    problems.push(`${readme}:${row.number}: its log ${log} is missing`);
    return;
  }
  const shown = row.text.split('|').slice(1, -1).map((c) => c.trim()).slice(skip);
  cells.forEach((what, i) => {
    const want = expected(found, what);
    if (want === null) return;
    const cell = shown[i] ?? '';
    const number = (cell.replace(/\*/g, '').match(/^-?\d+(\.\d+)?/) || [''])[0];
    checked++;
    if (number !== want)
      problems.push(`${readme}:${row.number}: '${cell}' where ${log} says ${want || 'nothing'} ` +
        `(${what === 'tta' ? 'TTA' : `epoch ${what.slice(1)}`})`);
  });
}

for (const table of TABLES) {
  const section = sectionLines(table.section);
  if (!section) {
    problems.push(`${readme}: no section '${table.section}'`);
    continue;
  }
  // a table's rows: not its separator (| --- |) and not its header (the row just above one)
  const separator = (l) => l && /^\|\s*-/.test(l.text);
  const rows = section.filter((l, i) => l.text.startsWith('|') && !separator(l) && !separator(section[i + 1]));
  if (table.rows) {
    for (const [start, log, cells] of table.rows) {
      const matches = rows.filter((r) => r.text.startsWith(start));
      if (matches.length !== 1) {
        problems.push(`${readme}: section '${table.section}' has ${matches.length} rows starting '${start}', not 1`);
        continue;
      }
      // the cells the row's start covers (a start may end inside its label cell)
      const pipes = start.split('|').length - 1;
      checkRow(matches[0], start.trim().endsWith('|') ? pipes - 1 : pipes, log, cells);
    }
  } else {
    for (const row of rows) {
      const label = row.text.split('|')[1].trim();
      if (table.byName) {
        const name = (label.match(/`([^`]+)`/) || [])[1];
        if (name) checkRow(row, 1, table.byName(name), table.cells);
      } else if (fs.existsSync(table.byLabel(label))) {
        checkRow(row, 1, table.byLabel(label), table.cells);
      } else {
        problems.push(`${readme}:${row.number}: no log ${table.byLabel(label)} for '${label}'`);
      }
    }
  }
}

if (problems.length) {
  console.error(`check-readme: ${problems.length} README figure(s) differ from results/:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-readme: ${checked} figures in the README's result tables match their logs under results/`);
