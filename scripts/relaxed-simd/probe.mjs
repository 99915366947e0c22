#!/usr/bin/env node
// probe.mjs - does relaxed SIMD pay in this browser? (issue 26; probe.c says what is timed).
// Builds probe.c with Emscripten into a standalone module, replaces the placeholder imports by
// the relaxed instructions with binaryen's text form (npm `binaryen`, fetched into
// build/relaxed-simd/ on first use: Debian's binaryen 108 cannot write them), checks the results
// in the browser (the integer sums exact, the float ones within rounding), then times each pair
// in interleaved rounds and prints the medians.
//   node scripts/relaxed-simd/probe.mjs [--browser chromium|firefox|webkit] [--rounds 7]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const out = path.join(root, 'build/relaxed-simd');
const BINARYEN = '132.0.0';
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const rounds = Number(arg('--rounds', 7));
fs.mkdirSync(out, { recursive: true });

// binaryen's command-line tools, compiled to JavaScript
const bin = path.join(out, 'package/bin');
if (!fs.existsSync(path.join(bin, 'wasm-as'))) {
  execFileSync('npm', ['pack', `binaryen@${BINARYEN}`, '--pack-destination', out], { stdio: 'inherit' });
  execFileSync('tar', ['xzf', path.join(out, `binaryen-${BINARYEN}.tgz`), '-C', out]);
}

// the module with placeholder imports, then the placeholders replaced
const wasm = path.join(out, 'probe.wasm');
execFileSync('emcc', ['-O3', '-msimd128', '--no-entry', '-s', 'STANDALONE_WASM', '-s', 'ERROR_ON_UNDEFINED_SYMBOLS=0', '-s', 'WARN_ON_UNDEFINED_SYMBOLS=0',
  path.join(here, 'probe.c'), '-o', wasm], { env: { ...process.env, NODE_PATH: '/usr/share/nodejs' }, stdio: 'inherit' });
execFileSync('node', [path.join(bin, 'wasm-dis'), wasm, '-o', path.join(out, 'probe.wat')]);
let text = fs.readFileSync(path.join(out, 'probe.wat'), 'utf8');
const RELAXED = { q4_relaxed_dot: 'i32x4.relaxed_dot_i8x16_i7x16_add_s', q4_relaxed_madd: 'f32x4.relaxed_madd' };
for (const [name, instruction] of Object.entries(RELAXED)) {
  const m = text.match(new RegExp(`\\(import "env" "${name}" \\(func (\\$\\S+) \\(param v128 v128 v128\\) \\(result v128\\)\\)\\)\\n`));
  if (!m) throw new Error(`${wasm}: no import ${name} (param v128 v128 v128) (result v128) to replace`);
  text = text.replace(m[0], '');
  const calls = text.split(`(call ${m[1]}\n`).length - 1;
  text = text.split(`(call ${m[1]}\n`).join(`(${instruction}\n`);
  if (!calls || text.includes(`(call ${m[1]}`)) throw new Error(`${wasm}: calls of ${name} not all replaced`);
}
if (/\(import "env"/.test(text)) throw new Error(`${wasm}: an import is left: ${text.match(/\(import "env".*/)[0]}`);
fs.writeFileSync(path.join(out, 'probe-relaxed.wat'), text);
const relaxed = path.join(out, 'probe-relaxed.wasm');
execFileSync('node', [path.join(bin, 'wasm-as'), '--mvp-features', '--enable-simd', '--enable-relaxed-simd',
  '--enable-bulk-memory', '--enable-sign-ext', '--enable-mutable-globals', '--enable-nontrapping-float-to-int',
  path.join(out, 'probe-relaxed.wat'), '-o', relaxed]);

// in the browser: Chromium by playwright-core, Firefox ESR and WebKitGTK as the browser tests drive them
const browserName = arg('--browser', 'chromium');
let page, close, version;
if (browserName === 'chromium') {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
  page = await browser.newPage();
  [close, version] = [() => browser.close(), `Chromium ${browser.version()}`];
} else {
  const { BROWSERS } = await import('../../tests/browser/engines.mjs');
  const browser = await BROWSERS[browserName]();
  page = await browser.open('data:text/html,relaxed-simd-probe');
  [close, version] = [async () => { await page.close(); await browser.close(); }, browser.version];
}
const result = await page.evaluate(async ({ base64, rounds }) => {
  const module = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  if (!WebAssembly.validate(module)) return { validates: false };
  const { instance } = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: { proc_exit() {} } });
  const e = instance.exports;
  e.fill(1);
  e.clear();
  e.int_relaxed(1);
  e.float_relaxed(1);
  const checks = { integerExact: e.int_check() === 1, floatErrorMillionths: e.float_error() };
  const time = (f, reps) => {
    const t0 = performance.now();
    f(reps);
    return performance.now() - t0;
  };
  const K = 256, reps = 250000, times = { int_relaxed: [], int_winograd: [], float_relaxed: [], float_plain: [] };
  for (const f of Object.keys(times)) time(e[f], reps / 10); // warm up each
  for (let r = 0; r < rounds; r++) for (const f of Object.keys(times)) times[f].push(time(e[f], reps));
  e.checksum();
  const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  // multiply-adds per call: the direct tile 4 x 16 x K; the Winograd GEMM 4 x 8 x 2K of F(2x2)'s,
  // which stand for 2.25x as many of a direct convolution; the float tile 4 x 8 x K
  const work = { int_relaxed: 64 * K, int_winograd: 64 * K * 2.25, float_relaxed: 32 * K, float_plain: 32 * K };
  const rate = Object.fromEntries(Object.keys(times).map((f) => [f, (work[f] * reps) / median(times[f]) / 1e6]));
  return { validates: true, checks, rate, spread: Object.fromEntries(Object.keys(times).map((f) =>
    [f, (Math.max(...times[f]) / Math.min(...times[f])).toFixed(2)])) };
}, { base64: fs.readFileSync(relaxed).toString('base64'), rounds });
await close();

