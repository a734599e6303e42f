// The dashboard when the retention dropped events a run view missed: after a reconnect, the
// resume comes back incomplete ("complete":false, "first_id") and the run view reloads from what
// is kept. Run through tests/integration/test_partition_dashboard.py, which starts ingest with a
// retention of 2 s and partitions of 1,000 ids on an empty database, and sets:
//   ADW_GATEWAY_URL, ADW_INGEST_URL, ADW_CONTROL_URL (POST /gateway/kill, /gateway/start),
//   ADW_CHROMIUM.
// The setup is harness.mjs's.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {
  agentEvent,
  gatewayControl,
  ingestClient,
  laneIds,
  need,
  received,
  sleep,
  until,
  useChromium,
  waitRunLoaded,
} from './harness.mjs';

const [GATEWAY, INGEST, CONTROL] = need('tests/integration/test_partition_dashboard.py',
  'ADW_GATEWAY_URL', 'ADW_INGEST_URL', 'ADW_CONTROL_URL');
const {openPage} = useChromium({gateway: GATEWAY});
const ingest = ingestClient(INGEST);
const post = (events) => ingest.postInChunks(events, 100);
const control = gatewayControl(CONTROL);

function events(adwId, n, what) {
  return Array.from({length: n}, (_, i) => agentEvent(adwId, 'build', 'TextBlock', `${what} ${i}`));
}

test('a resume across the retention\'s cut reloads the run view from what is kept', async () => {
  const R = 'cut';
  const before = await post(events(R, 30, 'before'));
  assert.deepEqual(before, Array.from({length: 30}, (_, i) => i + 1), 'an empty database');

  const {page, ws} = await openPage(`#/runs/${R}`);
  await waitRunLoaded(page);
  await until(async () => (await laneIds(page, 'build')).length === 30, {what: 'the 30 cards'});

  // The page loses its gateway; meanwhile ids 1 to 1000 fill the first partition, the run goes
  // on in the second, and the retention drops the first.
  await control('kill');
  await page.waitForSelector('#conn[data-state="reconnecting"]', {timeout: 30000});
  await post(events('filler', 970, 'filler'));
  const kept = await post(events(R, 20, 'after'));
  assert.equal(kept[0], 1001);
  await until(async () => (await ingest.metric('adw_ingest_partitions_dropped_total')) >= 1, {
    what: 'the retention to drop ids 1 to 1000',
  });

  await control('start');
  await page.waitForSelector('#conn[data-state="live"]', {timeout: 60000});
  const cut = await until(
    async () => received(ws).find((m) => m.type === 'replayed' && m.complete === false),
    {timeout: 60000, what: 'an incomplete replayed'},
  );
  assert.equal(cut.first_id, 1001);
  // Reloaded: only what is kept, each once, in order (without the reload the 30 dropped ones
  // would stay beside them).
  await until(async () => JSON.stringify(await laneIds(page, 'build')) === JSON.stringify(kept), {
    timeout: 60000,
    what: async () =>
      `the kept cards only: ${JSON.stringify((await laneIds(page, 'build')).slice(0, 10))}...`,
  });
  await sleep(500);
  assert.deepEqual(await laneIds(page, 'build'), kept);
  // It goes on live from there, and its resume is complete now.
  const more = await post(events(R, 3, 'live'));
  await until(async () => (await laneIds(page, 'build')).length === kept.length + 3, {
    what: 'live cards',
  });
  assert.deepEqual(await laneIds(page, 'build'), [...kept, ...more]);
  assert.ok(
    received(ws).some((m) => m.type === 'replayed' && m.complete === true),
    'the reloaded view resumed completely',
  );
  assert.deepEqual(ws.errors, []);
  await page.close();
});
