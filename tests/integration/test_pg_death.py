"""PostgreSQL dies: ingest says so at once.

An idle ingest watches its connection's socket, so the termination notice of `pg_ctl stop -m
immediate` marks the store unavailable before any request is sent on that connection: the first
POST after the stop gets 503, not an answer held for the outage. A request whose commit outcome
really is unknown (sent, then the connection lost before COMMIT's answer) is answered 503 within
ADW_INGEST_DB_TIMEOUT_MS with a reason saying to retry with the same event_id; the outcome is
still resolved afterwards, and the retry is deduplicated. Nothing acknowledged is lost, nothing
lost is acknowledged.

Client timeouts here are generous (10 s): the assertions are the answers and their reasons,
never a duration.
"""

import sys
import threading
import time
from pathlib import Path

import adwtest
import pytest
from faultload import Load, SendWorker, check_stored, ev, metric, wait_status

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from faultproxy import FaultProxy  # noqa: E402

pytestmark = pytest.mark.needs_bin("adw-ingest")

UNKNOWN = "commit outcome unknown; retry with the same event_id"


def test_idle_ingest_answers_503_at_once_when_postgres_stops(ingest, db):
    with ingest.http() as c:
        assert c.post_json("/api/events", ev(event_id="before"))[2] == {
            "status": "broadcasted", "id": 1}
    time.sleep(0.3)  # idle
    db.stop(mode="immediate")
    # The first POST after the stop: an answer, 503 with its reason (not held for the outage).
    st, h, body = adwtest.post_json(ingest.base_url + "/api/events", ev(event_id="first"),
                                    timeout=10)
    assert st == 503, body
    assert h.get("Retry-After") == "1"
    assert "database unavailable" in body["error"] and "retry" in body["error"]
    # The following ones too, on every route and transport.
    for path in ("/api/events", "/api/events/broadcast"):
        st, _, body = adwtest.post_json(ingest.base_url + path, [ev(), ev()], timeout=10)
        assert st == 503 and "database unavailable" in body["error"], body
    st, _, _ = adwtest.post_json(ingest.base_url + "/api/hooks?adw_id=a",
                                 {"hook_event_name": "Stop", "session_id": "s-1"}, timeout=10)
    assert st == 503
    r = adwtest.zmq_submit(ingest.zmq_endpoint, ev(event_id="zfirst"), timeout=10)
    assert r["ok"] is False and r["retry"] is True and "unavailable" in r["error"]
    st, _, body = adwtest.http_get(ingest.base_url + "/readyz", timeout=10)
    assert st == 503 and body["status"] == "unavailable"
    assert "store: lost PostgreSQL" in ingest.log_text()
    db.start()
    wait_status(ingest, "/readyz", 200, timeout=30)
    # Back: the refused events retried with their event_ids are stored once.
    st, _, body = adwtest.post_json(ingest.base_url + "/api/events", ev(event_id="first"),
                                    timeout=10)
    assert st == 200 and body["id"] == 2, body
    assert adwtest.zmq_submit(ingest.zmq_endpoint, ev(event_id="zfirst")) == {"ok": True,
                                                                               "ids": [3]}
    assert adwtest.post_json(ingest.base_url + "/api/events", ev(event_id="first"))[2]["id"] == 2
    assert db.query("SELECT id, event_id FROM events ORDER BY id") == [
        (1, "before"), (2, "first"), (3, "zfirst")]


def test_postgres_fast_stop_while_idle(ingest, db):
    """A fast stop (its FATAL termination notice) is noticed as the immediate one is."""
    assert adwtest.post_json(ingest.base_url + "/api/events", ev())[2]["id"] == 1
    db.stop(mode="fast")
    st, _, body = adwtest.post_json(ingest.base_url + "/api/events", ev(), timeout=10)
    assert st == 503 and "database unavailable" in body["error"], body
    db.start()
    wait_status(ingest, "/readyz", 200, timeout=30)
    assert adwtest.post_json(ingest.base_url + "/api/events", ev())[2]["id"] == 2


def submit(ing, transport, events):
    """(ok, error, ids) of one submission over HTTP or ZeroMQ (client timeout 10 s)."""
    if transport == "http":
        st, h, body = adwtest.post_json(ing.base_url + "/api/events", events, timeout=10)
        if st == 503:
            assert h.get("Retry-After") == "1"
        return st == 200, body.get("error"), body.get("ids")
    r = adwtest.zmq_submit(ing.zmq_endpoint, events, timeout=10)
    if not r["ok"]:
        assert r["retry"] is True, r
    return r["ok"], r.get("error"), r.get("ids")


