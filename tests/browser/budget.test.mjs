// The status panel's spend against budget in headless Chromium against the real stack
// (PostgreSQL, adw-ingest, adw-gateway), started by tests/integration/test_budgets.py, which runs
// this file with ADW_GATEWAY_URL (the gateway serving the dashboard), ADW_INGEST_URL (where
// events are posted) and ADW_BROWSER_ARTIFACTS (where screenshots go). Debian's
// /usr/bin/chromium, driven by playwright-core (no browser is downloaded); the setup is
// harness.mjs's.
//
//   node tests/browser/budget.test.mjs

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {
  RUN_TAG,
  ingestClient,
  need,
  shot,
  systemEvent,
  until,
  useChromium,
} from './harness.mjs';

// The screenshots' folder is required here too (harness.mjs's ARTIFACTS is where they go).
const [GATEWAY, INGEST] = need('tests/integration/test_budgets.py', 'ADW_GATEWAY_URL',
  'ADW_INGEST_URL', 'ADW_BROWSER_ARTIFACTS');
const {openPage} = useChromium({gateway: GATEWAY});
const {post} = ingestClient(INGEST);

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
  return systemEvent(adwId, null, 'adw_start', {summary: 'Fix the tests', payload});
}

test('the status panel shows spend against budget, warning and exceeded', async () => {
  const adwId = `budget-${RUN_TAG}`;
  await post([start(adwId, {budget_usd: 5}), systemEvent(adwId, 'build', 'step_start',
    {status: 'running'}), result(adwId, 2.0)]);
  const {page, ws} = await openPage(`#/runs/${adwId}`);
  const box = page.locator('.status-panel .budget');
  const text = () => page.locator('.status-panel [data-field="budget"]').textContent();
  await until(async () => (await text()) === '$2.00 / $5.00', {what: 'the budget line'});
  assert.equal(await box.isVisible(), true);
  assert.equal(await box.getAttribute('data-level'), 'ok');
  const width = () => page.locator('.status-panel .budget-fill').evaluate((e) => e.style.width);
  assert.equal(Number.parseFloat(await width()), 40);

  // Live: the run's next costs move it to the warning, then over the budget.
  await post([result(adwId, 2.02)]);
  await until(async () => (await text()) === '$4.02 / $5.00', {what: 'the warning'});
  assert.equal(await box.getAttribute('data-level'), 'warning');
  assert.equal(Number.parseFloat(await width()), 80.4);
  const warnColour = await page
    .locator('.status-panel .budget-fill')
    .evaluate((e) => getComputedStyle(e).backgroundColor);
  await shot(page, 'budget-warning');

  await post([result(adwId, 1.1)]);
  await until(async () => (await text()) === '$5.12 / $5.00', {what: 'exceeded'});
  assert.equal(await box.getAttribute('data-level'), 'exceeded');
  assert.equal(Number.parseFloat(await width()), 100);
  const overColour = await page
    .locator('.status-panel .budget-fill')
    .evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.notEqual(overColour, warnColour);
  const bar = page.locator('.status-panel .budget-bar');
  assert.equal(await bar.getAttribute('aria-valuenow'), '5.12');
  assert.match(await bar.getAttribute('aria-valuetext'), /^102% of the budget \(exceeded\)$/);
  await shot(page.locator('.status-panel'), 'budget-exceeded');
  assert.deepEqual(ws.errors, []);
  await page.close();
});

test('a run without a budget shows none', async () => {
  const adwId = `nobudget-${RUN_TAG}`;
  await post([start(adwId, {}), result(adwId, 1.5)]);
  const {page} = await openPage(`#/runs/${adwId}`);
  await until(
    async () =>
      (await page.locator('.status-panel [data-field="cost"]').textContent()) === '$1.50',
    {what: 'the cost'},
  );
  assert.equal(await page.locator('.status-panel .budget').isVisible(), false);
  await page.close();
});
