#!/usr/bin/python3
"""The recovery storm as a benchmark: 5,000 WebSocket clients (adw-bench --resume, 8 source
addresses) connect through haproxy to gateway 1 (the other 2 gateways in haproxy's maintenance
until it holds them all) and get a stream of events; gateway 1 is killed with SIGKILL and all
its clients resume with since through haproxy on the others. Release builds from build/; each
run on a fresh stack (tests/integration/stormkit.py); loopback only.

    /usr/bin/python3 tests/bench/storm.py                        5,000 clients, 3 runs
    /usr/bin/python3 tests/bench/storm.py --spread     leastconn spreads them over the 3 gateways
                                                       from the start (1,666 on the killed one)
    /usr/bin/python3 tests/bench/storm.py --clients 1000 --runs 1
    /usr/bin/python3 tests/bench/storm.py --gateway-bin OLD/adw-gateway   compare a build
    /usr/bin/python3 tests/bench/storm.py --no-redispatch    haproxy as it was configured before

Reports, median of the runs: the time from the kill until every client has every event (the
last resumed client's `replayed` message; from then on it is live, and at the end adw-bench
checks that each client got each event exactly once), PostgreSQL meanwhile (client connections
from pg_stat_activity, peak; transactions committed, rows returned and fetched from
pg_stat_database; CPU of the postgres processes from /proc), the gateways' replay metrics, and
lost/doubled/out-of-order deliveries, and the latency of REST reads (GET /api/events, one at a
time) on a surviving gateway during the storm. Writes tests/bench/results/<label>.json.
"""

import argparse
import json
import os
import resource
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
os.environ.setdefault("ADW_BUILD_DIR", str(REPO / "build"))
import adwtest  # noqa: E402
import stormkit  # noqa: E402


