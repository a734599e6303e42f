"""adw-gateway: resume with since on another gateway (also while 1,000 events are being
published), holes in what the gateway receives (tiny SUB high-water mark, a late start,
SIGSTOP, an ingest restart), a gateway killed with SIGKILL, and a database replaced under it."""

import signal
import threading
import time

import adwtest
import pytest
from test_gateway_common import (assert_contiguous, connect, ev, is_event, metric, post,
                                 recv_events, wait_delivered)

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")


class Publisher(threading.Thread):
    """Posts n events in small batches on its own thread; .ids holds what ingest answered."""

    def __init__(self, ingest, n, batch=10, make=None, pause=0.0):
        super().__init__(daemon=True)
        self.ingest, self.n, self.batch, self.pause = ingest, n, batch, pause
        self.make = make or (lambda i: ev(adw_id="r1" if i % 2 else "r2", summary=f"e{i}"))
        self.ids = []
        self.error = None

    def run(self):
        try:
            with self.ingest.http(timeout=30) as c:
                for i in range(0, self.n, self.batch):
                    batch = [self.make(j) for j in range(i, min(i + self.batch, self.n))]
                    self.ids.extend(post(self.ingest, batch, client=c))
                    if self.pause:
                        time.sleep(self.pause)
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def finish(self, timeout=120):
        self.join(timeout)
        assert not self.is_alive(), "publisher still running"
        assert self.error is None, self.error
        return self.ids


def read_until(ws, last_id, timeout=60):
    """All messages until the event with last_id (included)."""
    got = ws.collect(timeout=timeout, until=lambda m: is_event(m) and m["id"] >= last_id)
    assert got and is_event(got[-1]) and got[-1]["id"] == last_id, (
        f"stopped at {got[-1] if got else None}, want {last_id}")
    return got


@pytest.mark.parametrize("flt", [{}, {"adw_id": "r1"}])
def test_resume_on_other_gateway_during_publishing(ingest, make_gateway, flt):
    g1 = make_gateway(ingest)
    g2 = make_gateway(ingest)
    post(ingest, [ev(adw_id="r1"), ev(adw_id="r2")])  # before anyone listens
    a = connect(g1, **flt)
    pub = Publisher(ingest, 1000, batch=5, pause=0.002)
    pub.start()
    first = a.collect(timeout=60, pred=is_event, count=150)
    assert len(first) == 150
    last_seen = first[-1]["id"]
    a.close()
    b = connect(g2, since=last_seen, **flt)
    pub.finish()
    # What the filter selects, from the database's own view.
    rows = ingest.pg.query("SELECT id, adw_id FROM events ORDER BY id")
    match = [i for i, adw in rows if not flt or adw == flt["adw_id"]]
    got = read_until(b, match[-1])
    kinds = [("r" if m.get("type") == "replayed" and not is_event(m) else "e") for m in got]
    assert kinds.count("r") == 1, "exactly one replayed marker"
    rep = got[kinds.index("r")]
    got_ids = [m["id"] for m in got if is_event(m)]
    assert got_ids == [i for i in match if i > last_seen]
    assert rep["count"] == len([m for m in got[:kinds.index("r")] if is_event(m)])
    assert all(m["id"] <= rep["last_id"] for m in got[:kinds.index("r")] if is_event(m))
    assert all(m["id"] > rep["last_id"] for m in got[kinds.index("r") + 1:] if is_event(m))
    # And what a came through before is exactly the start of the same sequence.
    first_ids = [m["id"] for m in first]
    assert first_ids == [i for i in match if i <= last_seen][-len(first_ids):]
    b.close()


def test_since_on_connect_replays_then_live(ingest, gateway):
    ids = post(ingest, [ev(summary=str(i)) for i in range(600)])
    wait_delivered(gateway, ids[-1])  # so that all of them are replayed, none live
    ws = connect(gateway, since=ids[99])
    got = ws.collect(timeout=30, until=lambda m: m.get("type") == "replayed" and not is_event(m))
    assert [m["id"] for m in got if is_event(m)] == ids[100:]
    assert got[-1]["count"] == 500 and got[-1]["last_id"] == ids[-1]
    more = post(ingest, [ev(), ev()])
    assert [m["id"] for m in recv_events(ws, 2)] == more
    ws.close()


def test_replay_of_large_events_is_paced_by_the_client(ingest, make_gateway):
    # 300 events of ~40 KB through a 256 KiB backlog bound: the replay waits for the client
    # instead of overrunning the bound, so the client is not culled.
    gw = make_gateway(ingest, ADW_GATEWAY_MAX_QUEUE="256k")
    big = "x" * 40000
    ids = post(ingest, [ev(payload={"blob": big, "i": i}) for i in range(300)], batch=20)
    wait_delivered(gw, ids[-1])  # so that all of them are replayed, none live
    ws = connect(gw, since=0)
    got = ws.collect(timeout=60, until=lambda m: m.get("type") == "replayed" and not is_event(m))
    assert [m["id"] for m in got if is_event(m)] == ids
    assert ws.close_code is None
    ws.close()


