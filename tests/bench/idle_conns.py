#!/usr/bin/python3
"""Idle WebSocket connections held by one adw-gateway: its RSS (from /proc) before and while
they are held, KB per connection, and how many one gateway holds under a descriptor limit.

    /usr/bin/python3 tests/bench/idle_conns.py                   10,000 and 19,000 (limit 20,000)
    /usr/bin/python3 tests/bench/idle_conns.py --clients 10000 --hold 40

For each count: a fresh PostgreSQL + adw-ingest + adw-gateway (Release builds from
ADW_BUILD_DIR/bin, default build/; the gateway started under `prlimit --nofile=L:L` with
ADW_GATEWAY_MAX_CLIENTS = the count), then adw-bench holds that many clients (no events,
heartbeats answered) from 127.0.0.2-127.0.0.9 for --hold seconds while the gateway's VmRSS and
open descriptors are sampled every half second. Loopback only; bounded in time. adw-bench gets
count + 4,096 descriptors, or the hard limit when that is lower (the gateway's warning about its
limit, if any, is in the output).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
os.environ.setdefault("ADW_BUILD_DIR", str(REPO / "build"))
import adwtest  # noqa: E402


def status_kb(pid, key):
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        return int(text.split(key + ":")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return None


def nfds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class PrlimitGateway(adwtest.Gateway):
    """adw-gateway run through prlimit (which execs it: the same pid)."""

    def __init__(self, pg, ingest, nofile, **kw):
        self.nofile = nofile
        super().__init__(pg, ingest, start=False, **kw)
        self.argv = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] + self.argv
        self.start_ready()


def one_run(clients, limit, hold, connect_timeout, log_dir):
    pg = adwtest.PgCluster().start()
    ingest = gw = None
    try:
        ingest = adwtest.Ingest(pg, log_dir=log_dir, ADW_LOG_LEVEL="warn")
        gw = PrlimitGateway(pg, ingest, limit, log_dir=log_dir, ADW_LOG_LEVEL="warn",
                            ADW_GATEWAY_MAX_CLIENTS=clients)
        time.sleep(1)
        base_rss, base_fds = status_kb(gw.pid, "VmRSS"), nfds(gw.pid)
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append((time.monotonic(), status_kb(gw.pid, "VmRSS"), nfds(gw.pid)))
                stop.wait(0.5)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        mine = clients + 4096 if hard == resource.RLIM_INFINITY else min(clients + 4096, hard)
        argv = ["prlimit", f"--nofile={mine}:{mine}", "--",
                str(adwtest.binary("adw-bench")), "--json", "--gateway", gw.ws_url,
                "--zmq", ingest.zmq_endpoint, "--clients", str(clients), "--count", "0",
                "--duration", str(hold), "--threads", "2", "--sources", "127.0.0.2-127.0.0.9",
                "--connect-timeout", str(connect_timeout), "--pids", f"gateway={gw.pid}"]
        t0 = time.monotonic()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=hold + 240)
        stop.set()
        t.join()
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
        try:
            bench = json.loads(line)
        except ValueError:
            bench = {}
        connected = bench.get("connected")
        held = [s for s in samples if s[1] is not None and s[2] is not None]
        top = max(held, key=lambda s: (s[2], s[1])) if held else (0, None, None)
        peak = max((s[1] for s in held), default=None)
        res = {
            "clients": clients, "nofile": limit, "hold_s": hold, "connected": connected,
            "bench_rc": out.returncode, "bench_stderr": out.stderr.strip()[-300:] or None,
            "seconds": round(time.monotonic() - t0, 1),
            "gateway_rss_kb_before": base_rss, "gateway_fds_before": base_fds,
            "gateway_fds_held": top[2], "gateway_rss_kb_held": top[1],
            "gateway_rss_kb_peak": peak,
            "kb_per_connection": (round((top[1] - base_rss) / connected, 2)
                                  if connected and top[1] else None),
            "gateway_alive": gw.alive(),
            "gateway_log": [ln for ln in gw.log_text().splitlines() if "limit" in ln][:3],
        }
        return res
    finally:
        for p in (gw, ingest):
            if p is not None:
                p.stop()
        pg.destroy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, action="append",
                    help="connections to hold (repeatable; default 10000 and 19000)")
    ap.add_argument("--limit", type=int, default=20000, help="gateway descriptor limit")
    ap.add_argument("--hold", type=int, default=40, help="seconds to hold them (heartbeat: 30)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--connect-timeout", type=int, default=90,
                    help="seconds adw-bench waits for every client to connect")
    a = ap.parse_args()
    counts = a.clients or [10000, 19000]
    log_dir = REPO / "tests" / "bench" / "results" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for i in range(a.runs):
            for n in counts:
                print(f"== {n:,} idle connections, limit {a.limit:,}, run {i + 1}/{a.runs}",
                      file=sys.stderr, flush=True)
                res = one_run(n, a.limit, min(a.hold, 300), a.connect_timeout, log_dir)
                res["run"] = i + 1
                print(json.dumps(res), flush=True)
                rows.append(res)
    finally:
        adwtest.kill_all()
    print()
    print("| connections asked | held | gateway RSS before | RSS held | KB per connection "
          "| descriptor limit |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        mb = (lambda kb: f"{kb / 1024:.1f} MB" if kb else "")
        print(f"| {r['clients']:,} | {r['connected'] or 0:,} | {mb(r['gateway_rss_kb_before'])} "
              f"| {mb(r['gateway_rss_kb_held'])} | {r['kb_per_connection']} | {r['nofile']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
