// serve.mjs - the demo's static server, on 127.0.0.1 only. Sends the headers that make the
// page cross-origin isolated (COOP same-origin + COEP require-corp: SharedArrayBuffer, so
// WebAssembly threads), correct MIME types (application/wasm for .wasm), and nothing outside
// its folders: / -> web/, /wasm/ -> build/wasm/, /data/ -> data/; or, with --root, one folder
// (such as the built site, dist/) under a base path, as any static host would serve it. Paths
// are decoded, normalized and checked to stay inside their folder; anything else is 404.
// Usage: node scripts/serve.mjs [--port 8000] [--no-isolation] [--quiet] [--root DIR [--base /path/]]
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MOUNTS = [
  ['/wasm/', path.join(repo, 'build', 'wasm')],
  ['/data/', path.join(repo, 'data')],
  ['/', path.join(repo, 'web')],
];
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json', '.png': 'image/png',
  '.svg': 'image/svg+xml', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8', '.bin': 'application/octet-stream',
  '.gz': 'application/gzip',
};

/** Maps a request path to [file, folder] inside one of the mounts ([prefix, folder]), or null. */
function resolveIn(urlPath, mounts) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath.split('?')[0].split('#')[0]);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  if (decoded.endsWith('/')) decoded += 'index.html';
  for (const [prefix, dir] of mounts) {
    if (!decoded.startsWith(prefix)) continue;
    const relative = decoded.slice(prefix.length);
    const file = path.resolve(dir, `.${path.posix.normalize(`/${relative}`)}`);
    if (file !== dir && !file.startsWith(dir + path.sep)) return null;
    return [file, dir];
  }
  return null;
}

/** Maps a request path to a file inside one of the mounts ([prefix, folder]), or null (by name only). */
export function resolveRequest(urlPath, mounts = MOUNTS) {
  const found = resolveIn(urlPath, mounts);
  return found && found[0];
}

/** The file a request names, once symbolic links are followed, if it is still inside its folder. */
function realFileInside(urlPath, mounts) {
  const found = resolveIn(urlPath, mounts);
  if (!found) return null;
  try {
    const real = fs.realpathSync(found[0]), dir = fs.realpathSync(found[1]);
    return real.startsWith(dir + path.sep) ? real : null;
  } catch {
    return null;
  }
}

/**
 * Answers one request. A file that cannot be opened answers 500; once its bytes have started,
 * a read error ends the response early. stream.pipeline closes the file whatever happens,
 * including when the client goes away mid-download. Exported for tests (open: the file opener).
 */
export function handleRequest(req, res, { isolation = true, open = fs.createReadStream, mounts = MOUNTS } = {}) {
  const headers = { 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' };
  if (isolation) {
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
    headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
    headers['Cross-Origin-Resource-Policy'] = 'same-origin';
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end('method not allowed\n');
    return;
  }
  const file = realFileInside(req.url || '/', mounts); // a symbolic link out of its folder is not served
  let stat = null;
  try {
    stat = file && fs.statSync(file);
  } catch {
    stat = null;
  }
  if (!stat || !stat.isFile()) {
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  headers['Content-Type'] = TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
  if (req.method === 'HEAD') {
    res.writeHead(200, { ...headers, 'Content-Length': stat.size }).end();
    return;
  }
  const stream = open(file);
  stream.once('error', () => {
    if (!res.headersSent) res.writeHead(500, { ...headers, 'Content-Type': 'text/plain' }).end('read error\n');
  });
  stream.once('open', () => {
    res.writeHead(200, { ...headers, 'Content-Length': stat.size });
    pipeline(stream, res, () => {}); /* on any error both ends are destroyed: no descriptor stays open */
  });
}

/** root: serve this one folder under `base` instead of the repository's folders. */
export function startServer({ port = 8000, isolation = true, quiet = false, host = '127.0.0.1', open, root = null,
  base = '/' } = {}) {
  if (root && !(fs.existsSync(root) && fs.statSync(root).isDirectory())) {
    return Promise.reject(new Error(`--root ${root}: not a folder (there is nothing to serve)`));
  }
  const prefix = base.endsWith('/') ? base : `${base}/`;
  if (!/^\/([A-Za-z0-9_~-][A-Za-z0-9._~-]*\/)*$/.test(prefix) || prefix.split('/').some((p) => p === '.' || p === '..')) {
    return Promise.reject(new Error(`--base ${base}: a path such as /q4/ (letters, digits, - _ . ~; no . or .. parts)`));
  }
  const mounts = root ? [[prefix, path.resolve(root)]] : MOUNTS;
  const server = http.createServer((req, res) => handleRequest(req, res, { isolation, open, mounts }));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const url = `http://${host}:${server.address().port}${root ? mounts[0][0] : '/'}`;
      if (!quiet) console.log(`q4 demo: ${url}  (cross-origin isolation ${isolation ? 'on' : 'off'}; Ctrl-C stops)`);
      resolve({ server, url });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const portAt = args.indexOf('--port');
  const port = portAt >= 0 ? Number(args[portAt + 1]) : Number(process.env.PORT || 8000);
  const value = (flag) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  startServer({ port, isolation: !args.includes('--no-isolation'), quiet: args.includes('--quiet'), root: value('--root'),
    base: value('--base') || '/' }).catch((e) => {
    console.error(`q4 demo: ${e.message.startsWith('--') ? e.message : `cannot listen on 127.0.0.1:${port}: ${e.message}`}`);
    process.exit(1);
  });
}
