#!/usr/bin/python3
"""Agents as they really arrive: 2,000 concurrent hook clients, each posting single Claude Code
hook bodies at an agent's pace (1 to 5 a second), against a fresh PostgreSQL + adw-ingest for
every run: a new connection per event (a hook process), keep-alive (Claude Code's HTTP hooks),
and adw-send processes (one per event). Reports events/s sustained and the time to the answer.

    /usr/bin/python3 tests/bench/agents.py                       every mode, 1 run each
    /usr/bin/python3 tests/bench/agents.py close keepalive --runs 3 --seconds 20
    /usr/bin/python3 tests/bench/agents.py send --agents 200

The load is tests/bench/agents.mjs (node, built-ins only). Release builds from ADW_BUILD_DIR/bin
(default build/). Loopback only; every run bounded by --seconds. adw-send modes default to 200
agents (--send-agents): 2,000 processes at once would measure the kernel's fork and the
dynamic loader, not ingest.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
os.environ.setdefault("ADW_BUILD_DIR", str(REPO / "build"))
import adwtest  # noqa: E402
from procstat import cpu_s, ingest_commits, machine_busy, pg_tree_cpu  # noqa: E402

MODES = ("close", "keepalive", "send", "send-http")








def one_run(mode, agents, seconds, procs, log_dir):
    pg = adwtest.PgCluster().start()
    ingest = None
    try:
        ingest = adwtest.Ingest(pg, log_dir=log_dir, ADW_LOG_LEVEL="warn")
        c0, p0, m0 = cpu_s(ingest.pid), (pg_tree_cpu(pg) or 0.0), machine_busy()
        argv = ["node", str(HERE / "agents.mjs"), "--mode", mode, "--ingest", ingest.base_url,
                "--zmq", ingest.zmq_endpoint, "--send", str(adwtest.binary("adw-send")),
                "--agents", str(agents), "--seconds", str(seconds), "--procs", str(procs)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120,
                             env=dict(os.environ, HOME=str(log_dir)))
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        try:
            res = json.loads(line)
        except ValueError:
            raise RuntimeError(f"agents.mjs failed (rc {out.returncode}): {out.stderr[-2000:]}")
        res["ingest_cpu_s"] = round(cpu_s(ingest.pid) - c0, 2)
        res["postgres_cpu_s"] = round((pg_tree_cpu(pg) or 0.0) - p0, 2)
        m1 = machine_busy()
        res["machine_busy"] = round((m1[0] - m0[0]) / max(1, m1[1] - m0[1]), 3)
        status = Path(f"/proc/{ingest.pid}/status").read_text()
        res["ingest_peak_rss_kb"] = int(status.split("VmHWM:")[1].split()[0])
        res["stored"] = pg.scalar("SELECT count(*) FROM events")
        res["ingest_commits"] = ingest_commits(ingest)
        return res
    finally:
        if ingest is not None:
            ingest.stop()
        pg.destroy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modes", nargs="*", help=f"of {', '.join(MODES)} (default all)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--agents", type=int, default=2000)
    ap.add_argument("--send-agents", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--procs", type=int, default=2, help="node processes for the agents")
    a = ap.parse_args()
    modes = a.modes or list(MODES)
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m}")
    a.seconds = min(a.seconds, 300)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 20000)), hard))
    log_dir = REPO / "tests" / "bench" / "results" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    bad = 0
    try:
        for i in range(a.runs):
            for m in modes:
                n = a.send_agents if m.startswith("send") else a.agents
                print(f"== {m}, {n} agents, run {i + 1}/{a.runs}", file=sys.stderr, flush=True)
                try:
                    res = one_run(m, n, a.seconds, a.procs, log_dir)
                except Exception as e:  # reported; the other runs go on
                    print(f"   failed: {e}", file=sys.stderr)
                    bad += 1
                    continue
                res["run"] = i + 1
                print(json.dumps(res), flush=True)
                if res["stored"] < res["answered"]:
                    print(f"   {res['stored']} rows for {res['answered']} answers", file=sys.stderr)
                    bad += 1
                rows.append(res)
    finally:
        adwtest.kill_all()
    print()
    print("| mode | agents | offered events/s | answered events/s | p50 ms | p99 ms | max ms "
          "| refused | errors | CPU s/s: ingest, PostgreSQL, client | machine busy |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in modes:
        rs = [r for r in rows if r["mode"] == m]
        if not rs:
            continue

        def med(f):
            return statistics.median(f(r) for r in rs)
        print(f"| {m} | {rs[0]['agents']:,} | {rs[0]['offered_per_s']:,.0f} "
              f"| {med(lambda r: r['answers_per_s']):,.0f} "
              f"| {med(lambda r: r['answer_ms']['p50']):.1f} "
              f"| {med(lambda r: r['answer_ms']['p99']):.1f} "
              f"| {med(lambda r: r['answer_ms']['max']):.0f} "
              f"| {sum(r['refused'] for r in rs)} | {sum(r['errors'] for r in rs)} "
              f"| {med(lambda r: r['ingest_cpu_s'] / r['elapsed_s']):.2f}, "
              f"{med(lambda r: r['postgres_cpu_s'] / r['elapsed_s']):.2f}, "
              f"{med(lambda r: r['client_cpu_s'] / r['elapsed_s']):.2f} "
              f"| {med(lambda r: r['machine_busy']) * 100:.0f} % |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
