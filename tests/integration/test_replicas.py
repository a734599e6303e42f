"""adw-gateway read replicas (ADW_GATEWAY_READ_URL) against real streaming standbys of the
test's PostgreSQL (pgstandby.py: pg_basebackup -R, on loopback): reads land on a standby that
keeps up; a paused standby (pg_wal_replay_pause), a stopped one (pg_ctl stop -m immediate) and a
promoted one (pg_promote) never make a client miss or double an event; a standby of another
database, or a server not in recovery, is never read; the list's limits."""

import signal

import adwtest
import pgstandby
import pytest
from test_gateway_common import (assert_contiguous, connect, ev, is_event, metric, post,
                                 wait_delivered)

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

READS = 'adw_gateway_db_reads_total{target="%s"}'


@pytest.fixture
def standby(db):
    s = pgstandby.Standby(db)
    try:
        s.start()
        yield s
    finally:
        s.destroy()


def reads(gw):
    """(primary, standby) reads counted by gw."""
    return metric(gw, READS % "primary"), metric(gw, READS % "standby")


def wait_usable(gw, n, timeout=30.0):
    adwtest.wait_for(lambda: metric(gw, "adw_gateway_standbys_usable") == n, timeout,
                     interval=0.05, what=f"{n} standbys usable")


def rest_events(gw, since=0, **params):
    """Every event after since through GET /api/events, page after page."""
    out = []
    while True:
        q = "&".join([f"since={since}", "limit=1000"] + [f"{k}={v}" for k, v in params.items()])
        st, _, body = adwtest.http_get(f"{gw.base_url}/api/events?{q}")
        assert st == 200, (st, body)
        out.extend(body["events"])
        if not body["events"]:
            return out
        since = body["next_since"]


def replay(gw, since=0, **params):
    """The events a client resuming with since receives before and in its replay, and the
    replayed marker."""
    ws = connect(gw, since=since, **params)
    try:
        got = ws.collect(timeout=60,
                         until=lambda m: m.get("type") == "replayed" and not is_event(m))
        assert got and got[-1].get("type") == "replayed", got[-3:]
        return [m for m in got if is_event(m)], got[-1]
    finally:
        ws.close()


def test_reads_land_on_a_standby_that_keeps_up(ingest, make_gateway, standby):
    ids = post(ingest, [ev(adw_id="r1" if i % 2 else "r2", summary=f"hello {i}")
                        for i in range(60)])
    standby.caught_up()
    assert standby.max_id() == ids[-1]
    gw = make_gateway(ingest, ADW_GATEWAY_READ_URL=standby.url, ADW_GATEWAY_DB_THREADS="2")
    wait_usable(gw, 1)
    gw.wait_log("read from now on")
    primary0, standby0 = reads(gw)
    assert standby0 == 0
    # Every kind of read: REST events, a replay, runs, a run, a search, an export.
    assert [e["id"] for e in rest_events(gw)] == ids
    got, marker = replay(gw, since=0)
    assert [e["id"] for e in got] == ids and marker["last_id"] == ids[-1]
    got, _ = replay(gw, since=ids[29], adw_id="r1")
    assert [e["id"] for e in got] == [ids[i] for i in range(30, 60) if i % 2]
    st, _, body = adwtest.http_get(gw.base_url + "/api/adws")
    assert st == 200 and {r["adw_id"] for r in body["adws"]} == {"r1", "r2"}
    st, _, body = adwtest.http_get(gw.base_url + "/api/adws/r1")
    assert st == 200 and body["event_count"] == 30
    st, _, body = adwtest.http_get(gw.base_url + "/api/search?q=hello%2059")
    assert st == 200 and [e["id"] for e in body["events"]] == [ids[59]]
    st, _, raw = adwtest.http_get(gw.base_url + "/api/adws/r2/events.ndjson")
    lines = raw if isinstance(raw, str) else raw.decode()
    assert st == 200 and len([ln for ln in lines.splitlines() if ln]) == 30
    primary1, standby1 = reads(gw)
    assert primary1 == primary0, "nothing read from the primary"
    assert standby1 >= 8
    # PostgreSQL connections on the standby: one to look at it, one per DB thread at most, and
    # the subscriber's (for hole fills) when it needed one.
    assert 2 <= standby.connections("adw-gateway") <= 2 + 1 + 1


def test_hole_fills_read_from_a_standby(make_ingest, make_gateway, standby):
    # A gateway stopped while 5,000 events pass with tiny high-water marks: the holes it finds
    # after SIGCONT end at ids the standby already shows, so they are filled from it alone.
    ingest = make_ingest(ADW_INGEST_PUB_HWM="20")
    gw = make_gateway(ingest, ADW_GATEWAY_READ_URL=standby.url, ADW_GATEWAY_SUB_HWM="5")
    ws = connect(gw)
    first = post(ingest, [ev()])
    assert [m["id"] for m in ws.events(1, timeout=20)] == first
    wait_usable(gw, 1)
    primary0, standby0 = reads(gw)
    gw.signal(signal.SIGSTOP)
    try:
        ids = post(ingest, [ev(summary=str(i), payload={"pad": "p" * 500}) for i in range(5000)],
                   batch=500)
        standby.caught_up()
    finally:
        gw.signal(signal.SIGCONT)
    assert [m["id"] for m in ws.events(len(ids), timeout=120)] == ids
    assert not [m for m in ws.collect(timeout=0.3) if is_event(m)]
    assert metric(gw, "adw_gateway_hole_filled_events_total") >= 1
    primary1, standby1 = reads(gw)
    assert primary1 == primary0, "no fill read from the primary"
    assert standby1 > standby0
    ws.close()


