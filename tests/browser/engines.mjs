// engines.mjs - Firefox ESR and WebKitGTK (the engine of Safari) driven the same way, for
// tests/browser/browsers.test.mjs and scripts/browser-bench.mjs: Firefox through WebDriver BiDi
// (npm puppeteer-core, which starts `firefox-esr --headless` with a fresh profile), WebKitGTK's
// MiniBrowser through WebKitWebDriver (W3C WebDriver over HTTP, spoken here with fetch) under
// Xvfb. Each browser gives pages with the same few calls: evaluate (a function and its
// arguments, awaited), waitFor, click, upload, resize (the page's viewport, or WebKit's window),
// close. Debian packages: firefox-esr,
// webkit2gtk-driver, xvfb (scripts/setup.sh installs them).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';
export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER || '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = process.env.MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A free TCP port on the loopback interface. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The calls every page offers, from `evaluate(fn, ...args)` alone. */
function withHelpers(page) {
  return Object.assign(page, {
    /** Polls `fn(...args)` until it returns something truthy (also across the page's own reloads). */
    async waitFor(fn, args = [], { timeout = 60000, what = String(fn) } = {}) {
      const end = Date.now() + timeout;
      let last = null;
      for (;;) {
        try {
          const value = await page.evaluate(fn, ...args);
          if (value) return value;
        } catch (e) {
          last = e; // the page is navigating
        }
        if (Date.now() > end) throw new Error(`${page.browserName}: timed out after ${timeout} ms waiting for ${what}${last ? ` (${last.message})` : ''}`);
        await sleep(250);
      }
    },
    click: (selector) => page.evaluate((s) => { document.querySelector(s).click(); return true; }, selector),
    text: (id) => page.evaluate((i) => document.getElementById(i).textContent, id),
  });
}

/* ---------------------------------------------------------------- Firefox (WebDriver BiDi) */

/** Firefox ESR, headless, with a fresh profile; `prefs` are added to it (e.g. a storage limit). */
export async function firefox({ prefs = {} } = {}) {
  const puppeteer = (await import('puppeteer-core')).default;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'q4-firefox-'));
  const browser = await puppeteer.launch({
    browser: 'firefox', executablePath: FIREFOX, headless: true, userDataDir: profile, protocol: 'webDriverBiDi',
    protocolTimeout: 900000, // a benchmark is one long evaluate
    extraPrefsFirefox: prefs,
  });
  const version = (await browser.version()).replace(/^firefox\//i, 'Firefox ');
  return {
    name: 'firefox', version,
    async open(url) {
      const context = await browser.createBrowserContext();
      const tab = await context.newPage();
      const errors = [];
      tab.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      tab.on('pageerror', (e) => errors.push(e.message));
      await tab.goto(url);
      return withHelpers({
        browserName: 'firefox', errors,
        evaluate: (fn, ...args) => tab.evaluate(fn, ...args),
        async upload(selector, file) {
          const input = await tab.$(selector);
          await input.uploadFile(file);
        },
        resize: (width, height) => tab.setViewport({ width, height }),
        close: () => context.close(),
      });
    },
    async close() {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/* ---------------------------------------------------------------- WebKitGTK (WebDriver) */

/** WebKitGTK's MiniBrowser under Xvfb; with `home`, the browser's home folder (where it keeps its
 * data and saves downloads: MiniBrowser under automation saves them there without asking). */
export async function webkit({ home } = {}) {
  const display = await freePort() % 1000 + 100; // an X display number nobody uses (Xvfb says if taken)
  const xvfb = spawn('Xvfb', [`:${display}`, '-screen', '0', '1400x1000x24', '-nolisten', 'tcp'], { stdio: 'ignore' });
  const port = await freePort();
  const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`], { stdio: 'ignore', env: { ...process.env, DISPLAY: `:${display}`, ...(home ? { HOME: home } : {}) } });
  const base = `http://127.0.0.1:${port}`;
  const call = async (method, where, body) => {
    const response = await fetch(`${base}${where}`, { method, headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await response.json();
    if (!response.ok || (json.value && json.value.error)) {
      const v = json.value || {};
      throw new Error(`WebKitWebDriver ${method} ${where}: ${v.error || response.status}: ${v.message || ''}`);
    }
    return json.value;
  };
  const stop = () => {
    driver.kill();
    xvfb.kill();
  };
  let session;
  try {
    for (let i = 0; ; i++) { // the driver and the display take a moment to come up
      try {
        session = await call('POST', '/session', { capabilities: { alwaysMatch: {
          'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
          timeouts: { script: 900000, pageLoad: 120000 } } } }); // a benchmark is one long script
        break;
      } catch (e) {
        if (i > 80) throw e;
        await sleep(250);
      }
    }
  } catch (e) {
    stop();
    throw e;
  }
  const id = session.sessionId;
  const version = `WebKitGTK ${session.capabilities.browserVersion}`;
  const s = (where) => `/session/${id}${where}`;
  let open = false;
  return {
    name: 'webkit', version,
    /* WebDriver drives one window: each page is a navigation of it (storage stays between pages) */
    async open(url) {
      if (open) throw new Error('webkit: one page at a time');
      open = true;
      await call('POST', s('/url'), { url });
      const page = withHelpers({
        browserName: 'webkit', errors: [],
        evaluate: (fn, ...args) => call('POST', s('/execute/sync'), { script: `return (${fn}).apply(null, arguments);`, args }),
        async upload(selector, file) {
          const element = await call('POST', s('/element'), { using: 'css selector', value: selector });
          await call('POST', s(`/element/${Object.values(element)[0]}/value`), { text: file });
        },
        /* WebDriver sizes the window; the page gets what the window's frame leaves */
        resize: (width, height) => call('POST', s('/window/rect'), { width, height }),
        async close() {
          await call('POST', s('/url'), { url: 'about:blank' });
          open = false;
        },
      });
      return page;
    },
    async close() {
      try {
        await call('DELETE', s(''));
      } finally {
        stop();
      }
    },
  };
}

/** The browsers this machine has, by name. */
export const BROWSERS = { firefox, webkit };

/** Debian's version strings, for reports (without starting anything). */
export function installedVersions() {
  const run = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  return { firefox: run(FIREFOX, ['--version']), webkit: run('dpkg-query', ['-W', '-f=${Version}', 'libwebkit2gtk-4.1-0']) };
}
