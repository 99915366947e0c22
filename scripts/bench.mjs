// bench.mjs - `make bench`: in one run on this machine, training and evaluation images/s
// and GFLOP/s at batch 128 for the native build (build/q4bench) and the WebAssembly build in
// headless Chromium, Firefox ESR and WebKitGTK (scripts/bench-wasm.mjs; BENCH_BROWSERS to
// choose), each at 1 and 2 threads, and in exact mode at the highest thread count (native and
// Chromium), beside the PyTorch reference (scripts/torch_ref.py --bench with
// Debian's python3-torch, when installed); the ratios ours/PyTorch and WASM/native; and where
// one training step spends its time, per layer; and at the highest thread count, evaluation in
// integer arithmetic and training on 8-bit integer activations (issue 26), natively and in
// Chromium. Each figure is the median of BENCH_REPS runs
// (default 3), the programs interleaved: this machine is shared and its speed drifts by 5-20%
// over minutes; runs of one program that differ by more than 10% are flagged. It says which CPU
// (and its vector extensions) and which kernels each program used; natively it also measures
// the next instruction set down (Q4_ISA=avx2 on an AVX-512 CPU; BENCH_ISAS to choose).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FIREFOX, WEBKIT_DRIVER } from '../tests/browser/engines.mjs';

const reps = Number(process.env.BENCH_REPS || 3);
const threadCounts = (process.env.BENCH_THREADS || '1,2').split(',').map(Number);
const top = threadCounts[threadCounts.length - 1];
const torchRef = process.env.TORCH_REF || path.resolve('scripts', 'torch_ref.py');
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// One run of each; the caller interleaves them (native, WASM, PyTorch, then again), so a
// slow spell of the shared machine lands on all three and the ratios stay fair. Native and
// WASM runs come back in one shape.
// integer: evaluation in integer arithmetic; act: conv2-6 on act-bit activations in training too (issue 26)
function nativeRun(threads, exact = false, isa = '', integer = false, act = 32) {
  const x = JSON.parse(execFileSync('build/q4bench', ['--threads', String(threads), '--steps', '6', '--json',
    ...(exact ? ['--exact'] : []), ...(integer ? ['--integer'] : []), ...(act < 32 ? ['--act-bits', String(act)] : [])],
  { encoding: 'utf8', env: { ...process.env, Q4_ISA: isa } }));
  return { threads, train: x.train_images_per_second, eval: x.eval_images_per_second, trainGflops: x.train_gflops,
    evalGflops: x.eval_gflops, kernels: x.kernels, memory: x.memory_bytes,
    phases: x.phases.map((p) => ({ name: p.name, ms: p.ms_per_step, gflops: p.gflops })) };
}

/** One browser launch measuring the given thread counts: a run per thread count. */
const wasmRun = (counts, exact = false, browser = 'chromium', integer = false, act = 32) =>
  execFileSync('node', ['scripts/bench-wasm.mjs', '--browser', browser, '--threads', counts.join(','), '--steps', '6',
    ...(exact ? ['--exact'] : []), ...(integer ? ['--integer'] : []), ...(act < 32 ? ['--act-bits', String(act)] : [])],
  { encoding: 'utf8', timeout: 900000 }).trim().split('\n').map((line) => {
    const x = JSON.parse(line);
    if (x.skipped) return { threads: x.threads, missing: x.skipped, browser: x.browser };
    return { threads: x.threads, train: x.trainImagesPerSecond, eval: x.evalImagesPerSecond, trainGflops: x.trainGflops,
      evalGflops: x.evalGflops, kernels: x.kernels, memory: x.wasmMemory, browser: x.browser,
      phases: x.phases.map((p) => ({ name: p.name, ms: p.msPerStep, gflops: p.gflops })) };
  });
