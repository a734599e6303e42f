"""The front door: haproxy on one port (8000 in compose and deploy/local.sh, a free one here),
rendered from deploy/haproxy.cfg by deploy/render-haproxy.sh, in front of a real adw-ingest and
two real adw-gateways. POSTs of events, hooks and OpenTelemetry reach ingest; the WebSocket,
REST reads, approvals, the dashboard and the rest reach the gateways. The seed's two URLs
(`POST /api/events/broadcast`, `ws://.../ws/events`) work unchanged on the one port.
deploy/local.sh itself is run with prebuilt programs (ADW_BIN) and checked the same way."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import adwtest
import pytest

REPO = adwtest.REPO
DATA = REPO / "tests" / "data"

pytestmark = [pytest.mark.needs_bin("adw-ingest", "adw-gateway"),
              pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed")]

# The seed's hook body: what its hooks POST to http://localhost:8000/api/events/broadcast.
SEED_EVENT = {"type": "adw_event", "adw_id": "door0001", "step": "build",
              "event_type": "ToolUseBlock", "summary": "Writing authentication middleware",
              "payload": {"tool_name": "Write", "file_path": "/src/middleware/auth.py"}}


def render(door_port, ingest_port, gw_port, gateway_ports):
    return subprocess.run(
        [str(REPO / "deploy" / "render-haproxy.sh"), "--door", f"127.0.0.1:{door_port}",
         "--ingest", str(ingest_port), f"127.0.0.1:{gw_port}", *map(str, gateway_ports)],
        capture_output=True, text=True, check=True).stdout


@pytest.fixture
def door(db, make_ingest, make_gateway, tmp_path):
    ingest = make_ingest()
    gws = [make_gateway(ingest) for _ in range(2)]
    door_port, gw_port = adwtest.free_ports(2)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(render(door_port, ingest.http_port, gw_port, [g.http_port for g in gws]))
    ha = adwtest.Proc(["haproxy", "-W", "-db", "-f", str(cfg)], name="haproxy").start()
    ha.wait_ready(f"http://127.0.0.1:{door_port}/readyz", timeout=20)
    # Both servers of the door seen up by haproxy's checks before the test starts.
    adwtest.wait_for(lambda: post(f"http://127.0.0.1:{door_port}", "/api/events",
                                  {"type": "adw_event", "adw_id": "warmup",
                                   "event_type": "Ping"})[0] == 200, 20,
                     what="ingest through the door")
    return ingest, gws, f"http://127.0.0.1:{door_port}", gw_port


def post(base, path, obj, headers=None):
    data = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return adwtest._one_shot("POST", base + path, body=data, headers=h, timeout=10)


def run_of_free_ports(n, avoid=()):
    """A port p with p..p+n-1 all free now (deploy/local.sh puts the gateways after ADW_PORT)."""
    for _ in range(100):
        p = adwtest.free_port()
        socks = []
        try:
            for k in range(n):
                if p + k in avoid or p + k > 65535:
                    raise OSError("taken")
                s = socket.socket()
                socks.append(s)
                s.bind((adwtest.LOOPBACK, p + k))
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no run of free ports")


def stored(db, adw_id):
    return db.query("SELECT id, event_type, step FROM events WHERE adw_id = %s ORDER BY id",
                    (adw_id,))


def test_seed_urls_on_one_port(door, db):
    """The seed's browser opens ws://HOST:8000/ws/events and its hooks POST
    http://HOST:8000/api/events/broadcast: the WebSocket receives the event POSTed."""
    ingest, gws, base, _ = door
    ws_url = base.replace("http://", "ws://") + "/ws/events?adw_id=door0001&since=0"
    with adwtest.WsClient(ws_url) as ws:
        st, _, body = post(base, "/api/events/broadcast", SEED_EVENT)
        assert st == 200 and body["status"] == "broadcasted", body
        got = ws.wait_for(lambda m: isinstance(m, dict) and m.get("id") == body["id"], timeout=10)
        assert got["adw_id"] == "door0001" and got["summary"] == SEED_EVENT["summary"]
        # /api/events too, one and many.
        st, _, body2 = post(base, "/api/events", [dict(SEED_EVENT, summary="two"),
                                                  dict(SEED_EVENT, summary="three")])
        assert st == 200 and len(body2["ids"]) == 2, body2
        got = ws.events(2, timeout=10)
        assert [m["summary"] for m in got] == ["two", "three"]
    assert [r[0] for r in stored(db, "door0001")] == [body["id"]] + body2["ids"]


