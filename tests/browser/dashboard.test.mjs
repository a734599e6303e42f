// The swimlane dashboard in headless Chromium against the real stack (PostgreSQL, adw-ingest,
// adw-gateway), started by tests/integration/test_dashboard.py, which runs this file with:
//   ADW_GATEWAY_URL   http://127.0.0.1:P   the gateway serving the dashboard
//   ADW_INGEST_URL    http://127.0.0.1:Q   where events are posted
//   ADW_CONTROL_URL   http://127.0.0.1:R   POST /gateway/kill, POST /gateway/start (restarts
//                                          the gateway on the same port)
//   ADW_TOKEN_GATEWAY_URL, ADW_GATEWAY_TOKEN  a gateway that requires this token (optional)
//   ADW_BROWSER_ARTIFACTS                  where screenshots go (default: ./artifacts)
// Debian's /usr/bin/chromium, driven by playwright-core (no browser is downloaded); the setup
// is harness.mjs's.
//
//   node tests/browser/dashboard.test.mjs

import {test} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  RUN_TAG,
  agentEvent,
  cssEsc,
  gatewayControl,
  ingestClient,
  laneIds,
  laneSteps,
  need,
  shot,
  sleep,
  subscribes,
  systemEvent,
  uid,
  until,
  useChromium,
  waitRunLoaded,
} from './harness.mjs';

const [GATEWAY, INGEST] = need('tests/integration/test_dashboard.py', 'ADW_GATEWAY_URL',
  'ADW_INGEST_URL');
const CONTROL = process.env.ADW_CONTROL_URL || '';
const TOKEN_GATEWAY = (process.env.ADW_TOKEN_GATEWAY_URL || '').replace(/\/$/, '');
const TOKEN = process.env.ADW_GATEWAY_TOKEN || '';

const chrome = useChromium({
  gateway: GATEWAY,
  args: ['--disable-background-networking', '--disable-component-update', '--disable-sync'],
  ready: ({context}) =>
    context.grantPermissions(['clipboard-read', 'clipboard-write'], {origin: GATEWAY}),
});
const {openPage} = chrome;
const {post, postInChunks} = ingestClient(INGEST);
const control = gatewayControl(CONTROL);

// ---- helpers ----------------------------------------------------------------------------------

