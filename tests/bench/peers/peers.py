#!/usr/bin/python3
"""The project beside NATS and Mosquitto: the same node.js client (client.mjs) against a fresh
stack of each, workload by workload, runs interleaved (project 1, NATS 1, Mosquitto 1, project
2, ...), medians printed as a Markdown table, every run as a JSON line.

    /usr/bin/python3 tests/bench/peers/peers.py                  every workload, 3 runs each
    /usr/bin/python3 tests/bench/peers/peers.py latency --runs 5
    /usr/bin/python3 tests/bench/peers/peers.py --tiny           a few clients and events, 1 run
    /usr/bin/python3 tests/bench/peers/peers.py latency --pg synchronous_commit=off
                                    what the wait for the WAL's flush costs (not durable then)
    /usr/bin/python3 tests/bench/peers/peers.py latency --pg-socket
                                    PostgreSQL through its Unix socket, as on one machine
    /usr/bin/python3 tests/bench/peers/peers.py throughput --events 12000
                                    the saturated workload six times longer
    /usr/bin/python3 tests/bench/peers/peers.py latency --pin 0:1
                                    every side's servers on CPU 0, the node client on CPU 1

Needs `npm ci` in tests/bench/peers (ws, nats, mqtt), nats-server and mosquitto
(deploy/install-deps.sh --bench installs them). The project side is PostgreSQL (a new cluster
for every run, fsync and synchronous_commit on, as checked and printed), adw-ingest and one
adw-gateway from ADW_BUILD_DIR/bin (default build/, a Release build); the NATS side is
nats-server on a free port; the Mosquitto side is mosquitto on a free port, persistence off.
Everything listens on 127.0.0.1 only. Exit code 1 when any run lost or duplicated a
delivery, or failed.
"""

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
os.environ.setdefault("ADW_BUILD_DIR", str(REPO / "build"))
import adwtest  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from procstat import cpu_s, ingest_commits, machine_busy, pg_pids, pg_tree_cpu, pin  # noqa: E402

# name: (table rows it feeds, client.mjs arguments)
WORKLOADS = {
    "latency": ("100 clients, 200 events/s: p99 from publish to receipt",
                {"clients": 100, "events": 2200, "rate": 200, "warmup": 200}),
    "throughput": ("100 clients x 2,000 events, as fast as 8 publishers go",
                   {"clients": 100, "events": 2000}),
    "fanout": ("1,000 clients x 300 events", {"clients": 1000, "events": 300}),
}
TINY = {
    "latency": {"clients": 4, "events": 60, "rate": 100, "warmup": 10},
    "throughput": {"clients": 4, "events": 100},
    "fanout": {"clients": 12, "events": 30},
}
BACKENDS = ("adw", "nats", "mqtt")
NAMES = {"adw": "project", "nats": "NATS", "mqtt": "Mosquitto"}


def _server_path(env, name):
    for p in (os.environ.get(env), shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if p and os.access(p, os.X_OK):
            return p
    sys.exit(f"{name} is missing: deploy/install-deps.sh --bench installs it")


def nats_server_path():
    return _server_path("ADW_NATS_SERVER", "nats-server")


def mosquitto_path():
    return _server_path("ADW_MOSQUITTO", "mosquitto")


def check_node_modules():
    for m in ("ws", "nats", "mqtt"):
        if not (HERE / "node_modules" / m / "package.json").is_file():
            sys.exit(f"node_modules/{m} is missing: run `npm ci` in {HERE}")


# --pin: the servers' CPUs and the client's (None: wherever the kernel runs them).
PIN = None


def pin_servers(pids):
    if PIN:
        pin(pids, PIN[0])


def run_client(args, timeout):
    argv = ["node", str(HERE / "client.mjs")]
    if PIN:
        argv = ["taskset", "-c", ",".join(map(str, sorted(PIN[1])))] + argv
    for k, v in args.items():
        argv += [f"--{k}", str(v)]
    m0 = machine_busy()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, cwd=HERE)
    m1 = machine_busy()
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    try:
        res = json.loads(line)
    except ValueError:
        raise RuntimeError(f"client.mjs failed (rc {out.returncode}): {out.stderr[-2000:]}")
    # The whole machine's share of busy time during the run: this client and the servers, and
    # whatever else runs on it.
    res["machine_busy"] = round((m1[0] - m0[0]) / max(1, m1[1] - m0[1]), 3)
    if out.stderr.strip():
        res["client_stderr"] = out.stderr.strip()[-500:]
    return res


