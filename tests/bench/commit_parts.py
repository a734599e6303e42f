#!/usr/bin/python3
"""What each table write of a commit costs PostgreSQL: on the schema adw-ingest creates (a fresh
cluster, ingest started once to migrate it, then stopped), one client runs each statement alone
in a transaction of its own, 2,000 times after 200 to warm up, and prints the median and p90 of
each round trip. synchronous_commit is off for these transactions, so that the figures are the
work of the statement and its commit, not the wait for the disk.

    /usr/bin/python3 tests/bench/commit_parts.py [BUILD_DIR]

The statements are the parts of ingest's batch statement for one event of a run that exists:
the event's row into events (partitioned, with its indexes, the trigram index of the search
among them), the same row into a table with the same columns and only the primary key and the
(adw_id, id) index, the run's row and the step's row updated, the run's row updated without
touching an indexed column (what a HOT update would cost); and SELECT 1, the round trip itself. Loopback only, bounded by its counts.
"""

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
import adwtest  # noqa: E402
import psycopg2  # noqa: E402

WARMUP, N = 200, 2000

DOC = {"type": "adw_event", "adw_id": "parts-1", "step": "build", "event_type": "ToolUseBlock",
       "summary": "Write /src/peers/module_1.py",
       "payload": {"seq": 1, "tool_name": "Write", "file_path": "/src/peers/module_1.py",
                   "duration_ms": 45, "input_tokens": 120, "output_tokens": 30,
                   "cost_usd": 0.0012}}


def main():
    build = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "build").resolve()
    adwtest.BIN_DIR = build / "bin"
    pg = adwtest.PgCluster().start()
    try:
        adwtest.Ingest(pg, log_dir=adwtest.default_log_dir(), ADW_LOG_LEVEL="warn").stop()
        conn = psycopg2.connect(pg.dsn())
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SET synchronous_commit = off")
        cur.execute("CREATE TABLE events_plain (LIKE events INCLUDING DEFAULTS)")
        cur.execute("ALTER TABLE events_plain ADD PRIMARY KEY (id)")
        cur.execute("CREATE INDEX ON events_plain (adw_id, id)")
        cur.execute("INSERT INTO adw_runs (adw_id, status, event_count, cost_usd, tokens,"
                    " input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,"
                    " first_ts, last_ts, first_id, last_id, updated_at)"
                    " VALUES ('parts-1', 'running', 0, 0, 0, 0, 0, 0, 0, now(), now(), 1, 1,"
                    " now())")
        cur.execute("INSERT INTO adw_steps (adw_id, step, status, event_count, cost_usd, tokens,"
                    " first_ts, last_ts, first_id, last_id)"
                    " VALUES ('parts-1', 'build', 'running', 0, 0, 0, now(), now(), 1, 1)")
        doc = json.dumps(DOC)
        next_id = [100]

        def insert_into(table):
            def run():
                next_id[0] += 1
                cur.execute(f"INSERT INTO {table} (id, adw_id, type, step, event_type, ts,"
                            " received_at, doc) VALUES (%s, 'parts-1', 'adw_event', 'build',"
                            " 'ToolUseBlock', now(), now(), %s)", (next_id[0], doc))
            return run

        def update(sql):
            def run():
                next_id[0] += 1
                cur.execute(sql, (next_id[0],))
            return run

        parts = [
            ("SELECT 1 (the round trip)", lambda: cur.execute("SELECT 1")),
            ("the event into events", insert_into("events")),
            ("the event into a plain table", insert_into("events_plain")),
            ("the run's row", update("UPDATE adw_runs SET event_count = event_count + 1,"
                                     " last_id = %s, last_ts = now(), updated_at = now()"
                                     " WHERE adw_id = 'parts-1'")),
            ("the step's row", update("UPDATE adw_steps SET event_count = event_count + 1,"
                                      " last_id = %s, last_ts = now()"
                                      " WHERE adw_id = 'parts-1' AND step = 'build'")),
            # What the run's row would cost if no indexed column changed (a HOT update): only
            # event_count and last_ts, which no index holds (the id only fills the parameter).
            ("the run's row, indexed columns unchanged", update(
                "UPDATE adw_runs SET event_count = event_count + 1, last_ts = now()"
                " WHERE adw_id = 'parts-1' AND %s > 0")),
        ]
        print("| statement, a transaction of its own | median | p90 |")
        print("| --- | --- | --- |")
        for name, run in parts:
            for _ in range(WARMUP):
                run()
            lat = []
            for _ in range(N):
                t = time.perf_counter()
                run()
                lat.append((time.perf_counter() - t) * 1e6)
            lat.sort()
            print(f"| {name} | {lat[N // 2]:.0f} µs | {lat[N * 9 // 10]:.0f} µs |", flush=True)
        conn.close()
    finally:
        adwtest.kill_all()
        pg.destroy()


if __name__ == "__main__":
    main()