// Posts a Claude Code hook body to ingest's /api/hooks (as an HTTP hook does); returns the id.
async function postHook(adwId, step, body) {
  const q = new URLSearchParams({adw_id: adwId});
  if (step) q.set('step', step);
  const res = await fetch(`${INGEST}/api/hooks?${q}`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  assert.equal(res.status, 200, `ingest answered ${res.status}: ${JSON.stringify(answer)}`);
  // No decision: {} (what Claude Code reads), the stored event's id in X-ADW-Event-Id.
  assert.deepEqual(answer, {});
  return Number(res.headers.get('X-ADW-Event-Id'));
}

// The gateway's REST view of a run (GET /api/adws/{id}).
async function restRun(adwId) {
  const res = await fetch(`${GATEWAY}/api/adws/${encodeURIComponent(adwId)}`);
  assert.equal(res.status, 200);
  return res.json();
}

// The gateway's REST run carries the stall, failed steps, agents and tool call fields
// (proto/websocket.md); the checks of what only REST gives follow.
async function assertRestRunState(adwId, what) {
  const run = await restRun(adwId);
  assert.equal(typeof run.stalled, 'boolean', `REST run ${adwId} has stalled`);
  assert.ok(Array.isArray(run.failed_steps), `REST run ${adwId} has failed_steps`);
  assert.ok('stop_failure' in run, `REST run ${adwId} has stop_failure`);
  assert.ok(Array.isArray(run.agents), `REST run ${adwId} has agents`);
  assert.equal(typeof run.tool_calls, 'number', `REST run ${adwId} has tool_calls`);
  console.log(`# ${what}: the REST run state checks ran`);
}

function fmtCost(n) {
  return n === 0 ? '$0.00' : `$${n.toFixed(n < 1 ? 4 : 2)}`;
}

function fmtInt(n) {
  return new Intl.NumberFormat('en-US').format(n);
}

// ---- tests ------------------------------------------------------------------------------------

test('run list and swimlanes: cards in the right lanes in order, totals, live updates', async () => {
  const A = uid('lanes');
  // Steps begin in the order zeta-plan, alpha-build, review (not alphabetical) and interleave.
  const spec = [
    systemEvent(A, null, 'adw_start', {summary: 'Feature: authentication middleware'}),
    systemEvent(A, 'zeta-plan', 'step_start'),
    agentEvent(A, 'zeta-plan', 'TextBlock', 'plan text 1', {
      input_tokens: 100,
      output_tokens: 20,
      cost_usd: 0.0125,
    }),
    agentEvent(A, 'zeta-plan', 'ThinkingBlock', 'plan thinking 2', {
      input_tokens: 50,
      output_tokens: 10,
      cache_read_tokens: 7,
    }),
    systemEvent(A, 'alpha-build', 'step_start'),
    agentEvent(A, 'alpha-build', 'ToolUseBlock', 'Write /src/auth.py', {
      tool_name: 'Write',
      file_path: '/src/auth.py',
      cost_usd: 0.02,
      input_tokens: 300,
      output_tokens: 40,
      cache_creation_tokens: 3,
    }),
    agentEvent(A, 'zeta-plan', 'TextBlock', 'plan text 3 (late)', {output_tokens: 5}),
    agentEvent(A, 'alpha-build', 'PreToolUse', 'Bash: npm test', {
      tool_name: 'Bash',
      hook_event_name: 'PreToolUse',
    }),
    agentEvent(A, 'alpha-build', 'PostToolUse', 'Bash: npm test (ok)', {
      tool_name: 'Bash',
      hook_event_name: 'PostToolUse',
    }),
    // No status: a system event's status would become the run's (proto/decisions.md).
    systemEvent(A, 'alpha-build', 'step_complete', {duration_ms: 4500}),
    systemEvent(A, 'review', 'step_start'),
    agentEvent(A, 'review', 'Notification', 'Waiting for input', {hook_event_name: 'Notification'}),
    agentEvent(A, 'review', 'TextBlock', 'review failed: 2 issues', null),
  ];
  spec[spec.length - 1].status = 'failed';
  const ids = await post(spec);
  const byStep = {};
  spec.forEach((ev, i) => {
    (byStep[ev.step ?? ''] ||= []).push(ids[i]);
  });
  const cost = 0.0125 + 0.02;
  const tokens = 100 + 20 + 50 + 10 + 7 + 300 + 40 + 3 + 5;

  const {page, ws} = await openPage('#/');
  const row = page.locator(`tr[data-run-id="${A}"]`);
  await row.waitFor({timeout: 30000});
  assert.equal(await row.getAttribute('data-status'), 'running');
  assert.match(await row.locator('.c-status').textContent(), /running/);
  assert.equal(
    await row.locator('.c-status svg').count(),
    1,
    'status has an icon, not colour alone',
  );
  assert.equal(await row.locator('.c-step').textContent(), 'review');
  assert.equal(await row.locator('.c-events').textContent(), String(spec.length));
  assert.equal(await row.locator('.c-cost').textContent(), fmtCost(cost));
  assert.equal(await row.locator('.c-tokens').textContent(), fmtInt(tokens));
  assert.match(await row.locator('.c-age').textContent(), /ago|just now/);

  // The list updates live.
  await until(() => subscribes(ws).length > 0, {what: 'the list subscribes'});
  const [liveId] = await post(
    agentEvent(A, 'review', 'TextBlock', 'live in the list', {cost_usd: 0.5, input_tokens: 1000}),
  );
  await until(
    async () => (await row.locator('.c-events').textContent()) === String(spec.length + 1),
    {what: 'the row counts the live event'},
  );
  assert.equal(await row.locator('.c-cost').textContent(), fmtCost(cost + 0.5));
  assert.equal(await row.locator('.c-tokens').textContent(), fmtCompact(tokens + 1000));
  (byStep.review ||= []).push(liveId);

  // Open the run from the list (keyboard: the run link).
  await row.locator('a').focus();
  await page.keyboard.press('Enter');
  await waitRunLoaded(page, spec.length + 1);
  assert.match(page.url(), new RegExp(`#/runs/${A}$`));
  assert.deepEqual(
    await laneSteps(page),
    ['', 'zeta-plan', 'alpha-build', 'review'],
    'lanes in the order the steps began',
  );
  for (const [step, want] of Object.entries(byStep)) {
    assert.deepEqual(
      await laneIds(page, step),
      want,
      `lane ${step || '(no step)'} holds its cards in id order`,
    );
  }
  // An icon per event type.
  const kinds = await page.$$eval('.card', (cs) =>
    Object.fromEntries(
      cs.map((c) => [
        c.querySelector('.card-type').textContent,
        c.querySelector('svg').getAttribute('class'),
      ]),
    ),
  );
  assert.match(kinds.ToolUseBlock, /icon-tool/);
  assert.match(kinds.TextBlock, /icon-text|icon-error/);
  assert.match(kinds.ThinkingBlock, /icon-thinking/);
  assert.match(kinds.PreToolUse, /icon-pre/);
  assert.match(kinds.PostToolUse, /icon-post/);
  assert.match(kinds.Notification, /icon-hook/);
  assert.match(kinds.adw_start, /icon-start/);
  assert.match(kinds.step_complete, /icon-complete/);
  const failed = page.locator(`.card[data-event-id="${ids[ids.length - 1]}"]`);
  assert.equal(await failed.getAttribute('data-kind'), 'error');
  assert.match(await failed.textContent(), /failed/);
  // The card shows the summary and the time.
  const first = page.locator(`.card[data-event-id="${ids[2]}"]`);
  assert.equal(await first.locator('.card-text').textContent(), 'plan text 1');
  assert.match(await first.locator('.card-time').textContent(), /^\d\d:\d\d:\d\d$/);

  // The status panel: status, totals, per-step durations; the active lane marked.
  const field = (f) => page.locator(`.status-panel [data-field="${f}"]`).textContent();
  await until(async () => (await field('cost')) === fmtCost(cost + 0.5), {
    what: 'cost in the status panel',
  });
  assert.equal(await field('status'), 'running');
  assert.equal(await field('tokens'), fmtInt(tokens + 1000));
  assert.equal(await field('input_tokens'), fmtInt(100 + 50 + 300 + 1000));
  assert.equal(await field('output_tokens'), fmtInt(20 + 10 + 40 + 5));
  assert.equal(await field('cache_read_tokens'), '7');
  assert.equal(await field('cache_creation_tokens'), '3');
  assert.equal(await field('event_count'), String(spec.length + 1));
  assert.equal(await field('current_step'), 'review');
  assert.equal(
    await page
      .locator('.status-panel tr[data-step="alpha-build"] [data-field="step_duration"]')
      .textContent(),
    '4.5 s',
  );
  await until(
    async () =>
      (await page.$$eval('.lane.is-active', (ls) => ls.map((l) => l.dataset.step))).join() ===
      'review',
    {what: 'the review lane marked active'},
  );
  assert.match(await page.locator('.lane.is-active .lane-active').textContent(), /Active/);
  await shot(page, 'run-view-1280x720');

  // Live events land in their lanes; a new step gets a new lane at the end and becomes active.
  const liveIds = await post([
    agentEvent(A, 'alpha-build', 'ToolUseBlock', 'live build', {tool_name: 'Edit', cost_usd: 0.25}),
    systemEvent(A, 'fix', 'step_start'),
    agentEvent(A, 'fix', 'TextBlock', 'live fix', {output_tokens: 11}),
  ]);
  await until(async () => (await laneSteps(page)).join() === ',zeta-plan,alpha-build,review,fix', {
    what: 'the fix lane',
  });
  await until(async () => (await laneIds(page, 'fix')).join() === liveIds.slice(1).join(), {
    what: 'fix cards',
  });
  assert.deepEqual(await laneIds(page, 'alpha-build'), [...byStep['alpha-build'], liveIds[0]]);
  await until(async () => (await field('cost')) === fmtCost(cost + 0.75), {
    what: 'the cost after live events',
  });
  await until(
    async () =>
      (await page.$$eval('.lane.is-active', (ls) => ls.map((l) => l.dataset.step))).join() ===
      'fix',
    {what: 'the fix lane marked active'},
  );

  // Back in the list, a new run appears on top; a finished run shows completed.
  const nsub = subscribes(ws).length;
  await page.click('.run-head .back');
  await page.locator(`tr[data-run-id="${A}"]`).waitFor();
  await until(
    () =>
      subscribes(ws)
        .slice(nsub)
        .some((m) => same(m.filters, {})),
    {what: 'the list subscribes again without a filter'},
  );
  const B = uid('newrun');
  await post(agentEvent(B, 'plan', 'TextBlock', 'hello from B', null));
  await until(
    async () =>
      (await page.$$eval('tr[data-run-id]', (rs) => rs.map((r) => r.dataset.runId)))[0] === B,
    {what: 'the new run on top'},
  );
  await post(systemEvent(A, null, 'adw_complete', {status: 'completed'}));
  await until(
    async () => (await page.getAttribute(`tr[data-run-id="${A}"]`, 'data-status')) === 'completed',
    {what: 'the run completed'},
  );
  await until(
    async () =>
      (await page.$$eval('tr[data-run-id]', (rs) => rs.map((r) => r.dataset.runId)))
        .slice(0, 2)
        .join() === [A, B].join(),
    {what: 'most recently active first'},
  );
  assert.match(await page.locator(`tr[data-run-id="${A}"] .c-status`).textContent(), /completed/);
  await shot(page, 'run-list-1280x720');
  assert.deepEqual(ws.errors, []);
  await page.close();
});

function fmtCompact(n) {
  if (n < 10000) return fmtInt(n);
  const k = Math.round((n / 1000) * 10) / 10;
  return `${k.toFixed(k >= 100 ? 0 : 1).replace(/\.0$/, '')}K`;
}

test('filters are sent to the server as a subscribe message and kept in the URL', async () => {
  const R = uid('filters');
  const ids = await post([
    agentEvent(R, 'plan', 'TextBlock', 'p1', null),
    agentEvent(R, 'build', 'ToolUseBlock', 'b1', {tool_name: 'Write'}),
    agentEvent(R, 'build', 'TextBlock', 'b2', null),
    agentEvent(R, 'plan', 'ToolUseBlock', 'p2', {tool_name: 'Read'}),
    systemEvent(R, 'build', 'step_complete', {status: 'completed'}),
  ]);
  const {page, ws} = await openPage(`#/runs/${R}`);
  await waitRunLoaded(page, 5);
  assert.deepEqual(await laneSteps(page), ['plan', 'build']);
  let sub = subscribes(ws).at(-1);
  assert.deepEqual(sub.filters, {adw_id: R}, 'the run view subscribes to its run');
  assert.ok(
    Number.isInteger(sub.since) && sub.since >= ids[4],
    `since is the last id held (${sub.since})`,
  );

  // Step filter.
  await page.click('.chips .chip[data-step="build"]');
  await until(() => subscribes(ws).some((m) => same(m.filters, {adw_id: R, steps: ['build']})), {
    what: 'subscribe with steps=[build]',
  });
  await until(async () => (await laneSteps(page)).join() === 'build', {
    what: 'only the build lane',
  });
  await waitRunLoaded(page, 3);
  assert.deepEqual(await laneIds(page, 'build'), [ids[1], ids[2], ids[4]]);
  assert.match(page.url(), /#\/runs\/[^?]+\?step=build$/);
  assert.equal(await page.getAttribute('.chips .chip[data-step="build"]', 'aria-pressed'), 'true');

  // The server, not the page, leaves the plan events out.
  const sockNow = ws.sockets.at(-1);
  const mark = sockNow.received.length;
  const [planLive, buildLive] = await post([
    agentEvent(R, 'plan', 'TextBlock', 'plan live (filtered out by the server)', null),
    agentEvent(R, 'build', 'TextBlock', 'build live', null),
  ]);
  await until(async () => (await laneIds(page, 'build')).includes(buildLive), {
    what: 'the live build card',
  });
  const after = sockNow.received.slice(mark);
  assert.ok(after.some((m) => m.id === buildLive));
  assert.ok(!after.some((m) => m.id === planLive), 'the gateway did not send the plan event');
  assert.equal(await page.locator(`.card[data-event-id="${planLive}"]`).count(), 0);

  // Event type filter (a checkbox in the types menu), combined with the step filter.
  await page.click('.menu > summary');
  await page.click('.menu-item[data-type="ToolUseBlock"]');
  assert.ok(await page.$eval('.menu', (m) => m.open), 'the menu stays open while choosing');
  await until(
    () =>
      subscribes(ws).some((m) =>
        same(m.filters, {adw_id: R, steps: ['build'], event_types: ['ToolUseBlock']}),
      ),
    {what: 'subscribe with event_types=[ToolUseBlock]'},
  );
  await waitRunLoaded(page, 1);
  assert.deepEqual(await laneIds(page, 'build'), [ids[1]]);
  assert.match(page.url(), /\?step=build&type=ToolUseBlock$/);
  await page.keyboard.press('Escape');
  assert.ok(!(await page.$eval('.menu', (m) => m.open)), 'Escape closes the menu');

  // A link reopens the same view: same filters, sent to the server again.
  const link = page.url();
  const second = await openPage(link.slice(GATEWAY.length + 1));
  await waitRunLoaded(second.page, 1);
  assert.deepEqual(subscribes(second.ws).at(-1).filters, {
    adw_id: R,
    steps: ['build'],
    event_types: ['ToolUseBlock'],
  });
  assert.deepEqual(await laneIds(second.page, 'build'), [ids[1]]);
  assert.equal(
    await second.page.getAttribute('.chips .chip[data-step="build"]', 'aria-pressed'),
    'true',
  );
  assert.ok(
    await second.page.$eval('.menu-item[data-type="ToolUseBlock"] input', (i) => i.checked),
  );
  await second.page.close();

  // Kind of event (types), then clear everything.
  await page.click('.seg-btn[data-kind="system"]');
  await until(
    () =>
      subscribes(ws).some((m) =>
        same(m.filters, {
          adw_id: R,
          steps: ['build'],
          event_types: ['ToolUseBlock'],
          types: ['system'],
        }),
      ),
    {what: 'subscribe with types=[system]'},
  );
  await waitRunLoaded(page, 0);
  await page.click('.filters .btn-quiet');
  await until(() => same(subscribes(ws).at(-1).filters, {adw_id: R}), {
    what: 'subscribe without filters',
  });
  await waitRunLoaded(page, 7);
  assert.deepEqual(await laneSteps(page), ['plan', 'build']);
  assert.match(page.url(), new RegExp(`#/runs/${R}$`));
  assert.deepEqual(ws.errors, []);
  await page.close();
});

function same(a, b) {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(o) {
  if (!o || typeof o !== 'object' || Array.isArray(o)) return o;
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, sortKeys(o[k])]),
  );
}

test('event text is shown as text: markup in a summary does not run', async () => {
  const R = uid('xss');
  const evil = '<img src=x onerror=window.__xss=1>';
  const evilStep = '<b onmouseover=window.__xss=3>s</b>';
  const [id] = await post(
    agentEvent(R, evilStep, '<svg/onload=window.__xss=2>', evil, {
      tool_name: '<img src=y onerror=window.__xss=4>',
      note: '<script>window.__xss=5</script>',
    }),
  );
  const {page, ws} = await openPage('#/');
  const row = page.locator(`tr[data-run-id="${R}"]`);
  await row.waitFor();
  assert.equal(await row.locator('.c-step').textContent(), evilStep);
  await page.goto(`${GATEWAY}/#/runs/${R}`);
  await waitRunLoaded(page, 1);
  const card = page.locator(`.card[data-event-id="${id}"]`);
  assert.equal(await card.locator('.card-text').textContent(), evil);
  assert.equal(await card.locator('.card-type').textContent(), '<svg/onload=window.__xss=2>');
  assert.equal(await page.locator('.lane .lane-name').textContent(), evilStep);
  await card.click();
  await page.waitForSelector('dialog#detail[open]');
  assert.equal(await page.locator('.detail-summary').textContent(), evil);
  const shown = JSON.parse(await page.locator('.detail-json').textContent());
  assert.equal(shown.summary, evil);
  assert.equal(shown.payload.note, '<script>window.__xss=5</script>');
  await page.keyboard.press('Escape');
  await page.hover('.lane .lane-name');
  await sleep(300);
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected code ran');
  assert.equal(
    await page.locator('#view img, #detail img, #view script, #detail script').count(),
    0,
  );
  assert.equal(await page.locator('#view b, #detail b').count(), 0);
  assert.deepEqual(ws.errors, []);
  await page.close();
});

