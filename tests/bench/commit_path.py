#!/usr/bin/python3
"""The commit path alone: one HTTP client posts single events to adw-ingest one at a time (each
waits for its 200, so each is a commit of its own), against a fresh PostgreSQL cluster per run.
Prints, per configuration, the time of each POST (p50, p99), PostgreSQL's CPU per commit (the
cluster's processes, from /proc) and ingest's CPU per event; configurations run interleaved
(A 1, B 1, A 2, ...), medians of the runs.

    /usr/bin/python3 tests/bench/commit_path.py before=/tmp/before after=build-rel
    /usr/bin/python3 tests/bench/commit_path.py --event-ids --events 1500 a=build-rel \\
        delay=build-rel,commit_delay=200,commit_siblings=0 \\
        small=build-rel,env:ADW_INGEST_PARTITION_EVENTS=1000

    /usr/bin/python3 tests/bench/commit_path.py --server-times a=build-rel
    /usr/bin/python3 tests/bench/commit_path.py --server-times a=build-rel \
        nosearch=build-rel,drop=events_search

--server-times adds PostgreSQL's own time for the batch statement (its bind and execute, from
log_min_duration_statement = 0), so that the commit splits into PostgreSQL's work and the rest.
A configuration is label=BUILD_DIR (its bin/adw-ingest), then PostgreSQL settings key=value
and ingest's environment env:KEY=VALUE, comma-separated; via=socket connects ingest to
PostgreSQL through its Unix socket instead of loopback TCP; drop=INDEX[+INDEX...] drops those
indexes once ingest has migrated the schema (an experiment: what an index costs a commit).
--event-ids gives every event an event_id (as adw-send --event-id and OTLP records have).
Loopback only; bounded by --events.
"""

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(HERE / "peers"))
import adwtest  # noqa: E402
import peers  # noqa: E402

WARMUP = 50


def body(i, tag, event_ids):
    f = f"/src/peers/module_{i % 50}.py"
    e = {"type": "adw_event", "adw_id": "commit-1", "step": "build", "event_type": "ToolUseBlock",
         "summary": f"Write {f}",
         "payload": {"seq": i, "tool_name": "Write", "file_path": f, "duration_ms": 45,
                     "input_tokens": 120, "output_tokens": 30, "cost_usd": 0.0012}}
    if event_ids:
        e["event_id"] = f"{tag}-{i}"
    return json.dumps(e)


def server_times(log_text):
    """PostgreSQL's own time per batch statement, from log_min_duration_statement = 0: the bind
    (with a custom plan, its planning) and the execute of each adw_batch* statement, in ms."""
    parts = {"bind": [], "execute": []}
    for m in re.finditer(r"duration: ([0-9.]+) ms  (bind|execute) adw_batch", log_text):
        parts[m.group(2)].append(float(m.group(1)))
    out = {}
    for k, xs in parts.items():
        xs.sort()
        if xs:
            out[f"pg_{k}_ms_p50"] = xs[len(xs) // 2]
            out[f"pg_{k}_ms_p99"] = xs[int(len(xs) * 0.99)]
    return out


def one_run(build, settings, env, n, event_ids, log_dir, with_server_times=False):
    adwtest.BIN_DIR = Path(build).resolve() / "bin"
    if with_server_times:
        settings = dict(settings, log_min_duration_statement="0")
    settings = dict(settings)
    via = settings.pop("via", "tcp")
    drops = [d for d in settings.pop("drop", "").split("+") if d]
    pg = adwtest.PgCluster(settings=settings).start()
    ing = None
    try:
        # via=socket: ingest reaches PostgreSQL through its Unix socket instead of loopback TCP.
        url = (f"postgresql://postgres@/{pg.dbname}?host={pg.sockdir}&port={pg.port}"
               if via == "socket" else pg)
        ing = adwtest.Ingest(url, log_dir=log_dir, ADW_LOG_LEVEL="warn", **env)
        for d in drops:
            pg.query(f"DROP INDEX {d}")
        h = ing.http()
        for i in range(WARMUP):
            h.post_json("/api/events", body(i, "w", event_ids))
        c0, p0, i0 = peers.ingest_commits(ing), peers.pg_tree_cpu(pg), peers.cpu_s(ing.pid)
        lat = []
        for i in range(n):
            t = time.monotonic()
            st, _, _ = h.post_json("/api/events", body(i, "m", event_ids))
            lat.append((time.monotonic() - t) * 1000)
            assert st == 200, st
        c1, p1, i1 = peers.ingest_commits(ing), peers.pg_tree_cpu(pg), peers.cpu_s(ing.pid)
        commits = c1["commits"] - c0["commits"]
        lat.sort()
        res = {"p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(len(lat) * 0.99)],
               "pg_cpu_ms_per_commit": (p1 - p0) * 1000 / commits,
               "ingest_cpu_ms_per_event": (i1 - i0) * 1000 / n, "commits": commits}
        if with_server_times:
            res.update(server_times(pg.logfile.read_text(errors="replace")))
        return res
    finally:
        if ing is not None:
            ing.stop()
        pg.destroy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", nargs="+", help="label=BUILD_DIR[,pg_key=value][,env:KEY=VALUE]")
    ap.add_argument("--events", type=int, default=1000, help="timed POSTs per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--event-ids", action="store_true", help="every event has an event_id")
    ap.add_argument("--log-dir", default=None)
    ap.add_argument("--server-times", action="store_true",
                    help="also PostgreSQL's own bind and execute time of each batch statement "
                         "(log_min_duration_statement = 0; the logging costs a little)")
    a = ap.parse_args()
    log_dir = a.log_dir or adwtest.default_log_dir()
    configs = []
    for c in a.configs:
        label, rest = c.split("=", 1)
        parts = rest.split(",")
        settings = dict(p.split("=", 1) for p in parts[1:] if not p.startswith("env:"))
        env = dict(p[4:].split("=", 1) for p in parts[1:] if p.startswith("env:"))
        configs.append((label, parts[0], settings, env))
    res = {}
    for run in range(a.runs):
        for label, build, settings, env in configs:
            r = one_run(build, settings, env, a.events, a.event_ids, log_dir, a.server_times)
            res.setdefault(label, []).append(r)
            print(json.dumps({"config": label, "run": run + 1, **r}), flush=True)
    keys = ("p50_ms", "p99_ms", "pg_cpu_ms_per_commit", "ingest_cpu_ms_per_event")
    if a.server_times:
        keys += ("pg_bind_ms_p50", "pg_execute_ms_p50", "pg_execute_ms_p99")
    print("\n| configuration | " + " | ".join(keys) + " |")
    print("| --- |" + " --- |" * len(keys))
    for label, rs in res.items():
        cells = []
        for k in keys:
            xs = sorted(r[k] for r in rs)
            cells.append(f"**{statistics.median(xs):.3f}** ({xs[0]:.3f}-{xs[-1]:.3f})")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