def run_adw(args, timeout, log_dir, pg_settings=None, pg_socket=False):
    pg = adwtest.PgCluster(settings=pg_settings).start()
    ingest = gw = None
    try:
        settings = {k: pg.scalar(f"SHOW {k}") for k in (
            "fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "commit_delay",
            "commit_siblings", "wal_writer_flush_after", "shared_buffers")}
        url = (f"postgresql://postgres@/{pg.dbname}?host={pg.sockdir}&port={pg.port}"
               if pg_socket else pg)
        ingest = adwtest.Ingest(url, log_dir=log_dir, ADW_LOG_LEVEL="warn")
        gw = adwtest.Gateway(url, ingest, log_dir=log_dir, ADW_LOG_LEVEL="warn")
        pin_servers(pg_pids(pg) + [ingest.pid, gw.pid])
        cpu0 = {"ingest": cpu_s(ingest.pid), "gateway": cpu_s(gw.pid), "postgres": pg_tree_cpu(pg)}
        res = run_client(dict(args, backend="adw", ingest=ingest.base_url, gateway=gw.ws_url),
                         timeout)
        cpu1 = {"ingest": cpu_s(ingest.pid), "gateway": cpu_s(gw.pid), "postgres": pg_tree_cpu(pg)}
        res["server_cpu_s"] = {k: round(cpu1[k] - cpu0[k], 3) for k in cpu0
                               if cpu0[k] is not None and cpu1[k] is not None}
        res["stored"] = pg.scalar("SELECT count(*) FROM events")
        res["ingest_commits"] = ingest_commits(ingest)
        res["postgres"] = settings
        return res
    finally:
        for p in (gw, ingest):
            if p is not None:
                p.stop()
        pg.destroy()


def run_broker(args, timeout, log_dir, name, argv, port, backend, url):
    """One run against a broker: starts argv (name, listening on port), runs the client with
    --backend backend --backend url, and adds the broker's CPU seconds to the result."""
    srv = adwtest.Proc(argv, name=name, log_dir=log_dir).start()
    try:
        adwtest.wait_for(lambda: _accepts(port) or not srv.alive(), 15, what=name)
        if not srv.alive():
            raise RuntimeError(f"{name} exited\n{srv.log_tail()}")
        pin_servers([srv.pid])
        cpu0 = cpu_s(srv.pid)
        res = run_client(dict(args, backend=backend, **{backend: url}), timeout)
        res["server_cpu_s"] = {name: round(cpu_s(srv.pid) - cpu0, 3)}
        return res
    finally:
        srv.stop()


def run_nats(args, timeout, log_dir):
    port = adwtest.free_port()
    return run_broker(args, timeout, log_dir, "nats-server",
                      [nats_server_path(), "-a", adwtest.LOOPBACK, "-p", port], port, "nats",
                      f"nats://{adwtest.LOOPBACK}:{port}")


def run_mqtt(args, timeout, log_dir):
    port = adwtest.free_port()
    conf = Path(log_dir) / f"mosquitto-{port}.conf"
    # Mosquitto 2.0 as a broker alone: this listener only, no accounts, nothing persisted, no
    # cap on a client's queue (as NATS's core subscribers have none short of its slow-consumer
    # limit), errors and warnings to its log.
    conf.write_text(f"listener {port} {adwtest.LOOPBACK}\nallow_anonymous true\n"
                    "persistence false\nmax_queued_messages 0\nlog_dest stderr\n"
                    "log_type error\nlog_type warning\n")
    try:
        return run_broker(args, timeout, log_dir, "mosquitto",
                          [mosquitto_path(), "-c", str(conf)], port, "mqtt",
                          f"mqtt://{adwtest.LOOPBACK}:{port}")
    finally:
        conf.unlink(missing_ok=True)


def _accepts(port):
    try:
        socket.create_connection((adwtest.LOOPBACK, port), timeout=1).close()
        return True
    except OSError:
        return False


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def span(xs, fmt):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return ""
    return f"**{fmt(median(xs))}** ({fmt(xs[0])}-{fmt(xs[-1])})" if len(xs) > 1 else fmt(xs[0])


