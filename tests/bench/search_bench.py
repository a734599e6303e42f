#!/usr/bin/python3
"""Times GET /api/search over a million stored events (a benchmark, not a test).

  /usr/bin/python3 tests/bench/search_bench.py [--events N] [--build DIR] [--explain]

Starts a private PostgreSQL cluster and adw-ingest from DIR/bin (default build/, the Release
build), which creates the schema (every migration); stops ingest and fills events with N
(default 1,000,000) rows shaped like Claude Code hook events (PreToolUse / PostToolUse of Read,
Edit, Write, Bash, Grep, WebFetch; assistant text), in runs of 1,000 events five at a time,
with one INSERT ... SELECT from generate_series (the search index dropped first and built again
after, as a restore would), then ANALYZE. Then starts adw-ingest again and adw-gateway and
times each query below through the gateway's HTTP API on a keep-alive connection: one call
to warm up, then the median of 5 (milliseconds, on the client). --explain prints PostgreSQL's
EXPLAIN ANALYZE of the gateway's query for each.
"""

import argparse
import json
import re
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import adwtest  # noqa: E402

RUN = "run-0123-3"  # a run of the data set (runs are run-NNNN-K, K in 0..4)

QUERIES = [
    ("rare word", {"q": "zanzibar"}),
    ("common word", {"q": "src"}),
    ("two words", {"q": "edit auth"}),
    ("run-scoped", {"q": "test", "adw_id": RUN}),
    # the harder cases: no match at all, a two-letter word (too short for a trigram), a
    # common word's last pages
    ("no match", {"q": "qqqqzz"}),
    ("short word", {"q": "zq"}),
    ("deep page", {"q": "src", "before": 2000}),
]

# Events shaped like hook events: g is the row number (1..N), its id.
FILL_SQL = r"""
INSERT INTO events (id, adw_id, type, step, event_type, event, status, ts, received_at,
                    event_id, doc, agent_id, agent_type)
SELECT g, e.adw_id, 'adw_event', e.step, e.event_type, NULL, NULL, e.ts, e.ts, NULL,
       jsonb_build_object('id', g, 'received_at', to_char(e.ts AT TIME ZONE 'UTC',
                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                          'type', 'adw_event', 'adw_id', e.adw_id, 'step', e.step,
                          'event_type', e.event_type, 'summary', e.summary,
                          'payload', e.payload),
       NULL, NULL
FROM generate_series(1, %(n)s) AS g,
LATERAL (SELECT 'run-' || lpad((g / 5000)::text, 4, '0') || '-' || (g %% 5) AS adw_id,
                (ARRAY['plan', 'build', 'test', 'review'])[1 + (g / 250) %% 4] AS step,
                timestamptz '2026-11-01 00:00:00Z' + g * interval '150 ms' AS ts,
                (ARRAY['auth', 'billing', 'search', 'export', 'router', 'parser', 'cache',
                       'session', 'metrics', 'storage'])[1 + (g / 7) %% 10]
                  || '_' || (g %% 97) AS module,
                g %% 10 AS kind,
                CASE WHEN g %% 50000 = 17 THEN ' zanzibar' ELSE '' END AS rare) AS v,
LATERAL (SELECT
    CASE WHEN v.kind < 3 THEN (ARRAY['Read', 'Edit', 'Write'])[1 + v.kind]
         WHEN v.kind < 5 THEN 'Bash' WHEN v.kind = 5 THEN 'Grep'
         WHEN v.kind = 6 THEN 'WebFetch' END AS tool,
    CASE WHEN v.kind < 3 THEN jsonb_build_object('file_path', '/repo/src/' || v.module || '.py')
         WHEN v.kind < 5 THEN jsonb_build_object('command',
              'pytest tests/test_' || v.module || '.py -q' || v.rare)
         WHEN v.kind = 5 THEN jsonb_build_object('pattern', 'def ' || v.module, 'path', '/repo')
         WHEN v.kind = 6 THEN jsonb_build_object('url',
              'https://docs.python.org/3/library/' || v.module || '.html') END AS input) AS t,
LATERAL (SELECT v.adw_id, v.step, v.ts,
    CASE WHEN t.tool IS NULL THEN 'TextBlock'
         WHEN g %% 2 = 0 THEN 'PreToolUse' ELSE 'PostToolUse' END AS event_type,
    CASE WHEN t.tool IS NULL THEN 'I will look at the ' || v.module
                                  || ' module next and keep the change small' || v.rare
         WHEN v.kind < 3 THEN t.tool || ' /repo/src/' || v.module || '.py'
         WHEN v.kind < 5 THEN 'Bash: pytest tests/test_' || v.module || '.py -q' || v.rare
         WHEN v.kind = 5 THEN 'Grep def ' || v.module || ' in /repo'
         ELSE 'WebFetch https://docs.python.org/3/library/' || v.module || '.html'
    END || CASE WHEN t.tool IS NOT NULL AND g %% 2 = 1 THEN ' (ok)' ELSE '' END AS summary,
    CASE WHEN t.tool IS NULL THEN jsonb_build_object('text', 'Looking at ' || v.module)
         ELSE jsonb_build_object('session_id', '7c1e52a4-3b7f-4c55-9d1e-' || lpad(v.adw_id, 12),
                                 'hook_event_name', CASE WHEN g %% 2 = 0 THEN 'PreToolUse'
                                                         ELSE 'PostToolUse' END,
                                 'cwd', '/repo', 'tool_name', t.tool, 'tool_input', t.input,
                                 'tool_use_id', 'toolu_' || md5(g::text))
    END AS payload) AS e
"""