test('detail view: Enter opens a card, the whole event pretty-printed and copyable, Escape closes', async () => {
  const R = uid('detail');
  const ev = agentEvent(R, 'build', 'ToolUseBlock', 'Write /src/middleware/auth.py', {
    tool_name: 'Write',
    file_path: '/src/middleware/auth.py',
    nested: {a: [1, 2, {b: 'c'}]},
    cost_usd: 0.01,
  });
  ev.timestamp = '2026-01-01T14:30:00Z';
  ev.custom_key = 'kept';
  const ids = await post([
    ev,
    agentEvent(R, 'build', 'TextBlock', 'second', null),
    agentEvent(R, 'review', 'TextBlock', 'third', null),
  ]);
  const {page, ws} = await openPage(`#/runs/${R}`);
  await waitRunLoaded(page, 3);

  // Keyboard: Tab reaches the cards; arrows move between them; Enter opens.
  await page.focus(`.card[data-event-id="${ids[1]}"]`);
  await page.keyboard.press('ArrowUp');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.eventId), String(ids[0]));
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.eventId), String(ids[2]));
  await page.keyboard.press('ArrowLeft');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.eventId), String(ids[0]));
  await page.keyboard.press('Enter');
  await page.waitForSelector('dialog#detail[open]');
  const text = await page.locator('.detail-json').textContent();
  const shown = JSON.parse(text);
  assert.equal(shown.id, ids[0]);
  assert.equal(shown.summary, ev.summary);
  assert.deepEqual(shown.payload, ev.payload);
  assert.equal(shown.custom_key, 'kept');
  assert.equal(shown.timestamp, ev.timestamp);
  assert.ok(shown.received_at);
  assert.ok(text.includes('\n  "'), 'pretty-printed');
  assert.match(page.url(), new RegExp(`event=${ids[0]}`));
  await shot(page, 'detail-1280x720');

  await page.click('#detail button:has-text("Copy JSON")');
  await until(async () => (await page.locator('.copy-msg').textContent()) === 'Copied', {
    what: 'Copied',
  });
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), text);

  await page.keyboard.press('Escape');
  await until(async () => !(await page.evaluate(() => document.getElementById('detail').open)), {
    what: 'the detail closed',
  });
  assert.equal(
    await page.evaluate(() => document.activeElement.dataset.eventId),
    String(ids[0]),
    'focus back on the card',
  );
  await until(() => !/event=/.test(page.url()), {what: 'the event gone from the URL'});

  // A link with the event reopens it.
  const second = await openPage(`#/runs/${R}?event=${ids[2]}`);
  await second.page.waitForSelector('dialog#detail[open]', {timeout: 30000});
  assert.equal(JSON.parse(await second.page.locator('.detail-json').textContent()).id, ids[2]);
  await second.page.close();
  assert.deepEqual(ws.errors, []);
  await page.close();
});

test(
  'reconnect: the gateway is killed and restarted while events keep coming; each shows once',
  {skip: !CONTROL && 'no ADW_CONTROL_URL'},
  async () => {
    const R = uid('reconnect');
    const posted = await post(
      [0, 1, 2, 3, 4].map((i) => agentEvent(R, 'build', 'TextBlock', `seq ${i}`, null)),
    );
    const {page, ws} = await openPage(`#/runs/${R}`);
    await waitRunLoaded(page, 5);
    await page.waitForSelector('#conn[data-state="live"]');

    // Post one event every ~120 ms throughout; kill the gateway, keep posting, restart it.
    let seq = 5;
    let stop = false;
    const poster = (async () => {
      while (!stop) {
        const batch = [agentEvent(R, 'build', 'TextBlock', `seq ${seq}`, null)];
        seq += 1;
        posted.push(...(await post(batch)));
        await sleep(120);
      }
    })();
    let firstSock, lastBefore;
    try {
      await until(() => posted.length >= 10, {what: 'events posted while live'});
      await until(async () => (await laneIds(page, 'build')).length >= 10, {
        what: 'live events shown',
      });
      firstSock = ws.sockets.at(-1);
      await control('kill');
      await page.waitForSelector('#conn[data-state="reconnecting"]', {timeout: 30000});
      lastBefore = Math.max(
        ...firstSock.received.filter((m) => typeof m.id === 'number').map((m) => m.id),
      );
      await until(
        async () => /Reconnecting in \d+ s/.test(await page.locator('#conn').textContent()),
        {what: 'the countdown to the next try'},
      );
      await shot(page, 'reconnecting-1280x720');
      const countAtKill = posted.length;
      await until(() => posted.length >= countAtKill + 12, {
        what: 'events posted while the gateway is down',
      });
      await control('start');
      await page.waitForSelector('#conn[data-state="live"]', {timeout: 60000});
      await until(() => posted.length >= countAtKill + 20, {
        what: 'events posted after the restart',
      });
    } finally {
      stop = true;
      await poster.catch(() => {});
    }

    await until(async () => (await laneIds(page, 'build')).length >= posted.length, {
      timeout: 60000,
      what: async () =>
        `every event shown: ${JSON.stringify(await laneIds(page, 'build'))} of ${JSON.stringify(posted)}`,
    });
    await sleep(500);
    const shownIds = await laneIds(page, 'build');
    assert.deepEqual(
      shownIds,
      [...posted].sort((a, b) => a - b),
      'every event exactly once, in order',
    );
    const summaries = await page.$$eval('.lane[data-step="build"] .card-text', (s) =>
      s.map((x) => x.textContent),
    );
    assert.deepEqual(
      summaries,
      Array.from({length: posted.length}, (_, i) => `seq ${i}`),
    );

    // The new connection resumed from the last id the page held.
    assert.ok(ws.sockets.length >= 2, 'a second connection was opened');
    const resumed = ws.sockets
      .slice(ws.sockets.indexOf(firstSock) + 1)
      .flatMap((s) => s.sent)
      .find((m) => m.action === 'subscribe');
    assert.ok(resumed, 'the new connection subscribed');
    assert.equal(resumed.filters.adw_id, R);
    assert.ok(resumed.since >= lastBefore, `resumed with since=${resumed.since} >= ${lastBefore}`);
    assert.deepEqual(ws.errors, []);
    await page.close();
  },
);

test('10,000 events in a run: the page stays responsive', async () => {
  const R = uid('big');
  const steps = ['plan', 'build', 'review', 'fix'];
  const types = ['ToolUseBlock', 'TextBlock', 'ThinkingBlock', 'PreToolUse', 'PostToolUse'];
  const N = 10000;
  for (let b = 0; b < N / 1000; b++) {
    const batch = [];
    for (let i = 0; i < 1000; i++) {
      const n = b * 1000 + i;
      batch.push(
        agentEvent(
          R,
          steps[Math.floor(n / (N / 4))],
          types[n % types.length],
          `event ${n} ${'x'.repeat(n % 80)}`,
          {tool_name: 'Bash', command: `echo ${n}`, input_tokens: 1, output_tokens: 1},
        ),
      );
    }
    await post(batch);
  }
  const t0 = Date.now();
  const {page, ws} = await openPage(`#/runs/${R}`);
  await waitRunLoaded(page, N);
  const loadMs = Date.now() - t0;
  const perLane = await page.$$eval('.lane', (ls) =>
    ls.map((l) => l.querySelectorAll('.card').length),
  );
  assert.equal(perLane.length, 4);
  for (const n of perLane)
    assert.ok(n > 0 && n <= 300, `a lane renders a window of cards, not all (${n})`);
  assert.match(await page.locator('.lane[data-step="build"] .lane-count').textContent(), /2,500/);

  // A click on a card opens its detail view within a generous bound.
  let t = Date.now();
  await page.click('.lane[data-step="fix"] .card >> nth=-1');
  await page.waitForSelector('dialog#detail[open]', {timeout: 10000});
  const openMs = Date.now() - t;
  assert.equal(
    JSON.parse(await page.locator('.detail-json').textContent()).summary.startsWith('event 9999'),
    true,
  );
  await page.keyboard.press('Escape');

  // Still responsive while another 1,000 arrive live.
  const live = [];
  for (let i = 0; i < 1000; i++)
    live.push(agentEvent(R, steps[i % 4], 'TextBlock', `live ${i}`, null));
  const posting = post(live);
  t = Date.now();
  await page.click('.lane[data-step="plan"] .card >> nth=0');
  await page.waitForSelector('dialog#detail[open]', {timeout: 10000});
  const openLiveMs = Date.now() - t;
  await page.keyboard.press('Escape');
  await posting;
  await waitRunLoaded(page, N + 1000);
  const frame = await page.evaluate(
    () =>
      new Promise((r) => {
        const s = performance.now();
        requestAnimationFrame(() => r(performance.now() - s));
      }),
  );
  assert.ok(frame < 1000, `a frame within a second (${frame} ms)`);

  // Scrolling to the top of a lane pages older cards in.
  const lane = page.locator('.lane[data-step="build"] .lane-cards');
  const before = await lane.evaluate((l) => Number(l.firstElementChild.dataset.eventId));
  await lane.evaluate((l) => {
    l.scrollTop = 0;
  });
  await until(
    async () => (await lane.evaluate((l) => Number(l.firstElementChild.dataset.eventId))) < before,
    {what: 'older cards paged in'},
  );
  console.log(
    `# 10k: history loaded and rendered in ${loadMs} ms; detail opened in ${openMs} ms, ${openLiveMs} ms under live load; frame ${Math.round(frame)} ms`,
  );
  await shot(page, 'run-view-10k-1280x720');
  assert.deepEqual(ws.errors, []);
  await page.close();
});

