"""Stalls are events: adw-ingest, the one writer, stores and publishes a run_stalled system event
when a running run has had no event for ADW_INGEST_STALL_S seconds, once per idle spell (the
run's stalled flag is stored with the event, so a restart derives it again from the tables);
the run's next event clears it. Ended runs never stall; a standby raises nothing; 0 is off.
Every wait is bounded; no assertion is about timing beyond a generous bound."""

import subprocess
import time

import adwtest
import pytest
from faultload import metric, wait_status

pytestmark = pytest.mark.needs_bin("adw-ingest")

STALL_S = 1
RAISED = "adw_ingest_stalls_raised_total"


def ev(adw_id="run1", **kw):
    e = {"type": "adw_event", "adw_id": adw_id, "event_type": "PreToolUse",
         "summary": "Bash: ls"}
    e.update(kw)
    return e


def sysev(event, adw_id="run1", **kw):
    e = {"type": "system", "adw_id": adw_id, "event": event}
    e.update(kw)
    return e


def post(ingest, events):
    st, _, body = adwtest.post_json(ingest.base_url + "/api/events", events)
    assert st == 200, body
    return body["ids"] if "ids" in body else [body["id"]]


def stalls(db, adw_id=None):
    """The stored run_stalled events (id, adw_id, step, status, doc), in id order."""
    sql = "SELECT id, adw_id, step, status, doc FROM events WHERE event = 'run_stalled'"
    params = ()
    if adw_id:
        sql += " AND adw_id = %s"
        params = (adw_id,)
    return db.query(sql + " ORDER BY id", params)


def stalled(db, adw_id="run1"):
    return db.scalar("SELECT stalled FROM adw_runs WHERE adw_id = %s", (adw_id,))


def wait_stalls(db, n, adw_id=None, timeout=20):
    """Waits until n run_stalled events are stored (of adw_id, or of any run); returns them."""
    adwtest.wait_for(lambda: len(stalls(db, adw_id)) >= n, timeout, interval=0.1,
                     what=f"{n} run_stalled events")
    return stalls(db, adw_id)


def quiet(seconds=3 * STALL_S + 1):
    """Several scan periods and more than STALL_S, for what must not happen."""
    time.sleep(seconds)


def test_one_stall_per_idle_spell_stored_and_published(make_ingest, db):
    ingest = make_ingest(ADW_INGEST_STALL_S=STALL_S)
    with ingest.sub() as sub:
        sub.wait_joined()
        ids = post(ingest, [sysev("adw_start"), sysev("step_start", step="plan"),
                            ev(step="plan")])
        rows = wait_stalls(db, 1)
        sid, adw_id, step, status, doc = rows[0]
        assert sid == ids[-1] + 1
        assert (adw_id, step, status) == ("run1", "plan", None)
        assert set(doc) == {"id", "received_at", "type", "event", "adw_id", "step", "summary",
                            "payload"}
        assert doc["id"] == sid
        assert (doc["type"], doc["event"], doc["adw_id"], doc["step"]) == (
            "system", "run_stalled", "run1", "plan")
        idle = doc["payload"]["idle_s"]
        assert STALL_S <= idle < 60
        assert doc["payload"] == {"idle_s": idle, "last_id": ids[-1]}
        assert doc["summary"] == f"No event for {idle} s"
        assert stalled(db) is True
        # Published after its commit like any event, with its id.
        msg = sub.wait_for(lambda m: m.topic != "$hb" and m.body.get("event") == "run_stalled",
                           timeout=10)
        assert msg.topic == "run1"
        assert msg.body["id"] == sid
        assert {k: v for k, v in msg.body.items() if k != "received_at"} == {
            k: v for k, v in doc.items() if k != "received_at"}

        # Once per spell: nothing more while the run stays idle.
        quiet()
        assert len(stalls(db)) == 1
        assert [m.body["id"] for m in sub.snapshot()
                if m.topic != "$hb" and m.body.get("event") == "run_stalled"] == [sid]
        # It changes neither the run's status nor its step's.
        assert db.scalar("SELECT status FROM adw_runs WHERE adw_id = 'run1'") == "running"
        assert db.scalar("SELECT status FROM adw_steps WHERE adw_id = 'run1' AND step = 'plan'"
                         ) == "running"
        assert db.scalar("SELECT last_id FROM adw_runs WHERE adw_id = 'run1'") == sid

        # The next event clears it; a new spell raises again, with that event as last_id.
        nxt = post(ingest, ev(step="plan", event_type="PostToolUse"))[0]
        assert nxt == sid + 1
        assert stalled(db) is False
        rows = wait_stalls(db, 2)
        assert rows[1][4]["payload"]["last_id"] == nxt
        assert stalled(db) is True
        sub.wait_for(lambda m: m.topic != "$hb" and m.body.get("id") == rows[1][0], timeout=10)
        assert metric(ingest, RAISED) == 2
        quiet()
        assert len(stalls(db)) == 2


