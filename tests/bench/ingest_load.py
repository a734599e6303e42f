#!/usr/bin/python3
"""Measures durable events per second through adw-ingest (a benchmark, not a test).

  /usr/bin/python3 tests/bench/ingest_load.py [zmq|http|copy|all] [--seconds S] [--build DIR]

Starts a private PostgreSQL cluster and adw-ingest from DIR/bin (default build/, the Release
build) on loopback ports, then:
  zmq   DEALER clients (--zmq-clients, default 4) in their own processes, each keeping
        --window requests of --batch events (default 4 x 100) in flight;
  http  --http-conns keep-alive connections (default 16) posting single events, one request
        in flight per connection, spread over --http-procs processes;
  copy  a plain COPY of --copy-rows (default 100,000) comparable rows into an events-like table
        with the same indexes, in one transaction: the ceiling on this machine.
Each load runs for --seconds (default 10) and stops by itself. The rate counted is events
acknowledged (acknowledged only after commit), checked against the rows in the table.
"""

import argparse
import json
import multiprocessing as mp
import os
import selectors
import socket
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import adwtest  # noqa: E402
import msgpack  # noqa: E402
import zmq  # noqa: E402


def event(i, client):
    return {"type": "adw_event", "adw_id": f"bench-{client % 8}", "step": "build",
            "event_type": "ToolUseBlock", "summary": f"Writing file number {i}",
            "payload": {"tool_name": "Write", "file_path": f"/src/f{i}.py", "duration_ms": 45,
                        "input_tokens": 120, "output_tokens": 30, "cost_usd": 0.0012}}


# ---------------------------------------------------------------------------------------------
# ZeroMQ


def zmq_client(endpoint, client, batch, window, seconds, out):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    frames = [msgpack.packb([event(k * batch + j, client) for j in range(batch)])
              for k in range(8)]
    acked = refused = sent = 0
    end = time.monotonic() + seconds
    inflight = 0
    while time.monotonic() < end or inflight:
        while inflight < window and time.monotonic() < end:
            s.send(frames[sent % len(frames)])
            sent += 1
            inflight += 1
        if not s.poll(5000):
            break
        r = msgpack.unpackb(s.recv())
        inflight -= 1
        if r.get("ok"):
            acked += len(r["ids"])
        else:
            refused += 1
    out.put((acked, refused))
    s.close(0)
    ctx.term()


def run_zmq(ing, args):
    q = mp.Queue()
    procs = [mp.Process(target=zmq_client, args=(ing.zmq_endpoint, c, args.batch, args.window,
                                                 args.seconds, q))
             for c in range(args.zmq_clients)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get(timeout=args.seconds + 60) for _ in procs]
    elapsed = time.monotonic() - t0
    for p in procs:
        p.join(10)
    acked = sum(r[0] for r in results)
    return acked, sum(r[1] for r in results), elapsed


# ---------------------------------------------------------------------------------------------
# HTTP: raw keep-alive sockets driven by a selector, one request in flight per connection