// the browsers: Chromium always; Firefox ESR and WebKitGTK where installed (scripts/setup.sh)
const browsers = (process.env.BENCH_BROWSERS || 'chromium,firefox,webkit').split(',').filter((b) =>
  b === 'chromium' || (b === 'firefox' && fs.existsSync(FIREFOX)) || (b === 'webkit' && fs.existsSync(WEBKIT_DRIVER)));

/** Medians over runs; the per-layer split of the run with the median training speed. */
function summary(runs) {
  const pick = runs.find((x) => x.train === median(runs.map((y) => y.train)));
  return { ...pick, eval: median(runs.map((x) => x.eval)), trainGflops: median(runs.map((x) => x.trainGflops)),
    evalGflops: median(runs.map((x) => x.evalGflops)), spread: spread(runs) };
}

/** The largest ratio between runs of one program (training and evaluation). */
const spread = (runs) => Math.max(...['train', 'eval'].map((k) => {
  const v = runs.map((x) => x[k]);
  return Math.max(...v) / Math.min(...v);
}));

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

/** What PyTorch computes with: its CPU capability (the vector ISA its kernels dispatch to) and build. */
function torchKernels() {
  const probe = spawnSync('/usr/bin/python3', ['-c', [
    'import torch',
    'cfg = torch.__config__.show()',
    'usage = [l.split(":", 1)[1].strip() for l in cfg.splitlines() if "CPU capability usage" in l]',
    'cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else (usage[0] if usage else "unknown")',
    'import re',
    'blas = re.findall(r"(?:BLAS_INFO|USE_MKLDNN|PERF_WITH_AVX512|USE_OPENMP)=[^,]*", cfg)',
    'print(torch.__version__, "| CPU capability:", cap, "|", "; ".join(blas))'].join('\n')], { encoding: 'utf8' });
  return probe.status === 0 ? probe.stdout.trim() : 'unknown';
}

const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
const cpu = /model name\s*:\s*(.*)/.exec(cpuinfo);
const flags = (/flags\s*:\s*(.*)/.exec(cpuinfo) || ['', ''])[1].split(' ');
const vector = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16']
  .filter((f) => flags.includes(f));
console.log(`q4 bench: batch 128, ${reps} interleaved runs per figure (median), ${cpu ? cpu[1] : 'unknown CPU'}, ` +
  `${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores; vector extensions: ${vector.join(' ')}`);
// the native binary picks its kernels from cpuid; the next ISA down (AVX2 where AVX-512 is
// present) is measured too, standing in for a CPU without the best one (BENCH_ISAS to choose)
const isas = execFileSync('build/q4bench', ['--isas'], { encoding: 'utf8' }).trim().split(' ');
const otherIsas = (process.env.BENCH_ISAS ? process.env.BENCH_ISAS.split(',') : isas.slice(1, 2))
  .filter((i) => i !== isas[0] && i !== 'scalar' && isas.includes(i));
console.log(`native: this CPU runs ${isas.join(', ')}; q4bench picks ${isas[0]}` +
  (otherIsas.length ? `; also measured with Q4_ISA=${otherIsas.join(',')}` : ''));
const missing = torchMissing();
if (!missing) console.log(`PyTorch: ${torchKernels()}`);

const runs = { native: new Map(), wasm: new Map(), torch: new Map(), nativeExact: [], wasmExact: [],
  nativeInteger: [], nativeAct8: [], wasmInteger: [], wasmAct8: [],
  browsers: new Map(browsers.filter((b) => b !== 'chromium').map((b) => [b, new Map()])),
  other: new Map(otherIsas.map((i) => [i, new Map()])) };