def test_paused_standby_reads_go_to_the_primary(make_ingest, make_gateway, standby):
    # Tiny high-water marks so that the second gateway sees holes and fills them, while the
    # standby is paused: from the primary.
    ingest = make_ingest(ADW_INGEST_PUB_HWM="5")
    gw = make_gateway(ingest, ADW_GATEWAY_READ_URL=standby.url)
    holes = make_gateway(ingest, ADW_GATEWAY_READ_URL=standby.url, ADW_GATEWAY_SUB_HWM="1")
    live = connect(gw)
    live_holes = connect(holes)
    before = post(ingest, [ev(summary=f"before {i}") for i in range(40)])
    standby.caught_up()
    wait_usable(gw, 1)
    wait_usable(holes, 1)
    wait_delivered(gw, before[-1])
    got, _ = replay(gw, since=0)
    assert [e["id"] for e in got] == before
    assert reads(gw)[1] >= 1, "read from the standby before the pause"

    standby.pause()
    paused_at = standby.max_id()
    assert paused_at == before[-1]
    primary0, standby0 = reads(gw)
    after = post(ingest, [ev(summary=f"after {i}", payload={"pad": "p" * 500})
                          for i in range(3000)], batch=1000)
    assert standby.max_id() == paused_at, "the standby does not replay while paused"
    everything = before + after
    wait_delivered(gw, after[-1], timeout=90)
    # Live clients: every event once, in order (the second gateway's holes filled).
    assert [m["id"] for m in live.events(len(everything), timeout=90)] == everything
    assert [m["id"] for m in live_holes.events(len(everything), timeout=90)] == everything
    assert not [m for m in live.collect(timeout=0.3) if is_event(m)]
    assert not [m for m in live_holes.collect(timeout=0.3) if is_event(m)]
    assert metric(holes, "adw_gateway_hole_fills_total") >= 1
    # Clients resuming, REST reads: everything once, from the primary.
    got, marker = replay(gw, since=0)
    assert [e["id"] for e in got] == everything and marker["count"] == len(everything)
    got, _ = replay(gw, since=before[-1])
    assert [e["id"] for e in got] == after
    assert [e["id"] for e in rest_events(gw)] == everything
    assert [e["id"] for e in rest_events(gw, since=before[10])] == everything[11:]
    assert_contiguous(everything)
    primary1, standby1 = reads(gw)
    assert standby1 == standby0, "nothing the paused standby lacks was read from it"
    assert primary1 >= primary0 + 4
    assert metric(gw, "adw_gateway_standbys_usable") == 1  # paused, still a standby

    # Resumed, it catches up and takes reads again.
    standby.resume()
    standby.caught_up()
    adwtest.wait_for(lambda: (rest_events(gw, since=after[-2]) and reads(gw)[1] > standby1),
                     30, interval=0.1, what="a read on the standby again")
    live.close()
    live_holes.close()


def test_stopped_standby_reads_fall_back_at_once(ingest, make_gateway, standby):
    ids = post(ingest, [ev(summary=f"e{i}") for i in range(30)])
    standby.caught_up()
    # One DB thread, and looks a minute apart: after the stop, the first read is still sent to
    # the standby (nothing has noticed yet), fails there, and is read again from the primary.
    gw = make_gateway(ingest, ADW_GATEWAY_READ_URL=standby.url, ADW_GATEWAY_DB_THREADS="1",
                      ADW_GATEWAY_READ_PROBE_MS="60000")
    wait_usable(gw, 1)
    assert [e["id"] for e in rest_events(gw)] == ids
    _, standby0 = reads(gw)
    assert standby0 >= 1
    retries0 = metric(gw, "adw_gateway_db_standby_retries_total")
    assert retries0 == 0
    standby.stop(mode="immediate")
    assert [e["id"] for e in rest_events(gw)] == ids
    assert metric(gw, "adw_gateway_db_standby_retries_total") == 1
    assert metric(gw, "adw_gateway_standbys_usable") == 0
    got, _ = replay(gw, since=0)
    assert [e["id"] for e in got] == ids
    more = post(ingest, [ev(summary=f"m{i}") for i in range(10)])
    wait_delivered(gw, more[-1])
    got, _ = replay(gw, since=ids[-1])
    assert [e["id"] for e in got] == more
    assert [e["id"] for e in rest_events(gw)] == ids + more
    assert reads(gw)[1] == standby0
    assert metric(gw, "adw_gateway_db_standby_retries_total") == 1
    gw.wait_log("reading from the primary")