def http_client(port, conns, first, seconds, out):
    bodies = [json.dumps(event(i, first)).encode() for i in range(16)]
    reqs = [b"POST /api/events HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(b), b) for b in bodies]
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(conns):
        s = socket.create_connection((adwtest.LOOPBACK, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, bytearray())
    acked = other = 0
    n = 0
    end = time.monotonic() + seconds
    for s in socks:
        s.sendall(reqs[n % 16])
        n += 1
    inflight = conns
    while inflight:
        for key, _ in sel.select(5):
            s, buf = key.fileobj, key.data
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("ingest closed a connection")
            buf += chunk
            while True:
                h = buf.find(b"\r\n\r\n")
                if h < 0:
                    break
                cl = buf.find(b"Content-Length: ", 0, h)
                length = int(buf[cl + 16:buf.find(b"\r\n", cl)])
                if len(buf) < h + 4 + length:
                    break
                if buf.startswith(b"HTTP/1.1 200"):
                    acked += 1
                else:
                    other += 1
                del buf[:h + 4 + length]
                inflight -= 1
                if time.monotonic() < end:
                    s.sendall(reqs[n % 16])
                    n += 1
                    inflight += 1
        else:
            if not sel.get_map():
                break
    for s in socks:
        s.close()
    out.put((acked, other))


def run_http(ing, args):
    q = mp.Queue()
    per = [args.http_conns // args.http_procs + (i < args.http_conns % args.http_procs)
           for i in range(args.http_procs)]
    procs = [mp.Process(target=http_client, args=(ing.http_port, n, i, args.seconds, q))
             for i, n in enumerate(per) if n]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get(timeout=args.seconds + 60) for _ in procs]
    elapsed = time.monotonic() - t0
    for p in procs:
        p.join(10)
    return sum(r[0] for r in results), sum(r[1] for r in results), elapsed


# ---------------------------------------------------------------------------------------------
# The ceiling: a plain COPY


def run_copy(pg, rows):
    pg.query("DROP TABLE IF EXISTS copy_bench")
    pg.query("CREATE TABLE copy_bench (id bigint PRIMARY KEY, adw_id text NOT NULL,"
             " type text NOT NULL, step text, event_type text, event text, status text,"
             " ts timestamptz NOT NULL, received_at timestamptz NOT NULL, event_id text,"
             " doc jsonb NOT NULL)")
    pg.query("CREATE INDEX ON copy_bench (adw_id, id)")
    pg.query("CREATE UNIQUE INDEX ON copy_bench (event_id) WHERE event_id IS NOT NULL")
    lines = []
    for i in range(1, rows + 1):
        doc = dict(id=i, received_at="2026-01-01T00:00:00.000000Z", **event(i, i))
        text = json.dumps(doc, separators=(",", ":")).replace("\\", "\\\\")
        lines.append(f"{i}\tbench-{i % 8}\tadw_event\tbuild\tToolUseBlock\t\\N\t\\N\t"
                     f"2026-01-01T00:00:00Z\t2026-01-01T00:00:00Z\t\\N\t{text}\n")
    data = "".join(lines)
    import io
    conn = pg.connect(autocommit=False)
    try:
        t0 = time.monotonic()
        with conn.cursor() as cur:
            cur.copy_expert("COPY copy_bench FROM STDIN", io.StringIO(data))
        conn.commit()
        elapsed = time.monotonic() - t0
    finally:
        conn.close()
    n = pg.scalar("SELECT count(*) FROM copy_bench")
    pg.query("DROP TABLE copy_bench")
    return n, elapsed


def stored(pg):
    return pg.scalar("SELECT count(*) FROM events")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", nargs="?", default="all", choices=["zmq", "http", "copy", "all"])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--build", default=str(adwtest.REPO / "build"))
    ap.add_argument("--zmq-clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--window", type=int, default=4)
    ap.add_argument("--http-conns", type=int, default=16)
    ap.add_argument("--http-procs", type=int, default=2)
    ap.add_argument("--copy-rows", type=int, default=100000)
    ap.add_argument("--env", action="append", default=[], help="VAR=VALUE for adw-ingest")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 120.0)
    os.environ["ADW_BUILD_DIR"] = args.build
    adwtest.BIN_DIR = Path(args.build) / "bin"

    pg = adwtest.PgCluster()
    try:
        pg.start()
        env = dict(kv.split("=", 1) for kv in args.env)
        env.setdefault("ADW_LOG_LEVEL", "warn")
        ing = adwtest.Ingest(pg, **env)
        report = {}
        if args.what in ("zmq", "all"):
            before = stored(pg)
            acked, refused, elapsed = run_zmq(ing, args)
            rows = stored(pg) - before
            report["zmq"] = {"clients": args.zmq_clients, "batch": args.batch,
                             "window": args.window, "acked": acked, "refused": refused,
                             "rows": rows, "seconds": round(elapsed, 2),
                             "events_per_s": round(acked / elapsed)}
            assert rows >= acked, "fewer rows than acknowledged events"
        if args.what in ("http", "all"):
            before = stored(pg)
            acked, other, elapsed = run_http(ing, args)
            rows = stored(pg) - before
            report["http"] = {"connections": args.http_conns, "acked": acked,
                              "not_200": other, "rows": rows, "seconds": round(elapsed, 2),
                              "events_per_s": round(acked / elapsed)}
            assert rows >= acked, "fewer rows than acknowledged events"
        if args.what in ("copy", "all"):
            n, elapsed = run_copy(pg, args.copy_rows)
            report["copy"] = {"rows": n, "seconds": round(elapsed, 2),
                              "rows_per_s": round(n / elapsed)}
        _, _, metrics = adwtest.http_get(ing.base_url + "/metrics")
        for line in metrics.splitlines():
            if line.startswith(("adw_ingest_batches_total", "adw_ingest_batch_size_sum",
                                "adw_ingest_commit_seconds_sum")):
                name, value = line.rsplit(" ", 1)
                report.setdefault("ingest", {})[name] = float(value)
        ing.stop()
        print(json.dumps(report, indent=2))
    finally:
        adwtest.kill_all()
        pg.destroy()


if __name__ == "__main__":
    main()