@pytest.mark.needs_bin("adw-gateway")
def test_delivered_by_the_gateway_live_and_on_replay(make_ingest, make_gateway, db):
    from test_gateway_common import connect

    ingest = make_ingest(ADW_INGEST_STALL_S=STALL_S)
    gateway = make_gateway(ingest)
    ws = connect(gateway, adw_id="run1")
    ids = post(ingest, [sysev("adw_start"), ev(step="build")])
    got = ws.events(3, timeout=20)
    assert [m["id"] for m in got] == [*ids, ids[-1] + 1]
    live = got[2]
    assert (live["event"], live["step"], live["payload"]["last_id"]) == (
        "run_stalled", "build", ids[-1])
    ws.close()
    ws = connect(gateway, adw_id="run1", since=0)
    replayed = ws.events(3, timeout=20)
    assert replayed[2] == live
    ws.close()


def test_no_step_key_when_the_run_has_no_current_step(make_ingest, db):
    ingest = make_ingest(ADW_INGEST_STALL_S=STALL_S)
    post(ingest, sysev("adw_start"))
    doc = wait_stalls(db, 1)[0][4]
    assert "step" not in doc
    assert doc["payload"]["last_id"] == 1


def test_restart_during_a_spell_raises_it_once(make_ingest, db):
    stall_s = 3
    ingest = make_ingest(ADW_INGEST_STALL_S=stall_s)
    post(ingest, [sysev("adw_start"), ev()])
    # SIGTERM and start again before the spell is long enough: the new process raises it.
    ingest.restart()
    wait_stalls(db, 1)
    # SIGTERM and start again after it was raised: not raised again.
    ingest.restart()
    quiet(3 * stall_s + 1)
    assert len(stalls(db)) == 1

    # The same with kill -9, in a new spell.
    post(ingest, ev())
    assert stalled(db) is False
    ingest.kill9()
    ingest.wait(5)
    ingest.start_again()
    wait_status(ingest, "/readyz", 200, timeout=20)
    wait_stalls(db, 2)
    ingest.kill9()
    ingest.wait(5)
    ingest.start_again()
    wait_status(ingest, "/readyz", 200, timeout=20)
    quiet(3 * stall_s + 1)
    rows = stalls(db)
    assert len(rows) == 2
    assert [r[4]["payload"]["last_id"] for r in rows] == [2, 4]


def test_an_ended_run_never_stalls(make_ingest, db):
    ingest = make_ingest(ADW_INGEST_STALL_S=STALL_S)
    post(ingest, [sysev("adw_start", adw_id="done"), sysev("adw_complete", adw_id="done"),
                  sysev("adw_start", adw_id="failed"),
                  sysev("adw_failed", adw_id="failed", step="build"),
                  # A step-less status other than running: the run is not running.
                  sysev("adw_start", adw_id="paused"),
                  sysev("note", adw_id="paused", status="paused"),
                  sysev("adw_start", adw_id="live")])
    # The running one stalls; meanwhile and after, the others do not.
    wait_stalls(db, 1, adw_id="live")
    quiet()
    assert [r[1] for r in stalls(db)] == ["live"]
    assert {r[0]: r[1] for r in db.query("SELECT adw_id, stalled FROM adw_runs")} == {
        "done": False, "failed": False, "paused": False, "live": True}


def test_a_standby_raises_nothing(make_ingest, db):
    leader = make_ingest(name="leader", ADW_INGEST_STALL_S=STALL_S)
    standby = make_ingest(name="standby", start=False, ADW_INGEST_STALL_S=STALL_S)
    standby.start()
    adwtest.wait_for(lambda: "standby" in wait_status(standby, "/readyz", 503)[2]["reason"], 15,
                     what="the second ingest standing by")
    with standby.sub() as ssub:
        post(leader, [sysev("adw_start"), ev()])
        wait_stalls(db, 1)
        quiet()
        assert len(stalls(db)) == 1
        assert metric(leader, RAISED) == 1
        assert metric(standby, RAISED) == 0
        assert not [m for m in ssub.snapshot() if m.topic != "$hb"]
        # Once the leader is gone the standby writes: it derives the stall from the tables
        # (raised already) and raises only a new spell.
        leader.kill9()
        leader.wait(5)
        wait_status(standby, "/readyz", 200, timeout=20)
        quiet()
        assert len(stalls(db)) == 1
        post(standby, ev())
        rows = wait_stalls(db, 2)
        assert rows[1][4]["payload"]["last_id"] == 4
        ssub.wait_for(lambda m: m.body.get("id") == rows[1][0], timeout=10)


