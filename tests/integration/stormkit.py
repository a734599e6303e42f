"""A recovery storm on loopback, for tests/integration/test_storm.py (a few hundred clients) and
tests/bench/storm.py (5,000): PostgreSQL, one adw-ingest, a few adw-gateways behind a real
haproxy (configured as deploy/haproxy.cfg: leastconn, health checks on /readyz every 2 s, down
after 2 failures or at once on a refused connection, which is then tried on another gateway;
redispatch=False leaves that last part out, as the file was before), and adw-bench --resume
holding WebSocket clients through haproxy from several 127.0.0.x source addresses while it
publishes a stream over ZeroMQ. By default every client connects to gateway 1: the others start
in maintenance (haproxy's `disabled`) and are made ready through haproxy's admin socket once
gateway 1 holds them all; spread=True lets leastconn spread the clients over every gateway
from the start instead. Once part of the stream is stored, gateway 1 is killed with SIGKILL;
its clients open their connections again through haproxy with since = the last id they hold.
Meanwhile a sampler records PostgreSQL's connections (pg_stat_activity), its work
(pg_stat_database: xact_commit, tup_returned, tup_fetched), the CPU of its processes (/proc),
and the surviving gateways' replay metrics.

Not a test module itself (no test_ prefix)."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import adwtest
import psycopg2

HAPROXY_CFG = """global
    maxconn {maxconn}
    stats socket {sock} mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 75s
    timeout server 75s
    timeout tunnel 1h
    timeout http-request 10s
    timeout client-fin 5s

frontend adw
    bind 127.0.0.1:{port}
    default_backend gateways

backend gateways
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 2s fall 2 rise 2
{extra}{servers}
"""

METRIC_RE = re.compile(r"^(adw_gateway_replay\w*)(?:\{[^}]*\})? (\S+)$", re.M)


def haproxy_command(sock, cmd, timeout=5.0):
    """Sends one command to haproxy's admin socket (a path); returns its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(cmd.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def haproxy_servers(sock, backend="gateways"):
    """{server name: (status, current sessions)} of backend's servers, from `show stat`."""
    lines = haproxy_command(sock, "show stat").splitlines()
    head = lines[0].lstrip("# ").split(",")
    col = {k: i for i, k in enumerate(head)}
    out = {}
    for line in lines[1:]:
        f = line.split(",")
        if len(f) == len(head) and f[0] == backend and f[1] not in ("FRONTEND", "BACKEND"):
            out[f[1]] = (f[col["status"]], int(f[col["scur"]] or 0))
    return out