const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || os.cpus()[0].model;
const flags = ((fs.readFileSync('/proc/cpuinfo', 'utf8').match(/flags\s*:\s*(.*)/) || [])[1] || '').split(' ');
console.log(`relaxed SIMD probe, ${new Date().toISOString().slice(0, 10)}: ${version}`);
console.log(`CPU: ${cpu}; ${['fma', 'avx2', 'avx_vnni', 'avx512_vnni'].map((f) => `${f} ${flags.includes(f) ? 'yes' : 'no'}`).join(', ')}`);
if (!result.validates) {
  console.log('this browser does not validate relaxed SIMD');
  process.exit(0);
}
console.log(`checks: integer sums exact: ${result.checks.integerExact}; float sums' largest error: ${result.checks.floatErrorMillionths}e-6`);
const g = (f) => result.rate[f].toFixed(1);
console.log(`integer, direct-convolution multiply-adds per second (G), median of ${rounds} rounds (max/min):`);
console.log(`  relaxed dot, direct 4x16 tile:            ${g('int_relaxed')}  (${result.spread.int_relaxed})`);
console.log(`  SIMD128 dot_i16x8, Winograd F(2x2) 4x8:   ${g('int_winograd')}  (${result.spread.int_winograd})  -> relaxed/SIMD128 ${(result.rate.int_relaxed / result.rate.int_winograd).toFixed(2)}x`);
console.log(`float, multiply-adds per second (G), 4x8 GEMM tile:`);
console.log(`  f32x4.relaxed_madd:                       ${g('float_relaxed')}  (${result.spread.float_relaxed})`);
console.log(`  f32x4.mul + f32x4.add:                    ${g('float_plain')}  (${result.spread.float_plain})  -> relaxed/SIMD128 ${(result.rate.float_relaxed / result.rate.float_plain).toFixed(2)}x`);
if (!result.checks.integerExact || result.checks.floatErrorMillionths > 100) process.exit(1);