def table(runs):
    """The issue's table from the runs: {workload: {backend: [result, ...]}}."""
    def num(v):
        return f"{v:,.0f}"

    def msf(v):
        return f"{v:.2f} ms"

    rows = []
    if "latency" in runs:
        rows.append(("100 clients, 200 events/s: p99 from publish to receipt", "latency",
                     lambda r: r["latency_ms"]["p99"], msf))
        rows.append(("the same: p50", "latency", lambda r: r["latency_ms"]["p50"], msf))
        # Where a delivery's time goes: the publisher's acknowledgement, an event's first
        # receipt by any client, and the spread from its first receipt to its last.
        for key, what in (("ack_ms", "acknowledgement"), ("first_receipt_ms", "first receipt"),
                          ("fanout_spread_ms", "first to last receipt")):
            for q in ("p50", "p99"):
                rows.append((f"the same: {what}, {q}", "latency",
                             lambda r, key=key, q=q: r[key][q], msf))
    if "throughput" in runs:
        rows.append(("100 clients x 2,000 events, as fast as 8 publishers go: publishes/s",
                     "throughput", lambda r: r["publishes_per_s"], num))
        rows.append(("the same: deliveries/s", "throughput",
                     lambda r: r["deliveries_per_s"], num))
    if "fanout" in runs:
        rows.append(("1,000 clients x 300 events: deliveries/s", "fanout",
                     lambda r: r["deliveries_per_s"], num))
    out = ["| workload | " + " | ".join(NAMES[b] for b in BACKENDS) + " |",
           "| --- |" + " --- |" * len(BACKENDS)]
    for title, w, get, fmt in rows:
        cells = [span([get(r) for r in runs[w].get(b, [])], fmt) for b in BACKENDS]
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workloads", nargs="*", help=f"of {', '.join(WORKLOADS)} (default all)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="a few clients and events, one run")
    ap.add_argument("--sub-procs", type=int, default=2, help="subscriber processes (node)")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per run, at most")
    ap.add_argument("--json-out", help="also append every run's JSON line to this file")
    ap.add_argument("--pg", action="append", default=[], metavar="KEY=VALUE",
                    help="a PostgreSQL setting for the project's clusters, to see what a setting "
                         "changes (e.g. synchronous_commit=off: then answers no longer wait for "
                         "the WAL on disk, and the figures are not the durable path's)")
    ap.add_argument("--pg-socket", action="store_true",
                    help="the project's ingest and gateway reach PostgreSQL through its Unix "
                         "socket (as on one machine) instead of loopback TCP")
    ap.add_argument("--pin", metavar="SERVER_CPUS:CLIENT_CPUS",
                    help="bind every side's servers to some CPUs and the node client to the "
                         "others, e.g. 0:1 (as if the clients ran on another machine)")
    ap.add_argument("--events", type=int, default=0,
                    help="events per run instead of the workload's own (e.g. throughput "
                         "--events 12000: the saturated rate past its first seconds)")
    ap.add_argument("--sources", default="",
                    help="local addresses the WebSocket clients connect from, e.g. "
                         "127.0.0.2-127.0.0.9 (the nats and mqtt clients have no such option)")
    a = ap.parse_args()
    global PIN
    if a.pin:
        try:
            PIN = tuple({int(c) for c in part.split(",")} for part in a.pin.split(":"))
        except ValueError:
            ap.error("--pin takes SERVER_CPUS:CLIENT_CPUS, e.g. 0:1 or 0:1,2")
        if len(PIN) != 2:
            ap.error("--pin takes SERVER_CPUS:CLIENT_CPUS, e.g. 0:1 or 0:1,2")
    names = a.workloads or list(WORKLOADS)
    for n in names:
        if n not in WORKLOADS:
            ap.error(f"unknown workload {n} (one of {', '.join(WORKLOADS)})")
    if a.tiny:
        a.runs = 1
    try:
        pg_settings = dict(kv.split("=", 1) for kv in a.pg)
    except ValueError:
        ap.error("--pg takes KEY=VALUE")
    check_node_modules()
    nats_server_path()
    mosquitto_path()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 20000)), hard))
    results_dir = REPO / "tests" / "bench" / "results"
    log_dir = results_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    jout = open(a.json_out, "a") if a.json_out else None
    runs = {n: {b: [] for b in BACKENDS} for n in names}
    bad = 0
    try:
        for n in names:
            args = dict(TINY[n] if a.tiny else WORKLOADS[n][1])
            args.update({"publishers": 8, "timeout": a.timeout, "sub-procs": a.sub_procs})
            if a.events:
                args["events"] = a.events + args.get("warmup", 0)
            if a.sources:
                args["sources"] = a.sources
            for i in range(a.runs):
                for b in BACKENDS:
                    print(f"== {n} {NAMES[b]} run {i + 1}/{a.runs}", file=sys.stderr, flush=True)
                    try:
                        res = (run_adw(args, a.timeout, log_dir, pg_settings, a.pg_socket)
                               if b == "adw" else run_nats(args, a.timeout, log_dir)
                               if b == "nats" else run_mqtt(args, a.timeout, log_dir))
                    except Exception as e:  # one failed run is reported, the rest go on
                        print(f"   failed: {e}", file=sys.stderr)
                        bad += 1
                        continue
                    res.update(workload=n, run=i + 1)
                    line = json.dumps(res)
                    print(line, flush=True)
                    if jout:
                        jout.write(line + "\n")
                        jout.flush()
                    if res["missing"] or res["duplicated"] or res["refused"]:
                        print(f"   lost {res['missing']}, duplicated {res['duplicated']}, "
                              f"refused {res['refused']}", file=sys.stderr)
                        bad += 1
                    if b == "adw" and res.get("stored", 0) < res["acked"]:
                        print(f"   {res['stored']} rows for {res['acked']} answers",
                              file=sys.stderr)
                        bad += 1
                    runs[n][b].append(res)
    finally:
        adwtest.kill_all()
        if jout:
            jout.close()
    pgs = {json.dumps(r["postgres"], sort_keys=True)
           for n in runs for r in runs[n]["adw"] if "postgres" in r}
    print()
    print(f"Medians of {a.runs} (lowest-highest), interleaved, each run on fresh servers.")
    if a.tiny:
        print("Tiny mode: the rows name the full workloads; these runs had "
              + ", ".join(f"{n} {TINY[n]['clients']} clients x {TINY[n]['events']} events"
                          for n in names) + ".")
    if a.events and not a.tiny:
        print(f"--events {a.events}: the rows name the workloads' own counts; these runs timed "
              f"{a.events} events each.")
    for s in sorted(pgs):
        print(f"Project side: PostgreSQL {s} (every answer after its commit)")
    print()
    print(table(runs))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
