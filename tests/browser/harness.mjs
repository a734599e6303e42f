// What the browser tests share: the stack's addresses from the environment their pytest file
// sets, Debian's /usr/bin/chromium driven by playwright-core (no browser is downloaded), pages
// that record their WebSocket frames and page errors, posting events to ingest, the gateway's
// kill/start control, waiting without timed assertions, screenshots, and reading the dashboard's
// run view. Each *.test.mjs imports what it needs and keeps only its own scenario.
//
// The environment every test file reads:
//   ADW_CHROMIUM            the browser (default /usr/bin/chromium)
//   ADW_BROWSER_ARTIFACTS   where screenshots go (default: tests/browser/artifacts)

import {after, afterEach, before} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = process.env.ADW_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.ADW_BROWSER_ARTIFACTS || path.join(HERE, 'artifacts');
// Tells this run's adw_ids from earlier runs' against the same database.
export const RUN_TAG = Date.now().toString(36);

// The flags every test's Chromium starts with; useChromium's `args` come after them.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];

// ---- the environment ----------------------------------------------------------------------------

// The values of the environment variables `names`, without a trailing slash. When one is not set
// it says so, names `runner` (the pytest file that runs this test and sets them) and exits 2.
export function need(runner, ...names) {
  return names.map((name) => {
    const v = process.env[name];
    if (!v) {
      console.error(`${name} is not set (run through ${runner})`);
      process.exit(2);
    }
    return v.replace(/\/$/, '');
  });
}

// ---- the browser --------------------------------------------------------------------------------

// Starts Chromium before this file's tests and closes it after them (node:test hooks registered
// here, at the top level of the calling file). Returns the handle the tests use:
//   persistent (default true): one browser context on a temporary profile (removed after);
//     handle.context is it, every page opens in it, sharing its storage and permissions.
//   persistent false: a browser (handle.browser) in which each page gets a fresh context (its own
//     localStorage) with `viewport`.
//   handle.openPage(url, {viewport, colorScheme, init}): a page on url (a path below `gateway`, or
//     an absolute http(s) URL) recording its WebSocket frames and page errors; init(page) runs
//     before it navigates. Returns {page, ws}: ws.sockets [{url, sent, received, closed}] with
//     each frame parsed as JSON ({unparsed} when it is not), ws.errors the page's errors.
//   handle.errors: every page error of every page opened here, in this file.
//   ready(handle), when given, runs once the browser is up (before the first test), to grant
//     permissions and the like (not a before() of the test file: Node 20 starts the top-level
//     before hooks without waiting for the one before to finish).
// The pages (and in the non-persistent mode their contexts) a test opened are closed after it,
// passed or failed; the handle owns them.
export function useChromium({gateway, persistent = true, viewport = {width: 1280, height: 720},
  args = [], ready} = {}) {
  const handle = {browser: null, context: null, errors: [], openPage};
  const opened = [];
  let userDir;

  before(async () => {
    const common = {executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...args],
      timeout: 60000};
    if (persistent) {
      userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'adw-chromium-'));
      handle.context = await chromium.launchPersistentContext(userDir, {...common, viewport});
    } else {
      handle.browser = await chromium.launch(common);
    }
    if (ready) await ready(handle);
  });

  afterEach(async () => {
    for (const o of opened.splice(0)) await o.close().catch(() => {});
  });

  after(async () => {
    if (handle.context) await handle.context.close();
    if (handle.browser) await handle.browser.close();
    if (userDir) fs.rmSync(userDir, {recursive: true, force: true});
  });

  async function openPage(url, {viewport: size, colorScheme, init} = {}) {
    let page;
    if (persistent) {
      page = await handle.context.newPage();
      opened.push(page);
    } else {
      const context = await handle.browser.newContext({viewport});
      opened.push(context);
      page = await context.newPage();
    }
    if (size) await page.setViewportSize(size);
    if (colorScheme) await page.emulateMedia({colorScheme});
    const ws = {sockets: [], errors: []};
    page.on('websocket', (sock) => {
      const s = {url: sock.url(), sent: [], received: [], closed: false};
      ws.sockets.push(s);
      sock.on('framesent', (f) => s.sent.push(parseFrame(f.payload)));
      sock.on('framereceived', (f) => s.received.push(parseFrame(f.payload)));
      sock.on('close', () => {
        s.closed = true;
      });
    });
    page.on('pageerror', (e) => {
      ws.errors.push(String(e));
      handle.errors.push(String(e));
    });
    if (init) await init(page);
    await page.goto(/^https?:/.test(url) ? url : `${gateway}/${url}`);
    return {page, ws};
  }

  return handle;
}

function parseFrame(payload) {
  try {
    return JSON.parse(String(payload));
  } catch {
    return {unparsed: String(payload)};
  }
}

