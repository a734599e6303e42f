"""Recovery storms: replays take turns to read PostgreSQL (ADW_GATEWAY_MAX_REPLAYS), never refused
nor closed for it, and a gateway killed under load loses no client an event nor gives one twice.

Runs alone (tests/run.sh's ALONE list): hundreds of connections, a SIGKILL, haproxy."""

import shutil
import threading
import time

import adwtest
import psycopg2
import pytest
import stormkit
from conftest import require_bin


def post_events(ingest, n, run="storm"):
    """Stores n events (ZeroMQ arrays of 200); returns their ids."""
    ids = []
    with ingest.zmq() as z:
        for first in range(0, n, 200):
            batch = [{"type": "adw_event", "adw_id": run, "step": "build",
                      "event_type": "ToolUseBlock", "summary": f"event {first + k}",
                      "payload": {"tool_name": "Write", "file_path": "/src/a.py", "k": first + k}}
                     for k in range(min(200, n - first))]
            rep = z.submit(batch, timeout=20)
            assert rep["ok"], rep
            ids.extend(rep["ids"])
    return ids


def test_replays_past_the_bound_wait_in_order_and_none_is_refused(db, make_ingest, make_gateway):
    """12 clients resume at once with since=0 while PostgreSQL holds every read of events
    (a table lock): exactly one replay page is read (ADW_GATEWAY_MAX_REPLAYS=1, of 4 database
    threads), eleven wait, none is closed; once the lock goes, each client gets every event
    once, in order, then its `replayed` message (600 events: 3 pages each, taking turns)."""
    ingest = make_ingest()
    ids = post_events(ingest, 600)
    gw = make_gateway(ingest, ADW_GATEWAY_MAX_REPLAYS="1", ADW_GATEWAY_DB_THREADS="4")
    locker = psycopg2.connect(db.dsn())
    clients = []
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            for _ in range(12):
                clients.append(gw.ws("since=0", compression=None, max_size=2**22, max_queue=None))
            adwtest.wait_for(lambda: (stormkit.gateway_metrics(gw) or {}).get(
                "adw_gateway_replays_waiting") == 11, 10, what="eleven replays waiting")
            m = stormkit.gateway_metrics(gw)
            assert m["adw_gateway_replays_active"] == 1
            assert m["adw_gateway_replays_active_max"] == 1
            blocked = db.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                "wait_event_type = 'Lock'", (db.dbname,))
            assert blocked == 1, "one replay query at a time may reach PostgreSQL"
            time.sleep(0.5)  # nobody is closed for waiting
            for c in clients:
                assert c.close_code is None
            locker.commit()
        for i, c in enumerate(clients):
            got = c.events(len(ids), timeout=30)
            assert [e["id"] for e in got] == ids, f"client {i}: gap, duplicate or disorder"
            done = c.wait_for(lambda m: isinstance(m, dict) and m.get("type") == "replayed", 10)
            assert done["count"] == len(ids) and done["last_id"] == ids[-1]
        m = stormkit.gateway_metrics(gw)
        assert m["adw_gateway_replays_active_max"] == 1
        # 11 waited at once; 12 once the first replay's next page queued behind them.
        assert 11 <= m["adw_gateway_replays_waiting_max"] <= 12
        assert m["adw_gateway_replays_active"] == 0 and m["adw_gateway_replays_waiting"] == 0
        assert m["adw_gateway_replay_failures_total"] == 0
        assert m["adw_gateway_replay_wait_seconds_count"] >= 12
    finally:
        locker.close()
        for c in clients:
            c.close()


def test_a_client_at_the_position_is_not_read_from_postgresql(db, make_ingest, make_gateway):
    """since at or above the gateway's position: `replayed` at once, with no replay page read
    even while every read of events is blocked."""
    ingest = make_ingest()
    ids = post_events(ingest, 50)
    gw = make_gateway(ingest, ADW_GATEWAY_MAX_REPLAYS="1")
    with gw.ws("since=0") as c:  # the gateway knows the position once it has served it
        c.events(len(ids))
    locker = psycopg2.connect(db.dsn())
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            for since in (ids[-1], ids[-1] + 1000):
                with gw.ws(f"since={since}") as c:
                    done = c.wait_for(lambda m: isinstance(m, dict) and
                                      m.get("type") == "replayed", 5)
                    assert done["count"] == 0
            locker.commit()
    finally:
        locker.close()
    m = stormkit.gateway_metrics(gw)
    assert m["adw_gateway_replays_active_max"] <= 1 and m["adw_gateway_replays_waiting_max"] == 0


N_CLIENTS = 300


def test_storm_through_haproxy_every_client_has_every_event_once(db, tmp_path):
    """300 clients (8 source addresses) connect through haproxy (as deploy/haproxy.cfg) while
    only gateway 1 of 3 is in service, so that it holds them all; the other two are then put in
    service. A stream of 1,000 events at 80/s; after 300 are stored gateway 1 is killed with
    SIGKILL. Every client resumes with since through haproxy on the other two and ends with
    every event exactly once and in order, and no surviving gateway ever read more than
    ADW_GATEWAY_MAX_REPLAYS (2 of 4 database threads) replay pages at once nor closed a client
    for its replay."""
    if not shutil.which("haproxy"):
        pytest.skip("haproxy not installed")
    require_bin("adw-ingest", "adw-gateway", "adw-bench")
    storm = stormkit.Storm(db, n_gateways=3, log_dir=tmp_path,
                           gateway_env={"ADW_GATEWAY_MAX_REPLAYS": "2",
                                        "ADW_GATEWAY_DB_THREADS": "4"})
    try:
        res = storm.run(clients=N_CLIENTS, count=1000, rate=80, kill_at=300, threads=1,
                        drain_s=60, connect_timeout_s=60, sample_s=0.05)
        after = storm.servers()
    finally:
        storm.close()
    b = res["bench"]
    assert res["per_gateway"] == [N_CLIENTS, 0, 0], "gateway 1 held every client"
    assert b["failed"] == 0, b["stderr"]
    assert b["connected"] == N_CLIENTS, "every client is connected again"
    assert b["reconnects"] >= N_CLIENTS, "every client moved"
    assert after[0][0].startswith("DOWN"), f"haproxy took the killed gateway out: {after}"
    assert b["lost"] == 0 and b["duplicated"] == 0 and b["out_of_order"] == 0, b
    assert b["deliveries"] == N_CLIENTS * b["published"]
    assert b["exit_code"] == 0, b["stderr"]
    assert res["gw"], "the survivors' metrics were sampled"
    assert max(s["adw_gateway_replays_active"] for s in res["gw"]) <= 2
    for m in res["gw_final"]:
        assert m["adw_gateway_replays_active_max"] <= 2
        assert m["adw_gateway_replay_failures_total"] == 0
    assert sum(m["adw_gateway_replays_total"] for m in res["gw_final"]) >= N_CLIENTS
    assert min(m["adw_gateway_replays_total"] for m in res["gw_final"]) > 0, \
        "the clients resumed on both survivors"