def test_hooks_and_otlp_reach_ingest(door, db):
    ingest, gws, base, _ = door
    hook = json.loads((DATA / "hooks" / "pre_tool_use.json").read_text())
    st, _, _ = post(base, "/api/hooks?adw_id=doorhook&step=build", hook)
    assert st == 200
    assert [r[1:] for r in stored(db, "doorhook")] == [("PreToolUse", "build")]
    otlp = (DATA / "otlp" / "api_request.json").read_text()
    st, _, body = post(base, "/v1/logs", otlp)
    assert (st, body) == (200, {})
    assert [r[1] for r in stored(db, "run-otel-1")] == ["api_request", "api_request"]
    st, _, body = post(base, "/v1/metrics", '{"resourceMetrics":[]}')
    assert (st, body) == (200, {})
    # A refusal from ingest comes through as ingest said it.
    st, _, body = post(base, "/api/events", {"type": "adw_event"})
    assert st == 400 and "adw_id" in body["error"], body


def test_reads_dashboard_and_the_rest_reach_the_gateways(door, db):
    ingest, gws, base, gw_port = door
    ids = post(base, "/api/events", [dict(SEED_EVENT, adw_id="doorread", summary=str(i))
                                     for i in range(3)])[2]["ids"]
    adwtest.wait_for(lambda: len(adwtest.http_get(
        base + "/api/events?adw_id=doorread")[2]["events"]) == 3, 10, what="the REST read")
    st, _, body = adwtest.http_get(base + "/api/events?adw_id=doorread")
    assert st == 200 and [e["id"] for e in body["events"]] == ids
    st, _, body = adwtest.http_get(base + "/api/adws/doorread")
    assert st == 200 and body["adw_id"] == "doorread", body
    st, _, body = adwtest.http_get(base + "/api/adws")
    assert st == 200 and "doorread" in json.dumps(body)
    st, h, html = adwtest.http_get(base + "/")
    assert st == 200 and h.get("Content-Type").startswith("text/html") and "<html" in html
    st, _, text = adwtest.http_get(base + "/metrics")
    assert st == 200 and "adw_gateway_clients" in text
    st, _, body = adwtest.http_get(base + "/readyz")
    assert st == 200 and body["status"] == "ready"
    # Approvals are the gateways' (which forward decisions to ingest's own port): the door
    # answers as a gateway does, for reads and for a decision.
    for method, path, data in (("GET", "/api/approvals?status=pending", None),
                               ("POST", "/api/approvals/" + "0" * 32, '{"decision":"allow"}')):
        via_door = adwtest._one_shot(method, base + path, body=data, timeout=10)
        direct = adwtest._one_shot(method, gws[0].base_url + path, body=data, timeout=10)
        assert via_door[0] == direct[0] and via_door[2] == direct[2], (via_door, direct)
    # A GET of an ingest route is a gateway's REST read, not ingest's.
    st, _, body = adwtest.http_get(base + "/api/events?limit=1")
    assert st == 200 and "events" in body
    # The gateways' own port (the dashboard's) still serves them alone.
    st, _, html = adwtest.http_get(f"http://127.0.0.1:{gw_port}/")
    assert st == 200 and "<html" in html
    st, _, _ = post(f"http://127.0.0.1:{gw_port}", "/api/events", SEED_EVENT)
    assert st != 200  # no ingest behind the gateways' port


def test_ingest_backend_allows_a_held_hook_and_checks_liveness():
    """The hook of a tool call waiting for an approval is held by ingest for up to the hook's
    own timeout (600 s in examples/claude): the ingest backend's server timeout is above it;
    ingest is checked on /healthz, so its own 503 (with the reason) reaches the clients."""
    text = (REPO / "deploy" / "haproxy.cfg").read_text()
    backend = text.split("\nbackend ingest\n", 1)[1].split("\nbackend ", 1)[0]
    m = re.search(r"^\s*timeout server (\d+)(m|s)\b", backend, re.M)
    assert m, backend
    assert int(m.group(1)) * (60 if m.group(2) == "m" else 1) > 600
    assert "GET /healthz" in backend
    settings = json.loads((REPO / "examples" / "claude" / "settings.http.json").read_text())
    urls = [h["url"] for hooks in settings["hooks"].values() for entry in hooks
            for h in entry["hooks"] if "url" in h]
    assert urls and all(u.endswith(":8000/api/hooks") for u in urls)
    for h in (h for hooks in settings["hooks"].values() for entry in hooks
              for h in entry["hooks"] if "timeout" in h):
        assert h["timeout"] <= 600


