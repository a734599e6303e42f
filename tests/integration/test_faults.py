"""Fault survival: ingest killed with SIGKILL at random moments, PostgreSQL crashed for 10 s, a
commit whose answer is lost, PostgreSQL's disk full, gateways killed in turn, a gateway stopped
while its high-water marks overflow, and link faults between ingest's PUB and a gateway's SUB.

Every event carries a sequence number and an event_id; producers retry until acknowledged and
record what was acknowledged (faultload.py). Each test asserts lost = 0 and duplicates = 0,
and order where events are delivered. ADW_LONG=1 runs the long versions (more kills, longer
load); ADW_SEED replays a run's random choices.
"""

import os
import sys
import threading
import time
from pathlib import Path

import adwtest
import pytest
from faultload import (LONG, Load, RssSampler, SendWorker, check_stored, ev, metric, rng,
                       wait_status)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from faultproxy import FaultProxy  # noqa: E402

pytestmark = pytest.mark.needs_bin("adw-ingest")


# ---- ingest killed ----


@pytest.mark.needs_bin("adw-send")
def test_ingest_kill9_at_random_moments_under_load(ingest, db, tmp_path):
    """Several SIGKILLs at random intervals while HTTP and ZeroMQ clients (retrying with the
    same event_ids) and adw-send processes (with a spool) keep sending. Every acknowledged
    event is stored once under its id, ids are contiguous, every event handed to adw-send is
    stored once and in order after its spool is drained."""
    r = rng("kill9")
    kills = 10 if LONG else 3
    load = Load(ingest, http_threads=2, zmq_threads=2, batch=5, deadline=600).start()
    senders = [SendWorker("sz", ["--zmq", ingest.zmq_endpoint], tmp_path / "spool-z"),
               SendWorker("sh", ["--http", ingest.base_url], tmp_path / "spool-h")]
    for s in senders:
        s.start()
    recoveries = []
    try:
        load.wait_acked(100)
        for _ in range(kills):
            time.sleep(r.uniform(0.3, 3.0))
            ingest.kill9()
            ingest.wait(5)
            time.sleep(r.uniform(0.1, 1.5))
            before = len(load.acked)
            t0 = time.monotonic()
            ingest.start_again()
            wait_status(ingest, "/readyz", 200, timeout=30)
            load.wait_acked(before + 1, timeout=30)
            recoveries.append(time.monotonic() - t0)
            load.wait_acked(before + 50, timeout=30)
    finally:
        for s in senders:
            s.stop()
        load.stop()
    for s in senders:
        s.drain()
    n = check_stored(db, load)
    handed = sum(s.check(db) for s in senders)
    assert load.count("conn_error") + load.count("zmq_timeout") >= 1
    print(f"kill9: {kills} kills, {n} events stored, {len(load.acked)} acknowledged to the "
          f"clients, {handed} through adw-send ({[s.codes for s in senders]}); first ack after "
          f"a restart within {max(recoveries):.2f} s (median "
          f"{sorted(recoveries)[len(recoveries) // 2]:.2f} s)")


# ---- PostgreSQL crashed ----


def test_postgres_crash_for_10s_under_load(ingest, db):
    """pg_ctl stop -m immediate mid-batch, 10 s down, started again (three times with
    ADW_LONG): no acknowledgement while it is down, ingest recovers by itself, nothing lost, the
    PUB stream complete and in order."""
    down_s, crashes = 10, 3 if LONG else 1
    figures = []
    with adwtest.SubCollector(ingest.pub_endpoint) as sub:
        sub.wait_joined()
        load = Load(ingest, http_threads=3, zmq_threads=2, batch=5, deadline=600).start()
        try:
            for _ in range(crashes):
                load.wait_acked(len(load.acked) + 200)
                t_crash = time.monotonic()
                db.crash()
                t_down = time.monotonic()
                refused = load.count(503) + load.count("zmq_refused")
                adwtest.wait_for(
                    lambda: load.count(503) + load.count("zmq_refused") >= refused + 3, 20,
                    what="503s while PostgreSQL is down")
                time.sleep(max(0.0, down_s - (time.monotonic() - t_crash)))
                before = len(load.acked)
                t_start = time.monotonic()
                db.start()
                t_up = time.monotonic()
                wait_status(ingest, "/readyz", 200, timeout=30)
                t_ready = time.monotonic()
                load.wait_acked(before + 1, timeout=30)
                first_ack = min(t for t in load.ack_t.values() if t >= t_up)
                # Nothing acknowledged while it was down (a commit answered just before the
                # crash may reach its client a moment later: 0.5 s of grace).
                late = load.acks_between(t_down + 0.5, t_start)
                assert not late, f"{len(late)} acknowledged while PostgreSQL was down: {late[:5]}"
                figures.append((t_start - t_crash, t_up - t_start, t_ready - t_up, first_ack - t_up))
            load.wait_acked(len(load.acked) + 200, timeout=30)
        finally:
            load.stop()
        n = check_stored(db, load)
        adwtest.wait_for(lambda: sum(m.topic != "$hb" for m in sub.snapshot()) >= n, 10,
                         what="every stored event published")
        published = [m.body["id"] for m in sub.snapshot() if m.topic != "$hb"]
        assert published == list(range(1, n + 1))
    for down, start, ready, ack in figures:
        print(f"pg crash: down {down:.1f} s; pg_ctl start took {start:.2f} s; ingest ready "
              f"{ready:.2f} s and first ack {ack:.2f} s after PostgreSQL was back")
    print(f"pg crash: {crashes} crashes, {n} events stored, {load.count(503)} 503s, "
          f"{load.count('zmq_refused')} ZMQ refusals, "
          f"{ingest.log_text().count('outcome was lost')} commits resolved by reading back")
    assert ingest.alive()


