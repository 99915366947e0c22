// sw.js - the service worker of the built site (make site). Two jobs, which one worker per
// scope must do together: (1) make the page cross-origin isolated on hosts that cannot send
// the COOP/COEP headers (WebAssembly threads need SharedArrayBuffer, which needs them), by
// adding those headers to every same-origin response; (2) keep the page, the engine and the
// data in Cache Storage, so that a reload downloads nothing again and the page works offline.
// `make site` fills in VERSION (a hash of the page and engine files) and PRECACHE.
'use strict';

const VERSION = '__VERSION__';
const PRECACHE = __PRECACHE__; // the page and the engine, relative to this file
const SHELL = `q4-shell-${VERSION}`;
const DATA = 'q4-data'; // shards are large and change never: kept across versions

// A first visit's worker takes over at once. A new deploy's worker (a new VERSION) installs beside
// the one in use and waits: an open page keeps the files it started with, never half of each
// version. The page tells it to take over (the message below) when nothing would be lost, or
// when its visitor asks, and reloads (app.js, watchUpdates). The files are fetched past the
// HTTP cache: a host's max-age must not put the old files under the new version.
self.addEventListener('install', (event) => {
  const first = !self.registration.active;
  event.waitUntil(caches.open(SHELL)
    .then((cache) => cache.addAll(PRECACHE.map((file) => new Request(file, { cache: 'reload' }))))
    .then(() => first && self.skipWaiting()));
});

self.addEventListener('message', (event) => {
  if (event.data === 'q4-take-over') self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key.startsWith('q4-shell-') && key !== SHELL) await caches.delete(key);
    await self.clients.claim();
  })());
});

/** The same response with the headers that make the page cross-origin isolated. */
function isolated(response) {
  if (!response || response.type === 'opaque' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Resource-Policy', 'same-origin');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    const data = url.pathname.includes('/data/');
    const cache = await caches.open(data ? DATA : SHELL);
    // settings travel in the query string: the page is the same whatever it says
    const hit = await cache.match(request, { ignoreSearch: true });
    if (hit) return isolated(hit);
    const response = await fetch(request);
    // answered at once, stored beside: the page reads the bytes as they arrive (a data shard's
    // download shows its progress) while the copy goes to the cache, which the worker is kept
    // alive for
    if (response.ok && (data || request.mode === 'navigate')) {
      event.waitUntil(cache.put(request, response.clone()).catch(() => {
        // the browser's storage for the site is full (QuotaExceededError): served, not kept
      }));
    }
    return isolated(response);
  })());
});