@pytest.mark.parametrize("transport", ["http", "zmq"])
@pytest.mark.parametrize("lost", ["answer", "commit"])
def test_unknown_outcome_answered_503_then_resolved(db, make_ingest, lost, transport):
    """The link to PostgreSQL goes silent right after the transaction is sent (PostgreSQL
    commits and its answer is swallowed: "answer"; or the transaction never arrives: "commit"),
    then is cut and stays cut past ADW_INGEST_DB_TIMEOUT_MS. The client is answered 503 (ZeroMQ:
    retry) with the unknown-outcome reason meanwhile; once the link is back the outcome is
    resolved by reading the batch back, and the client's retry with the same event_ids is
    answered with one id per event, each event stored once."""
    n = 3
    with FaultProxy((db.host, db.port)) as fp:
        url = f"postgresql://postgres@127.0.0.1:{fp.port}/{db.dbname}"
        ing = make_ingest(DATABASE_URL=url, ADW_INGEST_DB_TIMEOUT_MS="1500")
        assert adwtest.post_json(ing.base_url + "/api/events", ev())[2]["id"] == 1
        events = [ev("u", event_id=f"u-{i}", payload={"seq": i}) for i in range(n)]
        if lost == "answer":
            fp.blackhole_on(b"adw_batch", "down")
        else:
            fp.blackhole_on(b"adw_batch", "up", drop_trigger=True)
        result = []
        t = threading.Thread(target=lambda: result.append(submit(ing, transport, events)),
                             daemon=True)
        t.start()
        assert fp.triggered.wait(10), "the transaction never went through the proxy"

        def stored():
            return db.scalar("SELECT count(*) FROM events WHERE adw_id = 'u'")

        if lost == "answer":
            adwtest.wait_for(lambda: stored() == n, 10, what="the commit in PostgreSQL")
        fp.cut()  # and new connections refused until heal()
        t.join(15)
        assert result, "no answer while the outcome was unknown"
        ok, error, _ = result[0]
        assert not ok and UNKNOWN in error, result
        assert stored() == (n if lost == "answer" else 0)
        # The client retries with the same event_ids while the link is still cut: refused.
        ok, error, _ = submit(ing, transport, events)
        assert not ok and "database unavailable" in error
        fp.heal()
        outcome = "stored" if lost == "answer" else "not_stored"
        adwtest.wait_for(lambda: metric(ing, "adw_ingest_commit_outcome_lost_total"
                                        f'{{outcome="{outcome}"}}') == 1, 30,
                         what="the outcome resolved")
        assert f"are {outcome.replace('_', ' ')}" in ing.log_text()
        wait_status(ing, "/readyz", 200, timeout=30)
        ok, error, ids = submit(ing, transport, events)
        assert ok and ids == list(range(2, n + 2)), error
        rows = db.query("SELECT id, event_id FROM events ORDER BY id")
        assert [r[0] for r in rows] == list(range(1, n + 2))
        assert sorted(r[1] for r in rows[1:]) == sorted(e["event_id"] for e in events)
        assert submit(ing, transport, events)[2] == list(range(2, n + 2))


def test_postgres_killed_mid_stream_nothing_lost(db, make_ingest, tmp_path):
    """HTTP and ZeroMQ producers stream events with event_ids, retrying each 503 with the same
    event_ids, and adw-send runs as hooks do (over ZeroMQ and HTTP, spooling what is refused);
    PostgreSQL is killed (-m immediate) mid-stream and stays down longer than the clients'
    timeout (10 s for HTTP). Every request is answered meanwhile (none times out), every
    acknowledged event is stored once under its id, and every refused one, retried, ends stored
    once (adw-send's too, in the order they were made)."""
    ing = make_ingest(ADW_INGEST_DB_TIMEOUT_MS="1000")
    load = Load(ing, http_threads=3, zmq_threads=2, batch=5, deadline=300).start()
    senders = []
    if adwtest.have_binary("adw-send"):
        senders = [SendWorker("sz", ["--zmq", ing.zmq_endpoint], tmp_path / "spool-z"),
                   SendWorker("sh", ["--http", ing.base_url], tmp_path / "spool-h")]
    for sender in senders:
        sender.start()
    try:
        load.wait_acked(150, timeout=30)
        db.crash()
        refused = load.count(503) + load.count("zmq_refused")
        adwtest.wait_for(lambda: load.count(503) + load.count("zmq_refused") >= refused + 5, 20,
                         what="503s while PostgreSQL is down")
        time.sleep(12)  # longer than the HTTP clients' timeout
        assert load.count("conn_error") == 0, "an HTTP request got no answer within 10 s"
        before = len(load.acked)
        db.start()
        wait_status(ing, "/readyz", 200, timeout=30)
        load.wait_acked(before + 150, timeout=30)
    finally:
        load.stop()
        for sender in senders:
            sender.stop()
    for sender in senders:
        sender.drain()
        assert sender.check(db) > 0
    n = check_stored(db, load)
    assert load.count("conn_error") == 0
    print(f"pg killed mid-stream: {n} events stored, {load.count(503)} 503s, "
          f"{load.count('zmq_refused')} ZMQ refusals, {load.count('zmq_timeout')} ZMQ timeouts; "
          f"{ing.log_text().count('outcome was lost')} outcomes resolved by reading back, "
          f"{ing.log_text().count('outcome is unknown after')} answered unknown")
    assert ing.alive()