@pytest.mark.parametrize("lost,n", [("answer", 1), ("answer", 100), ("commit", 1),
                                    ("commit", 100)])
def test_commit_with_lost_outcome_is_resolved_not_guessed(db, make_ingest, lost, n):
    """Ingest reaches PostgreSQL through a fault proxy. The link goes silent right after the
    transaction is sent: either PostgreSQL commits and its answer is swallowed ("answer"), or
    the COMMIT never arrives ("commit"); then the link is cut. Ingest must not answer the client
    until it knows, must find out by reading the batch back, and the client's retry with the
    same event_ids must leave each event stored once. n=100 takes the COPY path, n=1 the
    pipelined INSERT."""
    with FaultProxy((db.host, db.port)) as fp:
        url = f"postgresql://postgres@127.0.0.1:{fp.port}/{db.dbname}"
        ing = make_ingest(DATABASE_URL=url)
        assert adwtest.post_json(ing.base_url + "/api/events", ev())[2]["id"] == 1
        events = [ev("u", event_id=f"u-{i}", payload={"seq": i}) for i in range(n)]
        # The one-statement batch names its prepared statement; the COPY path sends COMMIT last.
        trigger = b"adw_batch" if n < 64 else b"COMMIT"
        if lost == "answer":
            fp.blackhole_on(trigger, "down")
        else:
            fp.blackhole_on(trigger, "up", drop_trigger=True)
        result = []
        t = threading.Thread(target=lambda: result.append(
            adwtest.post_json(ing.base_url + "/api/events", events, timeout=60)), daemon=True)
        t.start()
        assert fp.triggered.wait(10), "the transaction never went through the proxy"

        def stored():
            return db.scalar("SELECT count(*) FROM events WHERE adw_id = 'u'")

        if lost == "answer":
            adwtest.wait_for(lambda: stored() == n, 10, what="the commit in PostgreSQL")
        time.sleep(1.0)
        assert stored() == (n if lost == "answer" else 0)
        assert not result, "answered while the commit's outcome was unknown"
        fp.cut()
        time.sleep(0.2)
        fp.heal()
        t.join(30)
        assert result, "no answer after the link came back"
        st, _, body = result[0]
        if lost == "answer":
            assert st == 200, body
            assert body["ids"] == list(range(2, n + 2))
        else:
            # Resolved as not stored: 503, and the client retries with the same event_ids.
            assert st == 503, body
            deadline = time.monotonic() + 20
            while st == 503 and time.monotonic() < deadline:
                time.sleep(0.1)  # as a client retries after Retry-After
                st, _, body = adwtest.post_json(ing.base_url + "/api/events", events, timeout=30)
            assert st == 200 and body["ids"] == list(range(2, n + 2)), body
        wait_status(ing, "/readyz", 200, timeout=20)
        rows = db.query("SELECT id, event_id FROM events ORDER BY id")
        assert [r[0] for r in rows] == list(range(1, n + 2))
        assert sorted(r[1] for r in rows[1:]) == sorted(e["event_id"] for e in events)
        outcome = "stored" if lost == "answer" else "not_stored"
        assert metric(ing, f'adw_ingest_commit_outcome_lost_total{{outcome="{outcome}"}}') == 1
        assert f"are {outcome.replace('_', ' ')}" in ing.log_text()
        print(f"lost {lost}, {n} events: resolved; log: "
              f"{[ln for ln in ing.log_text().splitlines() if 'outcome' in ln or 'failed' in ln]}")


