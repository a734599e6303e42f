"""adw-gateway with its file descriptors exhausted: a limit of 256 (prlimit) and 1,000 WebSocket
connection attempts held open. The excess is refused (the connection closed, or HTTP 503), the
gateway keeps running without spinning, the clients connected before keep receiving every event,
and once the attempts go away new clients are served again. And the cap the descriptor limit
sets on clients (the limit less 64 for the gateway, less a thirty-second, at least 16, for HTTP),
crossed: 503 "too many clients"."""

import os
import socket
import time

import adwtest
import pytest
from test_gateway_common import connect, ev, metric, post, recv_events

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

LONG = bool(os.environ.get("ADW_LONG"))
ATTEMPTS = 3000 if LONG else 1000
LIMIT = 256
UPGRADE = (b"GET /ws/events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")


def cpu_seconds(pid):
    """User + system CPU time of pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def classify(s):
    """What became of one held attempt: 'upgraded', '503', 'closed' or 'hanging'."""
    s.settimeout(0.3)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return "hanging" if not data else "partial"
    except OSError:
        return "closed"
    if data.startswith(b"HTTP/1.1 101"):
        return "upgraded"
    if data.startswith(b"HTTP/1.1 503"):
        return "503"
    return "closed" if not data else "other"


def test_descriptors_exhausted_excess_refused_clients_keep_receiving(ingest, make_gateway):
    # The limit from the start, as `ulimit -n 256` in a service's unit would set it.
    gw = make_gateway(ingest, start=False)
    gw.argv = ["prlimit", f"--nofile={LIMIT}:{LIMIT}", *gw.argv]
    gw.start_ready()
    assert "descriptor limit 256" in gw.log_text()
    clients = [connect(gw), connect(gw, adw_id="a1"), connect(gw, adw_id="a2")]
    sent = post(ingest, [ev(adw_id=f"a{1 + i % 2}") for i in range(10)])
    for c in clients:
        c.expect = list(sent) if c is clients[0] else []
    clients[1].expect = [i for k, i in enumerate(sent) if k % 2 == 0]
    clients[2].expect = [i for k, i in enumerate(sent) if k % 2 == 1]
    got = {id(c): [m["id"] for m in recv_events(c, len(c.expect))] for c in clients}

    held, refused = [], 0
    for k in range(ATTEMPTS):
        try:
            s = socket.create_connection((adwtest.LOOPBACK, gw.http_port), timeout=2)
            s.sendall(UPGRADE)
            held.append(s)
        except OSError:
            refused += 1
        if k % 100 == 99:  # events keep flowing while the descriptors run out
            more = post(ingest, [ev(adw_id=f"a{1 + i % 2}") for i in range(4)])
            sent += more
            clients[0].expect += more
            clients[1].expect += more[0::2]
            clients[2].expect += more[1::2]
    assert gw.alive(), gw.log_tail()
    fds = open_fds(gw.pid)

    # While the attempts are held: the gateway does not spin on a listener it cannot accept
    # from, and the clients from before receive everything.
    cpu0, t0 = cpu_seconds(gw.pid), time.monotonic()
    more = post(ingest, [ev(adw_id=f"a{1 + i % 2}") for i in range(20)])
    clients[0].expect += more
    clients[1].expect += more[0::2]
    clients[2].expect += more[1::2]
    for c in clients:
        want = c.expect[len(got[id(c)]):]
        got[id(c)] += [m["id"] for m in recv_events(c, len(want), timeout=30)]
    time.sleep(max(0.0, 5 - (time.monotonic() - t0)))
    cpu = (cpu_seconds(gw.pid) - cpu0) / (time.monotonic() - t0)
    outcome = {}
    for s in held:
        r = classify(s)
        outcome[r] = outcome.get(r, 0) + 1
    print(f"\n[fds] limit {LIMIT}, {ATTEMPTS} attempts: refused at connect {refused}, "
          f"held {outcome}, gateway fds {fds}, CPU while exhausted {cpu:.0%} of a core")
    for c in clients:
        assert got[id(c)] == c.expect, "a client connected before lost events"
    # No more upgrades than descriptors; every other attempt was refused (closed or 503) or
    # still waits in the kernel's listen queue, never served.
    assert outcome.get("upgraded", 0) < LIMIT
    assert outcome.get("upgraded", 0) + outcome.get("503", 0) + outcome.get("closed", 0) + \
        refused == ATTEMPTS, f"attempts left unanswered: {outcome}"
    # A listener it cannot accept from would be readable forever: the loop would spin.
    assert cpu < 0.5, f"the gateway uses {cpu:.0%} of a core with its descriptors exhausted"

    for s in held:
        s.close()
    # It recovers: new clients are served and every client still receives.
    fresh = adwtest.wait_for(lambda: _try_connect(gw), 20, interval=0.2, what="a new client")
    last = post(ingest, [ev(adw_id="a1")])
    assert [m["id"] for m in recv_events(fresh, 1)] == last
    assert [m["id"] for m in recv_events(clients[0], 1)] == last
    assert gw.alive()
    assert gw.stop(20) == 0, gw.log_tail()


def _try_connect(gw):
    try:
        return connect(gw, timeout=3)
    except Exception:
        return None


CAP_LIMIT = 400  # descriptors: less 64 kept for the gateway, less 16 for HTTP: 320 clients


def test_clients_capped_below_the_descriptor_limit_then_503(ingest, make_gateway):
    """With the default ADW_GATEWAY_MAX_CLIENTS above what the descriptor limit allows, the
    gateway lowers its cap (and says so), takes clients up to it, and answers the next upgrade
    503 "too many clients" (a clear refusal, not a dropped connection) while every connected
    client keeps receiving; a client leaving makes room for one more."""
    gw = make_gateway(ingest, start=False)
    gw.argv = ["prlimit", f"--nofile={CAP_LIMIT}:{CAP_LIMIT}", *gw.argv]
    gw.start_ready()
    cap = CAP_LIMIT - 64 - 16
    assert f"descriptor limit {CAP_LIMIT}: at most {cap} WebSocket clients" in gw.log_text()
    first = connect(gw)
    held = [adwtest.RawWs(gw.ws_url) for _ in range(cap - 1)]
    assert all(r.status == 101 for r in held)
    over = adwtest.RawWs(gw.ws_url)
    assert over.status == 503
    body = over.conn.buf
    while len(body) < int(over.headers["content-length"]):
        body += over.conn.recv_some(5)
    assert b"too many clients" in body
    assert metric(gw, 'adw_gateway_rejected_total{reason="full"}') == 1
    assert metric(gw, "adw_gateway_clients") == cap
    sent = post(ingest, [ev()])
    assert [m["id"] for m in recv_events(first, 1)] == sent
    held.pop().close()
    adwtest.wait_for(lambda: metric(gw, "adw_gateway_clients") == cap - 1, 10)
    last = adwtest.RawWs(gw.ws_url)
    assert last.status == 101
    for r in held + [last]:
        r.close()
    first.close()
    assert gw.alive()
    assert gw.stop(20) == 0, gw.log_tail()