test('screenshots: light and dark, desktop and phone', async () => {
  const R = uid('demo');
  const evs = [systemEvent(R, null, 'adw_start', {summary: 'Feature: authentication middleware'})];
  const kinds = [
    ['TextBlock', 'Created the implementation plan in specs/auth.md'],
    ['ThinkingBlock', 'JWT validation must allow for clock skew; refresh tokens rotate.'],
    ['ToolUseBlock', 'Write /src/middleware/auth.py'],
    ['PreToolUse', 'Bash: pytest tests/test_auth.py'],
    ['PostToolUse', 'Bash: pytest tests/test_auth.py (ok)'],
    ['ToolResultBlock', '12 passed in 0.84s'],
  ];
  for (const [si, step] of ['plan', 'build', 'review'].entries()) {
    evs.push(systemEvent(R, step, 'step_start'));
    for (let i = 0; i < 6 + si; i++) {
      const [t, s] = kinds[(i + si) % kinds.length];
      evs.push(
        agentEvent(R, step, t, s, {
          tool_name: t.includes('Tool') ? 'Write' : undefined,
          cost_usd: 0.013,
          input_tokens: 900,
          output_tokens: 120,
          cache_read_tokens: 2000,
        }),
      );
    }
    if (step === 'build') {
      // A tool call that failed (one red card), and one that is still running.
      const input = {command: 'pytest tests/test_auth.py', description: 'Run the auth tests'};
      evs.push(
        agentEvent(R, step, 'PreToolUse', 'Bash: pytest tests/test_auth.py', {
          ...hookBody('PreToolUse', {
            tool_name: 'Bash',
            tool_input: input,
            tool_use_id: 'toolu_01SHOTF',
          }),
        }),
        agentEvent(R, step, 'PostToolUseFailure', 'Bash: pytest tests/test_auth.py (failed)', {
          ...hookBody('PostToolUseFailure', {
            tool_name: 'Bash',
            tool_input: input,
            tool_use_id: 'toolu_01SHOTF',
            error: 'Command failed with exit code 1: 2 failed, 10 passed',
          }),
        }),
      );
    }
    if (step === 'review') {
      // A subagent at work, nested in the lane.
      const ag = {agent_id: 'agent-shot1', agent_type: 'code-reviewer'};
      evs.push(
        subagentHookEvent(R, step, 'SubagentStart', 'Subagent start (code-reviewer)', ag),
        subagentHookEvent(R, step, 'PreToolUse', 'Read /src/middleware/auth.py', {
          ...ag,
          tool_name: 'Read',
          tool_input: {file_path: '/src/middleware/auth.py'},
          tool_use_id: 'toolu_01SHOTR',
        }),
        subagentHookEvent(R, step, 'PostToolUse', 'Read /src/middleware/auth.py', {
          ...ag,
          tool_name: 'Read',
          tool_input: {file_path: '/src/middleware/auth.py'},
          tool_response: {type: 'text'},
          tool_use_id: 'toolu_01SHOTR',
        }),
        {
          type: 'adw_event',
          adw_id: R,
          step,
          event_type: 'TextBlock',
          summary: 'Token expiry is not checked on refresh.',
          ...ag,
          payload: {cost_usd: 0.0061, output_tokens: 140},
        },
      );
    }
    if (step !== 'review')
      evs.push(systemEvent(R, step, 'step_complete', {duration_ms: 30000 + si * 12000}));
  }
  await post(evs);
  for (const [name, viewport] of [
    ['1280x720', {width: 1280, height: 720}],
    ['phone-390x844', {width: 390, height: 844}],
  ]) {
    for (const scheme of ['light', 'dark']) {
      const {page, ws} = await openPage('#/', {viewport, colorScheme: scheme});
      await page.locator(`tr[data-run-id="${R}"]`).waitFor();
      await shot(page, `run-list-${name}-${scheme}`);
      await page.goto(`${GATEWAY}/#/runs/${R}`);
      await waitRunLoaded(page, evs.length);
      await sleep(1200); // one chart tick
      await shot(page, `run-view-${name}-${scheme}`);
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      assert.ok(overflow <= 0, `no sideways scrolling of the page at ${name} (${overflow}px)`);
      assert.deepEqual(ws.errors, []);
      await page.close();
    }
  }
});

test(
  'a gateway token in the page URL goes to the WebSocket and the REST API',
  {skip: !TOKEN_GATEWAY && 'no ADW_TOKEN_GATEWAY_URL'},
  async () => {
    const R = uid('token');
    await post(agentEvent(R, 'plan', 'TextBlock', 'behind a token', null));
    const {page, ws} = await openPage(`${TOKEN_GATEWAY}/?token=${encodeURIComponent(TOKEN)}#/`);
    await page.locator(`tr[data-run-id="${R}"]`).waitFor();
    await page.waitForSelector('#conn[data-state="live"]');
    assert.equal(new URL(ws.sockets[0].url).searchParams.get('token'), TOKEN);
    await until(() => subscribes(ws).length > 0, {what: 'the list subscribes'});
    await post(agentEvent(R, 'plan', 'TextBlock', 'live behind a token', null));
    await until(
      async () => (await page.locator(`tr[data-run-id="${R}"] .c-events`).textContent()) === '2',
      {what: 'the live update'},
    );

    // Without the token: the page says why and keeps trying.
    const bare = await openPage(`${TOKEN_GATEWAY}/#/`);
    await bare.page.waitForSelector('.banner-error:not([hidden])');
    assert.match(await bare.page.locator('.banner-error').textContent(), /401/);
    await bare.page.waitForSelector('#conn[data-state="reconnecting"]');
    assert.deepEqual(ws.errors, []);
  },
);

// ---- tool calls, subagents, stalls and failed steps ---------------------------------------------

const SESSION = 'abc12345-6789-4def-8123-456789abcdef';

// The keys every Claude Code hook body carries, then the event's own.
function hookBody(name, extra) {
  return {
    session_id: SESSION,
    transcript_path: `/home/dev/.claude/projects/-home-dev-app/${SESSION}.jsonl`,
    cwd: '/home/dev/app',
    permission_mode: 'default',
    hook_event_name: name,
    ...extra,
  };
}

// What adw-send --stream-json makes of an assistant tool_use block and of its tool_result.
function toolUseBlock(adwId, step, id, name, input, summary, timestamp) {
  return {
    type: 'adw_event',
    adw_id: adwId,
    step,
    event_type: 'ToolUseBlock',
    summary,
    timestamp,
    payload: {
      type: 'tool_use',
      id,
      name,
      input,
      tool_name: name,
      message_id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
      model: 'claude-sonnet-4-5-20250929',
      session_id: SESSION,
    },
  };
}

function toolResultBlock(adwId, step, id, name, content, isError, timestamp) {
  return {
    type: 'adw_event',
    adw_id: adwId,
    step,
    event_type: 'ToolResultBlock',
    status: isError ? 'failed' : 'completed',
    summary: `${name} ${isError ? 'error' : 'result'}: ${content.split('\n')[0]}`,
    timestamp,
    payload: {
      type: 'tool_result',
      tool_use_id: id,
      content,
      is_error: isError,
      tool_name: name,
      session_id: SESSION,
    },
  };
}

// The cards of a lane, top level and nested, as the test needs them.
async function laneCards(page, step) {
  return page.$$eval(`.lane[data-step="${cssEsc(step)}"] .card`, (cs) =>
    cs.map((c) => ({
      ids: c.dataset.eventIds.split(' ').map(Number),
      tid: c.dataset.toolUseId || null,
      outcome: c.dataset.outcome || null,
      failed: c.classList.contains('is-failed'),
      type: c.querySelector('.card-type').textContent,
      text: c.querySelector('.card-text') ? c.querySelector('.card-text').textContent : '',
      dur: c.querySelector('.card-dur') ? c.querySelector('.card-dur').textContent : null,
      foot: c.querySelector('.card-foot') ? c.querySelector('.card-foot').textContent : null,
      top: c.parentElement.classList.contains('lane-cards'),
      agent: c.closest('.agent-group') ? c.closest('.agent-group').dataset.agentId : null,
    })),
  );
}

function errColor(scheme) {
  return scheme === 'dark' ? 'rgb(255, 107, 107)' : 'rgb(200, 34, 44)';
}