def test_postgres_black_hole_while_migrating(db, make_ingest):
    """PostgreSQL goes silent while a starting ingest applies its schema (the link stays open,
    the answers are dropped): ingest gives up on the silent connection after
    ADW_INGEST_DB_TIMEOUT_MS instead of waiting for good, and is ready as soon as the link is
    back."""
    with FaultProxy((db.host, db.port)) as fp:
        fp.blackhole_on(b"adw_schema_migrations", "down")
        url = f"postgresql://postgres@127.0.0.1:{fp.port}/{db.dbname}"
        ing = make_ingest(DATABASE_URL=url, ADW_INGEST_DB_TIMEOUT_MS="1500", start=False)
        ing.start_again()
        assert fp.triggered.wait(10), "the migration never went through the proxy"
        adwtest.wait_for(lambda: "no answer from PostgreSQL" in ing.log_text(), 15,
                         what="ingest giving up on the silent connection")
        st, _, _ = adwtest.http_get(ing.base_url + "/readyz")
        assert st == 503
        fp.heal()
        t_heal = time.monotonic()
        wait_status(ing, "/readyz", 200, timeout=30)
        ready_s = time.monotonic() - t_heal
        st, _, body = adwtest.post_json(ing.base_url + "/api/events", ev())
        assert st == 200 and body["id"] == 1, body
        assert db.scalar("SELECT count(*) FROM events") == 1
        print(f"pg black hole while migrating: ready {ready_s:.2f} s after the link came back")


def test_postgres_link_black_hole_under_load(db, make_ingest):
    """The link between ingest and PostgreSQL silently drops everything for a while (packets
    lost, connection still open) under load, then comes back. Ingest must give up on the
    silent connection by itself (ADW_INGEST_DB_TIMEOUT_MS), acknowledge nothing it does not
    know to be stored, resolve the transaction it had in flight, and serve again."""
    hole_s = 20 if LONG else 5
    with FaultProxy((db.host, db.port)) as fp:
        url = f"postgresql://postgres@127.0.0.1:{fp.port}/{db.dbname}"
        ing = make_ingest(DATABASE_URL=url, ADW_INGEST_DB_TIMEOUT_MS="2000")
        load = Load(ing, http_threads=2, zmq_threads=1, batch=5, deadline=600).start()
        try:
            load.wait_acked(200)
            fp.blackhole()
            t_hole = time.monotonic()
            time.sleep(hole_s)
            refused = load.count(503) + load.count("zmq_refused")
            fp.heal()
            t_heal = time.monotonic()
            before = len(load.acked)
            load.wait_acked(before + 200, timeout=30)
        finally:
            load.stop()
        n = check_stored(db, load)
        t_back = min(t for t in load.ack_t.values() if t >= t_heal)
        st, _, body = adwtest.http_get(ing.base_url + "/readyz")
        assert st == 200, body
        assert refused >= 1, "nothing refused while PostgreSQL could not be reached"
        print(f"pg black hole: {hole_s} s; {refused} refusals during it; first ack "
              f"{t_back - t_heal:.2f} s after the link came back; {n} events stored; "
              f"{ing.log_text().count('outcome was lost')} commits resolved by reading back; "
              f"{len(load.acks_between(t_hole + 0.5, t_heal))} acknowledged during the hole")


# ---- gateways ----


