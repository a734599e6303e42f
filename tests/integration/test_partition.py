"""Partitions and retention (proto/schema.sql "Partitions", proto/websocket.md "Incomplete
resumes"): partitions made ahead under load over HTTP and ZeroMQ (no insert ever fails, one whole
partition always spare, no DEFAULT partition, event_id deduplicated across partitions); the
retention dropping whole partitions under load while WebSocket clients resume across the cut
(complete:false with the first kept id, the runs left without events gone with their rows,
nothing else lost); bad settings refused at start.
"""

import threading
import time
import urllib.parse

import pytest

import adwtest
from test_gateway_common import assert_contiguous, connect, ev, metric, post, wait_type

SIZE = 1000  # ids per partition: the smallest accepted, so that the tests cross many


def partitions(db):
    """[(name, from, to)] of events' partitions, in id order; DEFAULT partitions as (name, None,
    None)."""
    rows = db.query("SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)"
                    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'events'::regclass")
    out = []
    for name, bound in rows:
        if bound == "DEFAULT":
            out.append((name, None, None))
            continue
        lo, hi = bound.replace("FOR VALUES FROM (", "").replace("'", "").split(") TO (")
        out.append((name, int(lo), int(hi.rstrip(")"))))
    return sorted(out, key=lambda p: p[1] if p[1] is not None else -1)


def check_partitions(db, last_id, batch_max):
    """Partitions are contiguous, named events_p<first id>, none DEFAULT, and reach one whole
    partition beyond what the next batch may take. Returns them."""
    parts = partitions(db)
    assert all(lo is not None for _, lo, _ in parts), f"a DEFAULT partition: {parts}"
    for (name, lo, hi), nxt in zip(parts, parts[1:] + [None]):
        assert name == f"events_p{lo}"
        if nxt:
            assert nxt[1] == hi, f"a gap or overlap between {name} and {nxt[0]}"
    assert parts[-1][1] > last_id + batch_max, f"no spare partition beyond {last_id}: {parts}"
    # Every partition has each partitioned index (the trigram search's too) and its own unique
    # index on event_id.
    for idx in ("events_pkey", "events_adw_id_id", "events_adw_id_agent_id", "events_search"):
        n = db.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", (idx,))
        assert n == len(parts), idx
    for name, _, _ in parts:
        assert db.scalar("SELECT indisunique FROM pg_index WHERE indexrelid = %s::regclass",
                         (f"{name}_event_id",)) is True
    return parts


def ingest_metric(ing, name):
    st, _, body = adwtest.http_get(ing.base_url + "/metrics")
    assert st == 200
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def test_partitions_are_made_ahead_under_load(make_ingest, db):
    batch_max = 200
    ing = make_ingest(ADW_INGEST_PARTITION_EVENTS=str(SIZE), ADW_INGEST_MAX_BATCH=str(batch_max))
    parts = check_partitions(db, 0, batch_max)
    assert parts[0][1] == 1

    errors, sent = [], {}

    def http_sender(k):
        c = ing.http(timeout=30)
        try:
            for b in range(40):
                chunk = [ev(f"h{k}", event_type="TextBlock", event_id=f"h{k}-{b}-{i}",
                            summary=f"http {k} {b} {i}") for i in range(50)]
                st, _, body = c.post_json("/api/events", chunk)
                if st != 200:
                    errors.append((st, body))
                    return
                sent.update(zip((e["event_id"] for e in chunk), body["ids"]))
        finally:
            c.close()

    def zmq_sender(k):
        with ing.zmq(timeout=30) as z:
            for i in range(600):
                e = ev(f"z{k}", event_type="ToolUseBlock", event_id=f"z{k}-{i}",
                       payload={"id": f"toolu_{k}_{i}", "name": "Bash"})
                r = z.submit(e)
                if not (isinstance(r, dict) and r.get("ok")):
                    errors.append(r)
                    return
                sent[e["event_id"]] = r["ids"][0]

    threads = [threading.Thread(target=http_sender, args=(k,)) for k in range(3)]
    threads += [threading.Thread(target=zmq_sender, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    total = 3 * 40 * 50 + 2 * 600
    assert len(sent) == total
    ids = sorted(sent.values())
    assert ids == list(range(1, total + 1))  # no id lost, none twice
    assert db.scalar("SELECT count(*) FROM events") == total
    assert db.scalar("SELECT count(DISTINCT event_id) FROM events") == total
    parts = check_partitions(db, total, batch_max)
    assert len(parts) >= total // SIZE + 2
    # Rows sit in the partition of their id.
    for name, lo, hi in parts:
        n = db.scalar(f"SELECT count(*) FROM {name}")
        assert n == max(0, min(hi - 1, total) - lo + 1), name
    assert ingest_metric(ing, "adw_ingest_partitions") == len(parts)
    assert ingest_metric(ing, "adw_ingest_partitions_dropped_total") == 0
    assert "partition: created events_p1001" in ing.log_text()

    # An event_id stored partitions ago is answered with its first id, not stored again, over
    # both transports (the lookup spans partitions; each partition's unique index does not).
    old = ["h0-0-0", "h1-3-7", "z0-5"]
    st, _, body = adwtest.post_json(ing.base_url + "/api/events",
                                    [ev("h0", event_id=k) for k in old[:2]] + [ev("new")])
    assert st == 200 and body["ids"][:2] == [sent[k] for k in old[:2]]
    assert body["ids"][2] == total + 1
    with ing.zmq() as z:
        assert z.submit(ev("z0", event_id="z0-5"))["ids"] == [sent["z0-5"]]
    assert db.scalar("SELECT count(*) FROM events") == total + 1

    # After a restart the writer finds its partitions again and goes on from them.
    ing.restart()
    assert partitions(db) == parts
    post(ing, [ev("after", event_id=f"after-{i}") for i in range(1500)], batch=100)
    check_partitions(db, total + 1501, batch_max)
    assert db.scalar("SELECT count(*) FROM events") == total + 1501


@pytest.mark.parametrize("env, needle", [
    ({"ADW_INGEST_RETENTION": "1w"}, "ADW_INGEST_RETENTION"),
    ({"ADW_INGEST_RETENTION": "-5"}, "ADW_INGEST_RETENTION"),
    ({"ADW_INGEST_RETENTION": "12 h"}, "ADW_INGEST_RETENTION"),
    ({"ADW_INGEST_RETENTION": "99999d"}, "ten years"),
    ({"ADW_INGEST_PARTITION_EVENTS": "999"}, "ADW_INGEST_PARTITION_EVENTS"),
    ({"ADW_INGEST_PARTITION_EVENTS": "many"}, "ADW_INGEST_PARTITION_EVENTS"),
    ({"ADW_INGEST_RETENTION_CHECK_MS": "0"}, "ADW_INGEST_RETENTION_CHECK_MS"),
])
def test_bad_settings_refuse_to_start(make_ingest, db, env, needle):
    ing = make_ingest(start=False, **env)
    ing.start()
    assert ing.wait(15) == 2
    assert needle in ing.log_text()


def test_retention_drops_under_load_while_clients_resume(make_ingest, make_gateway, db):
    batch_max = 100
    ing = make_ingest(ADW_INGEST_PARTITION_EVENTS=str(SIZE), ADW_INGEST_MAX_BATCH=str(batch_max),
                      ADW_INGEST_RETENTION="3s", ADW_INGEST_RETENTION_CHECK_MS="200")
    gw = make_gateway(ing)

    # A client that follows from the start, then goes away after 100 events.
    sleeper = connect(gw)
    # The old runs: ids 1..2400 in partitions events_p1, _p1001, _p2001. Each has a session,
    # a subagent and a tool call; "straddle" has events in the first and the second partition.
    old = []
    for r in range(4):
        adw = f"old-{r}"
        sid = f"{r}1111111-aaaa-4bbb-8ccc-ddddeeeeffff"
        old.append(ev(adw, type_="system", event_type="adw_start",
                      payload={"session_id": sid}))
        old.append(ev(adw, event_type="PreToolUse", agent_id=f"agent{r}",
                      payload={"session_id": sid, "hook_event_name": "PreToolUse",
                               "tool_name": "Bash", "tool_use_id": f"toolu_old{r}"}))
        old += [ev(adw, summary=f"{adw} {i}") for i in range(497)]
        old.append(ev("straddle", summary="straddle"))
    old += [ev("old-4", summary=f"old-4 {i}") for i in range(400)]
    old_ids = post(ing, old, batch=100)
    assert old_ids == list(range(1, 2401))
    # Approval rows of two old runs (as ingest's rollup writes them): they go with their run.
    db.query("INSERT INTO adw_approvals (approval_id, adw_id, status, requested_id, requested_at,"
             " expires_at) VALUES ('ap-old', 'old-0', 'expired', 2, now(), now()),"
             " ('ap-straddle', 'straddle', 'expired', 500, now(), now())")
    assert db.scalar("SELECT count(*) FROM adw_sessions") == 4
    assert db.scalar("SELECT count(*) FROM adw_agents") == 4
    assert db.scalar("SELECT count(*) FROM adw_tool_calls") == 4
    got = sleeper.events(100, timeout=30)
    since_sleeper = got[-1]["id"]
    sleeper.close()
    assert since_sleeper == 100

    # The load: new events over HTTP all along, every one answered 200.
    stop = threading.Event()
    loaded, failures = [], []

    def loader():
        c = ing.http(timeout=30)
        i = 0
        try:
            while not stop.is_set():
                st, _, body = c.post_json("/api/events", [
                    ev("new", summary=f"new {i + k}", event_id=f"new-{i + k}") for k in range(20)])
                if st != 200:
                    failures.append((st, body))
                    return
                loaded.extend(body["ids"])
                i += 20
                time.sleep(0.02)
        finally:
            c.close()

    # Clients that keep resuming with since while the cut happens: each resume is exact when
    # complete, and says where it starts when not.
    resumes, resume_errors = [], []

    def first_kept():
        return int(db.scalar("SELECT value FROM adw_meta WHERE key = 'first_kept_id'"))

    def resumer(k):
        last = since_sleeper if k == 0 else 0
        try:
            if k == 2:  # this one comes back only after the first cut, from below it
                adwtest.wait_for(lambda: first_kept() > 1 or stop.is_set(), 60, interval=0.1)
                last = 50
            while not stop.is_set():
                ws = connect(gw, since=last)
                r = wait_type(ws, "replayed", timeout=30)
                ids = [m["id"] for m in ws.seen if isinstance(m, dict) and "id" in m]
                assert ids == sorted(set(ids))
                if r["complete"]:
                    assert "first_id" not in r
                    assert_contiguous(ids, first=last + 1 if ids else None)
                else:
                    assert r["first_id"] > last + 1
                    tail = [i for i in ids if i >= r["first_id"]]
                    assert_contiguous(tail, first=r["first_id"])
                assert not ids or ids[-1] == r["last_id"]
                resumes.append((k, last, r))
                last = r["last_id"]
                live = ws.collect(count=5, timeout=30, pred=lambda m: isinstance(m, dict) and "id" in m)
                if len(live) < 5 and stop.is_set():
                    ws.close()
                    return
                assert len(live) == 5, live
                assert_contiguous([m["id"] for m in live], first=last + 1)
                last = live[-1]["id"]
                ws.close()
                time.sleep(0.3)
        except Exception as e:  # noqa: BLE001 (reported by the test below)
            resume_errors.append(f"resumer {k}: {e!r}")

    threads = [threading.Thread(target=loader)]
    threads += [threading.Thread(target=resumer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        # The partitions of the old runs go once their newest event is 3 s old and the next
        # id is beyond them (the load carries it there).
        adwtest.wait_for(lambda: first_kept() >= 2001, 60, interval=0.2,
                         what="the retention's cut past id 2000")
        # ...while the load goes on, and the clients resume a few times more.
        n = len(resumes)
        adwtest.wait_for(lambda: len(resumes) >= n + 6 or resume_errors or failures, 60,
                         interval=0.2, what="resumes after the cut")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not failures, failures[:3]
    assert not resume_errors, resume_errors
    assert any(not r["complete"] for k, _, r in resumes if k == 2), "no resume across the cut"
    assert ingest_metric(ing, "adw_ingest_partitions_dropped_total") >= 2
    adwtest.wait_for(lambda: ingest_metric(ing, "adw_ingest_partitions") == len(partitions(db)),
                     10, what="the partitions gauge")
    assert "retention: dropped" in ing.log_text()
    # Nothing moves any more: the same ingest again, keeping everything.
    ing.env["ADW_INGEST_RETENTION"] = "0"
    ing.restart()

    first = int(db.scalar("SELECT value FROM adw_meta WHERE key = 'first_kept_id'"))
    last = db.scalar("SELECT max(id) FROM events")
    parts = check_partitions(db, last, batch_max)
    assert parts[0][1] == first  # whole partitions went, the oldest kept starts the ids
    assert db.scalar("SELECT min(id) FROM events") == first
    assert db.scalar("SELECT count(*) FROM events") == last - first + 1  # nothing else lost
    # Each event of the load still there is there once (those below the cut went with it).
    kept_new = [i for i in loaded if i >= first]
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'new'") == len(kept_new)

    # The runs left without an event are gone, with everything filed under them; the others
    # stay.
    runs = {r for (r,) in db.query("SELECT adw_id FROM adw_runs")}
    with_events = {r for (r,) in db.query("SELECT DISTINCT adw_id FROM events")}
    assert runs == with_events
    assert {"old-0", "old-1", "straddle"}.isdisjoint(runs) and "new" in runs
    for table in ("adw_steps", "adw_agents", "adw_tool_calls", "adw_sessions", "adw_approvals"):
        assert not db.query(f"SELECT adw_id FROM {table} t WHERE NOT EXISTS"
                            " (SELECT 1 FROM adw_runs r WHERE r.adw_id = t.adw_id)"), table
    assert db.scalar("SELECT min(last_id) FROM adw_runs") >= first

    # The sleeper resumes across the cut: what is kept, and the replayed marker says the rest
    # is gone. A resume from just below the first kept id is complete.
    ws = connect(gw, since=since_sleeper)
    r = wait_type(ws, "replayed", timeout=60)
    ids = [m["id"] for m in ws.seen if isinstance(m, dict) and "id" in m]
    ws.close()
    assert r["complete"] is False and r["first_id"] == first
    assert_contiguous(ids, first=r["first_id"], last=r["last_id"])
    ws = connect(gw, since=r["first_id"] - 1)
    r2 = wait_type(ws, "replayed", timeout=60)
    ws.close()
    assert r2["complete"] is True and "first_id" not in r2
    ws = connect(gw, since=0, adw_id="old-0")
    r3 = wait_type(ws, "replayed", timeout=30)
    ws.close()
    assert r3["count"] == 0 and r3["complete"] is False and r3["first_id"] == r["first_id"]

    # The REST event reads say the same.
    def events(**q):
        st, _, body = adwtest.http_get(gw.base_url + "/api/events?" + urllib.parse.urlencode(q))
        assert st == 200, body
        return body

    b = events(since=since_sleeper, limit=5)
    assert b["complete"] is False and b["first_id"] == r["first_id"]
    assert [e["id"] for e in b["events"]] == list(range(r["first_id"], r["first_id"] + 5))
    b = events(since=r["first_id"] - 1, limit=5)
    assert b["complete"] is True and "first_id" not in b
    assert metric(gw, "adw_gateway_replay_failures_total") == 0


def test_a_long_read_delays_the_drop_not_the_writer(make_ingest, db):
    """A read holding events (a gateway's long replay, a person's query) keeps the drop's lock
    from being granted: the drop gives up after its lock timeout and is tried at the next check,
    events keep being stored meanwhile, and the drop happens once the read ends."""
    ing = make_ingest(ADW_INGEST_PARTITION_EVENTS=str(SIZE), ADW_INGEST_MAX_BATCH="100",
                      ADW_INGEST_RETENTION="1s", ADW_INGEST_RETENTION_CHECK_MS="200")
    post(ing, [ev("a", summary=f"a {i}") for i in range(1500)], batch=100)
    reader = db.connect(autocommit=False)
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM events")  # holds its lock until the transaction ends
            assert cur.fetchone()[0] == 1500
            ing.wait_log("lock timeout", timeout=30)
            ids = post(ing, [ev("b", summary=f"b {i}") for i in range(50)], batch=10)
            assert ids == list(range(1501, 1551))
            assert db.scalar("SELECT value FROM adw_meta WHERE key = 'first_kept_id'") == "1"
            assert len(partitions(db)) >= 3
    finally:
        reader.rollback()
        reader.close()
    adwtest.wait_for(lambda: db.scalar("SELECT value FROM adw_meta WHERE key = 'first_kept_id'")
                     == "1001", 30, what="the drop once the read ended")
    assert db.scalar("SELECT count(*) FROM events") == 550
    assert db.scalar("SELECT count(*) FROM adw_runs WHERE adw_id = 'a'") == 1  # ids 1001-1500


def test_the_newest_event_always_stays(make_ingest, db):
    """Ids 1 to 2000 end exactly at a partition boundary: the retention drops events_p1 but never
    events_p1001, which holds the last id (the next id's partition is still empty), so that
    max(id), where a restarted ingest and the gateways take up, stays."""
    ing = make_ingest(ADW_INGEST_PARTITION_EVENTS=str(SIZE), ADW_INGEST_MAX_BATCH="100",
                      ADW_INGEST_RETENTION="1s", ADW_INGEST_RETENTION_CHECK_MS="200")
    assert post(ing, [ev("edge", summary=f"e {i}") for i in range(2000)], batch=100)[-1] == 2000
    adwtest.wait_for(lambda: db.scalar("SELECT value FROM adw_meta WHERE key = 'first_kept_id'")
                     == "1001", 30, what="events_p1 dropped")
    time.sleep(2)  # ten more checks, with events_p1001's newest event well over 1 s old
    assert [p[0] for p in partitions(db)][:2] == ["events_p1001", "events_p2001"]
    assert db.scalar("SELECT max(id) FROM events") == 2000
    ing.restart()
    assert post(ing, [ev("edge")]) == [2001]
