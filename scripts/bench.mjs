// bench.mjs - `make bench`: in one run on this machine, training and evaluation images/s
// and GFLOP/s at batch 128 for the native build (build/q4bench) and the WebAssembly build in
// headless Chromium (scripts/bench-wasm.mjs), each at 1 and 2 threads, beside the PyTorch
// reference (scripts/torch_ref.py --bench with Debian's python3-torch, when
// installed); the ratios ours/PyTorch and WASM/native; and where one training step spends
// its time, per layer. Each figure is the median of BENCH_REPS runs (default 3), the three
// programs interleaved: this machine is shared and its speed drifts by 5-20% over minutes.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const reps = Number(process.env.BENCH_REPS || 3);
const threadCounts = (process.env.BENCH_THREADS || '1,2').split(',').map(Number);
const torchRef = process.env.TORCH_REF || path.resolve('scripts', 'torch_ref.py');
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// One run of each; the caller interleaves them (native, WASM, PyTorch, then again), so a
// slow spell of the shared machine lands on all three and the ratios stay fair. Native and
// WASM runs come back in one shape.
function nativeRun(threads) {
  const x = JSON.parse(execFileSync('build/q4bench', ['--threads', String(threads), '--steps', '6', '--json'],
    { encoding: 'utf8' }));
  return { threads, train: x.train_images_per_second, eval: x.eval_images_per_second, trainGflops: x.train_gflops,
    evalGflops: x.eval_gflops, kernels: x.kernels, memory: x.memory_bytes,
    phases: x.phases.map((p) => ({ name: p.name, ms: p.ms_per_step, gflops: p.gflops })) };
}

/** One Chromium launch measuring every thread count: a run per thread count. */
const wasmRun = () =>
  execFileSync('node', ['scripts/bench-wasm.mjs', '--threads', threadCounts.join(','), '--steps', '6'],
    { encoding: 'utf8', timeout: 900000 }).trim().split('\n').map((line) => {
    const x = JSON.parse(line);
    return { threads: x.threads, train: x.trainImagesPerSecond, eval: x.evalImagesPerSecond, trainGflops: x.trainGflops,
      evalGflops: x.evalGflops, kernels: x.kernels, memory: x.wasmMemory,
      phases: x.phases.map((p) => ({ name: p.name, ms: p.msPerStep, gflops: p.gflops })) };
  });

/** Medians over runs; the per-layer split of the run with the median training speed. */
function summary(runs) {
  const pick = runs.find((x) => x.train === median(runs.map((y) => y.train)));
  return { ...pick, eval: median(runs.map((x) => x.eval)), trainGflops: median(runs.map((x) => x.trainGflops)),
    evalGflops: median(runs.map((x) => x.evalGflops)) };
}

function torchMissing() {
  if (!fs.existsSync(torchRef)) return `${torchRef} not found`;
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  return probe.status !== 0 ? 'python3-torch is not installed (apt-get install python3-torch)' : null;
}

function torchRun(threads) {
  const out = execFileSync('/usr/bin/python3', [torchRef, '--bench', '--threads', String(threads)], { encoding: 'utf8' });
  const m = /train_img_per_s ([\d.]+) eval_img_per_s ([\d.]+)/.exec(out);
  return { train: Number(m[1]), eval: Number(m[2]) };
}

const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
console.log(`q4 bench: batch 128, ${reps} interleaved runs per figure (median), ${cpu ? cpu[1] : 'unknown CPU'}, ` +
  `${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores`);
const missing = torchMissing();
const runs = { native: new Map(), wasm: new Map(), torch: new Map() };
const add = (map, key, value) => map.set(key, [...(map.get(key) || []), value]);
for (let r = 0; r < reps; r++) {
  for (const t of threadCounts) add(runs.native, t, nativeRun(t));
  for (const x of wasmRun()) add(runs.wasm, x.threads, x);
  if (!missing) for (const t of threadCounts) add(runs.torch, t, torchRun(t));
}
const results = { native: new Map(), wasm: new Map(), torch: new Map() };
for (const t of threadCounts) {
  results.native.set(t, summary(runs.native.get(t)));
  if (runs.wasm.has(t)) results.wasm.set(t, summary(runs.wasm.get(t)));
  const tr = runs.torch.get(t);
  results.torch.set(t, missing ? { missing } : { train: median(tr.map((x) => x.train)), eval: median(tr.map((x) => x.eval)) });
}
const flopsPerImage = 932739072, forwardFlops = 309770240;

const row = (name, t, r, ref) => {
  if (!r || r.missing) return `  ${name.padEnd(22)} ${String(t).padStart(2)}  ${r ? r.missing : 'not measured'}`;
  const gf = r.trainGflops ?? (r.train * flopsPerImage) / 1e9, ge = r.evalGflops ?? (r.eval * forwardFlops) / 1e9;
  let line = `  ${name.padEnd(22)} ${String(t).padStart(2)}  ${r.train.toFixed(1).padStart(7)} ${gf.toFixed(1).padStart(7)}` +
    `  ${r.eval.toFixed(1).padStart(7)} ${ge.toFixed(1).padStart(7)}`;
  if (ref && !ref.missing) line += `   ${(r.train / ref.train).toFixed(2)}x / ${(r.eval / ref.eval).toFixed(2)}x`;
  return line;
};
console.log('\n  build                  threads  train img/s GFLOP/s  eval img/s GFLOP/s   vs PyTorch (train / eval)');
for (const t of threadCounts) console.log(row(`native ${results.native.get(t).kernels}`, t, results.native.get(t), results.torch.get(t)));
for (const t of threadCounts) console.log(row(`wasm ${results.wasm.get(t)?.kernels || ''}`, t, results.wasm.get(t), results.torch.get(t)));
for (const t of threadCounts) console.log(row('pytorch 1.13 (torch_ref)', t, results.torch.get(t)));

console.log('\n  ratios');
for (const t of threadCounts) {
  const n = results.native.get(t), w = results.wasm.get(t);
  if (w) console.log(`    WASM / native at ${t} thread${t > 1 ? 's' : ''}: train ${(w.train / n.train).toFixed(2)}, eval ${(w.eval / n.eval).toFixed(2)}`);
}
if (threadCounts.length > 1) {
  const [a, b] = [threadCounts[0], threadCounts[threadCounts.length - 1]];
  const n1 = results.native.get(a), n2 = results.native.get(b), w1 = results.wasm.get(a), w2 = results.wasm.get(b);
  console.log(`    ${b} threads / ${a}: native train ${(n2.train / n1.train).toFixed(2)}x` +
    (w1 && w2 ? `, wasm train ${(w2.train / w1.train).toFixed(2)}x` : ''));
}

for (const [label, r] of [['native', results.native.get(threadCounts[threadCounts.length - 1])],
  ['wasm', results.wasm.get(threadCounts[threadCounts.length - 1])]]) {
  if (!r) continue;
  const total = r.phases.reduce((s, p) => s + p.ms, 0);
  console.log(`\n  one training step, ${label}, ${threadCounts[threadCounts.length - 1]} threads: ${total.toFixed(0)} ms`);
  for (const p of [...r.phases].sort((x, y) => y.ms - x.ms)) {
    if (p.ms < 0.05) continue;
    console.log(`    ${p.name.padEnd(26)} ${p.ms.toFixed(1).padStart(7)} ms ${(100 * p.ms / total).toFixed(1).padStart(5)}%` +
      (p.gflops ? `  ${p.gflops.toFixed(1).padStart(6)} GFLOP/s` : ''));
  }
}
