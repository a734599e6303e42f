#!/usr/bin/python3
"""Benchmark scenarios: each runs adw-bench against its own fresh stack (PostgreSQL, one
adw-ingest, adw-gateway processes: Release builds from build/), several times, and reports the
median of each figure. Bounded in count and time; loopback only.

    /usr/bin/python3 tests/bench/scenarios.py                 every scenario, 3 runs each
    /usr/bin/python3 tests/bench/scenarios.py fanout-100 latency --runs 5
    /usr/bin/python3 tests/bench/scenarios.py --list

Writes tests/bench/results/<scenario>.json (every run) and prints a Markdown table.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
os.environ.setdefault("ADW_BUILD_DIR", str(REPO / "build"))
import adwtest  # noqa: E402

BENCH = adwtest.BIN_DIR / "adw-bench"

# name: (what it measures, gateways, adw-bench arguments, figures to report)
SCENARIOS = {
    "fanout-1": ("deliveries to 1 client, ZeroMQ batches of 100 at full speed", 1,
                 ["--clients", "1", "--batch", "100", "--concurrency", "4", "--count", "200000"]),
    "fanout-100": ("deliveries to 100 clients subscribed to everything, ZeroMQ batches of 100 at "
                   "full speed", 1,
                   ["--clients", "100", "--threads", "2", "--batch", "100", "--concurrency", "4",
                    "--count", "100000", "--drain", "30"]),
    "fanout-1000": ("deliveries to 1,000 clients subscribed to everything, ZeroMQ batches of 100 "
                    "at full speed", 1,
                    ["--clients", "1000", "--threads", "2", "--batch", "100", "--concurrency",
                     "4", "--count", "20000", "--drain", "30"]),
    "fanout-1000-lws": ("the same as fanout-1000 with libwebsockets' client in adw-bench (a "
                        "cross-check: the gateway's CPU per delivery should not depend on the "
                        "client)", 1,
                        ["--clients", "1000", "--threads", "2", "--batch", "100", "--concurrency",
                         "4", "--count", "20000", "--drain", "60", "--lws-client"]),
    "ingest-http-single": ("durable events/s over HTTP, 16 keep-alive connections, single "
                           "events", 0,
                           ["--clients", "0", "--http", "{ingest_url}", "--batch", "1",
                            "--concurrency", "16", "--count", "60000", "--duration", "30"]),
    "ingest-http-batch": ("durable events/s over HTTP, arrays of 100, 4 connections", 0,
                          ["--clients", "0", "--http", "{ingest_url}", "--batch", "100",
                           "--concurrency", "4", "--count", "300000", "--duration", "30"]),
    "ingest-zmq-batch": ("durable events/s over ZeroMQ, arrays of 100, 8 DEALERs", 0,
                         ["--clients", "0", "--batch", "100", "--concurrency", "8", "--count",
                          "500000", "--duration", "30"]),
    "latency": ("publish-to-receipt latency, 100 clients, 1,000 events/s", 1,
                ["--clients", "100", "--threads", "2", "--batch", "1", "--concurrency", "2",
                 "--rate", "1000", "--count", "15000", "--warmup", "1000"]),
    "idle-10k": ("10,000 idle connections with heartbeats for 40 s: gateway memory", 1,
                 ["--clients", "10000", "--count", "0", "--duration", "40", "--threads", "2",
                  "--sources", "127.0.0.2-127.0.0.9", "--connect-timeout", "120"]),
    "idle-19k": ("19,000 idle connections with heartbeats for 40 s from two client processes "
                 "(this machine's descriptor limit is 20,000 a process): gateway memory", 1,
                 ["--clients", "9500", "--count", "0", "--duration", "40", "--threads", "2",
                  "--connect-timeout", "180"]),
    "replay-100k": ("replay of 100,000 missed events to one client while 100 others get "
                    "1,000 events/s", 1, None),
    "copy-ceiling": ("plain COPY of 100,000 comparable rows into the same table", 0, None),
}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run_bench(args, ingest, gateways, pids, timeout=600):
    argv = [str(BENCH), "--json", "--zmq", ingest.zmq_endpoint,
            "--gateway", ",".join(g.ws_url for g in gateways) or "ws://127.0.0.1:9/ws/events",
            "--pids", ",".join(f"{k}={v}" for k, v in pids.items())]
    argv += [a.format(ingest_url=ingest.base_url) for a in args]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    try:
        res = json.loads(line)
    except ValueError:
        raise RuntimeError(f"adw-bench failed (rc {out.returncode}): {out.stderr[-2000:]}")
    res["exit_code"] = out.returncode
    return res


# Scenarios whose clients come from several adw-bench processes at once: name -> the --sources
# of each process (the other arguments are the scenario's).
SPLIT = {"idle-19k": ["127.0.0.2-127.0.0.5", "127.0.0.6-127.0.0.9"]}


def run_split(name, args, ingest, gateways, pids):
    """Runs one adw-bench per entry of SPLIT[name] at the same time; returns the first one's
    result with the clients counted over all of them and each process's peak taken."""
    argv = [str(BENCH), "--json", "--zmq", ingest.zmq_endpoint,
            "--gateway", ",".join(g.ws_url for g in gateways),
            "--pids", ",".join(f"{k}={v}" for k, v in pids.items())]
    procs = [subprocess.Popen(argv + args + ["--sources", src], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for src in SPLIT[name]]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        line = out.strip().splitlines()[-1] if out.strip() else ""
        try:
            results.append(json.loads(line))
        except ValueError:
            raise RuntimeError(f"adw-bench failed (rc {p.returncode}): {err[-2000:]}")
        results[-1]["exit_code"] = p.returncode
    res = results[0]
    for k in ("clients", "connected", "failed_connects", "closed", "lost", "duplicated"):
        res[k] = sum(r.get(k, 0) for r in results)
    for proc in res["processes"]:
        for k in ("peak_rss_kb", "rss_kb", "rss_start_kb"):
            res["processes"][proc][k] = max(r["processes"][proc].get(k, 0) for r in results
                                            if proc in r["processes"])
    res["exit_code"] = max(r["exit_code"] for r in results)
    return res


def copy_ceiling(pg, rows=100000):
    """Times a plain client-side COPY of rows shaped like ingest's into a copy of events."""
    pg.query("DROP TABLE IF EXISTS events_copy")
    pg.query("CREATE TABLE events_copy (LIKE events INCLUDING ALL)")
    data = Path("/tmp") / f"adw-copy-{os.getpid()}.tsv"
    doc = ('{"id":%d,"received_at":"2026-11-26T06:00:00.123456Z","type":"adw_event",'
           '"adw_id":"bench-%d","step":"build","event_type":"ToolUseBlock","summary":"Writing '
           'authentication middleware","payload":{"tool_name":"Write","file_path":'
           '"/src/middleware/auth.py","duration_ms":45},"bench_seq":%d,"bench_t":1}')
    with open(data, "w") as f:
        for i in range(1, rows + 1):
            f.write(f"{i}\tbench-{i % 4}\tadw_event\tbuild\tToolUseBlock\t\\N\t\\N\t"
                    f"2026-11-26 06:00:00+00\t2026-11-26 06:00:00+00\t\\N\t"
                    f"{doc % (i, i % 4, i)}\n")
    t = time.monotonic()
    subprocess.run(["psql", pg.url, "-q", "-c",
                    f"\\copy events_copy (id, adw_id, type, step, event_type, event, status, ts,"
                    f" received_at, event_id, doc) FROM '{data}'"], check=True, timeout=300)
    dt = time.monotonic() - t
    data.unlink()
    pg.query("DROP TABLE events_copy")
    return {"rows": rows, "seconds": dt, "rows_per_s": rows / dt}


def one_run(name, pg, log_dir):
    desc, ngw, args = SCENARIOS[name]
    pg.reset()
    ingest = adwtest.Ingest(pg, log_dir=log_dir, ADW_LOG_LEVEL="warn")
    gws = [adwtest.Gateway(pg, ingest, log_dir=log_dir, ADW_LOG_LEVEL="warn")
           for _ in range(ngw)]
    pids = {"ingest": ingest.pid}
    pids.update({f"gateway{i + 1}" if ngw > 1 else "gateway": g.pid for i, g in enumerate(gws)})
    try:
        if name == "copy-ceiling":
            return copy_ceiling(pg)
        if name == "replay-100k":
            run_bench(["--clients", "0", "--batch", "100", "--concurrency", "4", "--count",
                       "100000"], ingest, gws, pids)
            return run_bench(["--clients", "100", "--threads", "2", "--batch", "1",
                              "--concurrency", "2", "--rate", "1000", "--count", "8000",
                              "--replay-since", "0", "--drain", "30"],
                             ingest, gws, pids)
        if name in SPLIT:
            return run_split(name, args, ingest, gws, pids)
        return run_bench(args, ingest, gws, pids)
    finally:
        for g in gws:
            g.stop()
        ingest.stop()


FIGURES = [("events_per_s", "events/s stored"), ("deliveries_per_s", "deliveries/s"),
           ("latency_us.p50", "p50 ms"), ("latency_us.p99", "p99 ms"),
           ("latency_us.p999", "p99.9 ms"), ("latency_us.max", "max ms"),
           ("gateway_cpu_us_per_delivery", "gw us/delivery"), ("lost", "lost"),
           ("duplicated", "dup"), ("replay_ms", "replay ms"), ("rows_per_s", "COPY rows/s"),
           ("connected", "connected"), ("processes.gateway.peak_rss_kb", "gw peak RSS MB"),
           ("processes.gateway.rss_kb", "gw RSS at end MB"),
           ("processes.ingest.peak_rss_kb", "ingest peak RSS MB")]


def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def fmt(path, v):
    if v is None:
        return ""
    if path.startswith("latency_us"):
        return f"{v / 1000:.2f}"
    if path.endswith("rss_kb"):
        return f"{v / 1024:.0f}"
    if isinstance(v, float):
        return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"
    return f"{v:,}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        for k, v in SCENARIOS.items():
            print(f"{k:20} {v[0]}")
        return 0
    names = a.scenarios or list(SCENARIOS)
    for n in names:
        if n not in SCENARIOS:
            ap.error(f"unknown scenario {n} (see --list)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    log_dir = results_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    pg = adwtest.PgCluster().start()
    table = {}
    try:
        for n in names:
            runs = []
            for i in range(a.runs):
                print(f"== {n} run {i + 1}/{a.runs}", file=sys.stderr, flush=True)
                try:
                    runs.append(one_run(n, pg, log_dir))
                except Exception as e:  # one failed run is reported, the rest go on
                    print(f"   failed: {e}", file=sys.stderr)
            (results_dir / f"{n}.json").write_text(json.dumps(runs, indent=1))
            table[n] = {p: median([get(r, p) for r in runs]) for p, _ in FIGURES}
            table[n]["runs"] = len(runs)
    finally:
        adwtest.kill_all()
        pg.destroy()
    cols = [(p, h) for p, h in FIGURES if any(table[n].get(p) is not None for n in table)]
    print("| scenario | runs | " + " | ".join(h for _, h in cols) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in cols) + " |")
    for n in table:
        print(f"| {n} | {table[n]['runs']} | " +
              " | ".join(fmt(p, table[n].get(p)) for p, _ in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