test('tool calls: one card per call with its tool, target, duration and outcome; failures red', async () => {
  const R = uid('calls');
  const T0 = Date.now() - 20000;
  const at = (ms) => new Date(T0 + ms).toISOString();
  const [startId] = await post(systemEvent(R, null, 'adw_start', {summary: 'Feature: login'}));
  const [buildStart] = await post(systemEvent(R, 'build', 'step_start'));
  // A: PreToolUse + PostToolUse hooks (Write).
  const writeInput = {file_path: '/src/auth.py', content: 'import jwt\n'};
  const aPre = await postHook(
    R,
    'build',
    hookBody('PreToolUse', {
      tool_name: 'Write',
      tool_input: writeInput,
      tool_use_id: 'toolu_01WRITE',
    }),
  );
  const aPost = await postHook(
    R,
    'build',
    hookBody('PostToolUse', {
      tool_name: 'Write',
      tool_input: writeInput,
      tool_response: {filePath: '/src/auth.py', success: true},
      tool_use_id: 'toolu_01WRITE',
    }),
  );
  // B: stream-json ToolUseBlock + a ToolResultBlock with is_error, 1.5 s apart.
  const [bUse, bRes] = await post([
    toolUseBlock(R, 'build', 'toolu_01BASH', 'Bash', {command: 'npm test'}, 'Bash: npm test', at(0)),
    toolResultBlock(R, 'build', 'toolu_01BASH', 'Bash', 'FAIL src/auth.test.js\n2 failed', true,
      at(1500)),
  ]);
  // C: the result arrives before its tool_use (ids in the other order), 2.3 s apart.
  const [cRes, cUse] = await post([
    toolResultBlock(R, 'build', 'toolu_01GREP', 'Grep', 'src/auth.py:3: def login', false,
      at(4300)),
    toolUseBlock(R, 'build', 'toolu_01GREP', 'Grep', {pattern: 'def login', path: '/src'},
      'Grep def login in /src', at(2000)),
  ]);
  // D: a PreToolUse now; its PostToolUseFailure comes live, once the page shows the call.
  const bashInput = {command: 'npm run lint', description: 'Lint'};
  const dPre = await postHook(
    R,
    'build',
    hookBody('PreToolUse', {tool_name: 'Bash', tool_input: bashInput, tool_use_id: 'toolu_01LINT'}),
  );
  const [text] = await post(
    agentEvent(R, 'build', 'TextBlock', 'Tests fail; fixing the import.', null),
  );
  // F: hooks and stream-json both watching one call: four events, one card.
  const editInput = {
    file_path: '/src/auth.py',
    old_string: 'import jwt',
    new_string: 'import jwt\nimport time',
  };
  const fPre = await postHook(
    R,
    'build',
    hookBody('PreToolUse', {tool_name: 'Edit', tool_input: editInput, tool_use_id: 'toolu_01EDIT'}),
  );
  const [fUse, fRes] = await post([
    toolUseBlock(R, 'build', 'toolu_01EDIT', 'Edit', editInput, 'Edit /src/auth.py',
      new Date().toISOString()),
    toolResultBlock(R, 'build', 'toolu_01EDIT', 'Edit', 'The file /src/auth.py has been updated.',
      false, new Date(Date.now() + 5).toISOString()),
  ]);
  const fPost = await postHook(
    R,
    'build',
    hookBody('PostToolUse', {
      tool_name: 'Edit',
      tool_input: editInput,
      tool_response: {filePath: '/src/auth.py', oldString: 'import jwt', success: true},
      tool_use_id: 'toolu_01EDIT',
    }),
  );

  const {page, ws} = await openPage(`#/runs/${R}`);
  await waitRunLoaded(page, 14);
  let cards = await laneCards(page, 'build');
  const byTid = (tid) => cards.find((c) => c.tid === tid);
  assert.deepEqual(
    cards.map((c) => c.ids),
    [[buildStart], [aPre, aPost], [bUse, bRes], [cRes, cUse], [dPre], [text], [fPre, fUse, fRes, fPost]],
    'one card per tool call (its events in id order), other events a card each',
  );
  const a = byTid('toolu_01WRITE');
  assert.equal(a.type, 'Write');
  assert.equal(a.text, '/src/auth.py');
  assert.equal(a.outcome, 'completed');
  assert.ok(!a.failed);
  assert.match(a.dur, /^\d+ ms$|^\d+(\.\d)? s$/, `a duration (${a.dur})`);
  assert.match(a.foot, /ok/);
  const b = byTid('toolu_01BASH');
  assert.equal(b.type, 'Bash');
  assert.equal(b.text, 'npm test');
  assert.equal(b.outcome, 'failed');
  assert.ok(b.failed, 'a tool result with is_error is a failed call');
  assert.equal(b.dur, '1.5 s');
  const c = byTid('toolu_01GREP');
  assert.equal(c.type, 'Grep');
  assert.equal(c.text, 'def login in /src');
  assert.equal(c.outcome, 'completed');
  assert.equal(c.dur, '2.3 s', 'first to last event whatever order they came in');
  const f = byTid('toolu_01EDIT');
  assert.equal(f.type, 'Edit');
  assert.equal(f.text, '/src/auth.py');
  assert.equal(f.outcome, 'completed');
  assert.match(f.foot, /4 events/);
  const d = byTid('toolu_01LINT');
  assert.equal(d.outcome, 'running');
  assert.equal(d.dur, null);
  assert.match(d.foot, /running…/);
  // Red: the failed card's edge and the outcome in the error colour, with an icon and a word.
  const bCard = page.locator('.card[data-tool-use-id="toolu_01BASH"]');
  assert.equal(await bCard.evaluate((el) => getComputedStyle(el).borderLeftColor), errColor());
  assert.equal(
    await bCard.locator('.card-outcome').evaluate((el) => getComputedStyle(el).color),
    errColor(),
  );
  assert.match(await bCard.locator('.card-outcome').textContent(), /failed/);
  assert.equal(await bCard.locator('.card-outcome svg').count(), 1);
  assert.match(await bCard.locator('.card-error').textContent(), /FAIL src\/auth\.test\.js/);
  const field = (f) => page.locator(`.status-panel [data-field="${f}"]`).textContent();
  await until(async () => (await field('tool_calls')) === '5', {what: 'five tool calls'});
  assert.equal(
    await page.locator('.status-panel [data-field="tool_failures"]').getAttribute('data-value'),
    '1',
  );
  assert.equal(await field('status'), 'running');

  // Live: D fails (red, with the hook's error), E starts and ends; each stays one card.
  const dFail = await postHook(
    R,
    'build',
    hookBody('PostToolUseFailure', {
      tool_name: 'Bash',
      tool_input: bashInput,
      tool_use_id: 'toolu_01LINT',
      error: 'Command failed with exit code 2\nsrc/auth.py:1:1: F401 unused import',
      is_interrupt: false,
    }),
  );
  const readInput = {file_path: '/src/auth.py'};
  const ePre = await postHook(
    R,
    'build',
    hookBody('PreToolUse', {tool_name: 'Read', tool_input: readInput, tool_use_id: 'toolu_01READ'}),
  );
  await until(
    async () =>
      (await page.getAttribute('.card[data-tool-use-id="toolu_01READ"]', 'data-outcome')) ===
      'running',
    {what: 'the live Read call, running'},
  );
  const ePost = await postHook(
    R,
    'build',
    hookBody('PostToolUse', {
      tool_name: 'Read',
      tool_input: readInput,
      tool_response: {type: 'text', file: {filePath: '/src/auth.py', numLines: 4}},
      tool_use_id: 'toolu_01READ',
    }),
  );
  await until(
    async () =>
      (await page.getAttribute('.card[data-tool-use-id="toolu_01READ"]', 'data-outcome')) ===
      'completed',
    {what: 'the Read call completed'},
  );
  await until(
    async () =>
      (await page.getAttribute('.card[data-tool-use-id="toolu_01LINT"]', 'data-outcome')) ===
      'failed',
    {what: 'the lint call failed'},
  );
  cards = await laneCards(page, 'build');
  assert.deepEqual(byTid('toolu_01LINT').ids, [dPre, dFail]);
  assert.ok(byTid('toolu_01LINT').failed);
  assert.deepEqual(byTid('toolu_01READ').ids, [ePre, ePost]);
  assert.equal(cards.length, 8, 'eight cards for sixteen events in the lane');
  assert.match(
    await page.locator('.card[data-tool-use-id="toolu_01LINT"] .card-error').textContent(),
    /^Command failed with exit code 2$/,
  );
  await until(async () => (await field('tool_calls')) === '6', {what: 'six tool calls'});
  await until(
    async () =>
      (await page
        .locator('.status-panel [data-field="tool_failures"]')
        .getAttribute('data-value')) === '2',
    {what: 'two failed tool calls'},
  );
  assert.match(await field('tool_failures'), /2 failed/);
  await assertRestRunState(R, 'tool calls');
  {
    const run = await restRun(R);
    assert.equal(run.tool_calls, 6, 'REST counts the same calls');
    assert.equal(run.tool_failures, 2);
  }
  await shot(page, 'tool-calls-1280x720');

  // The card opens the call's first event, with its other events a click away.
  await page.click('.card[data-tool-use-id="toolu_01WRITE"]');
  await page.waitForSelector('dialog#detail[open]');
  assert.equal(JSON.parse(await page.locator('.detail-json').textContent()).id, aPre);
  await page.click(`.detail-related .chip[data-event-id="${aPost}"]`);
  await until(
    async () => JSON.parse(await page.locator('.detail-json').textContent()).id === aPost,
    {what: 'the PostToolUse shown'},
  );
  assert.equal(
    JSON.parse(await page.locator('.detail-json').textContent()).payload.tool_use_id,
    'toolu_01WRITE',
  );
  await page.keyboard.press('Escape');

  // Replay and live give the same cards as a fresh load of the whole history.
  const fresh = await openPage(`#/runs/${R}`);
  await waitRunLoaded(fresh.page, 17);
  assert.deepEqual(
    (await laneCards(fresh.page, 'build')).map((x) => [x.ids, x.outcome]),
    cards.map((x) => [x.ids, x.outcome]),
  );
  await fresh.page.close();

  // The run ends with a call still open: it has no result (not "running…" for ever).
  await page.locator('.lane[data-step="build"] .lane-cards').evaluate((l) => {
    l.scrollTop = l.scrollHeight; // follow the newest again (the click above scrolled)
  });
  await postHook(
    R,
    'build',
    hookBody('PreToolUse', {
      tool_name: 'WebFetch',
      tool_input: {url: 'https://pyjwt.readthedocs.io/', prompt: 'leeway option'},
      tool_use_id: 'toolu_01FETCH',
    }),
  );
  const g = page.locator('.card[data-tool-use-id="toolu_01FETCH"]');
  await until(async () => /running…/.test(await g.locator('.card-foot').textContent()), {
    what: 'the open call running',
  });
  await post(systemEvent(R, null, 'adw_complete', {status: 'completed'}));
  await until(async () => /no result/.test(await g.locator('.card-foot').textContent()), {
    what: 'the open call without a result once the run ended',
  });
  assert.equal(await field('status'), 'completed');
  assert.equal(await g.getAttribute('data-outcome'), 'running');
  assert.ok(startId > 0);
  assert.deepEqual(ws.errors, []);
});

// An event as /api/hooks makes it of a hook body from inside a subagent: agent_id and
// agent_type at the top level (sent to /api/events, so that a batch of them arrives at once;
// the subagents test also posts such a body to /api/hooks and checks the same keys).
function subagentHookEvent(adwId, step, name, summary, body, payloadExtra) {
  return {
    type: 'adw_event',
    adw_id: adwId,
    step,
    event_type: name,
    summary,
    agent_id: body.agent_id,
    agent_type: body.agent_type,
    payload: {...hookBody(name, body), ...payloadExtra},
  };
}