def test_zero_is_off(make_ingest, db):
    ingest = make_ingest(ADW_INGEST_STALL_S=0)
    post(ingest, [sysev("adw_start"), ev()])
    quiet(4)
    assert stalls(db) == []
    assert stalled(db) is False
    assert metric(ingest, RAISED) == 0


def test_more_runs_than_one_scan_takes(make_ingest, db):
    # One scan raises at most 1000; the next scans take the rest, each run once.
    ingest = make_ingest(ADW_INGEST_STALL_S=STALL_S)
    n = 1203
    for start in range(0, n, 1000):
        post(ingest, [sysev("adw_start", adw_id=f"r{i}") for i in range(start, min(n, start + 1000))])
    rows = wait_stalls(db, n, timeout=60)
    quiet()
    rows = stalls(db)
    assert len(rows) == n
    assert sorted(r[1] for r in rows) == sorted(f"r{i}" for i in range(n))
    assert db.scalar("SELECT count(*) FROM adw_runs WHERE stalled") == n
    assert metric(ingest, RAISED) == n


def test_a_scan_is_one_transaction_of_at_most_max_batch(make_ingest, db):
    ingest = make_ingest(ADW_INGEST_STALL_S=STALL_S, ADW_INGEST_MAX_BATCH=7)
    post(ingest, [sysev("adw_start", adw_id=f"r{i}") for i in range(30)])
    wait_stalls(db, 30)
    quiet()
    assert len(stalls(db)) == 30
    # The stalls' transactions: 30 / 7, rounded up (ids from one commit have one received_at).
    assert db.scalar("SELECT count(DISTINCT received_at) FROM events WHERE event = 'run_stalled'"
                     ) == 5


def run_cli(*args, env=None):
    e = {"PATH": "/usr/bin:/bin"}
    e.update(env or {})
    return subprocess.run([str(adwtest.binary("adw-ingest")), *args], capture_output=True,
                          text=True, timeout=20, env=e, stdin=subprocess.DEVNULL)


def test_configuration():
    r = run_cli("--help")
    assert r.returncode == 0
    assert "--stall-s" in r.stdout and "ADW_INGEST_STALL_S" in r.stdout
    for args, env in ((["--stall-s=-1"], {}), ([], {"ADW_INGEST_STALL_S": "-1"}),
                      ([], {"ADW_INGEST_STALL_S": "31536001"})):
        r = run_cli(*args, env=env)
        assert r.returncode > 0
        assert "out of range" in r.stderr, r.stderr
    r = run_cli(env={"ADW_INGEST_STALL_S": "soon"})
    assert r.returncode > 0 and "ADW_INGEST_STALL_S" in r.stderr


# The scan's statement as ingest/store.c sends it ($1: the cutoff in microseconds, $2: the bound).
SCAN_SQL = ("SELECT adw_id, current_step, last_id,"
            " (extract(epoch from updated_at) * 1000000)::bigint"
            " FROM adw_runs"
            " WHERE status = 'running' AND NOT stalled"
            " AND updated_at < to_timestamp(%s::bigint / 1000000.0)"
            " ORDER BY updated_at LIMIT %s::int")
INDEX = "adw_runs_running_idle"


def test_the_scan_reads_only_running_runs(make_ingest, db):
    make_ingest(ADW_INGEST_STALL_S=0)  # the schema, current
    # Migration 2 creates the partial index the scan is written for.
    assert db.scalar("SELECT 1 FROM pg_indexes WHERE indexname = %s", (INDEX,)) == 1
    # Many ended runs, a few running ones: the scan must not read them all.
    db.query("INSERT INTO adw_runs (adw_id, status, event_count, cost_usd, tokens, input_tokens,"
             " output_tokens, cache_read_tokens, cache_creation_tokens, first_ts, last_ts,"
             " first_id, last_id, updated_at)"
             " SELECT 'r' || i, CASE WHEN i % 5000 = 0 THEN 'running' ELSE 'completed' END,"
             " 1, 0, 0, 0, 0, 0, 0, now(), now(), i, i, now() - interval '1 hour'"
             " FROM generate_series(1, 50000) AS i")
    db.query("ANALYZE adw_runs")
    cutoff = int(time.time() * 1e6) - 600 * 1000000
    plan = "\n".join(r[0] for r in db.query("EXPLAIN " + SCAN_SQL, (cutoff, 1000)))
    assert INDEX in plan, plan
    assert "Seq Scan" not in plan, plan
    assert len(db.query(SCAN_SQL, (cutoff, 1000))) == 10