def gateway_metrics(gw, timeout=2.0):
    """{name: value} of the adw_gateway_replay* series of gw's /metrics (histogram buckets
    left out), or None when it does not answer."""
    try:
        with urllib.request.urlopen(gw.base_url + "/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except OSError:
        return None
    return {m.group(1): float(m.group(2)) for m in METRIC_RE.finditer(text)
            if not m.group(1).endswith("_bucket")}


class PgProbe:
    """Reads PostgreSQL's connections, counters and CPU from the outside (its own connection to
    the postgres database, so that its queries do not count in adw's figures)."""

    def __init__(self, pg):
        self.pg = pg
        self.conn = psycopg2.connect(pg.dsn("postgres"))
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
            child = cur.fetchone()[0]
        self.postmaster = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
        self.hz = os.sysconf("SC_CLK_TCK")

    def cpu_s(self):
        """CPU seconds of the postmaster, its children now, and its children that exited."""
        total = 0
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                f = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(p.name), int(f[1])
            if pid == self.postmaster:
                total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
            elif ppid == self.postmaster:
                total += int(f[11]) + int(f[12])
        return total / self.hz

    def sample(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT count(*) FILTER (WHERE backend_type = 'client backend'), "
                        "count(*) FILTER (WHERE backend_type = 'client backend' AND "
                        "state = 'active') FROM pg_stat_activity WHERE datname = %s",
                        (self.pg.dbname,))
            conns, active = cur.fetchone()
            cur.execute("SELECT xact_commit, tup_returned, tup_fetched FROM pg_stat_database "
                        "WHERE datname = %s", (self.pg.dbname,))
            xact, returned, fetched = cur.fetchone()
        return {"t": time.time(), "conns": conns, "active": active, "xact": xact,
                "tup_returned": returned, "tup_fetched": fetched, "cpu_s": self.cpu_s()}

    def max_id(self):
        """The newest stored event id (a query on adw: use it before the storm, not during)."""
        if not hasattr(self, "adw"):
            self.adw = psycopg2.connect(self.pg.dsn())
            self.adw.autocommit = True
        with self.adw.cursor() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM events")
            return cur.fetchone()[0]

    def close(self):
        self.conn.close()
        if hasattr(self, "adw"):
            self.adw.close()


class Storm:
    """The topology: ingest, n gateways (gateway_bin: another adw-gateway binary, such as an
    older build, to compare), haproxy on a free port. Unless spread, every gateway but the
    first starts in haproxy's maintenance, so that the first gets every client; run() makes them
    ready before the kill. front_url is the WebSocket URL through haproxy. close() stops
    everything."""

    def __init__(self, pg, n_gateways=3, log_dir=None, gateway_env=None, gateway_bin=None,
                 maxconn=9000, redispatch=True, spread=False):
        self.pg = pg
        self.spread = spread
        self.sock_dir = tempfile.mkdtemp(prefix="adw-storm-")  # a short path for the socket
        self.sock = Path(self.sock_dir) / "haproxy.sock"
        self.ingest = adwtest.Ingest(pg, log_dir=log_dir, ADW_LOG_LEVEL="warn")
        self.gws = []
        for _ in range(n_gateways):
            g = adwtest.Gateway(pg, self.ingest, log_dir=log_dir, start=False,
                                ADW_LOG_LEVEL="warn", **(gateway_env or {}))
            if gateway_bin:
                g.argv[0] = str(gateway_bin)
            self.gws.append(g.start_ready())
        self.port = adwtest.free_port()
        servers = "".join(f"    server gateway{i + 1} 127.0.0.1:{g.http_port} check"
                          f"{' disabled' if i and not spread else ''}\n"
                          for i, g in enumerate(self.gws))
        cfg = Path(self.ingest.log_path).parent / f"haproxy-{self.port}.cfg"
        # redispatch: a connection refused by a dead gateway is retried on another at once, and
        # the refusal marks the server down without waiting for two failed health checks.
        extra = ("    option redispatch 1\n    retries 2\n"
                 "    default-server inter 2s fall 2 rise 2 observe layer4 error-limit 1 "
                 "on-error mark-down\n" if redispatch else "")
        cfg.write_text(HAPROXY_CFG.format(maxconn=maxconn, port=self.port, servers=servers,
                                          extra=extra, sock=self.sock))
        self.haproxy = adwtest.Proc(["haproxy", "-W", "-db", "-f", str(cfg)], name="haproxy",
                                    log_dir=log_dir).start()
        self.haproxy.wait_ready(f"http://127.0.0.1:{self.port}/readyz", timeout=20)
        self.front_url = f"ws://127.0.0.1:{self.port}/ws/events"

    def servers(self):
        """{gateway index: (haproxy's status, sessions)}."""
        return {int(k[len("gateway"):]) - 1: v for k, v in haproxy_servers(self.sock).items()}

    def make_ready(self, timeout=30):
        """Takes every gateway out of haproxy's maintenance, healthy at once, and waits until
        haproxy says each is UP."""
        for i in range(1, len(self.gws) + 1):
            haproxy_command(self.sock, f"set server gateways/gateway{i} state ready")
            haproxy_command(self.sock, f"set server gateways/gateway{i} health up")
        adwtest.wait_for(lambda: all(st.startswith("UP") for st, _ in self.servers().values()),
                         timeout, what="every gateway UP in haproxy")

    def run(self, clients, count, rate, kill_at, sources="127.0.0.2-127.0.0.9", threads=2,
            drain_s=120, connect_timeout_s=120, sample_s=0.1):
        """Runs adw-bench --resume with `clients` clients through haproxy, publishing `count`
        events at `rate`/s. Unless spread, waits until gateway 1 holds every client, then makes
        the others ready. Once kill_at events are stored (and the others are ready), kills
        gateway 1 with SIGKILL. Returns a dict: "victim_clients" (the connections haproxy had
        on gateway 1 just before the kill), "per_gateway" (each gateway's then), the bench's
        JSON report ("bench"), the kill's wall clock ("t_kill"), "recovery_s" (kill -> the last
        client's "replayed" message, from which it has every event), "first_resume_s" (kill ->
        the first connection opened again), "rest" ((sent, seconds or None) of REST reads on a
        survivor, one at a time, all along), the samples of PostgreSQL ("pg") and of the
        survivors' replay metrics ("gw"), and their final metrics ("gw_final")."""
        argv = [str(adwtest.BIN_DIR / "adw-bench"), "--json", "--resume",
                "--zmq", self.ingest.zmq_endpoint, "--gateway", self.front_url,
                "--clients", str(clients), "--threads", str(threads), "--sources", sources,
                "--query", "since=0", "--batch", "1", "--concurrency", "2",
                "--rate", str(rate), "--count", str(count), "--duration", "3600",
                "--drain", str(drain_s), "--connect-timeout", str(connect_timeout_s)]
        bench = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        probe = PgProbe(self.pg)
        samples, gw_samples = [], []
        stop = threading.Event()
        victim = 0
        survivors = self.gws[1:]

        def sampler():
            sp = PgProbe(self.pg)
            try:
                while not stop.is_set():
                    samples.append(sp.sample())
                    for i, g in enumerate(survivors):
                        m = gateway_metrics(g)
                        if m:
                            gw_samples.append({"t": time.time(), "gw": i, **m})
                    stop.wait(sample_s)
            finally:
                sp.close()

        rest = []  # (wall clock sent, seconds) of REST reads on a survivor, one after the other

        def rest_prober():
            url = survivors[0].base_url + "/api/events?since=0&limit=1"
            while not stop.is_set():
                t0 = time.time()
                try:
                    with urllib.request.urlopen(url, timeout=30) as r:
                        r.read()
                    rest.append((t0, time.time() - t0))
                except OSError:
                    rest.append((t0, None))
                stop.wait(0.05)

        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        th_rest = threading.Thread(target=rest_prober, daemon=True)
        th_rest.start()
        t_kill = None
        try:
            deadline = time.monotonic() + connect_timeout_s + count / rate + 60
            if not self.spread:  # adw-bench publishes once every client is connected
                while self.servers()[victim][1] < clients:
                    if bench.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("adw-bench ended or stalled before every client was "
                                           "on gateway 1: " + bench.stderr.read()[-2000:])
                    time.sleep(0.05)
                self.make_ready()
            while probe.max_id() < kill_at:
                if bench.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("adw-bench ended or stalled before the kill: "
                                       + bench.stderr.read()[-2000:])
                time.sleep(0.05)
            held = self.servers()
            t_kill = time.time()
            self.gws[victim].kill9()
            out, err = bench.communicate(timeout=connect_timeout_s + count / rate + drain_s + 120)
        finally:
            if bench.poll() is None:
                bench.kill()
                bench.wait()
            stop.set()
            th.join(10)
            th_rest.join(40)
            probe.close()
        line = out.strip().splitlines()[-1] if out.strip() else ""
        try:
            rep = json.loads(line)
        except ValueError:
            raise RuntimeError(f"adw-bench failed (rc {bench.returncode}): {err[-2000:]}")
        rep["exit_code"] = bench.returncode
        rep["stderr"] = err[-2000:]
        recovery = rep["last_replayed_us"] / 1e6 - t_kill if rep.get("last_replayed_us") else None
        first = (rep["first_reconnect_us"] / 1e6 - t_kill if rep.get("first_reconnect_us")
                 else None)
        return {"bench": rep, "t_kill": t_kill, "victim_clients": held[victim][1],
                "per_gateway": [held[i][1] for i in sorted(held)], "recovery_s": recovery,
                "first_resume_s": first, "rest": rest, "pg": samples,
                "gw": gw_samples, "gw_final": [gateway_metrics(g) for g in survivors]}

    def close(self):
        self.haproxy.stop()
        shutil.rmtree(self.sock_dir, ignore_errors=True)
        for g in self.gws:
            g.stop()
        self.ingest.stop()


def pg_load(samples, t0, t1):
    """What PostgreSQL did between t0 and t1 (wall clock), from the samples: connections (peak
    and peak active), transactions committed, rows returned and fetched, and CPU seconds."""
    inside = [s for s in samples if t0 <= s["t"] <= t1]
    before = [s for s in samples if s["t"] <= t0]
    after = [s for s in samples if s["t"] >= t1]
    a = before[-1] if before else (inside[0] if inside else None)
    b = after[0] if after else (inside[-1] if inside else None)
    if not a or not b:
        return None
    span = inside + [a, b]
    dt = max(b["t"] - a["t"], 1e-3)
    return {"seconds": dt, "conns_peak": max(s["conns"] for s in span),
            "active_peak": max(s["active"] for s in span),
            "xact": b["xact"] - a["xact"], "xact_per_s": (b["xact"] - a["xact"]) / dt,
            "tup_returned": b["tup_returned"] - a["tup_returned"],
            "tup_fetched": b["tup_fetched"] - a["tup_fetched"],
            "cpu_s": b["cpu_s"] - a["cpu_s"], "cpu_pct": 100 * (b["cpu_s"] - a["cpu_s"]) / dt}
