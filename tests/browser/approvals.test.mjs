// Approvals in the dashboard, in headless Chromium against the real stack: started by
// tests/integration/test_approvals_gateway.py, which runs this file with
//   ADW_GATEWAY_URL   http://127.0.0.1:P   a gateway serving the dashboard, with decide tokens
//   ADW_INGEST_URL    http://127.0.0.1:Q   ingest, holding PreToolUse hooks of Bash "rm -rf"
//   ADW_DECIDE_TOKEN                       a decide token named alice covering team-* runs
//   ADW_BROWSER_ARTIFACTS                  where screenshots go (default: ./artifacts)
// Debian's /usr/bin/chromium, driven by playwright-core (no browser is downloaded); the setup is
// harness.mjs's.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {need, shot, until, useChromium} from './harness.mjs';

const [GATEWAY, INGEST, TOKEN] = need('tests/integration/test_approvals_gateway.py',
  'ADW_GATEWAY_URL', 'ADW_INGEST_URL', 'ADW_DECIDE_TOKEN');

// A fresh browser context (its own localStorage) for each page.
const chrome = useChromium({
  gateway: GATEWAY,
  persistent: false,
  viewport: {width: 1280, height: 800},
});
const {openPage} = chrome;

// A PreToolUse hook body exactly as Claude Code sends it for a Bash call.
function preToolUse(command) {
  const session = '7c0de5a1-2b3c-4d5e-8f90-a1b2c3d4e5f6';
  return {
    session_id: session,
    transcript_path: `/home/dev/.claude/projects/-home-dev-app/${session}.jsonl`,
    cwd: '/home/dev/app',
    permission_mode: 'default',
    hook_event_name: 'PreToolUse',
    tool_name: 'Bash',
    tool_input: {command, description: 'Clean the build output'},
    tool_use_id: `toolu_01${Math.random().toString(16).slice(2, 14)}`,
  };
}

// POSTs a hook that ingest holds; resolves with {status, body} once it is answered.
function holdHook(adwId, command) {
  const q = new URLSearchParams({adw_id: adwId, step: 'build'});
  return fetch(`${INGEST}/api/hooks?${q}`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(preToolUse(command)),
  }).then(async (res) => ({status: res.status, body: await res.json()}));
}

async function pendingIds(adwId) {
  const res = await fetch(`${GATEWAY}/api/approvals?adw_id=${adwId}&status=pending`);
  const body = await res.json();
  return body.approvals.map((a) => a.approval_id);
}

// The ids of adwId's pending approvals once there are n of them.
async function waitPending(adwId, n) {
  return until(
    async () => {
      const ids = await pendingIds(adwId);
      return ids.length >= n && ids;
    },
    {interval: 50, what: `a pending approval for ${adwId}`},
  );
}

test('without a decide token: the approval shows, no buttons, a note', async () => {
  const held = holdHook('team-ui-0', 'rm -rf dist/');
  const [id] = await waitPending('team-ui-0', 1);
  const {page} = await openPage('#/runs/team-ui-0');
  const card = page.locator(`.approval[data-approval-id="${id}"]`);
  await card.waitFor({timeout: 30000});
  assert.equal(await card.getAttribute('data-state'), 'pending');
  assert.equal(await card.locator('[data-field="tool"]').textContent(), 'Bash');
  assert.equal(await card.locator('[data-field="input"]').textContent(), 'rm -rf dist/');
  assert.equal(await card.locator('[data-field="rule"]').textContent(), 'destructive shell');
  assert.match(await card.locator('[data-field="countdown"]').textContent(), /^\d+:\d\d left$/);
  assert.equal(await page.locator('button[data-decision]').count(), 0);
  assert.match(await card.locator('.approval-note').textContent(), /decide token/);
  // the panel stands at the top of the run view, above the lanes
  const top = await page.locator('.approvals').boundingBox();
  const lanes = await page.locator('.lanes').boundingBox();
  assert.ok(top.y < lanes.y, 'approvals above the lanes');
  await shot(page, 'approvals-no-token');

  // the run list flags the run
  await page.goto(`${GATEWAY}/#/`);
  const badge = page.locator('tr[data-run-id="team-ui-0"] .status-approval');
  await badge.waitFor({timeout: 30000});
  assert.equal(await badge.getAttribute('data-pending-approvals'), '1');
  await shot(page, 'approvals-run-list');

  // decided elsewhere (ingest directly, no name): the flag goes, live
  const res = await fetch(`${INGEST}/api/approvals/${id}`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({decision: 'deny', reason: 'not today'}),
  });
  assert.equal(res.status, 200);
  const answer = await held;
  assert.equal(answer.body.hookSpecificOutput.permissionDecision, 'deny');
  await page.waitForSelector('tr[data-run-id="team-ui-0"][data-pending-approvals="0"]', {
    timeout: 30000,
  });
  assert.equal(await badge.count(), 0);
  await page.close();
});

test('with a decide token: countdown, Allow, the hook is allowed, the outcome live', async () => {
  const held = holdHook('team-ui-1', 'rm -rf build/');
  const [id] = await waitPending('team-ui-1', 1);
  const {page} = await openPage('#/runs/team-ui-1');
  const card = page.locator(`.approval[data-approval-id="${id}"]`);
  await card.waitFor({timeout: 30000});
  // the token, entered once, kept for the origin
  await page.fill('.approval-token-input', TOKEN);
  await page.click('.approval-token-form button[type="submit"]');
  await card.locator('button[data-decision="allow"]').waitFor({timeout: 10000});
  assert.equal(await page.evaluate(() => localStorage.getItem('adw.decideToken')), TOKEN);
  // a reload keeps it: the buttons are there at once
  await page.reload();
  await card.locator('button[data-decision="allow"]').waitFor({timeout: 30000});
  assert.equal(await card.locator('button[data-decision="deny"]').count(), 1);
  const countdown = card.locator('[data-field="countdown"]');
  const c1 = Number(await countdown.getAttribute('data-seconds-left'));
  assert.ok(c1 > 0 && c1 <= 300, `countdown ${c1}`);
  await page.waitForFunction(
    ([sel, before]) => Number(document.querySelector(sel).dataset.secondsLeft) < before,
    [`.approval[data-approval-id="${id}"] [data-field="countdown"]`, c1],
    {timeout: 10000},
  );
  await shot(page, 'approvals-pending-with-token');
  // the decision goes with the token in the Authorization header, never in the URL
  const posted = page.waitForRequest((r) => r.method() === 'POST');
  await card.locator('button[data-decision="allow"]').click();
  const req = await posted;
  assert.equal(new URL(req.url()).pathname, `/api/approvals/${id}`);
  assert.equal(new URL(req.url()).search, '');
  assert.equal((await req.allHeaders()).authorization, `Bearer ${TOKEN}`);
  assert.deepEqual(JSON.parse(req.postData()), {decision: 'allow'});
  const answer = await held;
  assert.equal(answer.status, 200);
  assert.equal(answer.body.hookSpecificOutput.permissionDecision, 'allow');
  await page.waitForSelector(`.approval[data-approval-id="${id}"][data-state="allowed"]`, {
    timeout: 30000,
  });
  assert.match(await card.locator('.approval-outcome').textContent(), /^Allowed by alice/);
  assert.equal(await card.locator('[data-field="label"]').textContent(), 'Allowed: ');
  assert.equal(await card.locator('button[data-decision]').count(), 0);
  await shot(page, 'approvals-allowed');
  assert.deepEqual(chrome.errors, []);
  await page.close();
});
