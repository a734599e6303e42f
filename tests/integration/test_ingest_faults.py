"""adw-ingest under faults: PostgreSQL down, ingest started before it, a standby taking over
from a killed leader, SIGTERM with requests in flight, a slow commit. (PostgreSQL crashed under
load and ingest killed under load: test_faults.py.)"""

import http.client
import threading
import time

import adwtest
import pytest
from faultload import ev, metric, wait_status

pytestmark = pytest.mark.needs_bin("adw-ingest")


def test_503_while_postgres_is_down(ingest, db):
    with ingest.http() as c:
        assert c.post_json("/api/events", ev())[2] == {"status": "broadcasted", "id": 1}
    db.stop()
    # Found unavailable within a ping interval; every submission is then refused with 503.
    _, h, body = wait_status(ingest, "/readyz", 503)
    assert h.get("Retry-After") == "1"
    assert body["status"] == "unavailable" and "database unavailable" in body["reason"]
    assert adwtest.http_get(ingest.base_url + "/healthz")[0] == 200
    with ingest.http() as c:
        for path in ("/api/events", "/api/events/broadcast"):
            st, h, body = c.post_json(path, [ev(), ev()])
            assert st == 503 and h.get("Retry-After") == "1"
            assert "retry later" in body["error"]
        st, _, _ = c.post_json("/api/hooks?adw_id=a", {"hook_event_name": "Stop"})
        assert st == 503
    r = adwtest.zmq_submit(ingest.zmq_endpoint, ev())
    assert r["ok"] is False and r["retry"] is True and "unavailable" in r["error"]
    with ingest.http() as c:
        st, _, text = c.get("/metrics")
        assert 'adw_ingest_rejected_total{reason="unavailable"} ' in text
        assert "adw_ingest_store_state 0" in text
    db.start()
    # Back by itself; ids continue.
    wait_status(ingest, "/readyz", 200, timeout=20)
    with ingest.http() as c:
        assert c.post_json("/api/events", ev())[2] == {"status": "broadcasted", "id": 2}
    assert adwtest.zmq_submit(ingest.zmq_endpoint, ev()) == {"ok": True, "ids": [3]}
    assert db.scalar("SELECT count(*) FROM events") == 3


def test_start_before_postgres(make_ingest, db):
    db.stop()
    ing = make_ingest(start=False)
    ing.start()
    _, _, body = wait_status(ing, "/readyz", 503)
    assert "database unavailable" in body["reason"]
    st, _, _ = adwtest.post_json(ing.base_url + "/api/events", ev())
    assert st == 503
    db.start()
    wait_status(ing, "/readyz", 200, timeout=20)
    assert adwtest.post_json(ing.base_url + "/api/events", ev())[2]["id"] == 1


def test_standby_takes_over_from_a_killed_leader(make_ingest, db):
    leader = make_ingest(name="leader")
    assert adwtest.post_json(leader.base_url + "/api/events", [ev(), ev()])[2]["ids"] == [1, 2]
    standby = make_ingest(name="standby", start=False)
    standby.start()
    # Connecting first, then standing by.
    adwtest.wait_for(lambda: "standby" in wait_status(standby, "/readyz", 503)[2]["reason"], 15,
                     what="the second ingest standing by")
    st, h, body = adwtest.post_json(standby.base_url + "/api/events", ev())
    assert st == 503 and h.get("Retry-After") == "1"
    r = adwtest.zmq_submit(standby.zmq_endpoint, ev())
    assert r["ok"] is False and r["retry"] is True
    # The leader is unaffected.
    assert adwtest.post_json(leader.base_url + "/api/events", ev())[2]["id"] == 3
    with adwtest.SubCollector(standby.pub_endpoint) as sub:
        leader.kill9()
        leader.wait(5)
        wait_status(standby, "/readyz", 200, timeout=20)
        assert adwtest.post_json(standby.base_url + "/api/events", ev())[2]["id"] == 4
        assert adwtest.zmq_submit(standby.zmq_endpoint, [ev(), ev()]) == {"ok": True,
                                                                           "ids": [5, 6]}
        beat = sub.wait_for(lambda m: m.topic == "$hb" and m.body["last_id"] == 6, timeout=5)
        assert beat.body["epoch"] == int(db.scalar("SELECT value FROM adw_meta"))
    assert [r[0] for r in db.query("SELECT id FROM events ORDER BY id")] == [1, 2, 3, 4, 5, 6]


def test_sigterm_answers_requests_in_flight_and_exits_0(ingest, db):
    # Hold the events table so that the submissions wait for their commit.
    blocker = db.connect(autocommit=False)
    cur = blocker.cursor()
    cur.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    results = {}

    def submit(k):
        try:
            results[k] = adwtest.post_json(ingest.base_url + "/api/events",
                                           [ev(summary=f"{k}.{j}") for j in range(50)],
                                           timeout=30)[:3:2]
        except Exception as e:  # noqa: BLE001 - recorded for the assertion
            results[k] = repr(e)

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    with ingest.zmq() as z:
        z.send([ev("z", summary=str(j)) for j in range(10)])
        # Every request has reached the pipeline, and waits on the lock.
        adwtest.wait_for(lambda: metric(ingest, 'adw_ingest_received_total{transport="http"}')
                         == 200 and metric(ingest, 'adw_ingest_received_total{transport="zmq"}')
                         == 10, 10, what="the requests received")
        adwtest.wait_for(lambda: metric(ingest, "adw_ingest_pending_events") == 210, 10,
                         what="the requests waiting for their commit")
        assert not results
        ingest.terminate()
        time.sleep(0.5)
        assert ingest.alive()  # still waiting for the commit
        # New connections are no longer taken.
        with pytest.raises((OSError, http.client.HTTPException)):
            adwtest.http_get(ingest.base_url + "/healthz", timeout=2)
        blocker.commit()  # let the transaction through
        blocker.close()
        reply = z.recv(15)
    for t in threads:
        t.join(30)
    assert ingest.wait(20) == 0
    assert reply["ok"] is True and len(reply["ids"]) == 10
    assert all(isinstance(r, tuple) and r[0] == 200 for r in results.values()), results
    ids = sorted(i for r in results.values() for i in r[1]["ids"]) + reply["ids"]
    assert sorted(ids) == list(range(1, 211))
    assert db.scalar("SELECT count(*) FROM events") == 210
    assert "stopped" in ingest.log_text()


def test_a_slow_commit_holds_up_only_its_own_submitter(ingest, db):
    """While one submission waits for its commit, another client's refusal is answered at once;
    the waiting client's own later refusal waits for it, so its replies stay in order."""
    blocker = db.connect(autocommit=False)
    blocker.cursor().execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    try:
        with ingest.zmq() as slow, ingest.zmq() as other, ingest.http() as c:
            slow.send(ev(summary="waits"))
            slow.send(ev(duration_ms=-1))
            adwtest.wait_for(lambda: metric(ingest, "adw_ingest_pending_events") == 1, 10,
                             what="the submission waiting for its commit")
            r = other.submit(ev(duration_ms=-1), timeout=5)
            assert r["ok"] is False and "duration_ms" in r["error"]
            st, _, body = c.post_json("/api/events", ev(payload=[]))
            assert st == 400
            with pytest.raises(TimeoutError):
                slow.recv(0.5)  # its refusal waits behind its own commit
            blocker.commit()
            assert slow.recv(10) == {"ok": True, "ids": [1]}
            assert "duration_ms" in slow.recv(10)["error"]
    finally:
        blocker.close()