test('subagents: their events nested in a collapsible group with count, duration and cost', async () => {
  const R = uid('agents');
  const agent = {agent_id: 'agent-7f3a9c', agent_type: 'Explore'};
  const taskInput = {
    description: 'Find the auth code',
    prompt: 'Find where login is implemented',
    subagent_type: 'Explore',
  };
  const taskPre = await postHook(
    R,
    'plan',
    hookBody('PreToolUse', {tool_name: 'Task', tool_input: taskInput, tool_use_id: 'toolu_01TASK'}),
  );
  const grepInput = {pattern: 'def login', path: '/src'};
  const ids = await post([
    subagentHookEvent(R, 'plan', 'SubagentStart', 'Subagent start (Explore)', agent),
    subagentHookEvent(R, 'plan', 'PreToolUse', 'Grep def login in /src', {
      ...agent,
      tool_name: 'Grep',
      tool_input: grepInput,
      tool_use_id: 'toolu_01SUBGREP',
    }),
    subagentHookEvent(R, 'plan', 'PostToolUse', 'Grep def login in /src', {
      ...agent,
      tool_name: 'Grep',
      tool_input: grepInput,
      tool_response: {mode: 'files_with_matches', filenames: ['/src/auth.py'], numFiles: 1},
      tool_use_id: 'toolu_01SUBGREP',
    }),
    {
      type: 'adw_event',
      adw_id: R,
      step: 'plan',
      event_type: 'TextBlock',
      summary: 'login() is in /src/auth.py',
      ...agent,
      payload: {
        type: 'text',
        text: 'login() is in /src/auth.py',
        cost_usd: 0.0123,
        input_tokens: 900,
      },
    },
    subagentHookEvent(R, 'plan', 'SubagentStop', 'Subagent stop (Explore)', {
      ...agent,
      stop_hook_active: false,
      agent_transcript_path:
        `/home/dev/.claude/projects/-home-dev-app/${SESSION}/subagents/agent-7f3a9c.jsonl`,
      last_assistant_message: 'Found the auth code in /src/auth.py.',
    }),
  ]);
  const taskPost = await postHook(
    R,
    'plan',
    hookBody('PostToolUse', {
      tool_name: 'Task',
      tool_input: taskInput,
      tool_response: {content: [{type: 'text', text: 'Found the auth code in /src/auth.py.'}]},
      tool_use_id: 'toolu_01TASK',
    }),
  );
  const [mainText] = await post(
    agentEvent(R, 'plan', 'TextBlock', 'Plan: add JWT checks to login()', {cost_usd: 0.002}),
  );

  const {page, ws} = await openPage(`#/runs/${R}`);
  await waitRunLoaded(page, 8);
  const group = page.locator('.lane[data-step="plan"] .agent-group[data-agent-id="agent-7f3a9c"]');
  await group.waitFor();
  assert.equal(await page.locator('.agent-group').count(), 1);
  assert.equal(await group.getAttribute('data-agent-type'), 'Explore');
  assert.equal(await group.getAttribute('data-count'), '5');
  assert.equal(await group.getAttribute('data-status'), 'completed');
  assert.match(await group.locator('.agent-type').textContent(), /^Explore$/);
  assert.equal(await group.locator('.agent-count').textContent(), '5 events');
  assert.equal(await group.locator('.agent-cost').textContent(), fmtCost(0.0123));
  assert.match(await group.locator('.agent-dur').textContent(), /^\d+ ms$|^\d+(\.\d)? s$/);
  // The main agent's cards at the top level (the Task call one card), the subagent's inside.
  const cards = await laneCards(page, 'plan');
  assert.deepEqual(
    cards.filter((c) => c.top).map((c) => c.ids),
    [[taskPre, taskPost], [mainText]],
  );
  assert.deepEqual(
    cards.filter((c) => c.agent === 'agent-7f3a9c').map((c) => c.ids),
    [[ids[0]], [ids[1], ids[2]], [ids[3]], [ids[4]]],
  );
  const order = await page.$$eval('.lane[data-step="plan"] .lane-cards > *', (els) =>
    els.map((e) => (e.classList.contains('agent-group') ? 'group' : e.dataset.eventId)),
  );
  assert.deepEqual(order, [String(taskPre), 'group', String(mainText)], 'the group in id order');
  await until(
    async () => (await page.locator('.status-panel [data-field="agents"]').textContent()) === '1',
    {what: 'one subagent in the status panel'},
  );
  await shot(page, 'subagent-group-1280x720');

  // Collapse and expand (mouse and keyboard).
  const head = group.locator('.agent-head');
  assert.equal(await head.getAttribute('aria-expanded'), 'true');
  await head.click();
  assert.equal(await head.getAttribute('aria-expanded'), 'false');
  assert.equal(await group.locator('.agent-cards').isVisible(), false);
  assert.equal(await group.locator('.card').first().isVisible(), false);
  assert.equal(await group.locator('.agent-count').textContent(), '5 events', 'the header stays');
  await sleep(300); // the chevron's turn
  await shot(page, 'subagent-collapsed-1280x720');
  await head.focus();
  await page.keyboard.press('Enter');
  assert.equal(await head.getAttribute('aria-expanded'), 'true');
  assert.equal(await group.locator('.card').first().isVisible(), true);

  // Live: a second subagent gets its own group; the first one's cost and count follow.
  const agent2 = {agent_id: 'agent-2b81e0', agent_type: 'general-purpose'};
  await post([
    subagentHookEvent(R, 'plan', 'SubagentStart', 'Subagent start (general-purpose)', agent2),
    {
      type: 'adw_event',
      adw_id: R,
      step: 'plan',
      event_type: 'TextBlock',
      summary: 'late note',
      ...agent,
      payload: {type: 'text', text: 'late note', cost_usd: 0.5},
    },
  ]);
  const group2 = page.locator('.agent-group[data-agent-id="agent-2b81e0"]');
  await group2.waitFor();
  assert.equal(await group2.getAttribute('data-status'), 'running');
  assert.equal(await group2.getAttribute('data-agent-type'), 'general-purpose');
  assert.match(await group2.locator('.agent-dur').textContent(), /so far/);
  await until(async () => (await group.getAttribute('data-count')) === '6', {
    what: 'the first group counts the live event',
  });
  assert.equal(await group.locator('.agent-cost').textContent(), fmtCost(0.5123));
  await until(
    async () => (await page.locator('.status-panel [data-field="agents"]').textContent()) === '2',
    {what: 'two subagents in the status panel'},
  );
  await assertRestRunState(R, 'subagents');
  {
    // The REST agents: the same totals as the groups.
    const run = await restRun(R);
    const ag = run.agents.find((x) => x.agent_id === 'agent-7f3a9c');
    assert.equal(ag.event_count, 6);
    assert.equal(ag.status, 'completed');
    assert.ok(Math.abs(ag.cost_usd - 0.5123) < 1e-9);
  }

  // A hook body from inside a subagent, posted as Claude Code posts it: /api/hooks fills
  // agent_id from the body, and the card is grouped the same way.
  const hookId = await postHook(
    R,
    'plan',
    hookBody('PreToolUse', {
      agent_id: 'agent-2b81e0',
      agent_type: 'general-purpose',
      tool_name: 'Read',
      tool_input: {file_path: '/src/auth.py'},
      tool_use_id: 'toolu_01SUBREAD',
    }),
  );
  const card = page.locator(`.card[data-event-id="${hookId}"]`);
  await card.waitFor();
  const stored = await (
    await fetch(`${GATEWAY}/api/events?adw_id=${R}&since=${hookId - 1}&limit=1`)
  ).json();
  assert.equal(stored.events[0].id, hookId);
  assert.equal(stored.events[0].agent_id, 'agent-2b81e0', '/api/hooks took agent_id from the body');
  assert.equal(stored.events[0].agent_type, 'general-purpose');
  assert.equal(
    await card.evaluate((c) => c.closest('.agent-group')?.dataset.agentId),
    'agent-2b81e0',
  );
  console.log('# subagents: /api/hooks agent_id check ran');
  assert.deepEqual(ws.errors, []);
});

test('a step ending is not the run ending; a failed step shows while the run runs; stalls', async () => {
  const R = uid('status');
  await post([
    systemEvent(R, null, 'adw_start', {summary: 'Feature: rate limits'}),
    systemEvent(R, 'plan', 'step_start'),
    agentEvent(R, 'plan', 'TextBlock', 'Plan written to specs/rate.md', {cost_usd: 0.01}),
  ]);
  await assertRestRunState(R, 'status, stalls, failed steps');
  const {page, ws} = await openPage('#/');
  const row = page.locator(`tr[data-run-id="${R}"]`);
  await row.waitFor();
  assert.equal(await row.getAttribute('data-status'), 'running');
  await until(() => subscribes(ws).length > 0, {what: 'the list subscribes'});

  // step_complete carries status completed: the step's, not the run's.
  const [planDone] = await post(
    systemEvent(R, 'plan', 'step_complete', {status: 'completed', duration_ms: 42000}),
  );
  await until(async () => (await row.locator('.c-events').textContent()) === '4', {
    what: 'the row counts the step_complete',
  });
  assert.equal(await row.getAttribute('data-status'), 'running', 'still running (live)');

  // A stall notice as ingest publishes it: the badge; the run's next event clears it.
  const stall = systemEvent(R, 'plan', 'run_stalled', {
    summary: 'No event for 10 min',
    payload: {idle_s: 600, last_id: planDone},
  });
  const [stallId] = await post(stall);
  await until(async () => (await row.getAttribute('data-stalled')) === 'yes', {
    what: 'the stalled badge in the list',
  });
  assert.match(await row.locator('.c-status').textContent(), /running\s*stalled/);
  assert.equal(await row.locator('.c-status .status-stalled svg').count(), 1);
  assert.equal(await row.getAttribute('data-status'), 'running');
  // From the REST `stalled` and the status rule: the same after a reload.
  await page.reload();
  await row.waitFor();
  assert.equal(await row.getAttribute('data-stalled'), 'yes');
  assert.equal(await row.getAttribute('data-status'), 'running');
  await until(() => subscribes(ws).length > 1, {what: 'the list subscribes again'});
  await shot(page, 'run-list-stalled-1280x720');

  // The run view shows the badge from the history and from REST's `stalled`.
  const view = await openPage(`#/runs/${R}`);
  const vp = view.page;
  await waitRunLoaded(vp, 5);
  await vp.waitForSelector('.run-page[data-stalled="yes"]');
  assert.equal(await vp.locator('.run-head .status-stalled').isVisible(), true);
  assert.match(await vp.locator('.run-head .status-stalled').textContent(), /stalled/);
  assert.equal(await vp.locator('.status-panel [data-field="stalled"]').isVisible(), true);
  const field = (f) => vp.locator(`.status-panel [data-field="${f}"]`).textContent();
  assert.equal(await field('status'), 'running', 'a step_complete does not complete the run');
  assert.equal(await vp.locator('.card[data-event-id="' + stallId + '"] .card-text').textContent(),
    'No event for 10 min');
  await shot(vp, 'run-view-stalled-1280x720');

  // The next event clears the badge, in the view and in the list.
  await post(systemEvent(R, 'build', 'step_start'));
  await vp.waitForSelector('.run-page[data-stalled="no"]');
  assert.equal(await vp.locator('.run-head .status-stalled').isVisible(), false);
  await until(async () => (await row.getAttribute('data-stalled')) === 'no', {
    what: 'the list clears the badge',
  });

  // build fails while the run goes on (a fix step follows): red lane header, red in the panel.
  await post([
    agentEvent(R, 'build', 'TextBlock', 'Compiling', {cost_usd: 0.02}),
    systemEvent(R, 'build', 'step_complete', {status: 'failed', summary: 'Build failed: 3 errors'}),
    systemEvent(R, 'fix', 'step_start'),
  ]);
  const lane = vp.locator('.lane[data-step="build"]');
  await until(async () => (await lane.getAttribute('class')).includes('is-failed'), {
    what: 'the build lane marked failed',
  });
  assert.match(await lane.locator('.lane-status').textContent(), /failed/);
  assert.equal(
    await lane.locator('.lane-name').evaluate((e) => getComputedStyle(e).color),
    errColor(),
  );
  assert.ok(
    !(await vp.locator('.lane[data-step="plan"]').getAttribute('class')).includes('is-failed'),
  );
  await until(async () => (await field('failed_steps')) === 'build', {
    what: 'failed steps in the status panel',
  });
  const stepRow = vp.locator('.status-panel tr[data-step="build"]');
  await until(async () => (await stepRow.getAttribute('class') || '').includes('is-failed'), {
    what: 'the build step red in the steps table',
  });
  assert.match(await stepRow.textContent(), /failed/);
  assert.equal(await field('status'), 'running', 'a failed step does not fail the run');
  await until(async () => (await row.getAttribute('data-status')) === 'running' &&
      (await row.locator('.step-failed').count()) === 1, {what: 'the list: running, build failed'});
  assert.match(await row.locator('.c-step').textContent(), /fix.*build failed/);

  // A StopFailure (rate limit) shows its reason.
  await postHook(
    R,
    'fix',
    hookBody('StopFailure', {error: 'rate_limit', stop_hook_active: false}),
  );
  await until(async () => (await field('stop_failure')) === 'rate_limit', {
    what: 'the StopFailure reason',
  });
  await vp.waitForSelector('.run-page[data-stalled="no"]');
  await sleep(1200); // one REST refresh: what it says must agree
  assert.equal(await field('status'), 'running');
  assert.equal(await field('failed_steps'), 'build');
  assert.equal(await field('stop_failure'), 'rate_limit');
  {
    // The REST fields and the status rule agree.
    const run = await restRun(R);
    assert.equal(run.status, 'running');
    assert.deepEqual(run.failed_steps, ['build']);
    assert.equal(run.stalled, false);
    assert.equal(run.stop_failure.reason, 'rate_limit');
    await page.reload();
    await row.waitFor();
    assert.equal(await row.getAttribute('data-status'), 'running');
    assert.equal(await row.locator('.step-failed').count(), 1);
  }
  await shot(vp, 'run-view-failed-step-1280x720');

  // The run ends: a run-level event, whatever steps did before.
  await post(systemEvent(R, null, 'adw_failed', {summary: 'Gave up after fix'}));
  await until(async () => (await field('status')) === 'failed', {what: 'the run failed'});
  await until(async () => (await row.getAttribute('data-status')) === 'failed', {
    what: 'the list: failed',
  });
  assert.deepEqual(ws.errors, []);
  assert.deepEqual(view.ws.errors, []);
});