class Feeder(threading.Thread):
    """Posts events over HTTP at about `rate` per second in small batches until stopped, each
    with event_id f-n and payload.seq n, retrying a batch on 503 or a dropped connection with
    the same event_ids. make(n) makes event n (default: runs r0..r2, steps plan/build,
    adw_event and system). .ids holds the acknowledged ids in order."""

    RUNS, STEPS = ("r0", "r1", "r2"), ("plan", "build")

    def __init__(self, ingest, rate=200, batch=5, make=None, limit=1000000):
        super().__init__(daemon=True)
        self.ingest, self.rate, self.batch, self.limit = ingest, rate, batch, limit
        self.make = make or self.default_event
        self.ids = []
        self.errors = []
        self.halt = threading.Event()

    @classmethod
    def default_event(cls, n):
        run, step = cls.RUNS[n % 3], cls.STEPS[(n // 3) % 2]
        if n % 7 == 0:
            e = {"type": "system", "adw_id": run, "step": step, "event": "step_start"}
        else:
            e = {"type": "adw_event", "adw_id": run, "step": step,
                 "event_type": "ToolUseBlock" if n % 2 else "TextBlock"}
        e.update(event_id=f"f-{n}", payload={"seq": n})
        return e

    def run(self):
        n, t0 = 0, time.monotonic()
        c = self.ingest.http(timeout=30)
        while not self.halt.is_set() and n < self.limit:
            batch = [self.make(k) for k in range(n, n + self.batch)]
            try:
                st, _, body = c.post_json("/api/events", batch)
            except OSError:
                c.reconnect()
                time.sleep(0.1)
                continue
            if st == 503:
                time.sleep(0.1)
                continue
            if st != 200:
                self.errors.append((st, body))
                break
            self.ids.extend(body["ids"])
            n += self.batch
            delay = t0 + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        c.close()

    def stop(self):
        self.halt.set()
        self.join(60)
        assert not self.is_alive() and not self.errors, self.errors[:3]
        return self.ids


class WsReader(threading.Thread):
    """Reads one WebSocket on its own thread, keeping every event (m with id and received_at)
    with its monotonic time of arrival."""

    def __init__(self, ws):
        super().__init__(daemon=True)
        self.ws = ws
        self.events, self.times = [], []
        self.halt = threading.Event()

    def run(self):
        from test_gateway_common import is_event
        while not self.halt.is_set():
            try:
                m = self.ws.recv(0.2)
            except TimeoutError:
                continue
            except adwtest.WsClosed:
                break
            if is_event(m):
                self.events.append(m)
                self.times.append(time.monotonic())

    def ids(self):
        return [m["id"] for m in list(self.events)]

    def wait_id(self, last_id, timeout=60):
        """Waits until the event last_id has arrived; returns the time it did."""
        adwtest.wait_for(lambda: self.events and self.events[-1]["id"] >= last_id, timeout,
                         what=f"event {last_id} delivered")
        return self.times[-1]

    def stop(self):
        self.halt.set()
        self.join(5)


@pytest.mark.needs_bin("adw-gateway")
def test_link_faults_between_pub_and_sub(make_ingest, make_gateway):
    """Ingest's PUB reaches the gateway's SUB through a fault proxy: delay, throttle, cut and a
    black hole (the connection stays open, nothing passes) while events keep coming. After each
    fault heals, the client has every event once and in order; the black hole is noticed (the
    gateway reconnects on its own while it lasts)."""
    from test_gateway_common import assert_contiguous, connect
    ingest = make_ingest()
    hold = 12 if LONG else 4
    with FaultProxy((adwtest.LOOPBACK, ingest.pub_port)) as fp:
        gw = make_gateway(f"tcp://{adwtest.LOOPBACK}:{fp.port}")
        ws = connect(gw)
        reader = WsReader(ws)
        reader.start()
        feed = Feeder(ingest, rate=150)
        feed.start()
        figures = {}
        try:
            adwtest.wait_for(lambda: len(feed.ids) >= 50, 20, what="events flowing")
            reader.wait_id(feed.ids[49], 20)
            for name, fault in [("delay 300 ms", lambda: fp.delay(300)),
                                ("throttle 2 KB/s", lambda: fp.throttle(2000)),
                                ("cut", fp.cut),
                                ("black hole", fp.blackhole)]:
                conns = fp.connections
                fault()
                t_fault = time.monotonic()
                if name == "black hole":
                    # Noticed: 3 s without even a $hb (ingest beats every second), and the
                    # gateway subscribes anew.
                    adwtest.wait_for(lambda: fp.connections > conns, 15,
                                     what="the black hole noticed")
                    figures["black hole noticed"] = time.monotonic() - t_fault
                    assert "nothing from ingest for 3000 ms" in gw.log_text()
                    st, _, body = adwtest.http_get(gw.base_url + "/readyz")
                    assert st == 503 and "no messages from ingest" in body["error"], (st, body)
                time.sleep(max(0.0, hold - (time.monotonic() - t_fault)))
                fp.heal()
                t_heal = time.monotonic()
                last = feed.ids[-1]
                figures[f"{name}: caught up after healing"] = reader.wait_id(last, 60) - t_heal
        finally:
            ids = feed.stop()
        reader.wait_id(ids[-1], 60)
        reader.stop()
        got = reader.ids()
        assert got == ids, "lost, duplicated or out of order"
        assert_contiguous(got)
        assert metric(gw, "adw_gateway_sub_disconnects_total") >= 1  # the cut
        assert metric(gw, "adw_gateway_sub_silences_total") >= 1  # the black hole
        ws.close()
    print("link faults: " + ", ".join(f"{k}: {v:.2f} s" for k, v in figures.items()) +
          f"; {len(ids)} events, {fp.connections} SUB connections made")


@pytest.mark.needs_bin("adw-gateway")
def test_gateway_postgres_link_black_hole(make_ingest, make_gateway):
    """The gateway reaches PostgreSQL through a fault proxy that black-holes the link for a
    while, with a tiny SUB high-water mark so that holes need PostgreSQL to be filled. The
    gateway must not hang on the silent connection: once the link is back the client has every
    event once and in order, and a new client's replay works."""
    from test_gateway_common import assert_contiguous, connect
    hole_s = 20 if LONG else 5
    ingest = make_ingest(ADW_INGEST_PUB_HWM="50")
    with FaultProxy((ingest.pg.host, ingest.pg.port)) as fp:
        url = f"postgresql://postgres@127.0.0.1:{fp.port}/{ingest.pg.dbname}"
        gw = make_gateway(ingest, DATABASE_URL=url, ADW_GATEWAY_SUB_HWM="20")
        ws = connect(gw)
        reader = WsReader(ws)
        reader.start()
        feed = Feeder(ingest, rate=300, batch=20)
        feed.start()
        try:
            adwtest.wait_for(lambda: len(feed.ids) >= 100, 20, what="events flowing")
            fp.blackhole()
            time.sleep(hole_s)
            fp.heal()
            t_heal = time.monotonic()
            last = feed.ids[-1]
            caught_up = reader.wait_id(last, 90) - t_heal
        finally:
            ids = feed.stop()
        reader.wait_id(ids[-1], 60)
        reader.stop()
        got = reader.ids()
        assert got == ids, "lost, duplicated or out of order"
        assert_contiguous(got)
        late = connect(gw, since=ids[len(ids) // 2])
        rest = late.collect(timeout=30, until=lambda m: m.get("type") == "replayed")
        assert [m["id"] for m in rest if "received_at" in m] == ids[len(ids) // 2 + 1:]
        late.close()
        ws.close()
    print(f"gateway pg black hole: {hole_s} s; caught up {caught_up:.2f} s after the link came "
          f"back; {len(ids)} events delivered once, in order")


def matches(flt, row):
    """filter_match for a row (id, adw_id, step, type, event_type or event)."""
    _, adw_id, step, type_, kind = row
    for key, value in (("adw_id", adw_id), ("steps", step), ("event_types", kind),
                       ("types", type_)):
        if key in flt and value not in flt[key].split(","):
            return False
    return True


@pytest.mark.needs_bin("adw-gateway")
def test_gateways_killed_in_turn_clients_resume_exactly_once(db, ingest, make_gateway):
    """Three gateways, each killed with SIGKILL and started again in turn while events flow;
    clients (some filtered by run, step, type) move to another gateway with since = the last id
    they hold. Each ends with every matching event exactly once, in id order."""
    r = rng("gateway kills")
    dur = 120 if LONG else 20
    gws = [make_gateway(ingest) for _ in range(3)]
    filters = [{}, {"adw_id": "r1"}, {"steps": "build"}, {"types": "system"},
               {"adw_id": "r2", "event_types": "ToolUseBlock"},
               {"adw_id": "r0,r2", "steps": "plan", "types": "adw_event"}] * 3
    fleet = adwtest.ResumingFleet(gws, filters).start()
    feed = Feeder(ingest, rate=150)
    kills = 0
    try:
        time.sleep(1.0)
        feed.start()
        t_end = time.monotonic() + dur
        while time.monotonic() < t_end:
            time.sleep(r.uniform(1.5, 4.0))
            g = gws[kills % 3]
            g.kill9()
            g.wait(5)
            kills += 1
            time.sleep(r.uniform(0.3, 1.5))
            g.start_again()
            g.wait_ready(g.base_url + "/readyz", 20)
        ids = feed.stop()
        rows = db.query("SELECT id, adw_id, step, type, coalesce(event_type, event) FROM events "
                        "ORDER BY id")
        assert [row[0] for row in rows] == ids
        want = [[row[0] for row in rows if matches(f, row)] for f in filters]
        adwtest.wait_for(lambda: all(len(got) >= len(w) for got, w in zip(fleet.ids, want)), 60,
                         what="every client caught up")
        time.sleep(0.5)  # anything extra would show now
    finally:
        feed.halt.set()
        fleet.close()
    for i, (got, w) in enumerate(zip(fleet.ids, want)):
        assert len(set(got)) == len(got), f"client {i} {filters[i]}: duplicates"
        assert got == sorted(got), f"client {i} {filters[i]}: out of order"
        assert got == w, f"client {i} {filters[i]}: {len(set(w) - set(got))} lost"
    assert sum(fleet.moves) >= kills
    rs = sorted(fleet.resume_s)
    print(f"gateway kills: {kills} kills in {dur} s, {len(ids)} events, {len(filters)} clients "
          f"moved {sum(fleet.moves)} times; resumed (replayed marker) median "
          f"{rs[len(rs) // 2]:.2f} s, max {rs[-1]:.2f} s after losing the connection")


# ---- PostgreSQL's disk full ----


def fill_disk(path, chunk=1 << 20):
    """Writes zeros to path until the file system is full; returns the bytes written."""
    block, n = b"\0" * chunk, 0
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(block)
            except OSError:
                break
        if chunk > 4096:  # the last bytes, too
            while True:
                try:
                    n += f.write(block[:4096])
                except OSError:
                    break
    return n


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@pytest.mark.parametrize("where", ["data", "wal"])
def test_postgres_disk_full(where):
    """PostgreSQL's data directory (pg_wal included), or only pg_wal, on a small tmpfs filled up
    under load: no acknowledgement for what is not stored, ingest refuses with 503 and its
    memory stays bounded, and it serves again once space returns (PostgreSQL started again if
    it stopped). A full data directory fails the transactions that extend a table (ERROR,
    53100) and PostgreSQL stays up; a full pg_wal makes it PANIC, and it cannot finish crash
    recovery until space returns."""
    from conftest import require_bin
    require_bin("adw-ingest")
    full_s = 30 if LONG else 6
    pg = adwtest.PgCluster(tmpfs=(where, 160 if where == "data" else 48))
    try:
        pg.start()
        # A small ASan quarantine, so that RSS shows the program's memory rather than ASan's.
        asan = os.environ.get("ASAN_OPTIONS", "")
        ing = adwtest.Ingest(pg, ASAN_OPTIONS=f"{asan}:quarantine_size_mb=4".lstrip(":"))
        rss = RssSampler(ing)
        rss.start()
        load = Load(ing, http_threads=3, zmq_threads=1, batch=20, deadline=600).start()
        try:
            load.wait_acked(500)
            t_base = time.monotonic()
            filler = pg.tmpfs_dir / "filler"
            filled = fill_disk(filler)
            t_full = time.monotonic()
            refused = lambda: load.count(503) + load.count("zmq_refused")  # noqa: E731
            adwtest.wait_for(lambda: refused() >= 5, 60, what="refusals while the disk is full")
            t_refusing = time.monotonic()
            time.sleep(full_s)
            acked_full = len(load.acks_between(t_refusing, time.monotonic()))
            filler.unlink()
            t_space = time.monotonic()
            panicked = not pg.is_running()
            if panicked:
                pg.start()
            before = len(load.acked)
            wait_status(ing, "/readyz", 200, timeout=60)
            load.wait_acked(before + 200, timeout=60)
            t_back = min(t for t in load.ack_t.values() if t >= t_space)
        finally:
            load.stop()
            rss.stop()
        n = check_stored(pg, load)
        base_kb, full_kb = rss.peak(0, t_base), rss.peak(t_full, t_space)
        assert full_kb < base_kb + 64 * 1024, f"ingest grew from {base_kb} to {full_kb} KiB"
        assert ing.alive()
        pglog = pg.logfile.read_text(errors="replace")
        what = [ln.split("  ", 1)[-1][:140] for ln in pglog.splitlines()
                if "No space left" in ln or "PANIC" in ln or "startup process" in ln][:4]
        print(f"disk full ({where}): filler {filled >> 20} MiB; refusing {t_refusing - t_full:.1f} s after "
              f"the disk filled; {acked_full} acknowledged while full (all stored); "
              f"PostgreSQL {'stopped (PANIC), restarted' if panicked else 'stayed up'}; first "
              f"ack {t_back - t_space:.2f} s after space returned; ingest RSS {base_kb >> 10} MiB "
              f"before, {full_kb >> 10} MiB peak while full; {n} events stored, "
              f"{load.count(503)} 503s, {ing.log_text().count('outcome was lost')} commits "
              f"resolved by reading back; PostgreSQL said: {what}")
    finally:
        pg.destroy()
