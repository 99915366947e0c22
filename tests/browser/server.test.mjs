// server.test.mjs - the demo's static server (scripts/serve.mjs): which paths it serves, that
// it answers 500 and keeps running when a file cannot be read, and that it closes every file
// it opened, also when clients abandon downloads half-way. Run by `make test-browser`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { resolveRequest, startServer } from '../../scripts/serve.mjs';

const repo = path.resolve('.');

test('resolveRequest maps the four folders and nothing outside them', () => {
  assert.equal(resolveRequest('/'), path.join(repo, 'web', 'index.html'));
  assert.equal(resolveRequest('/app.js?v=1#x'), path.join(repo, 'web', 'app.js'));
  assert.equal(resolveRequest('/wasm/q4-mt.js'), path.join(repo, 'build', 'wasm', 'q4-mt.js'));
  assert.equal(resolveRequest('/data/cifar-10-batches-bin/test_batch.bin'),
    path.join(repo, 'data', 'cifar-10-batches-bin', 'test_batch.bin'));
  for (const hostile of ['/../Makefile', '/wasm/../../Makefile', '/%2e%2e/Makefile', '/data/..%2f..%2fMakefile',
    '/a%00b', '/a\\..\\b', '/%E0%A4%A']) {
    const file = resolveRequest(hostile);
    const inside = ['web', 'build/wasm', 'data'].some((dir) => file && file.startsWith(path.join(repo, dir) + path.sep));
    assert.ok(file === null || inside, `${hostile} -> ${file}: outside the served folders`);
    assert.notEqual(file, path.join(repo, 'Makefile'));
  }
});

const get = (url) => new Promise((resolve, reject) => {
  http.get(url, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    res.on('error', reject);
  }).on('error', reject);
});

test('a file that cannot be read answers 500 and the server keeps serving', async () => {
  let fail = true;
  const opened = [];
  const open = (file) => {
    if (!fail) return fs.createReadStream(file);
    const stream = new Readable({ read() {} });
    opened.push(stream);
    setImmediate(() => stream.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })));
    return stream;
  };
  const { server, url } = await startServer({ port: 0, quiet: true, open });
  try {
    const broken = await get(`${url}index.html`);
    assert.equal(broken.status, 500);
    assert.equal(broken.body, 'read error\n');
    assert.ok(opened.every((s) => s.destroyed));
    fail = false;
    const good = await get(`${url}index.html`);
    assert.equal(good.status, 200);
    assert.match(good.body, /<title>q4/);
    assert.equal(good.headers['cross-origin-embedder-policy'], 'require-corp');
  } finally {
    server.close();
  }
});

test('abandoned downloads leave no file open', async () => {
  const shard = path.join('data', 'cifar-10-batches-bin', 'data_batch_1.bin');
  assert.ok(fs.existsSync(shard), 'make data first');
  const { server, url } = await startServer({ port: 0, quiet: true });
  const openFiles = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
    try { return fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith('data_batch_1.bin'); } catch { return false; }
  }).length;
  try {
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => {
        const req = http.get(`${url}data/cifar-10-batches-bin/data_batch_1.bin`, (res) => {
          res.once('data', () => { req.destroy(); setTimeout(resolve, 50); });
        });
        req.on('error', () => {});
      });
    }
    for (let t = 0; t < 50 && openFiles() > 0; t++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(openFiles(), 0, 'the shard stays open after the clients left');
  } finally {
    server.close();
  }
});

test('nothing whose real path leaves the root is served; a missing root and a bad base are refused', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'q4-serve-'));
  fs.writeFileSync(path.join(root, 'index.html'), '<p>inside</p>');
  fs.symlinkSync('/etc/passwd', path.join(root, 'leak.txt'));
  fs.symlinkSync('index.html', path.join(root, 'alias.html')); // a link that stays inside is fine
  const { server, url } = await startServer({ port: 0, quiet: true, root, base: '/q4/' });
  const get = (p) => new Promise((resolve, reject) => {
    http.get(`${url}${p}`, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); }).on('error', reject);
  });
  try {
    assert.equal(await get(''), 200);
    assert.equal(await get('alias.html'), 200);
    assert.equal(await get('leak.txt'), 404, 'a symbolic link out of the root was served');
  } finally {
    server.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  await assert.rejects(startServer({ port: 0, quiet: true, root: '/nonexistent' }), /--root \/nonexistent: not a folder/);
  await assert.rejects(startServer({ port: 0, quiet: true, root: 'web', base: '../' }), /--base \.\.\/: a path such as/);
  await assert.rejects(startServer({ port: 0, quiet: true, root: 'web', base: '/a b/' }), /--base \/a b\//);
});