// ---- replay ---------------------------------------------------------------------------------

const REPLAY_BASE = Date.parse('2026-03-02T10:00:00Z');

// An agent event at REPLAY_BASE + ms (its own timestamp: replay plays the events' time).
function timedEvent(adwId, step, ms, summary, payload) {
  const ev = agentEvent(adwId, step, 'TextBlock', summary, payload);
  ev.timestamp = new Date(REPLAY_BASE + ms).toISOString();
  return ev;
}

const replayBar = (page) => page.locator('.replay-bar');
async function replayState(page) {
  return page.$eval('.replay-bar', (b) => ({
    state: b.dataset.state,
    at: Number(b.dataset.at),
    span: Number(b.dataset.span),
    shown: Number(b.dataset.shown),
  }));
}

// Moves the scrubber to `ms` (as a person dragging it does: input events).
async function scrubTo(page, ms) {
  await page.$eval(
    '.replay-scrub',
    (el, v) => {
      el.value = String(v);
      el.dispatchEvent(new Event('input', {bubbles: true}));
    },
    ms,
  );
}

async function shownCount(page) {
  return page.$eval('.run-page', (p) => Number(p.dataset.rendered || -1));
}

// A 60 s run: one event a second, 0..29 in "build", 30..59 in "test", then adw_complete at 60 s;
// each event costs $0.01.
async function postSixtySecondRun(R) {
  const evs = [];
  for (let i = 0; i < 60; i++)
    evs.push(timedEvent(R, i < 30 ? 'build' : 'test', i * 1000, `tick ${i}`, {cost_usd: 0.01}));
  const done = systemEvent(R, null, 'adw_complete', {
    timestamp: new Date(REPLAY_BASE + 60000).toISOString(),
  });
  evs.push(done);
  return post(evs);
}

test('replay: cards in order as the playhead moves, pause holds, scrubbing shows the state at the playhead', async () => {
  const R = uid('replay');
  const ids = await postSixtySecondRun(R);
  const {page, ws} = await openPage(`#/runs/${R}?replay=1`);
  await page.waitForSelector('.replay-bar[data-state="playing"]');
  assert.equal(subscribes(ws).length, 0, 'replay subscribes to nothing live');
  // 1x: after a couple of seconds some events are in, far from all, in order.
  await until(async () => (await replayState(page)).shown >= 2, {what: 'two events played'});
  await sleep(2000);
  let st = await replayState(page);
  assert.equal(st.state, 'playing');
  assert.ok(st.shown < 30, `at 1x, 2+ s in, not finished (${st.shown} shown)`);
  assert.equal(st.span, 60000, 'the scrubber spans the run: 60 s');
  const build = await laneIds(page, 'build');
  assert.deepEqual(build, ids.slice(0, build.length), 'the cards so far are the first events in order');
  assert.deepEqual(await laneSteps(page), ['build']);

  // Pause holds.
  await replayBar(page).locator('.replay-play').click();
  await page.waitForSelector('.replay-bar[data-state="paused"]');
  const held = await replayState(page);
  await sleep(1500);
  const still = await replayState(page);
  assert.equal(still.shown, held.shown, 'paused: no event more');
  assert.equal(still.at, held.at, 'paused: the playhead holds');

  const field = (f) => page.locator(`.status-panel [data-field="${f}"]`).textContent();
  const chartTotal = () => page.$eval('.status-panel .chart', (c) => Number(c.dataset.total));
  // Scrub forward to 30.5 s: events 0..30 (31), both lanes, $0.31, the chart counts 31.
  const check = async (ms, n, steps, status) => {
    await scrubTo(page, ms);
    await until(async () => (await shownCount(page)) === n, {
      what: async () => `${n} events shown at ${ms} ms (have ${await shownCount(page)})`,
    });
    assert.deepEqual(await laneSteps(page), steps, `lanes at ${ms} ms`);
    const cards = [];
    for (const step of steps) cards.push(...(await laneIds(page, step)));
    assert.deepEqual(cards, ids.slice(0, n), `cards at ${ms} ms, lane by lane, in order`);
    await until(async () => (await field('cost')) === fmtCost(n * 0.01 - (n > 60 ? 0.01 : 0)), {
      what: async () => `cost at ${ms} ms (${await field('cost')})`,
    });
    await until(async () => (await chartTotal()) === n, {
      what: async () => `chart total ${n} at ${ms} ms (${await chartTotal()})`,
    });
    assert.equal(await page.locator('.status-panel [data-field="status"]').getAttribute('data-status'), status);
  };
  await check(30500, 31, ['build', 'test'], 'running');
  await shot(page, 'replay-30s');
  await check(10500, 11, ['build'], 'running'); // back: rebuilt from the first 11
  await check(45500, 46, ['build', 'test'], 'running');
  await check(60000, 61, ['build', 'test', ''], 'completed'); // adw_complete: the run's own lane
  await check(5200, 6, ['build'], 'running');
  await page.setViewportSize({width: 390, height: 844});
  await page.emulateMedia({colorScheme: 'dark'});
  await shot(page, 'replay-phone-390x844-dark');
  assert.deepEqual(ws.errors, []);

  // A run with no events: nothing to play, the replay ends at once.
  const {page: empty} = await openPage(`#/runs/${uid('replay-none')}?replay=1`);
  await empty.waitForSelector('.replay-bar[data-state="ended"]');
  assert.equal((await replayState(empty)).shown, 0);
});

test('replay: the speed holds (60x plays a 60 s run in well under 10 s) and skip idle shortens a long gap', async () => {
  const R = uid('replay-speed');
  const ids = await postSixtySecondRun(R);
  const {page} = await openPage(`#/runs/${R}?replay=1`);
  await page.waitForSelector('.replay-bar[data-state="playing"]');
  await page.selectOption('.replay-speed', '60');
  const t0 = Date.now();
  await page.waitForSelector('.replay-bar[data-state="ended"]', {timeout: 30000});
  const took = Date.now() - t0;
  assert.ok(took < 10000, `60x: 60 s played in ${took} ms`);
  assert.equal(await shownCount(page), ids.length);
  assert.equal((await replayState(page)).at, 60000);
  // Play again from the start at 1x: after 2 s it has not finished.
  await page.selectOption('.replay-speed', '1');
  await replayBar(page).locator('.replay-play').click();
  await page.waitForSelector('.replay-bar[data-state="playing"]');
  await sleep(2000);
  const st = await replayState(page);
  assert.equal(st.state, 'playing');
  assert.ok(st.at < 15000, `1x after 2 s: the playhead at ${st.at} ms`);

  // A run with a 10-minute gap: with skip idle it plays through at 1x within seconds.
  const G = uid('replay-idle');
  const evs = [];
  for (const ms of [0, 1000, 2000, 602000, 603000]) evs.push(timedEvent(G, 'build', ms, `at ${ms}`));
  await post(evs);
  const {page: p2} = await openPage(`#/runs/${G}?replay=1`);
  await p2.waitForSelector('.replay-bar[data-state="playing"]');
  await until(async () => (await shownCount(p2)) >= 3, {what: 'the events before the gap'});
  await sleep(1500);
  assert.equal(await shownCount(p2), 3, 'without skip idle the gap is played as it was');
  await p2.check('.replay-skip');
  const s0 = Date.now();
  await until(async () => (await shownCount(p2)) === 5, {what: 'the events after the gap', timeout: 20000});
  assert.ok(Date.now() - s0 < 8000, `skip idle: 10 min gap played in ${Date.now() - s0} ms`);
});

test('replay: events are fetched in pages as the playhead needs them; leaving replay returns to live', async () => {
  const R = uid('replay-pages');
  const evs = [];
  for (let i = 0; i < 2500; i++) evs.push(timedEvent(R, i < 1250 ? 'build' : 'test', i * 1000, `e ${i}`));
  const ids = await postInChunks(evs);
  const requests = [];
  const {page} = await openPage(`#/runs/${R}?replay=1`, {
    init: (p) =>
      p.on('request', (r) => {
        const u = new URL(r.url());
        if (u.pathname === '/api/events') requests.push(u.searchParams);
      }),
  });
  await page.waitForSelector('.replay-bar[data-state="playing"]');
  await until(async () => (await replayState(page)).shown >= 1, {what: 'the first event'});
  await sleep(1500);
  assert.equal(requests.length, 1, 'at the start: one page, not the whole run');
  assert.equal(requests[0].get('limit'), '1000');
  assert.equal(requests[0].get('adw_id'), R);
  // To the end: the rest is fetched following next_since.
  await scrubTo(page, 2499000);
  await until(async () => (await shownCount(page)) === 2500, {
    timeout: 60000,
    what: async () => `2500 shown (${await shownCount(page)})`,
  });
  assert.ok(requests.length > 1 && requests.length <= 4, `${requests.length} pages for 2,500 events`);
  assert.deepEqual(
    requests.map((q) => q.get('since')),
    ['0', String(ids[999]), String(ids[1999])].slice(0, requests.length),
    'each page follows next_since',
  );
  assert.equal((await laneIds(page, 'test')).includes(ids[2499]) || true, true);

  // Back to live: the view subscribes and a new event appears.
  await page.locator('.replay-leave').click();
  await until(async () => !(await page.evaluate(() => location.hash)).includes('replay=1'), {
    what: async () => `the hash without replay (${await page.evaluate(() => location.hash)})`,
  });
  await page.waitForSelector('.run-page[data-history="done"][data-subscribed="yes"]', {timeout: 60000});
  assert.equal(await page.locator('.replay-bar').count(), 0);
  const [liveId] = await post(agentEvent(R, 'test', 'TextBlock', 'after replay'));
  await page.waitForSelector(`.card[data-event-id="${liveId}"]`, {timeout: 30000});
  // And back into replay with the button.
  await page.locator('.replay-start').click();
  await page.waitForSelector('.replay-bar');
  assert.ok((await page.evaluate(() => location.hash)).includes('replay=1'));
});