const add = (map, key, value) => map.set(key, [...(map.get(key) || []), value]);
for (let r = 0; r < reps; r++) {
  for (const t of threadCounts) add(runs.native, t, nativeRun(t));
  for (const i of otherIsas) for (const t of threadCounts) add(runs.other.get(i), t, nativeRun(t, false, i));
  runs.nativeExact.push(nativeRun(top, true));
  runs.nativeInteger.push(nativeRun(top, false, '', true));
  runs.nativeAct8.push(nativeRun(top, false, '', false, 8));
  for (const x of wasmRun(threadCounts)) add(runs.wasm, x.threads, x);
  runs.wasmExact.push(wasmRun([top], true)[0]);
  runs.wasmInteger.push(wasmRun([top], false, 'chromium', true)[0]);
  runs.wasmAct8.push(wasmRun([top], false, 'chromium', false, 8)[0]);
  for (const [b, m] of runs.browsers) for (const x of wasmRun(threadCounts, false, b)) add(m, x.threads, x);
  if (!missing) for (const t of threadCounts) add(runs.torch, t, torchRun(t));
}
const results = { native: new Map(), wasm: new Map(), torch: new Map() };
for (const t of threadCounts) {
  results.native.set(t, summary(runs.native.get(t)));
  if (runs.wasm.has(t)) results.wasm.set(t, summary(runs.wasm.get(t)));
  const tr = runs.torch.get(t);
  results.torch.set(t, missing ? { missing } : { train: median(tr.map((x) => x.train)), eval: median(tr.map((x) => x.eval)),
    spread: spread(tr) });
}
const nativeExact = summary(runs.nativeExact), wasmExact = summary(runs.wasmExact);
const nativeInteger = summary(runs.nativeInteger), nativeAct8 = summary(runs.nativeAct8);
const wasmInteger = summary(runs.wasmInteger), wasmAct8 = summary(runs.wasmAct8);
const inBrowsers = new Map([...runs.browsers].map(([b, m]) => [b, new Map(threadCounts.map((t) =>
  [t, m.get(t).some((x) => x.missing) ? m.get(t)[0] : summary(m.get(t))]))]));
const other = new Map(otherIsas.map((i) => [i, new Map(threadCounts.map((t) => [t, summary(runs.other.get(i).get(t))]))]));
const flopsPerImage = 932739072, forwardFlops = 309770240;

const row = (name, t, r, ref) => {
  if (!r || r.missing) return `  ${name.padEnd(36)} ${String(t).padStart(2)}  ${r ? r.missing : 'not measured'}`;
  const gf = r.trainGflops ?? (r.train * flopsPerImage) / 1e9, ge = r.evalGflops ?? (r.eval * forwardFlops) / 1e9;
  let line = `  ${name.padEnd(36)} ${String(t).padStart(2)}  ${r.train.toFixed(1).padStart(7)} ${gf.toFixed(1).padStart(7)}` +
    `  ${r.eval.toFixed(1).padStart(7)} ${ge.toFixed(1).padStart(7)}`;
  if (ref && !ref.missing) line += `   ${(r.train / ref.train).toFixed(2)}x / ${(r.eval / ref.eval).toFixed(2)}x`;
  if (r.spread > 1.1) line += `   (runs differ by ${((r.spread - 1) * 100).toFixed(0)}%)`;
  return line;
};
console.log(`\n  ${'program, kernels'.padEnd(36)} threads train img/s GFLOP/s  eval img/s GFLOP/s   vs PyTorch (train / eval)`);
for (const t of threadCounts) console.log(row(`native ${results.native.get(t).kernels}`, t, results.native.get(t), results.torch.get(t)));
for (const [i, m] of other) for (const t of threadCounts) console.log(row(`native Q4_ISA=${i} ${m.get(t).kernels}`, t, m.get(t), results.torch.get(t)));
console.log(row(`native exact ${nativeExact.kernels}`, top, nativeExact, results.torch.get(top)));
console.log(row('native, integer evaluation', top, nativeInteger, results.torch.get(top)));
console.log(row('native, act_bits 8 (and its evaluation)', top, nativeAct8, results.torch.get(top)));
for (const t of threadCounts) console.log(row(`wasm ${results.wasm.get(t)?.kernels || ''}`, t, results.wasm.get(t), results.torch.get(t)));
console.log(row(`wasm exact ${wasmExact.kernels}`, top, wasmExact, results.torch.get(top)));
console.log(row('wasm, integer evaluation', top, wasmInteger, results.torch.get(top)));
console.log(row('wasm, act_bits 8 (and its evaluation)', top, wasmAct8, results.torch.get(top)));
for (const [b, m] of inBrowsers) for (const t of threadCounts) console.log(row(`wasm in ${b}`, t, m.get(t), results.torch.get(t)));
for (const t of threadCounts) console.log(row('pytorch 1.13 (torch_ref)', t, results.torch.get(t)));
const flagged = [...results.native.values(), ...results.wasm.values(), ...results.torch.values(), nativeExact, wasmExact,
  nativeInteger, nativeAct8, wasmInteger, wasmAct8,
  ...[...other.values(), ...inBrowsers.values()].flatMap((m) => [...m.values()])].filter((r) => !r.missing)
  .filter((r) => r.spread > 1.1);