// The subscribe messages a page sent, on all its connections, in order.
export function subscribes(ws) {
  return ws.sockets.flatMap((s) =>
    s.sent.filter((m) => m.action === 'subscribe' || m.type === 'subscribe'),
  );
}

// The messages a page received, on all its connections, in order.
export function received(ws) {
  return ws.sockets.flatMap((s) => s.received);
}

// Screenshots target (a page or a locator) to ARTIFACTS/<name>.png and asserts the file is
// written; returns its path.
export async function shot(target, name) {
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  const file = path.join(ARTIFACTS, `${name}.png`);
  await target.screenshot({path: file});
  assert.ok(fs.statSync(file).size > 1000, `${file} is written`);
  return file;
}

// ---- the servers --------------------------------------------------------------------------------

// Posting to the ingest at `base`:
//   post(events): one event or an array of them in one request; asserts 200, returns the ids.
//   postInChunks(events, size = 500): an array in requests of `size`, one after the other.
//   metric(name): the value of one of ingest's /metrics lines, null when it has none.
export function ingestClient(base) {
  async function post(events) {
    const res = await fetch(`${base}/api/events`, {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(events),
    });
    const body = await res.json();
    assert.equal(res.status, 200, `ingest answered ${res.status}: ${JSON.stringify(body)}`);
    return Array.isArray(events) ? body.ids : [body.id];
  }

  async function postInChunks(events, size = 500) {
    const ids = [];
    for (let i = 0; i < events.length; i += size) {
      ids.push(...(await post(events.slice(i, i + size))));
    }
    return ids;
  }

  async function metric(name) {
    const text = await (await fetch(`${base}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(' ').at(-1)) : null;
  }

  return {post, postInChunks, metric};
}

// control(what) POSTs /gateway/<what> (kill, start) to the pytest file's control server at
// `base` and asserts 200; it fails the test when base is empty.
export function gatewayControl(base) {
  return async function control(what) {
    assert.ok(base, 'ADW_CONTROL_URL is needed for this test');
    const res = await fetch(`${base}/gateway/${what}`, {method: 'POST'});
    const body = await res.text();
    assert.equal(res.status, 200, `control ${what}: ${res.status} ${body}`);
  };
}

// ---- events, as adw-send and the SDK hooks post them -------------------------------------------

let uidN = 0;
// An adw_id of this run: what-RUN_TAG-n.
export function uid(what) {
  uidN += 1;
  return `${what}-${RUN_TAG}-${uidN}`;
}

// An agent event (type adw_event); step null leaves the step out, payload is optional.
export function agentEvent(adwId, step, eventType, summary, payload) {
  const ev = {type: 'adw_event', adw_id: adwId, event_type: eventType, summary};
  if (step !== null) ev.step = step;
  if (payload) ev.payload = payload;
  return ev;
}

// A system event (type system) with the fields of `extra`; step null leaves the step out.
export function systemEvent(adwId, step, event, extra = {}) {
  const ev = {type: 'system', adw_id: adwId, event, ...extra};
  if (step !== null) ev.step = step;
  return ev;
}

// ---- waiting ------------------------------------------------------------------------------------

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Polls fn (sync or async) until it returns a truthy value; returns it. A throw counts as not yet.
// Generous by default: the machine is shared and nothing here asserts on timing. `what` (a string
// or a function giving one) names what is awaited in the error when the time is up.
export async function until(fn, {timeout = 30000, interval = 100, what = 'condition'} = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      const w = typeof what === 'function' ? await what() : what;
      throw new Error(`timed out after ${timeout} ms waiting for ${w} (last: ${last})`);
    }
    await sleep(interval);
  }
}

// ---- the dashboard's run view -------------------------------------------------------------------

// Waits until the run view has loaded its history and subscribed; with count, until it has
// rendered that many events.
export async function waitRunLoaded(page, count) {
  await page.waitForSelector('.run-page[data-history="done"][data-subscribed="yes"]', {
    timeout: 60000,
  });
  if (count !== undefined) {
    await page.waitForFunction(
      (n) => document.querySelector('.run-page').dataset.rendered === String(n),
      count,
      {timeout: 120000, polling: 100},
    );
  }
}

// The steps of the run view's lanes, left to right.
export async function laneSteps(page) {
  return page.$$eval('.lane', (ls) => ls.map((l) => l.dataset.step));
}

// The event ids of a lane's cards, top to bottom.
export async function laneIds(page, step) {
  return page.$$eval(`.lane[data-step="${cssEsc(step)}"] .card`, (cs) =>
    cs.map((c) => Number(c.dataset.eventId)),
  );
}

// s quoted for a CSS attribute selector's "value".
export function cssEsc(s) {
  return s.replace(/["\\]/g, '\\$&');
}