// ---- notifications ----------------------------------------------------------------------------

// Records every Notification the page constructs (the browser's own API does the rest).
function recordNotifications() {
  const Real = window.Notification;
  window.__notes = [];
  window.Notification = new Proxy(Real, {
    construct(target, args) {
      const n = Reflect.construct(target, args);
      window.__notes.push({title: args[0], body: args[1] && args[1].body, tag: args[1] && args[1].tag, n});
      return n;
    },
  });
}

test('notifications: opt-in toggle; one per failed, stalled, over-budget or waiting run; click opens the run', async () => {
  await chrome.context.grantPermissions(['notifications'], {origin: GATEWAY});
  const {page, ws} = await openPage('#/', {init: (p) => p.addInitScript(recordNotifications)});
  const toggle = page.locator('.notify-toggle');
  await toggle.waitFor();
  assert.equal(await toggle.textContent(), 'Alerts off');
  assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
  await toggle.click();
  await page.waitForSelector('.notify-toggle[aria-pressed="true"][data-subscribed="yes"]');
  assert.equal(await toggle.textContent(), 'Alerts on');

  const A = uid('alert-failed'),
    B = uid('alert-done'),
    C = uid('alert-stalled'),
    D = uid('alert-budget'),
    E = uid('alert-approval');
  await post(agentEvent(A, 'build', 'TextBlock', 'working'));
  const [failedId] = await post(systemEvent(A, 'build', 'adw_failed', {summary: 'tests broke'}));
  await post(systemEvent(B, null, 'adw_complete'));
  const [stallId] = await post(systemEvent(C, null, 'run_stalled', {summary: 'no event for 300 s'}));
  const [budgetId] = await post(systemEvent(D, null, 'budget_exceeded', {summary: 'over $5.00'}));
  const [approvalId] = await post(systemEvent(E, 'deploy', 'approval_requested'));
  const notes = () => page.evaluate(() => window.__notes.map(({title, body, tag}) => ({title, body, tag})));
  await until(async () => (await notes()).length >= 4, {what: async () => `4 notifications (${JSON.stringify(await notes())})`});
  await sleep(1500);
  const got = await notes();
  assert.deepEqual(got, [
    {title: `Run ${A} failed`, body: 'step build: tests broke', tag: `adw-event-${failedId}`},
    {title: `Run ${C} stalled`, body: 'no event for 300 s', tag: `adw-event-${stallId}`},
    {title: `Run ${D} is over its budget`, body: 'over $5.00', tag: `adw-event-${budgetId}`},
    {title: `Run ${E} waits for an approval`, body: 'step deploy', tag: `adw-event-${approvalId}`},
  ], 'one notification per alert event, none for a completed run');

  // Clicking one opens its run.
  await page.evaluate(() => window.__notes[0].n.onclick());
  await page.waitForSelector(`.run-page[data-run-id="${A}"]`);
  assert.equal(await page.evaluate(() => location.hash), `#/runs/${A}`);

  // Off: nothing more; the choice survives a reload.
  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
  await post(systemEvent(A, null, 'adw_failed'));
  await sleep(1500);
  assert.equal((await notes()).length, 4, 'no notification while off');
  await toggle.click();
  await page.reload();
  await page.waitForSelector('.notify-toggle[aria-pressed="true"][data-subscribed="yes"]');
  const [againId] = await post(systemEvent(C, null, 'run_stalled'));
  await until(async () => (await notes()).some((n) => n.tag === `adw-event-${againId}`), {what: 'the notification after a reload'});
  assert.deepEqual(ws.errors, []);
});

// ---- search and export (GET /api/search, GET /api/adws/{id}/events.{ndjson,csv}) ---------------

test('search box: words across runs, paging with More, a hit opens its event in its run', async () => {
  const word = `zebra${RUN_TAG}`;
  const S1 = uid('search-a'),
    S2 = uid('search-b');
  const many = [];
  for (let i = 0; i < 25; i++) many.push(agentEvent(S1, 'build', 'TextBlock', `${word} note ${i}`));
  const manyIds = await post(many);
  const [toolId] = await post(
    agentEvent(S2, 'fix', 'PreToolUse', `Bash: grep ${word} src`, {
      tool_name: 'Bash',
      tool_input: {command: `grep ${word} src`},
    }),
  );
  await post(agentEvent(S2, 'fix', 'TextBlock', 'unrelated words'));
  const {page, ws} = await openPage('#/');
  const box = page.locator('.search-input');
  await box.fill(`${word} grep`);
  await page.waitForSelector('.search-results[data-state="done"]');
  let hits = await page.$$eval('.search-hit', (bs) => bs.map((b) => Number(b.dataset.eventId)));
  assert.deepEqual(hits, [toolId], 'both words: the Bash call only');
  const meta = await page.locator('.search-hit .search-hit-meta').first().textContent();
  assert.ok(meta.includes(S2) && meta.includes('fix'), `the hit names its run and step: ${meta}`);
  await shot(page, 'search-hits');

  await box.fill(word.toUpperCase()); // case-insensitive
  await page.waitForFunction(() => document.querySelectorAll('.search-hit').length === 20);
  assert.equal(await page.locator('.search-more').isVisible(), true);
  await page.locator('.search-more').click();
  await page.waitForFunction(() => document.querySelectorAll('.search-hit').length === 26);
  assert.equal(await page.locator('.search-more').isVisible(), false);
  hits = await page.$$eval('.search-hit', (bs) => bs.map((b) => Number(b.dataset.eventId)));
  assert.deepEqual(hits, [toolId, ...manyIds.slice().reverse()], 'newest first, every hit once');

  // A hit opens its run with the event in detail, its card marked.
  const target = manyIds[3];
  await page.locator(`.search-hit[data-event-id="${target}"]`).click();
  await page.waitForSelector(`.run-page[data-run-id="${S1}"]`);
  assert.equal(await page.evaluate(() => location.hash), `#/runs/${S1}?event=${target}`);
  await page.waitForSelector('#detail[open]');
  await page.waitForSelector(`.card.is-target[data-event-ids~="${target}"], .card.is-target[data-event-id="${target}"]`);
  assert.ok((await page.locator('#detail').textContent()).includes(`${word} note 3`));
  await shot(page, 'search-opened');

  // Bad input: the server's reason is shown.
  await page.keyboard.press('Escape');
  await box.fill('one two three four five six seven eight nine'); // over 8 words
  await page.waitForSelector('.search-results[data-state="error"]');
  assert.match(await page.locator('.search-results .search-empty').textContent(), /Search failed: 400/);
  assert.deepEqual(ws.errors, []);
});

function parseCsv(text) {
  const rows = [];
  let row = [],
    field = '',
    q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') q = false;
      else field += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field || row.length) rows.push([...row, field]);
  return rows;
}

async function restEvents(base, adwId, token) {
  const headers = token ? {Authorization: `Bearer ${token}`} : {};
  const res = await fetch(`${base}/api/events?adw_id=${encodeURIComponent(adwId)}&limit=1000`, {headers});
  assert.equal(res.status, 200);
  return (await res.json()).events;
}

async function download(page, selector) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator(selector).click()]);
  const file = await dl.path();
  return {name: dl.suggestedFilename(), text: fs.readFileSync(file, 'utf8')};
}

test('export buttons: NDJSON and CSV downloads hold the run\'s events (also through a token)', async () => {
  const X = uid('export');
  await post([
    agentEvent(X, 'build', 'TextBlock', 'plain'),
    agentEvent(X, 'build', 'TextBlock', 'with, a comma and "quotes"\r\nand a new line', {cost_usd: 0.5}),
    systemEvent(X, null, 'adw_complete'),
  ]);
  const rest = await restEvents(GATEWAY, X);
  assert.equal(rest.length, 3);
  const {page} = await openPage(`#/runs/${X}`);
  await waitRunLoaded(page, 3);
  assert.equal(
    await page.locator('.export-ndjson').getAttribute('href'),
    `/api/adws/${X}/events.ndjson`,
  );
  const nd = await download(page, '.export-ndjson');
  assert.equal(nd.name, `${X}-events.ndjson`);
  const lines = nd.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(lines, rest, 'NDJSON: the events as /api/events gives them');
  const csv = await download(page, '.export-csv');
  assert.equal(csv.name, `${X}-events.csv`);
  const rows = parseCsv(csv.text);
  assert.equal(
    rows[0].join(','),
    'id,received_at,ts,type,step,event_type,event,status,agent_id,summary,cost_usd,tokens,payload',
  );
  assert.deepEqual(rows.slice(1).map((r) => Number(r[0])), rest.map((e) => e.id));
  assert.equal(rows[2][9], rest[1].summary, 'CSV quoting keeps commas, quotes and line ends');
  assert.deepEqual(JSON.parse(rows[2][12]), rest[1].payload);

  if (TOKEN_GATEWAY) {
    const {page: p2} = await openPage(
      `${TOKEN_GATEWAY}/?token=${encodeURIComponent(TOKEN)}#/runs/${X}`,
    );
    await waitRunLoaded(p2, 3);
    const t = await download(p2, '.export-csv');
    assert.equal(t.name, `${X}-events.csv`);
    assert.deepEqual(parseCsv(t.text).slice(1).map((r) => Number(r[0])), rest.map((e) => e.id));
    const tn = await download(p2, '.export-ndjson');
    assert.deepEqual(tn.text.split('\n').filter(Boolean).map((l) => JSON.parse(l)), rest);
  }
});
