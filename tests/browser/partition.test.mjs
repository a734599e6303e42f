// The dashboard when the retention dropped events a run view missed: after a reconnect, the
// resume comes back incomplete ("complete":false, "first_id") and the run view reloads from what
// is kept. Run through tests/integration/test_partition_dashboard.py, which starts ingest with a
// retention of 2 s and partitions of 1,000 ids on an empty database, and sets:
//   ADW_GATEWAY_URL, ADW_INGEST_URL, ADW_CONTROL_URL (POST /gateway/kill, /gateway/start),
//   ADW_CHROMIUM.
import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

const GATEWAY = need('ADW_GATEWAY_URL');
const INGEST = need('ADW_INGEST_URL');
const CONTROL = need('ADW_CONTROL_URL');
const CHROMIUM = process.env.ADW_CHROMIUM || '/usr/bin/chromium';

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set (run through tests/integration/test_partition_dashboard.py)`);
    process.exit(2);
  }
  return v.replace(/\/$/, '');
}

let context;
let userDir;

before(async () => {
  userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'adw-chromium-'));
  context = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    viewport: {width: 1280, height: 720},
    timeout: 60000,
  });
});

after(async () => {
  if (context) await context.close();
  if (userDir) fs.rmSync(userDir, {recursive: true, force: true});
});

async function post(events) {
  const ids = [];
  for (let i = 0; i < events.length; i += 100) {
    const res = await fetch(`${INGEST}/api/events`, {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(events.slice(i, i + 100)),
    });
    const body = await res.json();
    assert.equal(res.status, 200, `ingest answered ${res.status}: ${JSON.stringify(body)}`);
    ids.push(...body.ids);
  }
  return ids;
}

async function control(what) {
  const res = await fetch(`${CONTROL}/gateway/${what}`, {method: 'POST'});
  assert.equal(res.status, 200, `control ${what}: ${res.status} ${await res.text()}`);
}

async function ingestMetric(name) {
  const text = await (await fetch(`${INGEST}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').at(-1)) : null;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(fn, {timeout = 30000, what = 'condition'} = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn().catch((e) => e);
    if (last === true || (last && !(last instanceof Error))) return last;
    if (Date.now() > end) {
      const w = typeof what === 'function' ? await what() : what;
      throw new Error(`timed out after ${timeout} ms waiting for ${w} (last: ${last})`);
    }
    await sleep(100);
  }
}

function events(adwId, n, what) {
  return Array.from({length: n}, (_, i) => ({
    type: 'adw_event',
    adw_id: adwId,
    step: 'build',
    event_type: 'TextBlock',
    summary: `${what} ${i}`,
  }));
}

async function laneIds(page) {
  return page.$$eval('.lane[data-step="build"] .card', (cs) =>
    cs.map((c) => Number(c.dataset.eventId)),
  );
}

test('a resume across the retention\'s cut reloads the run view from what is kept', async () => {
  const R = 'cut';
  const before = await post(events(R, 30, 'before'));
  assert.deepEqual(before, Array.from({length: 30}, (_, i) => i + 1), 'an empty database');

  const page = await context.newPage();
  const received = [];
  const errors = [];
  page.on('websocket', (sock) =>
    sock.on('framereceived', (f) => {
      try {
        received.push(JSON.parse(String(f.payload)));
      } catch {
        /* binary or not JSON */
      }
    }),
  );
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${GATEWAY}/#/runs/${R}`);
  await page.waitForSelector('.run-page[data-history="done"][data-subscribed="yes"]', {
    timeout: 60000,
  });
  await until(async () => (await laneIds(page)).length === 30, {what: 'the 30 cards'});

  // The page loses its gateway; meanwhile ids 1 to 1000 fill the first partition, the run goes
  // on in the second, and the retention drops the first.
  await control('kill');
  await page.waitForSelector('#conn[data-state="reconnecting"]', {timeout: 30000});
  await post(events('filler', 970, 'filler'));
  const kept = await post(events(R, 20, 'after'));
  assert.equal(kept[0], 1001);
  await until(async () => (await ingestMetric('adw_ingest_partitions_dropped_total')) >= 1, {
    what: 'the retention to drop ids 1 to 1000',
  });

  await control('start');
  await page.waitForSelector('#conn[data-state="live"]', {timeout: 60000});
  const cut = await until(
    async () => received.find((m) => m.type === 'replayed' && m.complete === false),
    {timeout: 60000, what: 'an incomplete replayed'},
  );
  assert.equal(cut.first_id, 1001);
  // Reloaded: only what is kept, each once, in order (without the reload the 30 dropped ones
  // would stay beside them).
  await until(async () => JSON.stringify(await laneIds(page)) === JSON.stringify(kept), {
    timeout: 60000,
    what: async () => `the kept cards only: ${JSON.stringify((await laneIds(page)).slice(0, 10))}...`,
  });
  await sleep(500);
  assert.deepEqual(await laneIds(page), kept);
  // It goes on live from there, and its resume is complete now.
  const more = await post(events(R, 3, 'live'));
  await until(async () => (await laneIds(page)).length === kept.length + 3, {what: 'live cards'});
  assert.deepEqual(await laneIds(page), [...kept, ...more]);
  assert.ok(
    received.some((m) => m.type === 'replayed' && m.complete === true),
    'the reloaded view resumed completely',
  );
  assert.deepEqual(errors, []);
  await page.close();
});
