"""The migration to a partitioned events table, on a database filled by the last release with
schema version 1 (fixtures/v1.sql, made by fixtures/make_v1.py): the old table becomes the first
partition in place (the same file on disk: no row copied), its rows, runs and ids are as they
were, an old event_id is still answered with its first id, and new events go on across partition
boundaries.
"""

import subprocess
from pathlib import Path

import adwtest
from test_gateway_common import connect, ev, post, wait_type
from test_partition import check_partitions, partitions

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "v1.sql"
SIZE = 1000
BATCH = 100


def restore(db):
    subprocess.run([str(adwtest.PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-h", db.host, "-p", str(db.port), "-U", "postgres", "-d", db.dbname,
                    "-f", str(FIXTURE)], check=True, capture_output=True, timeout=60)


def digest(db):
    """What the events hold, as one hash, in id order."""
    return db.scalar("SELECT md5(string_agg(concat_ws('|', id, adw_id, type, step, event_type,"
                     " event, status, ts, received_at, event_id, doc::text), E'\\n' ORDER BY id))"
                     " FROM events")


def test_a_version_1_database_is_partitioned_in_place(make_ingest, make_gateway, db):
    restore(db)
    assert db.scalar("SELECT max(version) FROM adw_schema_migrations") == 1
    total = db.scalar("SELECT count(*) FROM events")
    assert total == db.scalar("SELECT max(id) FROM events") == 289
    before = digest(db)
    filenode = db.scalar("SELECT pg_relation_filenode('events')")
    runs_before = db.query("SELECT adw_id, event_count, first_id, last_id, cost_usd, tokens"
                           " FROM adw_runs ORDER BY adw_id")
    steps_before = db.query("SELECT adw_id, step, event_count, first_id, last_id, duration_ms"
                            " FROM adw_steps ORDER BY 1, 2")
    start0 = db.scalar("SELECT id FROM events WHERE event_id = 'v1-start-0'")
    zmq0 = db.scalar("SELECT id FROM events WHERE event_id = 'v1-zmq-0'")

    ing = make_ingest(ADW_INGEST_PARTITION_EVENTS=str(SIZE), ADW_INGEST_MAX_BATCH=str(BATCH))
    assert db.scalar("SELECT max(version) FROM adw_schema_migrations") == 8
    assert db.scalar("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass") == "p"
    # The old table is the first partition, the same file: attached, not copied.
    parts = check_partitions(db, total, BATCH)
    assert parts[0] == ("events_p1", 1, total + 1)
    assert parts[1][1] == total + 1
    assert db.scalar("SELECT pg_relation_filenode('events_p1')") == filenode
    # Its indexes are the partitioned indexes' (the trigram search's too), none built anew.
    assert db.scalar("SELECT inhparent::regclass::text FROM pg_inherits"
                     " WHERE inhrelid = 'events_p1_search'::regclass") == "events_search"
    assert db.scalar("SELECT count(*) FROM pg_constraint WHERE conname = 'events_p1_ids'") == 0
    assert db.scalar("SELECT value FROM adw_meta WHERE key = 'first_kept_id'") == "1"

    # The rows, the runs, the ids are as they were.
    assert digest(db) == before
    assert db.query("SELECT adw_id, event_count, first_id, last_id, cost_usd, tokens"
                    " FROM adw_runs ORDER BY adw_id") == runs_before
    assert db.query("SELECT adw_id, step, event_count, first_id, last_id, duration_ms"
                    " FROM adw_steps ORDER BY 1, 2") == steps_before
    assert dict(db.query("SELECT adw_id, status FROM adw_runs")) == {
        "v1run00": "completed", "v1run01": "completed", "v1run02": "failed",
        "v1run03": "running", "v1run04": "completed", "v1zmq": "running"}
    assert [i for (i,) in db.query("SELECT id FROM events ORDER BY id")] == list(
        range(1, total + 1))

    # An event_id the old release stored is answered with its id, over HTTP and ZeroMQ.
    st, _, body = adwtest.post_json(ing.base_url + "/api/events",
                                    [ev("v1run00", type_="system", event_type="adw_start",
                                        event_id="v1-start-0")])
    assert st == 200 and body["ids"] == [start0], body
    with ing.zmq() as z:
        assert z.submit(ev("v1zmq", event_id="v1-zmq-0"))["ids"] == [zmq0]
    assert db.scalar("SELECT count(*) FROM events") == total

    # New events go on from the old ids, across partition boundaries; a run of the old release
    # goes on.
    ids = post(ing, [ev("v1run03", summary=f"more {i}", event_id=f"more-{i}")
                     for i in range(2500)], batch=BATCH)
    assert ids == list(range(total + 1, total + 2501))
    assert db.scalar("SELECT event_count FROM adw_runs WHERE adw_id = 'v1run03'") == \
        dict((r[0], r[1]) for r in runs_before)["v1run03"] + 2500
    parts = check_partitions(db, total + 2500, BATCH)
    assert [p[0] for p in parts[:4]] == ["events_p1", "events_p290", "events_p1290",
                                         "events_p2290"]
    # A duplicate across partitions is still one event.
    st, _, body = adwtest.post_json(ing.base_url + "/api/events",
                                    [ev("v1run03", event_id="more-5"), ev("v1zmq", event_id="v1-zmq-3")])
    assert st == 200 and body["ids"] == [total + 6, db.scalar(
        "SELECT id FROM events WHERE event_id = 'v1-zmq-3'")]

    # The gateway reads them all: a resume from 0 is complete (nothing was dropped).
    gw = make_gateway(ing)
    ws = connect(gw, since=0, adw_id="v1run00")
    r = wait_type(ws, "replayed", timeout=30)
    got = [m["id"] for m in ws.seen if isinstance(m, dict) and "id" in m]
    ws.close()
    assert r["complete"] is True
    assert got == [i for (i,) in db.query("SELECT id FROM events WHERE adw_id = 'v1run00'"
                                          " ORDER BY id")]

    # Started again: nothing migrates twice, the partitions are found as they are.
    parts = partitions(db)
    ing.restart()
    assert partitions(db) == parts
    assert db.scalar("SELECT count(*) FROM adw_schema_migrations") == 8
    assert db.scalar("SELECT count(*) FROM events") == total + 2500