def test_promoted_standby_is_never_read_again(ingest, make_gateway, standby):
    ids = post(ingest, [ev(summary=f"e{i}") for i in range(30)])
    standby.caught_up()
    gw = make_gateway(ingest, ADW_GATEWAY_READ_URL=standby.url)
    wait_usable(gw, 1)
    assert [e["id"] for e in rest_events(gw)] == ids
    assert reads(gw)[1] >= 1
    standby.promote()
    wait_usable(gw, 0)
    gw.wait_log("not in recovery")
    _, standby0 = reads(gw)
    # The promoted server now goes its own way: were it read, events would be missing.
    standby.query("TRUNCATE events CASCADE")
    more = post(ingest, [ev(summary=f"m{i}") for i in range(20)])
    wait_delivered(gw, more[-1])
    assert [e["id"] for e in rest_events(gw)] == ids + more
    got, _ = replay(gw, since=0)
    assert [e["id"] for e in got] == ids + more
    st, _, body = adwtest.http_get(gw.base_url + "/api/search?q=m19")
    assert st == 200 and [e["id"] for e in body["events"]] == [more[-1]]
    assert reads(gw)[1] == standby0
    assert metric(gw, "adw_gateway_standbys_usable") == 0


@pytest.fixture
def foreign_db(db):
    """A second database on the primary, with an ADW epoch of its own and an event."""
    name = "adw_foreign"
    db.query(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", dbname="postgres")
    db.query(f"CREATE DATABASE {name}", dbname="postgres")
    try:
        db.query("CREATE TABLE adw_meta (key text PRIMARY KEY, value text NOT NULL);"
                 "INSERT INTO adw_meta VALUES ('epoch', '4242');"
                 "CREATE TABLE events (id bigint PRIMARY KEY, doc jsonb);"
                 "INSERT INTO events SELECT g, '{}' FROM generate_series(1, 1000) g", dbname=name)
        yield name
    finally:
        db.query(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", dbname="postgres")


def test_standby_of_another_database_or_a_primary_is_refused(ingest, make_gateway, standby,
                                                             foreign_db, db):
    ids = post(ingest, [ev(summary=f"e{i}") for i in range(10)])
    standby.caught_up()
    assert standby.scalar("SELECT value FROM adw_meta WHERE key = 'epoch'",
                          dbname=foreign_db) == "4242"
    # A standby of another database (same server, other epoch) and the primary itself.
    urls = f"{standby.dsn(foreign_db)}, {db.url}"
    gw = make_gateway(ingest, ADW_GATEWAY_READ_URL=urls)
    gw.wait_log("its epoch differs from the primary's")
    gw.wait_log("not in recovery")
    assert metric(gw, "adw_gateway_standbys_usable") == 0
    assert [e["id"] for e in rest_events(gw)] == ids
    got, _ = replay(gw, since=0)
    assert [e["id"] for e in got] == ids
    assert reads(gw)[1] == 0


def test_read_url_limits(ingest, make_gateway, db):
    base = "postgresql://postgres@127.0.0.1:{}/adw"
    ports = adwtest.free_ports(9)
    # Nine standbys: one more than the limit; a key=value string; a bare host.
    for urls, why in [(" ".join(base.format(p) for p in ports), "more than 8 standbys"),
                      ("host=127.0.0.1 dbname=adw", "entry 1 is not a postgresql://"),
                      (f"{db.url}?no_such_option=1", "entry 1 is not a valid libpq URI")]:
        gw = make_gateway(ingest, start=False, ADW_GATEWAY_READ_URL=urls)
        gw.start()
        assert gw.wait(10) == 2, gw.log_text()
        assert why in gw.log_text(), gw.log_text()
    # The look interval's bounds, crossed.
    for ms in ("19", "60001"):
        gw = make_gateway(ingest, start=False, ADW_GATEWAY_READ_URL=db.url,
                          ADW_GATEWAY_READ_PROBE_MS=ms)
        gw.start()
        assert gw.wait(10) == 2, gw.log_text()
        assert f"ADW_GATEWAY_READ_PROBE_MS: {ms} is out of range [20, 60000]" in gw.log_text()
    # Eight, none answering (one with a password): the gateway runs and reads from the
    # primary; the log names each standby by host, port and database, never with the password.
    ids = post(ingest, [ev() for _ in range(5)])
    urls = [base.format(p) for p in ports[:8]]
    urls[0] = urls[0].replace("postgres@", "postgres:sekrit@")
    gw = make_gateway(ingest, ADW_GATEWAY_READ_URL=",".join(urls))
    gw.wait_log("read replicas: 8 standbys")
    gw.wait_log(f"standby #8 127.0.0.1:{ports[7]}/adw: not read")
    assert [e["id"] for e in rest_events(gw)] == ids
    assert metric(gw, "adw_gateway_standbys_usable") == 0
    primary, on_standby = reads(gw)
    assert primary >= 2 and on_standby == 0
    gw.signal(signal.SIGTERM)
    assert gw.wait(15) == 0
    assert "cannot connect" in gw.log_text() and "sekrit" not in gw.log_text()
