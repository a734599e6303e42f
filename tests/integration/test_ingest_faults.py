"""adw-ingest under faults: PostgreSQL down or crashed under load, ingest killed under load, a
standby taking over from a killed leader, and SIGTERM with requests in flight. Clients retry on
503 with the same event_id, as adw-send does; afterwards every acknowledged event must be
stored under the id it was acknowledged with, and ids must be contiguous from 1."""

import http.client
import json
import signal
import threading
import time

import adwtest
import pytest
import zmq

pytestmark = pytest.mark.needs_bin("adw-ingest")


def ev(adw_id="run1", **kw):
    e = {"type": "adw_event", "adw_id": adw_id, "event_type": "ToolUseBlock"}
    e.update(kw)
    return e


class Load:
    """Client threads posting batches (HTTP keep-alive, or ZeroMQ DEALER) until stopped or
    `limit` batches each, retrying a batch with the same event_ids on 503, on a refused or
    dropped connection, or on a missing reply. Records every acknowledged event_id -> id."""

    def __init__(self, ingest, http_threads=3, zmq_threads=1, batch=5, limit=100000,
                 deadline=60.0):
        self.ingest = ingest
        self.batch = batch
        self.limit = limit
        self.deadline = time.monotonic() + deadline
        self.acked = {}  # event_id -> id
        self.status = {}  # answers seen: status -> count
        self.errors = []  # anything unexpected
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._http, args=(f"h{i}",), daemon=True)
                        for i in range(http_threads)]
        self.threads += [threading.Thread(target=self._zmq, args=(f"z{i}",), daemon=True)
                         for i in range(zmq_threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "load threads did not stop"
        assert not self.errors, self.errors[:5]

    def running(self):
        return not self.stop_flag.is_set() and time.monotonic() < self.deadline

    def _note(self, what, events=None, ids=None):
        with self.lock:
            self.status[what] = self.status.get(what, 0) + 1
            if ids is not None:
                for e, i in zip(events, ids):
                    old = self.acked.setdefault(e["event_id"], i)
                    if old != i:
                        self.errors.append(f"{e['event_id']} acknowledged as {old} then {i}")

    def count(self, what):
        with self.lock:
            return self.status.get(what, 0)

    def wait_acked(self, n, timeout=20.0):
        adwtest.wait_for(lambda: len(self.acked) >= n, timeout, what=f"{n} acknowledged events")

    def _batches(self, name):
        for k in range(self.limit):
            yield [ev(f"{name}", event_id=f"{name}-{k}-{j}", summary=f"{k}.{j}")
                   for j in range(self.batch)]

    def _http(self, name):
        conn = None
        for events in self._batches(name):
            while self.running():
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(adwtest.LOOPBACK,
                                                          self.ingest.http_port, timeout=10)
                    conn.request("POST", "/api/events", json.dumps(events),
                                 {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    body = json.loads(resp.read())
                    if resp.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException, ValueError):
                    self._note("conn_error")
                    if conn is not None:
                        conn.close()
                    conn = None
                    time.sleep(0.05)
                    continue
                if resp.status == 200:
                    self._note(200, events, body["ids"])
                    break
                self._note(resp.status)
                if resp.status != 503:
                    self.errors.append(f"HTTP {resp.status}: {body}")
                    return
                if resp.getheader("Retry-After") != "1":
                    self.errors.append("503 without Retry-After: 1")
                time.sleep(0.05)
            if not self.running():
                break
        if conn is not None:
            conn.close()

    def _zmq(self, name):
        sock = None
        for events in self._batches(name):
            while self.running():
                if sock is None:
                    sock = adwtest.zmq_context().socket(zmq.DEALER)
                    sock.setsockopt(zmq.LINGER, 0)
                    sock.connect(self.ingest.zmq_endpoint)
                sock.send(adwtest.mp_pack(events))
                if not sock.poll(3000):
                    # Ingest gone or restarting: a fresh socket, so a late reply cannot be
                    # taken for the next request's.
                    self._note("zmq_timeout")
                    sock.close(0)
                    sock = None
                    continue
                r = adwtest.mp_unpack(sock.recv_multipart()[-1])
                if r.get("ok"):
                    self._note("zmq_ok", events, r["ids"])
                    break
                self._note("zmq_refused")
                if not r.get("retry"):
                    self.errors.append(f"ZMQ refusal without retry: {r}")
                    if sock is not None:
                        sock.close(0)
                    return
                time.sleep(0.05)
            if not self.running():
                break
        if sock is not None:
            sock.close(0)


def check_stored(db, load):
    """Every acknowledged event is stored under its id, once; ids are 1..max without a hole."""
    rows = db.query("SELECT id, event_id FROM events ORDER BY id")
    ids = [r[0] for r in rows]
    assert ids == list(range(1, len(ids) + 1)), "ids are not contiguous from 1"
    by_event = {r[1]: r[0] for r in rows}
    assert len(by_event) == len(rows)
    missing = {k: v for k, v in load.acked.items() if by_event.get(k) != v}
    assert not missing, f"{len(missing)} acknowledged events not stored as acknowledged"
    # Run state agrees with the rows.
    runs = dict(db.query("SELECT adw_id, event_count FROM adw_runs"))
    counts = dict(db.query("SELECT adw_id, count(*) FROM events GROUP BY adw_id"))
    assert runs == counts
    return len(ids)


def metric(ingest, series):
    """The value of one series of GET /metrics (None when absent)."""
    _, _, text = adwtest.http_get(ingest.base_url + "/metrics", timeout=5)
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return None


def wait_status(ingest, path, status, timeout=15.0):
    def probe():
        try:
            st, h, body = adwtest.http_get(ingest.base_url + path, timeout=2)
        except (OSError, http.client.HTTPException):
            return None
        return (st, h, body) if st == status else None

    return adwtest.wait_for(probe, timeout, what=f"{path} answering {status}")


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


def test_postgres_crash_and_restart_under_load(ingest, db):
    with adwtest.SubCollector(ingest.pub_endpoint) as sub:
        sub.wait_joined()
        load = Load(ingest, http_threads=3, zmq_threads=2, batch=5).start()
        try:
            load.wait_acked(200)
            db.crash()  # pg_ctl stop -m immediate
            adwtest.wait_for(lambda: load.count(503) + load.count("zmq_refused") >= 3, 20,
                             what="503s while PostgreSQL is down")
            before = len(load.acked)
            time.sleep(0.5)
            db.start()
            wait_status(ingest, "/readyz", 200, timeout=30)
            load.wait_acked(before + 200, timeout=30)
        finally:
            load.stop()
        n = check_stored(db, load)
        assert n >= len(load.acked)
        # The PUB stream, too, carried each stored event once and in order.
        adwtest.wait_for(lambda: sum(m.topic != "$hb" for m in sub.snapshot()) >= n, 10,
                         what="every stored event published")
        published = [m.body["id"] for m in sub.snapshot() if m.topic != "$hb"]
        assert published == list(range(1, n + 1))
    assert ingest.alive()


def test_ingest_killed_under_load_and_restarted(ingest, db):
    load = Load(ingest, http_threads=3, zmq_threads=1, batch=10).start()
    try:
        load.wait_acked(300)
        ingest.kill9()
        ingest.wait(5)
        time.sleep(0.3)
        acked_at_kill = len(load.acked)
        ingest.start_again()
        wait_status(ingest, "/readyz", 200, timeout=20)
        load.wait_acked(acked_at_kill + 300, timeout=30)
    finally:
        load.stop()
    assert load.count("conn_error") + load.count("zmq_timeout") >= 1
    check_stored(db, load)


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