def test_hole_from_tiny_hwm(make_ingest, make_gateway):
    # A SUB socket that cannot keep up pushes back on the publisher, whose own high-water
    # mark then drops: the gateway sees holes and fills them from PostgreSQL.
    ingest = make_ingest(ADW_INGEST_PUB_HWM="5")
    gw = make_gateway(ingest, ADW_GATEWAY_SUB_HWM="1")
    ws = connect(gw)
    ids = post(ingest, [ev(summary=str(i), payload={"pad": "p" * 500}) for i in range(3000)],
               batch=1000)
    got = [m["id"] for m in recv_events(ws, 3000, timeout=90)]
    assert got == ids
    assert_contiguous(got)
    assert not [m for m in ws.collect(timeout=0.5) if is_event(m)]
    assert metric(gw, "adw_gateway_hole_fills_total") >= 1
    assert metric(gw, "adw_gateway_hole_filled_events_total") >= 1
    ws.close()


def test_gateway_started_late(ingest, make_gateway):
    early = post(ingest, [ev(summary=str(i)) for i in range(50)])
    gw = make_gateway(ingest)
    live = connect(gw)
    assert live.hello["last_id"] == early[-1]
    old = connect(gw, since=0)
    got = old.collect(timeout=20, until=lambda m: m.get("type") == "replayed" and not is_event(m))
    assert [m["id"] for m in got if is_event(m)] == early
    later = post(ingest, [ev(), ev()])
    assert [m["id"] for m in recv_events(live, 2)] == later
    assert [m["id"] for m in recv_events(old, 2)] == later
    live.close()
    old.close()


def test_sigstop_then_continue_delivers_everything_once(make_ingest, make_gateway):
    # Stopped for 5 s while 10,000 events pass, with high-water marks that overflow at once:
    # the gateway finds the holes (events and heartbeats ahead of it) and fills them from
    # PostgreSQL, delivering every event once and in order.
    ingest = make_ingest(ADW_INGEST_PUB_HWM="20")
    gw = make_gateway(ingest, ADW_GATEWAY_SUB_HWM="5")
    ws = connect(gw)
    first = post(ingest, [ev()])
    assert [m["id"] for m in recv_events(ws, 1)] == first
    n = 10000
    gw.signal(signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        ids = post(ingest, [ev(summary=str(i), event_id=f"s-{i}", payload={"seq": i})
                            for i in range(n)], batch=500)
        posted = time.monotonic() - t0
        time.sleep(max(0.0, 5.0 - posted))  # heartbeats pile up too
    finally:
        gw.signal(signal.SIGCONT)
    stopped = time.monotonic() - t0
    got = recv_events(ws, n, timeout=120)
    caught_up = time.monotonic() - t0 - stopped
    assert [m["id"] for m in got] == ids
    assert [m["payload"]["seq"] for m in got] == list(range(n))
    assert_contiguous([first[0]] + ids)
    assert metric(gw, "adw_gateway_hole_fills_total") >= 1
    filled = metric(gw, "adw_gateway_hole_filled_events_total")
    after = post(ingest, [ev()])
    assert [m["id"] for m in recv_events(ws, 1)] == after
    print(f"sigstop: {n} events posted in {posted:.1f} s, stopped {stopped:.1f} s, all delivered "
          f"{caught_up:.1f} s after SIGCONT, {filled:.0f} of them read from PostgreSQL")
    ws.close()


def test_ingest_restart_is_bridged(ingest, gateway):
    ws = connect(gateway)
    a = post(ingest, [ev() for _ in range(10)])
    assert [m["id"] for m in recv_events(ws, 10)] == a
    ingest.restart()
    b = post(ingest, [ev() for _ in range(10)])  # at once: the SUB may not have rejoined yet
    got = [m["id"] for m in recv_events(ws, 10, timeout=30)]
    assert got == b
    assert_contiguous(a + got)
    ws.close()


def test_kill9_clients_resume_elsewhere_losing_nothing(ingest, make_gateway):
    g1 = make_gateway(ingest)
    g2 = make_gateway(ingest)
    ws = connect(g1)
    pub = Publisher(ingest, 600, batch=5, pause=0.005)
    pub.start()
    got = ws.collect(timeout=60, pred=is_event, count=100)
    assert len(got) == 100
    g1.kill9()
    got += ws.collect(timeout=10, pred=is_event)  # whatever was in flight
    assert ws.close_code is not None
    last = got[-1]["id"]
    ws2 = connect(g2, since=last)
    ids = pub.finish()
    rest = read_until(ws2, ids[-1])
    all_ids = [m["id"] for m in got] + [m["id"] for m in rest if is_event(m)]
    assert all_ids == ids
    ws2.close()


def test_database_replaced_new_epoch(db, make_ingest, make_gateway):
    ing = make_ingest()
    gw = make_gateway(ing)
    ws = connect(gw)
    old_epoch = ws.hello["epoch"]
    a = post(ing, [ev() for _ in range(5)])
    assert [m["id"] for m in recv_events(ws, 5)] == a
    ing.stop()
    db.reset()  # a new, empty database: ids start over under a new epoch
    ing.start_again()
    ing.wait_ready(ing.base_url + "/readyz", 30)
    b = post(ing, [ev() for _ in range(3)])
    assert b == [1, 2, 3]
    got = [m["id"] for m in recv_events(ws, 3, timeout=30)]
    assert got == b
    ws2 = connect(gw)
    assert ws2.hello["epoch"] != old_epoch
    wait_delivered(gw, 3)
    ws.close()
    ws2.close()
