"""adw-gateway: database queries in flight are cancelled (PQcancel) when their result is no longer
wanted: at shutdown (SIGTERM), so that the gateway exits within its shutdown timeout rather than
after the 30 s statement timeout, and when the database is replaced (a new epoch) while a replay
reads a page, so that rows of the new database are never sent as the old range.

A replay query is held in flight with a lock: a session takes ACCESS EXCLUSIVE on `events`, so
the gateway's page query waits on it (seen in pg_stat_activity) until cancelled."""

import threading
import time

import adwtest
import msgpack
import pytest
import zmq
from test_gateway_common import connect, ev, post, recv_events

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

SHUTDOWN_MS = 3000


def lock_events(pg):
    """A connection holding ACCESS EXCLUSIVE on events (rollback() releases it)."""
    conn = pg.connect(autocommit=False)
    with conn.cursor() as cur:
        cur.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    return conn


def waiting_page_queries(pg):
    """Gateway queries on events that wait for a lock."""
    return pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                     "AND query ILIKE '%FROM events%' AND pid <> pg_backend_pid()")


def cancelled_in_log(pg):
    try:
        text = open(pg.logfile, errors="replace").read()
    except OSError:
        return 0
    return text.count("canceling statement due to user request")


def test_shutdown_cancels_a_replay_query_in_flight(db, ingest, make_gateway):
    gw = make_gateway(ingest, ADW_GATEWAY_SHUTDOWN_TIMEOUT_MS=str(SHUTDOWN_MS))
    live = connect(gw)
    ids = post(ingest, [ev() for _ in range(5)])
    assert [m["id"] for m in recv_events(live, 5)] == ids
    cancels_before = cancelled_in_log(db)
    holder = lock_events(db)
    try:
        replaying = connect(gw, since=0)
        adwtest.wait_for(lambda: waiting_page_queries(db) >= 1, 15, what="replay query waiting")
        t0 = time.monotonic()
        gw.terminate()
        rc = gw.wait(25)
        elapsed = time.monotonic() - t0
    finally:
        holder.rollback()
        holder.close()
    print(f"\n[cancel] shutdown with a replay query in flight: {elapsed:.2f} s "
          f"(shutdown timeout {SHUTDOWN_MS / 1000:.0f} s, statement timeout 30 s)")
    assert rc == 0, gw.log_tail()
    # Without the cancel the worker would wait for the lock until the 30 s statement timeout.
    assert elapsed < SHUTDOWN_MS / 1000 + 7, f"shutdown took {elapsed:.1f} s"
    adwtest.wait_for(lambda: cancelled_in_log(db) > cancels_before, 10,
                     what="PostgreSQL logging the cancelled statement")
    code, _ = replaying.wait_closed(5)
    assert code == 1001
    assert live.wait_closed(5)[0] == 1001


class FakePublisher:
    """A PUB socket speaking as ingest does: heartbeats {"last_id", "epoch"} every 200 ms."""

    def __init__(self, last_id, epoch):
        self.port = adwtest.free_port()
        self.endpoint = f"tcp://{adwtest.LOOPBACK}:{self.port}"
        self.last_id, self.epoch = last_id, epoch
        self.stop = threading.Event()
        self.sock = adwtest.zmq_context().socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.endpoint)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            body = msgpack.packb({"last_id": self.last_id, "epoch": self.epoch})
            self.sock.send_multipart([b"$hb", body])
            time.sleep(0.2)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_database_replaced_cancels_a_replay_in_flight(db, ingest, make_gateway):
    ids = post(ingest, [ev(summary=f"old {i}") for i in range(5)])
    epoch = int(db.scalar("SELECT value FROM adw_meta WHERE key = 'epoch'"))
    pub = FakePublisher(ids[-1], epoch)
    try:
        gw = make_gateway(pub.endpoint)
        cancels_before = cancelled_in_log(db)
        holder = lock_events(db)
        try:
            replaying = connect(gw, since=0)
            adwtest.wait_for(lambda: waiting_page_queries(db) >= 1, 15,
                             what="replay query waiting")
            # The database is replaced: the publisher's heartbeats carry a new epoch, ids
            # starting over.
            pub.last_id, pub.epoch = 0, epoch + 1
            code, reason = replaying.wait_closed(10)
            # The page query was cancelled rather than left to finish against the new
            # database.
            adwtest.wait_for(lambda: waiting_page_queries(db) == 0, 10,
                             what="replay query gone")
        finally:
            holder.rollback()
            holder.close()
        assert code == 1012, (code, reason)
        assert "database replaced" in reason
        assert not [m for m in replaying.seen if isinstance(m, dict) and "id" in m]
        adwtest.wait_for(lambda: cancelled_in_log(db) > cancels_before, 10,
                         what="PostgreSQL logging the cancelled statement")
        # A client connecting now is told the new epoch.
        fresh = connect(gw)
        assert fresh.hello["epoch"] == epoch + 1
        fresh.close()
        assert gw.alive()
    finally:
        pub.close()