if (flagged.length) console.log(`\n  WARNING: ${flagged.length} figure(s) above come from runs more than 10% apart: the machine was busy or drifting; run again.`);

console.log(`\n  browsers: ${[results.wasm.get(top), ...[...inBrowsers.values()].map((m) => m.get(top))].map((r) => r.browser).join(', ')}` +
  ' (the rows "wasm" and "wasm exact" are Chromium)');
console.log('\n  ratios');
for (const t of threadCounts) {
  const n = results.native.get(t), w = results.wasm.get(t);
  if (w) console.log(`    WASM / native at ${t} thread${t > 1 ? 's' : ''}: train ${(w.train / n.train).toFixed(2)}, eval ${(w.eval / n.eval).toFixed(2)}` +
    [...inBrowsers].filter(([, m]) => !m.get(t).missing)
      .map(([b, m]) => `; ${b} train ${(m.get(t).train / n.train).toFixed(2)}, eval ${(m.get(t).eval / n.eval).toFixed(2)}`).join(''));
}
console.log(`    exact mode / default at ${top} threads: native train ${(nativeExact.train / results.native.get(top).train).toFixed(2)}, ` +
  `WASM train ${(wasmExact.train / results.wasm.get(top).train).toFixed(2)}`);
console.log(`    integer / float evaluation at ${top} threads: native ${(nativeInteger.eval / results.native.get(top).eval).toFixed(2)}, ` +
  `WASM ${(wasmInteger.eval / results.wasm.get(top).eval).toFixed(2)}; act_bits 8 / float training: native ` +
  `${(nativeAct8.train / results.native.get(top).train).toFixed(2)}, WASM ${(wasmAct8.train / results.wasm.get(top).train).toFixed(2)}`);
if (threadCounts.length > 1) {
  const [a, b] = [threadCounts[0], top];
  const n1 = results.native.get(a), n2 = results.native.get(b), w1 = results.wasm.get(a), w2 = results.wasm.get(b);
  console.log(`    ${b} threads / ${a}: native train ${(n2.train / n1.train).toFixed(2)}x` +
    (w1 && w2 ? `, wasm train ${(w2.train / w1.train).toFixed(2)}x` : ''));
}

for (const [label, r] of [['native', results.native.get(top)], ['wasm', results.wasm.get(top)]]) {
  if (!r) continue;
  const total = r.phases.reduce((s, p) => s + p.ms, 0);
  console.log(`\n  one training step, ${label}, ${top} threads: ${total.toFixed(0)} ms`);
  for (const p of [...r.phases].sort((x, y) => y.ms - x.ms)) {
    if (p.ms < 0.05) continue;
    console.log(`    ${p.name.padEnd(26)} ${p.ms.toFixed(1).padStart(7)} ms ${(100 * p.ms / total).toFixed(1).padStart(5)}%` +
      (p.gflops ? `  ${p.gflops.toFixed(1).padStart(6)} GFLOP/s` : ''));
  }
}
