// The status panel's spend against budget in headless Chromium against the real stack
// (PostgreSQL, adw-ingest, adw-gateway), started by tests/integration/test_budgets.py, which runs
// this file with ADW_GATEWAY_URL (the gateway serving the dashboard), ADW_INGEST_URL (where
// events are posted) and ADW_BROWSER_ARTIFACTS (where screenshots go). Debian's
// /usr/bin/chromium, driven by playwright-core (no browser is downloaded).
//
//   node tests/browser/budget.test.mjs

import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

const GATEWAY = need('ADW_GATEWAY_URL');
const INGEST = need('ADW_INGEST_URL');
const ARTIFACTS = need('ADW_BROWSER_ARTIFACTS');
const CHROMIUM = process.env.ADW_CHROMIUM || '/usr/bin/chromium';
const TAG = Date.now().toString(36);

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set (run through tests/integration/test_budgets.py)`);
    process.exit(2);
  }
  return v.replace(/\/$/, '');
}

let browser;
let userDir;

before(async () => {
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'adw-chromium-'));
  browser = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    viewport: {width: 1280, height: 720},
    timeout: 60000,
  });
});

after(async () => {
  if (browser) await browser.close();
  if (userDir) fs.rmSync(userDir, {recursive: true, force: true});
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits until fn() is truthy; the machine is shared and nothing here asserts on timing.
async function until(fn, what, timeout = 30000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(100);
  }
}

async function post(events) {
  const res = await fetch(`${INGEST}/api/events`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(events),
  });
  assert.equal(res.status, 200, await res.text());
}

// What adw-send makes of a stream-json `result` line costing `cost`.
function result(adwId, cost) {
  return {
    type: 'adw_event',
    adw_id: adwId,
    step: 'build',
    event_type: 'ResultMessage',
    status: 'completed',
    summary: `Completed: 4 turns, 12.3 s, $${cost.toFixed(4)}`,
    payload: {cost_usd: cost, input_tokens: 22, output_tokens: 181, num_turns: 4},
  };
}

function start(adwId, payload) {
  return {type: 'system', adw_id: adwId, event: 'adw_start', summary: 'Fix the tests', payload};
}

test('the status panel shows spend against budget, warning and exceeded', async () => {
  const adwId = `budget-${TAG}`;
  await post([start(adwId, {budget_usd: 5}), {type: 'system', adw_id: adwId, step: 'build',
    event: 'step_start', status: 'running'}, result(adwId, 2.0)]);
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${GATEWAY}/#/runs/${adwId}`);
  const box = page.locator('.status-panel .budget');
  const text = () => page.locator('.status-panel [data-field="budget"]').textContent();
  await until(async () => (await text()) === '$2.00 / $5.00', 'the budget line');
  assert.equal(await box.isVisible(), true);
  assert.equal(await box.getAttribute('data-level'), 'ok');
  const width = () => page.locator('.status-panel .budget-fill').evaluate((e) => e.style.width);
  assert.equal(Number.parseFloat(await width()), 40);

  // Live: the run's next costs move it to the warning, then over the budget.
  await post([result(adwId, 2.02)]);
  await until(async () => (await text()) === '$4.02 / $5.00', 'the warning');
  assert.equal(await box.getAttribute('data-level'), 'warning');
  assert.equal(Number.parseFloat(await width()), 80.4);
  const warnColour = await page
    .locator('.status-panel .budget-fill')
    .evaluate((e) => getComputedStyle(e).backgroundColor);
  await page.screenshot({path: path.join(ARTIFACTS, 'budget-warning.png')});

  await post([result(adwId, 1.1)]);
  await until(async () => (await text()) === '$5.12 / $5.00', 'exceeded');
  assert.equal(await box.getAttribute('data-level'), 'exceeded');
  assert.equal(Number.parseFloat(await width()), 100);
  const overColour = await page
    .locator('.status-panel .budget-fill')
    .evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.notEqual(overColour, warnColour);
  const bar = page.locator('.status-panel .budget-bar');
  assert.equal(await bar.getAttribute('aria-valuenow'), '5.12');
  assert.match(await bar.getAttribute('aria-valuetext'), /^102% of the budget \(exceeded\)$/);
  const file = path.join(ARTIFACTS, 'budget-exceeded.png');
  await page.locator('.status-panel').screenshot({path: file});
  assert.ok(fs.statSync(file).size > 1000);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a run without a budget shows none', async () => {
  const adwId = `nobudget-${TAG}`;
  await post([start(adwId, {}), result(adwId, 1.5)]);
  const page = await browser.newPage();
  await page.goto(`${GATEWAY}/#/runs/${adwId}`);
  await until(
    async () =>
      (await page.locator('.status-panel [data-field="cost"]').textContent()) === '$1.50',
    'the cost',
  );
  assert.equal(await page.locator('.status-panel .budget').isVisible(), false);
  await page.close();
});
