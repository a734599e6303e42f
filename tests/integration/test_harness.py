"""The harness's own tests: a real PostgreSQL cluster, stand-in servers for everything else."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import adwtest
import msgpack
import psycopg2
import pytest
import websockets
import zmq

HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"


def port_is_listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((adwtest.LOOPBACK, port)) == 0


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def test_cluster_lifecycle_crash_restart_and_removal():
    c = adwtest.PgCluster()
    try:
        c.start()
        base, port, url = c.base, c.port, c.url
        assert url == f"postgresql://postgres@127.0.0.1:{port}/adw"
        assert str(base).startswith("/tmp/adw-pg-")
        if os.geteuid() == 0:
            assert base.owner() == "postgres" and c.datadir.owner() == "postgres"
        assert c.scalar("SELECT 1") == 1
        assert c.scalar("SHOW listen_addresses") == "127.0.0.1"
        assert c.scalar("SHOW unix_socket_directories") == str(c.sockdir)
        assert c.query("CREATE TABLE t (x int)") is None
        c.query("INSERT INTO t VALUES (%s), (%s)", (1, 2))

        c.crash()
        assert not c.is_running()
        assert not port_is_listening(port)
        with pytest.raises(psycopg2.OperationalError):
            c.connect(timeout=2)

        c.start()
        assert (c.port, c.base, c.url) == (port, base, url)
        assert c.query("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
        assert "database system was interrupted" in c.logfile.read_text() or \
            "redo" in c.logfile.read_text()

        c.restart()
        assert c.port == port and c.scalar("SELECT count(*) FROM t") == 2
        c.stop()
        assert not c.is_running()
        c.start()
        assert c.scalar("SELECT sum(x) FROM t") == 3
    finally:
        c.destroy()
    assert not base.exists()
    assert not port_is_listening(port)
    c.destroy()  # twice is harmless


def test_session_cluster_and_reset(db):
    assert db.url.startswith("postgresql://postgres@127.0.0.1:") and db.url.endswith("/adw")
    db.query("CREATE TABLE leftover (x int)")
    db.query("CREATE SEQUENCE leftover_seq")
    db.reset()
    assert db.query("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public'") == []
    conn = db.connect()
    try:
        assert conn.autocommit
    finally:
        conn.close()


def test_db_fixture_restarts_a_cluster_left_down(pg):
    pg.crash()
    assert not pg.is_running()
    # The next test's `db` fixture brings it back; call the same steps here.
    pg.start()
    pg.reset()
    assert pg.scalar("SELECT current_database()") == "adw"


def test_pg_sh_lifecycle():
    script = textwrap.dedent(f"""
        set -u
        source {adwtest.REPO}/tests/lib/pg.sh
        pg_tmp_start || exit 1
        echo "DIR=$PG_DIR"
        echo "PORT=$PG_PORT"
        psql "$DATABASE_URL" -Xq -v ON_ERROR_STOP=1 -c 'CREATE TABLE t (x int); INSERT INTO t VALUES (7)' || exit 1
        pg_crash "$PG_DIR" || exit 1
        pg_status "$PG_DIR" && exit 1
        pg_start "$PG_DIR" || exit 1
        echo "PORT2=$PG_PORT"
        echo "URL=$(pg_url "$PG_DIR")"
        echo "X=$(psql "$DATABASE_URL" -XtAc 'SELECT x FROM t')"
        pg_stop "$PG_DIR" && ! pg_status "$PG_DIR" || exit 1
    """)
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert out["PORT"] == out["PORT2"]
    assert out["URL"] == f"postgresql://postgres@127.0.0.1:{out['PORT']}/adw"
    assert out["X"] == "7"
    assert not Path(out["DIR"]).exists(), "EXIT trap did not remove the cluster"


# ---------------------------------------------------------------------------------------------
# Processes, with python's http.server standing in for a program


def http_server(tmp_path, port):
    (tmp_path / "www").mkdir(exist_ok=True)
    (tmp_path / "www" / "readyz").write_text("ok\n")
    (tmp_path / "www" / "data.json").write_text('{"a": [1, 2]}')
    return adwtest.Proc(
        [PYTHON, "-u", "-m", "http.server", port, "--bind", "127.0.0.1", "--directory",
         tmp_path / "www"], name="standin").start()


def test_proc_start_ready_and_signals(tmp_path):
    port = adwtest.free_port()
    p = http_server(tmp_path, port)
    assert p.alive() and p.returncode is None
    p.wait_ready(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert port_is_listening(port)
    p.terminate()
    assert p.wait(10) == -signal.SIGTERM
    assert not port_is_listening(port)

    p = http_server(tmp_path, port)
    p.wait_ready(f"http://127.0.0.1:{port}/readyz", timeout=10)
    p.signal(signal.SIGINT)  # http.server exits 0 on KeyboardInterrupt
    assert p.wait(10) == 0

    p = http_server(tmp_path, port)
    p.wait_ready(f"http://127.0.0.1:{port}/readyz", timeout=10)
    p.kill9()
    assert p.wait(10) == -signal.SIGKILL
    assert "GET /readyz" in p.log_text()
    assert p.log_path.parent == tmp_path / "logs"
    assert p.log_path.name.startswith("standin")


def test_proc_stop_escalates_to_sigkill(proc):
    p = proc(["/bin/sh", "-c", "trap '' TERM; echo started; while :; do sleep 0.1; done"])
    p.wait_log("started", timeout=5)
    t0 = time.monotonic()
    assert p.stop(timeout=0.5) is None
    assert time.monotonic() - t0 < 5
    assert not p.alive() and p.returncode == -signal.SIGKILL


def test_proc_wait_ready_fails_fast_with_log(proc):
    p = proc(["/bin/sh", "-c", "echo cannot bind: address in use >&2; exit 3"])
    t0 = time.monotonic()
    with pytest.raises(AssertionError) as e:
        p.wait_ready(f"http://127.0.0.1:{adwtest.free_port()}/readyz", timeout=10)
    assert time.monotonic() - t0 < 5
    assert "exited with 3" in str(e.value) and "address in use" in str(e.value)


def test_proc_wait_ready_times_out(proc):
    p = proc(["sleep", "30"])
    with pytest.raises(AssertionError, match="not ready"):
        p.wait_ready(f"http://127.0.0.1:{adwtest.free_port()}/readyz", timeout=0.5)
    with pytest.raises(TimeoutError):
        p.wait(0.2)
    assert p.alive()  # the adw_procs fixture kills it


def test_proc_env(proc):
    os.environ["ADW_HARNESS_DROP"] = "x"
    try:
        p = proc(["/bin/sh", "-c", 'echo "v=$ADW_T drop=${ADW_HARNESS_DROP:-unset}"'],
                 env={"ADW_T": 42, "ADW_HARNESS_DROP": None})
        assert p.wait(5) == 0
    finally:
        del os.environ["ADW_HARNESS_DROP"]
    assert "v=42 drop=unset" in p.log_text()


INNER_TEST = '''
import os, time, adwtest

def test_fails_after_starting_things(pg, proc, tmp_path):
    p = proc(["/bin/sh", "-c", "echo inner-marker-line; exec sleep 60"], name="sleeper")
    p.wait_log("inner-marker-line", timeout=10)
    with open(os.environ["ADW_INNER_OUT"], "w") as f:
        f.write(f"{p.pid} {pg.base} {pg.port}\\n")
    if os.environ.get("ADW_INNER_HANG"):
        time.sleep(60)
    assert False, "deliberate failure"
'''


def run_inner(tmp_path, hang=False):
    d = tmp_path / "inner"
    d.mkdir()
    for f in ("conftest.py", "adwtest.py"):
        (d / f).write_text((HERE / f).read_text())
    (d / "test_inner.py").write_text(INNER_TEST)
    out = tmp_path / "inner.out"
    env = dict(os.environ, ADW_INNER_OUT=str(out), PYTHONDONTWRITEBYTECODE="1")
    if hang:
        env["ADW_INNER_HANG"] = "1"
    argv = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(d),
            str(d / "test_inner.py")]
    return out, subprocess.Popen(argv, cwd=d, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_failed_test_reports_log_tail_and_cleans_up(tmp_path):
    out, inner = run_inner(tmp_path)
    stdout, _ = inner.communicate(timeout=120)
    assert inner.returncode == 1, stdout
    assert "adw log: sleeper" in stdout and "inner-marker-line" in stdout
    pid, base, port = out.read_text().split()
    assert not pid_alive(int(pid))
    assert not Path(base).exists()
    assert not port_is_listening(int(port))


def test_killed_run_leaves_nothing_behind(tmp_path):
    out, inner = run_inner(tmp_path, hang=True)
    try:
        adwtest.wait_for(lambda: out.exists() and out.read_text().strip(), 60, what="inner run")
    finally:
        os.kill(inner.pid, signal.SIGKILL)
        inner.communicate(timeout=30)
    pid, base, port = out.read_text().split()
    # The child dies with its parent (PR_SET_PDEATHSIG) ...
    adwtest.wait_for(lambda: not pid_alive(int(pid)), 10, what="orphan exit")
    # ... and the orphaned cluster is swept by the next PgCluster made on this machine.
    assert Path(base).exists()
    adwtest.PgCluster()
    assert not Path(base).exists()
    adwtest.wait_for(lambda: not port_is_listening(int(port)), 10, what="orphan cluster stop")


# ---------------------------------------------------------------------------------------------
# HTTP helpers against the stand-in


def test_http_helpers(tmp_path):
    port = adwtest.free_port()
    http_server(tmp_path, port).wait_ready(f"http://127.0.0.1:{port}/readyz", 10)
    with adwtest.HttpClient(f"http://127.0.0.1:{port}") as c:
        st, h, body = c.get("/data.json")
        assert st == 200 and body == {"a": [1, 2]}
        assert h["content-type"] == "application/json"
        st, _, body = c.get("/readyz")
        assert st == 200 and body == b"ok\n"
        st, _, _ = c.post_json("/api/events", {"type": "system"})
        assert st == 501  # http.server has no POST
    st, _, _ = adwtest.http_get(f"http://127.0.0.1:{port}/missing")
    assert st == 404
    too_many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120))
    st, headers, body = adwtest.raw_http(port, too_many + b"\r\n")
    assert st == 431 and b"Too many headers" in body
    with adwtest.RawConn(port=port) as r:
        r.send(b"GET /readyz HTTP/1.0\r\n\r\n")
        st, headers, body = r.read_response()
        assert (st, body) == (200, b"ok\n") and headers["content-length"] == "3"
        assert r.wait_closed(5)


# ---------------------------------------------------------------------------------------------
# ZeroMQ helpers against an in-process ROUTER and PUB


def test_zmq_submit_dealer_and_req():
    port = adwtest.free_port()
    ctx = adwtest.zmq_context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(f"tcp://127.0.0.1:{port}")
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            if router.poll(50):
                frames = router.recv_multipart()
                req = msgpack.unpackb(frames[-1], raw=False)
                reply = {"ok": True, "ids": [len(req) if isinstance(req, list) else 1],
                         "frames": len(frames)}
                router.send_multipart(frames[:-1] + [msgpack.packb(reply)])

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        ep = f"tcp://127.0.0.1:{port}"
        assert adwtest.zmq_submit(ep, {"type": "system"}) == {"ok": True, "ids": [1], "frames": 2}
        r = adwtest.zmq_submit(ep, [{"a": 1}, {"a": 2}], kind="req")
        assert r == {"ok": True, "ids": [2], "frames": 3}  # REQ adds the empty delimiter
        with adwtest.ZmqClient(ep) as c:
            for i in range(3):
                assert c.submit({"i": i})["ok"]
    finally:
        stop.set()
        t.join(5)
        router.close(0)
    with pytest.raises(TimeoutError):
        adwtest.zmq_submit(f"tcp://127.0.0.1:{adwtest.free_port()}", {}, timeout=0.3)


def test_sub_collector():
    port = adwtest.free_port()
    pub = adwtest.zmq_context().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(f"tcp://127.0.0.1:{port}")
    try:
        with adwtest.SubCollector(f"tcp://127.0.0.1:{port}") as sub:
            # Heartbeats until the subscription is live, as ingest does.
            def beat():
                pub.send_multipart([b"$hb", adwtest.mp_pack({"last_id": 0, "epoch": 9})])
                return sub.snapshot()

            adwtest.wait_for(beat, 10, interval=0.05, what="subscription")
            for i in range(1, 4):
                pub.send_multipart([b"run1", adwtest.mp_pack({"id": i, "adw_id": "run1"})])
            got = sub.wait_count(3, timeout=5)
            assert [m.body["id"] for m in got] == [1, 2, 3]
            assert got[0].topic == "run1" and got[0].t > 0
            assert sub.wait_for(lambda m: m.topic == "$hb").body["epoch"] == 9
            assert [e["id"] for e in sub.events()] == [1, 2, 3]
            with pytest.raises(TimeoutError):
                sub.wait_count(4, timeout=0.3)
    finally:
        pub.close(0)


# ---------------------------------------------------------------------------------------------
# WebSocket helpers against an in-process websockets server


@pytest.fixture
def ws_server():
    port = adwtest.free_port()

    async def handler(ws, path):
        await ws.send(json.dumps({"type": "hello", "path": path}))
        async for msg in ws:
            if msg == "bye":
                await ws.close(4008, "slow consumer, last id 7")
                return
            await ws.send(msg)

    async def start():
        return await websockets.serve(handler, "127.0.0.1", port)

    loop = adwtest._ws_loop()
    server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield port
    server.close()
    asyncio.run_coroutine_threadsafe(server.wait_closed(), loop).result(10)


def test_ws_client(ws_server):
    c = adwtest.WsClient(f"ws://127.0.0.1:{ws_server}/ws/events?since=3", timeout=5)
    with c:
        assert c.recv() == {"type": "hello", "path": "/ws/events?since=3"}
        for i in range(5):
            c.send({"id": i})
        c.send("not json")
        assert [m["id"] for m in c.events(5)] == [0, 1, 2, 3, 4]
        assert c.wait_for(lambda m: m == "not json") == "not json"
        with pytest.raises(TimeoutError):
            c.recv(0.2)
        assert c.collect(timeout=0.2) == []
        c.send({"id": 9})
        assert c.collect(until=lambda m: m.get("id") == 9, timeout=5) == [{"id": 9}]
        c.send("bye")
        assert c.wait_closed(5) == (4008, "slow consumer, last id 7")
        assert c.close_code == 4008
        with pytest.raises(adwtest.WsClosed) as e:
            c.recv(1)
        assert e.value.code == 4008
    with pytest.raises((adwtest.WsHandshakeError, OSError)):
        adwtest.WsClient(f"ws://127.0.0.1:{adwtest.free_port()}/ws/events", timeout=2)


def test_raw_ws(ws_server):
    with adwtest.RawWs(f"ws://127.0.0.1:{ws_server}/ws/events") as r:
        assert r.status == 101
        op, payload, fin = r.recv_frame()
        assert op == r.OP_TEXT and fin and json.loads(payload)["type"] == "hello"
        r.send_text({"big": "x" * 70000})  # 64-bit length form
        op, payload, _ = r.recv_frame()
        assert len(json.loads(payload)["big"]) == 70000
        r.send_text("bye")
        (code, reason), frames = r.recv_until_close()
        assert code == 4008 and reason.startswith("slow consumer") and frames == []


def test_interpreter_is_debians():
    assert sys.executable.startswith("/usr/bin/python3"), sys.executable


# ---------------------------------------------------------------------------------------------
# Ingest and Gateway wrappers, with a stand-in program in a fake build directory

FAKE_SERVER = '''#!/usr/bin/python3
import http.server, os, sys
name = os.path.basename(sys.argv[0])
addr = os.environ["ADW_INGEST_HTTP" if name == "adw-ingest" else "ADW_GATEWAY_HTTP"]
flag = os.environ.get("FAKE_FAIL_ONCE")
if flag and not os.path.exists(flag):
    open(flag, "w").close()
    sys.exit("bind " + addr + ": Address already in use")
for k in sorted(os.environ):
    if k.startswith("ADW_") or k == "DATABASE_URL":
        print(f"env {k}={os.environ[k]}", flush=True)
print("argv", sys.argv[1:], flush=True)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path in ("/healthz", "/readyz") else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

host, port = addr.rsplit(":", 1)
http.server.HTTPServer((host, int(port)), H).serve_forever()
'''


@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    bindir = tmp_path / "build" / "bin"
    bindir.mkdir(parents=True)
    for name in ("adw-ingest", "adw-gateway"):
        (bindir / name).write_text(FAKE_SERVER)
        (bindir / name).chmod(0o755)
    monkeypatch.setattr(adwtest, "BIN_DIR", bindir)
    return bindir


def test_ingest_and_gateway_wrappers(fake_build, tmp_path):
    pg_url = "postgresql://postgres@127.0.0.1:1/adw"
    ing = adwtest.Ingest(pg_url, ADW_INGEST_TOKEN="s3cret", ADW_LOG_LEVEL=None, args=["-x"],
                         FAKE_FAIL_ONCE=str(tmp_path / "failed-once"))
    assert ing.alive() and (tmp_path / "failed-once").exists()  # retried on fresh ports
    log = ing.log_text()
    assert f"env ADW_INGEST_HTTP=127.0.0.1:{ing.http_port}" in log
    assert f"env ADW_INGEST_ZMQ=tcp://127.0.0.1:{ing.zmq_port}" in log
    assert f"env ADW_INGEST_PUB=tcp://127.0.0.1:{ing.pub_port}" in log
    assert f"env DATABASE_URL={pg_url}" in log and "env ADW_INGEST_TOKEN=s3cret" in log
    assert "ADW_LOG_LEVEL" not in log and "argv ['-x']" in log
    assert len({ing.http_port, ing.zmq_port, ing.pub_port}) == 3
    with ing.http() as c:
        assert c.get("/healthz")[0] == 200

    gw = adwtest.Gateway(pg_url, [ing, "tcp://127.0.0.1:9"], ADW_GATEWAY_HEARTBEAT_S=1)
    log = gw.log_text()
    assert f"env ADW_GATEWAY_HTTP=127.0.0.1:{gw.http_port}" in log
    assert f"env ADW_GATEWAY_SUB={ing.pub_endpoint},tcp://127.0.0.1:9" in log
    assert "env ADW_GATEWAY_HEARTBEAT_S=1" in log and "env ADW_LOG_LEVEL=info" in log
    assert gw.ws_url == f"ws://127.0.0.1:{gw.http_port}/ws/events"

    port = ing.http_port
    ing.restart()
    assert ing.http_port == port and ing.alive()
    ing.kill9()
    assert ing.wait(5) == -signal.SIGKILL
    ing.start_again()
    ing.wait_ready(ing.base_url + "/readyz", 10)
    assert ing.stop() == -signal.SIGTERM

    lazy = adwtest.Ingest(pg_url, start=False)
    assert lazy.popen is None
    lazy.start_ready()
    assert lazy.alive()


def test_fixtures_skip_without_binaries(make_ingest, monkeypatch, tmp_path):
    monkeypatch.setattr(adwtest, "BIN_DIR", tmp_path)
    with pytest.raises(pytest.skip.Exception):
        make_ingest()