def one_run(pg, a, log_dir):
    pg.reset()
    env = {"ADW_GATEWAY_DB_THREADS": str(a.db_threads)}
    if a.max_replays is not None:
        env["ADW_GATEWAY_MAX_REPLAYS"] = str(a.max_replays)
    storm = stormkit.Storm(pg, n_gateways=a.gateways, log_dir=log_dir, gateway_env=env,
                           gateway_bin=a.gateway_bin, redispatch=a.redispatch,
                           spread=a.spread)
    try:
        res = storm.run(clients=a.clients, count=a.count, rate=a.rate, kill_at=a.kill_at,
                        sources=a.sources, threads=a.threads, drain_s=a.drain,
                        connect_timeout_s=300)
    finally:
        storm.close()
    b = res["bench"]
    rec = res["recovery_s"]
    load = stormkit.pg_load(res["pg"], res["t_kill"], res["t_kill"] + (rec or 0)) or {}
    final = [m or {} for m in res["gw_final"]]

    def total(k):
        return sum(m.get(k, 0) for m in final)

    def peak(k):
        return max([m.get(k, 0) for m in final] + [s.get(k, 0) for s in res["gw"]])

    window = [s for t, s in res["rest"] if res["t_kill"] <= t <= res["t_kill"] + (rec or 0)]
    ok = sorted(s for s in window if s is not None)
    return {
        "rest_ms_max": ok[-1] * 1000 if ok else None,
        "rest_ms_p50": ok[len(ok) // 2] * 1000 if ok else None,
        "rest_failed": sum(1 for s in window if s is None),
        "recovery_s": rec, "first_resume_s": res["first_resume_s"],
        "replay_phase_s": rec - res["first_resume_s"] if rec and res["first_resume_s"] else None,
        "clients": a.clients, "victim_clients": res["victim_clients"],
        "per_gateway": res["per_gateway"], "connected": b["connected"],
        "reconnects": b["reconnects"], "failed_connects": b["failed_connects"],
        "published": b["published"], "lost": b["lost"], "duplicated": b["duplicated"],
        "out_of_order": b["out_of_order"], "closed_by_server": b["closed"],
        "last_close_code": b["last_close_code"], "bench_exit": b["exit_code"],
        "pg": load, "replays": total("adw_gateway_replays_total"),
        "replay_failures": total("adw_gateway_replay_failures_total"),
        "replayed_events": total("adw_gateway_replayed_events_total"),
        "replays_active_max": peak("adw_gateway_replays_active_max") or
        peak("adw_gateway_replays_active"),
        "replays_waiting_max": peak("adw_gateway_replays_waiting_max"),
        "pg_conns_storm_peak": load.get("conns_peak"),
    }


FIGURES = [("victim_clients", "on the killed gateway"), ("recovery_s", "s to every event"), ("first_resume_s", "s to first resume"),
           ("replay_phase_s", "first resume to every event s"), ("reconnects", "reconnects"),
           ("failed_connects", "failed attempts"), ("lost", "lost"), ("duplicated", "doubled"),
           ("replay_failures", "1011 closes"),
           ("replays_active_max", "pages at once (max)"),
           ("replays_waiting_max", "waiting (max)"), ("pg.conns_peak", "PG conns (peak)"),
           ("pg.active_peak", "PG active (peak)"), ("pg.xact_per_s", "xact/s"),
           ("pg.tup_returned", "rows returned"), ("pg.tup_fetched", "rows fetched"),
           ("pg.cpu_pct", "PG CPU %"), ("rest_ms_p50", "REST p50 ms"),
           ("rest_ms_max", "REST max ms")]


def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"
    return f"{v:,}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=5000)
    ap.add_argument("--gateways", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=50, help="events/s of the stream")
    ap.add_argument("--count", type=int, default=1500, help="events in the stream")
    ap.add_argument("--kill-at", type=int, default=500, help="kill once this many are stored")
    ap.add_argument("--threads", type=int, default=2, help="adw-bench client threads")
    ap.add_argument("--sources", default="127.0.0.2-127.0.0.9")
    ap.add_argument("--db-threads", type=int, default=2)
    ap.add_argument("--max-replays", type=int, default=None)
    ap.add_argument("--drain", type=int, default=180)
    ap.add_argument("--gateway-bin", default=None, help="another adw-gateway to measure")
    ap.add_argument("--no-redispatch", dest="redispatch", action="store_false",
                    help="haproxy without option redispatch and observe layer4 (as "
                         "deploy/haproxy.cfg was): a killed gateway gets connections until two "
                         "health checks have failed")
    ap.add_argument("--spread", action="store_true",
                    help="let leastconn spread the clients over every gateway from the start "
                         "(the killed one then holds 1/gateways of them)")
    ap.add_argument("--label", default="storm")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    results_dir = HERE / "results"
    log_dir = results_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    pg = adwtest.PgCluster().start()
    runs = []
    try:
        for i in range(a.runs):
            print(f"== {a.label} run {i + 1}/{a.runs}", file=sys.stderr, flush=True)
            try:
                r = one_run(pg, a, log_dir)
                print(json.dumps(r), file=sys.stderr, flush=True)
                runs.append(r)
            except Exception as e:  # one failed run is reported, the rest go on
                print(f"   failed: {e}", file=sys.stderr)
    finally:
        adwtest.kill_all()
        pg.destroy()
    (results_dir / f"{a.label}.json").write_text(json.dumps(runs, indent=1))
    print("| run | " + " | ".join(h for _, h in FIGURES) + " |")
    print("| --- | " + " | ".join("---" for _ in FIGURES) + " |")
    for i, r in enumerate(runs):
        print(f"| {i + 1} | " + " | ".join(fmt(get(r, p)) for p, _ in FIGURES) + " |")
    if runs:
        med = {p: statistics.median([get(r, p) for r in runs if get(r, p) is not None] or [0])
               for p, _ in FIGURES}
        print("| median | " + " | ".join(fmt(med[p]) for p, _ in FIGURES) + " |")
    bad = any(r["lost"] or r["duplicated"] or r["out_of_order"] for r in runs)
    return 1 if bad or not runs else 0


if __name__ == "__main__":
    sys.exit(main())