def test_render_without_door_is_gateways_only(tmp_path):
    text = subprocess.run([str(REPO / "deploy" / "render-haproxy.sh"), "127.0.0.1:9", "1", "2"],
                          capture_output=True, text=True, check=True).stdout
    assert "frontend door" not in text and "backend ingest" not in text
    assert "server gateway2 127.0.0.1:2 check" in text
    both = render(7, 8, 9, [1])
    assert "bind 127.0.0.1:7" in both and "server ingest 127.0.0.1:8 check" in both
    assert "bind 127.0.0.1:9" in both and "resolvers" not in both
    for t in (text, both):
        (tmp_path / "h.cfg").write_text(t)
        out = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "h.cfg")],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
    bad = subprocess.run([str(REPO / "deploy" / "render-haproxy.sh"), "--door", "127.0.0.1:7",
                          "127.0.0.1:9", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_compose_front_door():
    out = subprocess.run(["docker-compose", "-f", str(REPO / "docker-compose.yml"), "config"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import yaml
    svc = yaml.safe_load(out.stdout)["services"]
    def ports(name):  # (host, container) pairs, whichever syntax docker-compose prints
        out = set()
        for p in svc[name]["ports"]:
            if isinstance(p, dict):
                out.add((int(p["published"]), int(p["target"])))
            else:
                host, _, target = str(p).rpartition(":")
                out.add((int(host.rpartition(":")[2]), int(target.split("/")[0])))
        return out

    assert {(8000, 8000), (8080, 8080)} <= ports("haproxy")  # the front door, the gateways
    assert (8001, 8000) in ports("ingest") and not any(h == 8000 for h, _ in ports("ingest"))
    assert svc["gateway"]["environment"]["ADW_GATEWAY_INGEST_URL"] == "http://ingest:8000"
    assert svc["ingest"]["environment"]["ADW_INGEST_HTTP"].endswith(":8000")


def test_local_sh_front_door(db, tmp_path):
    """deploy/local.sh with prebuilt programs and haproxy: the door routes as above, ingest and
    the gateways answer on their own ports, gateways are told ingest's own URL; Ctrl-C stops
    everything."""
    door_port, ingest_port, zmq_port, pub_port = adwtest.free_ports(4)
    gw_port = run_of_free_ports(3, avoid={door_port, ingest_port, zmq_port, pub_port})
    env = dict(os.environ, ADW_BIN=str(adwtest.BIN_DIR), DATABASE_URL=db.url, GATEWAYS="2",
               ADW_DOOR_PORT=str(door_port), ADW_PORT=str(gw_port),
               ADW_INGEST_PORT=str(ingest_port), ADW_ZMQ_PORT=str(zmq_port),
               ADW_PUB_PORT=str(pub_port), ADW_DATA=str(tmp_path / "adw"))
    p = subprocess.Popen([str(REPO / "deploy" / "local.sh")], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            out.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(out)
        assert f"front door:     http://127.0.0.1:{door_port}/" in text, text
        assert f"ingest (HTTP):  http://127.0.0.1:{ingest_port}/api/events" in text, text
        base = f"http://127.0.0.1:{door_port}"
        with adwtest.WsClient(base.replace("http", "ws") + "/ws/events?adw_id=localsh&since=0") \
                as ws:
            st, _, body = post(base, "/api/events/broadcast", dict(SEED_EVENT, adw_id="localsh"))
            assert st == 200, body
            got = ws.wait_for(lambda m: isinstance(m, dict) and m.get("id") == body["id"], 10)
            assert got["adw_id"] == "localsh"
        st, _, html = adwtest.http_get(base + "/")
        assert st == 200 and "<html" in html
        assert adwtest.http_get(f"http://127.0.0.1:{ingest_port}/readyz")[0] == 200
        assert adwtest.http_get(f"http://127.0.0.1:{gw_port}/readyz")[0] == 200
        cfg = (tmp_path / "adw" / "haproxy.cfg").read_text()
        assert f"server ingest 127.0.0.1:{ingest_port} check" in cfg
        pids = subprocess.run(["pgrep", "-s", str(p.pid), "adw-gateway"],
                              capture_output=True, text=True).stdout.split()
        assert len(pids) == 2, pids
        for pid in pids:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"ADW_GATEWAY_INGEST_URL=http://127.0.0.1:{ingest_port}".encode() in environ
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)  # Ctrl-C: local.sh's own process group
        try:
            rest, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rest, _ = p.communicate(timeout=10)
    assert "local.sh: stopped" in "".join(out) + rest
