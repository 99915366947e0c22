// site.mjs - `make site`: writes dist/, the page as a static site that works as it is from any
// path on any host: the page and its scripts, both WebAssembly builds, the service worker
// (web/sw.js, with the version and file list filled in) and, unless --no-data, the CIFAR-10
// shards that `make data` prepared. Every URL inside is relative.
// Usage: node scripts/site.mjs [--out dist] [--no-data]
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : 'dist';
const withData = !args.includes('--no-data');

const PAGE = ['index.html', 'app.js', 'page.js', 'settings.js', 'model-view.js', 'charts.js', 'style.css', 'worker.js'];
const ENGINE = ['q4.js', 'q4-mt.js', 'q4-mt.wasm', 'q4-mt.worker.js', 'q4-st.js', 'q4-st.wasm'];
const DATA = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin',
  'test_batch.bin', 'batches.meta.txt'];

function copy(from, to) {
  if (!fs.existsSync(from)) throw new Error(`${from} is missing (make wasm, make data)`);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
}

fs.rmSync(out, { recursive: true, force: true });
const files = [];
for (const name of PAGE) {
  copy(path.join('web', name), path.join(out, name));
  files.push(name);
}
for (const name of ENGINE) {
  copy(path.join('build', 'wasm', name), path.join(out, 'wasm', name));
  files.push(`wasm/${name}`);
}
if (withData) {
  for (const name of DATA) copy(path.join('data', 'cifar-10-batches-bin', name), path.join(out, 'data', 'cifar-10-batches-bin', name));
}

// the page learns it is the built site (register the service worker) and whether data came with it
const index = path.join(out, 'index.html');
const site = JSON.stringify({ data: withData });
fs.writeFileSync(index, fs.readFileSync(index, 'utf8').replace('<meta charset="utf-8">',
  `<meta charset="utf-8">\n  <meta name="q4-site" content='${site}'>`));

const hash = crypto.createHash('sha256');
for (const name of files) hash.update(name).update(fs.readFileSync(path.join(out, name)));
const version = hash.digest('hex').slice(0, 16);
const worker = fs.readFileSync(path.join('web', 'sw.js'), 'utf8').replace('__VERSION__', version)
  .replace('__PRECACHE__', JSON.stringify(['./', ...files]));
fs.writeFileSync(path.join(out, 'sw.js'), worker);

// no absolute URL may remain: the site must work under any path
for (const name of ['index.html', 'app.js', 'worker.js', 'wasm/q4.js', 'sw.js']) {
  const text = fs.readFileSync(path.join(out, name), 'utf8');
  const absolute = /(?:src|href)="\/[^/]|importScripts\('\/|new Worker\('\//.exec(text);
  if (absolute) throw new Error(`${name} holds an absolute URL: ${absolute[0]}`);
}
const bytes = (dir) => fs.readdirSync(dir, { withFileTypes: true })
  .reduce((s, e) => s + (e.isDirectory() ? bytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size), 0);
console.log(`site: ${out}/ (${(bytes(out) / 1048576).toFixed(1)} MiB, version ${version}, ` +
  `${withData ? 'with' : 'without'} the CIFAR-10 shards): serve it from any static host, at any path`);