def search_text_sql():
    """gateway/search.c's SEARCH_TEXT (its C string literals joined)."""
    src = (adwtest.REPO / "gateway" / "search.c").read_text()
    body = src[src.index("#define SEARCH_TEXT"):]
    body = body[:body.index("\n\n")]
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))


def explain(pg, params):
    """EXPLAIN ANALYZE of the gateway's query for params (words as search.c escapes them)."""
    words = params["q"].split()
    pats = ["%" + re.sub(r"([\\%_])", r"\\\1", w) + "%" for w in words]
    # a word without three letters or digits in a row is a filter (search.c: build_sql)
    text = search_text_sql()
    where = " AND ".join(f"{text} ILIKE %s" if re.search(r"[0-9A-Za-z\x80-\U0010ffff]{3}", w)
                         else f"({text} || '') ILIKE %s" for w in words)
    sql = (f"EXPLAIN (ANALYZE, BUFFERS) SELECT id, doc::text FROM events WHERE {where}"
           + (" AND adw_id = ANY(%s)" if "adw_id" in params else "")
           + " ORDER BY id DESC LIMIT 51")
    args = pats + ([[params["adw_id"]]] if "adw_id" in params else [])
    if "before" in params:
        sql = sql.replace(" ORDER BY", f" AND id < {int(params['before'])} ORDER BY")
    return "\n".join(r[0] for r in pg.query(sql, args, timeout=300))


def fill(pg, n):
    t0 = time.monotonic()
    indexdef = pg.scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'events_search'")
    conn = pg.connect(autocommit=True, timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '512MB'")
            cur.execute("SET statement_timeout = 0")
            cur.execute("DROP INDEX events_search")
            cur.execute(FILL_SQL, {"n": n})
            t1 = time.monotonic()
            cur.execute(indexdef)
            t2 = time.monotonic()
            cur.execute("ANALYZE events")
    finally:
        conn.close()
    size = pg.scalar("SELECT pg_size_pretty(pg_relation_size('events_search'))")
    table = pg.scalar("SELECT pg_size_pretty(pg_total_relation_size('events'))")
    print(f"filled {n} events in {t1 - t0:.1f} s; index built in {t2 - t1:.1f} s"
          f" ({size}; events with its indexes {table})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--build", default=str(adwtest.REPO / "build"))
    ap.add_argument("--explain", action="store_true")
    args = ap.parse_args()
    adwtest.BIN_DIR = Path(args.build) / "bin"
    adwtest.BUILD_DIR = Path(args.build)

    pg = adwtest.PgCluster(settings={"shared_buffers": "512MB"})
    try:
        pg.start()
        ing = adwtest.Ingest(pg, ADW_LOG_LEVEL="warn")  # creates the schema
        ing.stop()
        fill(pg, args.events)
        ing = adwtest.Ingest(pg, ADW_LOG_LEVEL="warn")
        gw = adwtest.Gateway(pg, ing, ADW_LOG_LEVEL="warn")
        c = gw.http(timeout=60)
        report = {}
        for name, params in QUERIES:
            path = "/api/search?" + urllib.parse.urlencode(params)
            st, _, body = c.get(path)  # warm-up
            assert st == 200, (st, body)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                st, _, body = c.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert st == 200, (st, body)
            report[name] = {"query": params, "hits": len(body["events"]),
                            "next_before": body["next_before"],
                            "median_ms": round(statistics.median(times), 1),
                            "max_ms": round(max(times), 1)}
            print(f"{name:12} {json.dumps(params):44} {len(body['events']):3} hits"
                  f"  median {statistics.median(times):7.1f} ms  max {max(times):7.1f} ms",
                  flush=True)
            if args.explain:
                print(explain(pg, params), flush=True)
        c.close()
        gw.stop()
        ing.stop()
        print(json.dumps(report))
    finally:
        adwtest.kill_all()
        pg.destroy()


if __name__ == "__main__":
    main()
