"""CURVE on ingest's ROUTER and PUB (ADW_INGEST_CURVE_*), the gateway's SUB
(ADW_GATEWAY_CURVE_*) and the client library (adw-send, adw-bench: --curve-server, --curve-cert):
the right keys are served, unknown keys and plain peers are refused, and hostile peers (garbage
bytes, 1 MiB subscriptions, frames over ZMQ_MAXMSGSIZE) are dropped while legitimate ones lose
nothing, with CURVE on and off. Certificates are made with pyzmq (zmq.auth) and adw-send
--make-cert, and read by CZMQ (ingest, gateway) and the client library (adw-send)."""

import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import adwtest
import pytest
import zmq
import zmq.auth
from test_send_helpers import count, docs, run_send, send_env, spooled

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway", "adw-send")

LONG = bool(os.environ.get("ADW_LONG"))


class Keys:
    """Certificates in tmp: server, the allowed clients (agent made by pyzmq, tool made by
    adw-send --make-cert, gateway) in clients/, and an intruder who is not there."""

    def __init__(self, tmp):
        self.dir = tmp / "certs"
        self.clients = tmp / "clients"
        self.dir.mkdir()
        self.clients.mkdir()
        self.server, _ = zmq.auth.create_certificates(str(self.dir), "server")
        self.agent, _ = zmq.auth.create_certificates(str(self.dir), "agent")
        self.gateway, _ = zmq.auth.create_certificates(str(self.dir), "gateway")
        self.intruder, _ = zmq.auth.create_certificates(str(self.dir), "intruder")
        self.other_server, _ = zmq.auth.create_certificates(str(self.dir), "other")
        self.tool = str(self.dir / "tool.cert")
        r = run_send(["--make-cert", self.tool])
        assert r.returncode == 0, r.stderr
        assert oct(os.stat(self.tool + "_secret").st_mode & 0o777) == "0o600"
        for c in (self.agent, self.gateway, self.tool):
            shutil.copy(c, self.clients)

    def admit(self, cert):
        shutil.copy(cert, self.clients)

    def pair(self, cert):
        """(public, secret) Z85 of a certificate, through its _secret file."""
        return zmq.auth.load_certificate(cert + "_secret")

    def server_public(self):
        return zmq.auth.load_certificate(self.server)[0]

    def ingest_env(self):
        return {"ADW_INGEST_CURVE_CERT": self.server,
                "ADW_INGEST_CURVE_CLIENTS": str(self.clients)}

    def send_args(self, cert=None, server=None):
        return ["--curve-server", server or self.server, "--curve-cert", cert or self.agent]


@pytest.fixture
def keys(tmp_path):
    return Keys(tmp_path)


def ev(adw_id="cv", **kw):
    e = {"type": "adw_event", "adw_id": adw_id, "event_type": "TextBlock"}
    e.update(kw)
    return e


HOSTILE_CTX = None


def curve_socket(kind, endpoint, keys=None, cert=None, server=None, monitor=False):
    """A pyzmq socket (libzmq) of kind, CURVE with cert's keys against server's public key
    when keys is given, else plain; connected to endpoint. monitor: also returns its monitor
    socket, which must be read often (libzmq's I/O thread blocks when it is full)."""
    global HOSTILE_CTX
    if monitor and HOSTILE_CTX is None:
        HOSTILE_CTX = zmq.Context()  # hostile peers: their own I/O thread, as another process
    s = (HOSTILE_CTX if monitor else adwtest.zmq_context()).socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    if monitor:
        s.setsockopt(zmq.RECONNECT_IVL, 250)
    if keys is not None:
        pub, sec = keys.pair(cert or keys.agent)
        s.curve_publickey = pub
        s.curve_secretkey = sec
        s.curve_serverkey = zmq.auth.load_certificate(server or keys.server)[0]
    mon = s.get_monitor_socket() if monitor else None
    s.connect(endpoint)
    return (s, mon) if monitor else s


def submit(sock, obj, timeout=5.0):
    """Sends obj and returns the decoded reply, or None when none comes in time or the DEALER
    has no connection to send on (libzmq drops one whose handshake was refused)."""
    if not sock.poll(int(timeout * 1000), zmq.POLLOUT):
        return None
    try:
        sock.send(adwtest.mp_pack(obj), zmq.NOBLOCK)
    except zmq.Again:  # the refused connection went between the poll and the send
        return None
    if not sock.poll(int(timeout * 1000), zmq.POLLIN):
        return None
    return adwtest.mp_unpack(sock.recv_multipart()[-1])


def drain_sub(sock, seconds):
    """Everything a SUB receives for this long: [(topic, body)]."""
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if sock.poll(50, zmq.POLLIN):
            f = sock.recv_multipart()
            got.append((f[0].decode(errors="replace"), f[-1]))
    return got


def monitor_events(mon, seconds=0.0):
    """The monitor events (names) that arrived, waiting up to seconds for more."""
    from zmq.utils.monitor import recv_monitor_message
    names = []
    end = time.monotonic() + seconds
    while True:
        if mon.poll(max(0, int((end - time.monotonic()) * 1000)), zmq.POLLIN):
            m = recv_monitor_message(mon)
            names.append(zmq.Event(m["event"]).name)
            continue
        if time.monotonic() >= end:
            return names


def gw_metric(gw, name):
    return metric(gw, name)


def metric(server, name):
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{") or (
                "{" in name and line.startswith(name)):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- the right keys ----------------------------------------------------------------------


def test_send_and_libzmq_clients_with_the_right_keys_are_stored_and_acknowledged(
        make_ingest, keys, tmp_path):
    ingest = make_ingest(**keys.ingest_env())
    assert "CURVE server key " + keys.server_public().decode() in ingest.log_text()
    # adw-send with a pyzmq certificate and with its own --make-cert one; one event, then a
    # batch on stdin, all acknowledged (--strict: 0).
    for i, cert in enumerate((keys.agent, keys.tool)):
        r = run_send(["--zmq", ingest.zmq_endpoint, *keys.send_args(cert), "--strict",
                      "--spool", tmp_path / "spool", "--adw-id", "cv", "--event-type", "T",
                      "--event-id", f"one-{i}"])
        assert r.returncode == 0, r.stderr
        batch = "\n".join(json.dumps(ev(summary=f"b{k}", event_id=f"b-{i}-{k}"))
                          for k in range(3))
        r = run_send(["--json", "--zmq", ingest.zmq_endpoint, *keys.send_args(cert), "--strict",
                      "--spool", tmp_path / "spool"], input=batch)
        assert r.returncode == 0, r.stderr
    # The environment works as well as the flags.
    r = run_send(["--zmq", ingest.zmq_endpoint, "--strict", "--spool", "off", "--adw-id", "cv",
                  "--event-type", "T", "--event-id", "env-1"],
                 env={"ADW_CURVE_SERVER": keys.server, "ADW_CURVE_CERT": keys.agent})
    assert r.returncode == 0, r.stderr
    # A libzmq DEALER with its key.
    s = curve_socket(zmq.DEALER, ingest.zmq_endpoint, keys)
    try:
        r = submit(s, [ev(event_id="z-1"), ev(event_id="z-2")])
        assert r == {"ok": True, "ids": [10, 11]}
    finally:
        s.close(0)
    assert [d["event_id"] for d in docs(ingest.pg)] == [
        "one-0", "b-0-0", "b-0-1", "b-0-2", "one-1", "b-1-0", "b-1-1", "b-1-2", "env-1",
        "z-1", "z-2"]
    assert spooled(tmp_path / "spool") == []
    assert metric(ingest, 'adw_ingest_curve_peers_total{result="admitted"}') >= 6
    assert metric(ingest, 'adw_ingest_curve_peers_total{result="refused"}') == 0


def test_gateway_with_its_key_receives_the_stream_and_delivers_it(make_ingest, make_gateway,
                                                                  keys):
    n = 2000 if LONG else 300
    ingest = make_ingest(**keys.ingest_env())
    gw = make_gateway(ingest, ADW_GATEWAY_CURVE_SERVER=keys.server,
                      ADW_GATEWAY_CURVE_CERT=keys.gateway)
    ws = gw.ws()
    try:
        ws.wait_for(lambda m: m.get("type") == "hello")
        s = curve_socket(zmq.DEALER, ingest.zmq_endpoint, keys)
        try:
            for i in range(0, n, 50):
                r = submit(s, [ev(summary=str(i + k)) for k in range(50)])
                assert r["ok"], r
        finally:
            s.close(0)
        got = ws.collect(count=n, pred=lambda m: "id" in m, timeout=30)
        assert [m["id"] for m in got] == list(range(1, n + 1))
        assert [m["summary"] for m in got] == [str(i) for i in range(n)]
    finally:
        ws.close()
    # All of them came through the PUB socket (none had to be read from PostgreSQL).
    assert gw_metric(gw, "adw_gateway_sub_events_total") == n
    assert gw_metric(gw, "adw_gateway_hole_filled_events_total") == 0


def test_gateway_keeps_its_key_when_it_subscribes_anew_after_a_silent_link(make_ingest,
                                                                           make_gateway, keys):
    """The gateway's SUB reaches ingest's CURVE PUB through a fault proxy that black-holes the
    link: the gateway notices the silence and makes its socket anew, with its CURVE keys, so
    once the link is back every event arrives, once and in order."""
    import sys
    sys.path.insert(0, str(adwtest.REPO / "tests" / "tools"))
    from faultproxy import FaultProxy
    ingest = make_ingest(**keys.ingest_env())
    with FaultProxy((adwtest.LOOPBACK, ingest.pub_port)) as fp:
        gw = make_gateway(f"tcp://{adwtest.LOOPBACK}:{fp.port}",
                          ADW_GATEWAY_CURVE_SERVER=keys.server, ADW_GATEWAY_CURVE_CERT=keys.gateway)
        ws = gw.ws()
        try:
            ws.wait_for(lambda m: m.get("type") == "hello")
            ids = []
            with ingest.http() as c:
                ids += c.post_json("/api/events", [ev(summary=str(i)) for i in range(10)])[2]["ids"]
                fp.blackhole()
                adwtest.wait_for(lambda: (gw_metric(gw, "adw_gateway_sub_silences_total") or 0)
                                 >= 1, 15, what="the silence noticed")
                ids += c.post_json("/api/events", [ev(summary=str(i)) for i in range(10, 20)])[2][
                    "ids"]
                fp.heal()
                time.sleep(0.5)
                ids += c.post_json("/api/events", [ev(summary=str(i)) for i in range(20, 30)])[2][
                    "ids"]
            got = ws.collect(count=30, pred=lambda m: "id" in m, timeout=30)
            assert [m["id"] for m in got] == ids == list(range(1, 31))
            # After the hole, events arrive live again over the new CURVE connection.
            with ingest.http() as c:
                more = c.post_json("/api/events", [ev(summary="live")])[2]["ids"]
            assert [m["id"] for m in ws.collect(count=1, pred=lambda m: "id" in m,
                                                timeout=10)] == more
        finally:
            ws.close()
    assert metric(ingest, 'adw_ingest_curve_peers_total{result="refused"}') == 0


def test_bench_publishes_with_curve_and_loses_nothing(make_ingest, make_gateway, keys):
    if not adwtest.have_binary("adw-bench"):
        pytest.skip("adw-bench not built")
    n = 20000 if LONG else 2000
    ingest = make_ingest(**keys.ingest_env())
    gw = make_gateway(ingest, ADW_GATEWAY_CURVE_SERVER=keys.server,
                      ADW_GATEWAY_CURVE_CERT=keys.gateway)
    r = subprocess.run([str(adwtest.binary("adw-bench")), "--gateway", gw.ws_url, "--clients",
                        "4", "--count", str(n), "--batch", "10", "--concurrency", "2", "--zmq",
                        ingest.zmq_endpoint, *keys.send_args(), "--json", "--drain", "20"],
                       capture_output=True, env=send_env(), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert out["published"] == n and out["failed"] == 0
    assert out["deliveries"] == out["expected_deliveries"] == 4 * n
    assert out["lost"] == 0 and out["duplicated"] == 0 and out["out_of_order"] == 0
    assert count(ingest.pg) == n
    print(f"bench over CURVE: {n} events, {out['events_per_s']:.0f} stored/s, "
          f"{out['deliveries']} deliveries, lost {out['lost']}, "
          f"ack p50 {out['ack_latency_us']['p50']:.0f} us")


# ---- refusals ----------------------------------------------------------------------------


def test_unknown_key_is_refused_on_the_router_then_admitted_once_its_cert_is_added(
        make_ingest, keys, tmp_path):
    ingest = make_ingest(**keys.ingest_env())
    spool = tmp_path / "spool"
    r = run_send(["--zmq", ingest.zmq_endpoint, *keys.send_args(keys.intruder), "--strict",
                  "--spool", spool, "--timeout-ms", "1500", "--adw-id", "cv",
                  "--event-type", "T", "--event-id", "intruder-1"])
    assert r.returncode == 75, r.stderr  # spooled
    assert r.elapsed < 1.5 + 1.0, r.elapsed
    assert "refused the handshake" in r.stderr or "closed the connection" in r.stderr, r.stderr
    assert len(spooled(spool)) == 1
    s = curve_socket(zmq.DEALER, ingest.zmq_endpoint, keys, cert=keys.intruder)
    try:
        assert submit(s, ev(event_id="intruder-2"), timeout=1.5) is None
    finally:
        s.close(0)
    assert count(ingest.pg) == 0
    assert metric(ingest, 'adw_ingest_curve_peers_total{result="refused"}') >= 2
    assert "refused CURVE key " + keys.pair(keys.intruder)[0].decode() in ingest.log_text()
    # Its public certificate dropped into the directory: admitted, and the spool goes first.
    time.sleep(1.1)  # a new second for the directory's mtime
    keys.admit(keys.intruder)
    r = run_send(["--zmq", ingest.zmq_endpoint, *keys.send_args(keys.intruder), "--strict",
                  "--spool", spool, "--adw-id", "cv", "--event-type", "T",
                  "--event-id", "intruder-3"])
    assert r.returncode == 0, r.stderr
    assert [d["event_id"] for d in docs(ingest.pg)] == ["intruder-1", "intruder-3"]
    assert spooled(spool) == []


def test_a_flood_of_refused_keys_logs_a_line_a_second(make_ingest, keys):
    """Peers with an unknown key keep coming, 50 every 0.25 s for 2.5 s: every handshake is
    refused and counted, but the log gets at most one refusal line a second, which says how
    many it stands for; a known client is served meanwhile."""
    ingest = make_ingest(**keys.ingest_env())
    for _ in range(10):
        socks = [curve_socket(zmq.DEALER, ingest.zmq_endpoint, keys, cert=keys.intruder)
                 for _ in range(50)]
        time.sleep(0.25)
        for s in socks:
            s.close(0)
    good = curve_socket(zmq.DEALER, ingest.zmq_endpoint, keys)
    try:
        assert submit(good, ev(event_id="known-1"))["ids"] == [1]
    finally:
        good.close(0)
    refused = metric(ingest, 'adw_ingest_curve_peers_total{result="refused"}')
    lines = [ln for ln in ingest.log_text().splitlines() if "auth: refused" in ln]
    held = sum(int(ln.split("(")[-1].split()[0]) for ln in lines)
    print(f"refusal flood: {refused:.0f} refused in 2.5 s, {len(lines)} log lines "
          f"standing for {len(lines) + held}")
    assert refused >= 100
    assert 1 <= len(lines) <= 5
    assert "more refused since the last line" in lines[-1]
    assert held >= refused / 2  # the lines account for the refusals (the last second's wait)
    assert count(ingest.pg) == 1


def test_a_wrong_server_key_is_refused_by_the_client(make_ingest, keys, tmp_path):
    ingest = make_ingest(**keys.ingest_env())
    r = run_send(["--zmq", ingest.zmq_endpoint,
                  *keys.send_args(keys.agent, server=keys.other_server), "--strict",
                  "--spool", tmp_path / "spool", "--timeout-ms", "1500", "--adw-id", "cv",
                  "--event-type", "T"])
    assert r.returncode == 75, r.stderr
    assert r.elapsed < 2.5
    assert count(ingest.pg) == 0


def test_unknown_key_and_plain_subscribers_get_nothing_from_pub(make_ingest, keys):
    ingest = make_ingest(**keys.ingest_env())
    good = curve_socket(zmq.SUB, ingest.pub_endpoint, keys, cert=keys.gateway)
    bad = curve_socket(zmq.SUB, ingest.pub_endpoint, keys, cert=keys.intruder)
    plain = curve_socket(zmq.SUB, ingest.pub_endpoint)
    try:
        for s in (good, bad, plain):
            s.setsockopt(zmq.SUBSCRIBE, b"")
        # The admitted one is live once it sees a heartbeat.
        assert any(t == "$hb" for t, _ in drain_sub(good, 2.5))
        s = curve_socket(zmq.DEALER, ingest.zmq_endpoint, keys)
        try:
            assert submit(s, [ev(summary=str(i)) for i in range(20)])["ok"]
        finally:
            s.close(0)
        got = drain_sub(good, 2.0)
        assert [adwtest.mp_unpack(b)["id"] for t, b in got if t != "$hb"] == list(range(1, 21))
        assert drain_sub(bad, 0.5) == []
        assert drain_sub(plain, 0.5) == []
    finally:
        for s in (good, bad, plain):
            s.close(0)
    assert metric(ingest, 'adw_ingest_curve_peers_total{result="refused"}') >= 1


def test_plain_peers_are_refused_when_curve_is_on(make_ingest, make_gateway, keys, tmp_path):
    ingest = make_ingest(**keys.ingest_env())
    # adw-send without keys: the greeting says CURVE, it spools at once and says why.
    r = run_send(["--zmq", ingest.zmq_endpoint, "--strict", "--spool", tmp_path / "spool",
                  "--adw-id", "cv", "--event-type", "T"])
    assert r.returncode == 75, r.stderr
    assert "CURVE" in r.stderr and r.elapsed < 2.0, r.stderr
    # A plain libzmq DEALER: never answered.
    s = curve_socket(zmq.DEALER, ingest.zmq_endpoint)
    try:
        assert submit(s, ev(), timeout=1.5) is None
    finally:
        s.close(0)
    # A gateway without keys receives nothing: no heartbeat, so it never becomes ready.
    gw = make_gateway(ingest, start=False)
    gw.start()
    time.sleep(3.0)
    with gw.http() as h:
        status, _, body = h.get("/readyz")
    assert status == 503 and "no messages from ingest" in str(body), (status, body)
    assert gw_metric(gw, "adw_gateway_sub_events_total") == 0
    assert count(ingest.pg) == 0


def test_separate_subscribers_directory_and_any_key(make_ingest, keys, tmp_path):
    """ADW_INGEST_CURVE_SUBSCRIBERS: the agent may submit but not subscribe, the gateway may
    subscribe but not submit. Then ADW_INGEST_CURVE_CLIENTS='*': any key submits (encrypted,
    not authenticated), a plain peer still does not."""
    subs = tmp_path / "subscribers"
    subs.mkdir()
    shutil.copy(keys.gateway, subs)
    (keys.clients / os.path.basename(keys.gateway)).unlink()
    ingest = make_ingest(ADW_INGEST_CURVE_SUBSCRIBERS=str(subs), **keys.ingest_env())
    agent_sub = curve_socket(zmq.SUB, ingest.pub_endpoint, keys, cert=keys.agent)
    gw_sub = curve_socket(zmq.SUB, ingest.pub_endpoint, keys, cert=keys.gateway)
    gw_dealer = curve_socket(zmq.DEALER, ingest.zmq_endpoint, keys, cert=keys.gateway)
    agent = curve_socket(zmq.DEALER, ingest.zmq_endpoint, keys, cert=keys.agent)
    try:
        for s in (agent_sub, gw_sub):
            s.setsockopt(zmq.SUBSCRIBE, b"")
        assert any(t == "$hb" for t, _ in drain_sub(gw_sub, 2.5))
        assert submit(agent, ev())["ok"]
        assert submit(gw_dealer, ev(), timeout=1.5) is None
        assert [t for t, _ in drain_sub(gw_sub, 1.0) if t != "$hb"] == ["cv"]
        assert drain_sub(agent_sub, 0.3) == []
    finally:
        for s in (agent_sub, gw_sub, gw_dealer, agent):
            s.close(0)
    assert count(ingest.pg) == 1
    ingest.stop()

    anyone = make_ingest(ADW_INGEST_CURVE_CERT=keys.server, ADW_INGEST_CURVE_CLIENTS="*")
    r = run_send(["--zmq", anyone.zmq_endpoint, *keys.send_args(keys.intruder), "--strict",
                  "--spool", "off", "--adw-id", "cv", "--event-type", "T"])
    assert r.returncode == 0, r.stderr
    r = run_send(["--zmq", anyone.zmq_endpoint, "--strict", "--spool", "off", "--adw-id", "cv",
                  "--event-type", "T", "--timeout-ms", "1500"])
    assert r.returncode == 74, r.stderr  # plain: not delivered, no spool
    assert count(anyone.pg) == 2


def test_bad_curve_configuration_is_refused_at_start(make_ingest, make_gateway, keys, tmp_path):
    pub_only = tmp_path / "pub-only.cert"
    shutil.copy(keys.server, pub_only)
    cases = [
        ({"ADW_INGEST_CURVE_CERT": keys.server}, "ADW_INGEST_CURVE_CLIENTS is required"),
        ({"ADW_INGEST_CURVE_CERT": str(pub_only), "ADW_INGEST_CURVE_CLIENTS": "*"},
         "no secret key"),
        ({"ADW_INGEST_CURVE_CERT": keys.server,
          "ADW_INGEST_CURVE_CLIENTS": str(tmp_path / "nowhere")}, "not a directory"),
        ({"ADW_INGEST_CURVE_CLIENTS": str(keys.clients)}, "need ADW_INGEST_CURVE_CERT"),
    ]
    for env, why in cases:
        ing = make_ingest(start=False, **env)
        ing.start()
        assert ing.wait(10) != 0
        assert why in ing.log_text(), ing.log_text()
    ingest = make_ingest()
    gw = make_gateway(ingest, start=False, ADW_GATEWAY_CURVE_SERVER=keys.server)
    gw.start()
    assert gw.wait(10) == 2 and "ADW_GATEWAY_CURVE_CERT" in gw.log_text()
    r = run_send(["--zmq", ingest.zmq_endpoint, "--curve-cert", keys.agent, "--adw-id", "a",
                  "--event-type", "T"])
    assert r.returncode == 64 and "--curve-server" in r.stderr
    r = run_send(["--zmq", ingest.zmq_endpoint, "--curve-server", keys.server, "--curve-cert",
                  str(pub_only), "--adw-id", "a", "--event-type", "T"])
    assert r.returncode == 64 and "secret" in r.stderr


# ---- hostile peers, CURVE off and on -------------------------------------------------------


def garbage(port, stop, tally):
    """Connects to port again and again, sending random bytes, or a ZMTP greeting followed by
    a frame that claims 2^62 bytes, or a greeting and a stream of junk frames."""
    rnd = random.Random(port)
    greeting = b"\xff" + b"\0" * 8 + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" * 32
    while not stop.is_set():
        try:
            with socket.create_connection((adwtest.LOOPBACK, port), timeout=2) as c:
                kind = tally["n"] % 3
                if kind == 0:
                    c.sendall(rnd.randbytes(rnd.randint(1, 65536)))
                elif kind == 1:
                    c.sendall(greeting + b"\x06" + (1 << 62).to_bytes(8, "big") + b"x" * 100)
                else:
                    c.sendall(greeting + b"\x00\xff" + rnd.randbytes(255) * 50)
                tally["n"] += 1
                c.settimeout(0.5)
                try:
                    c.recv(4096)
                except OSError:
                    pass
        except OSError:
            time.sleep(0.05)


def start_bigsub(ingest, keys, n, curve):
    """tests/tools/bigsub.py in its own process: n SUBs with 1 MiB topics (a valid key with
    CURVE, so that the size limit, not the key, stops them)."""
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                        "bigsub.py")
    args = ["/usr/bin/python3", tool, ingest.pub_endpoint, str(n), str(1 << 20)]
    if curve:
        pub, sec = keys.pair(keys.gateway)
        args += [keys.server_public().decode(), pub.decode(), sec.decode()]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("security", ["plain", "curve"])
def test_hostile_peers_are_dropped_and_legitimate_ones_lose_nothing(make_ingest, keys,
                                                                     security):
    """While garbage connections hit both ports, SUBs subscribe with 1 MiB topics and a DEALER
    sends frames over ZMQ_MAXMSGSIZE (with a valid key when CURVE is on), a DEALER and a SUB
    that behave lose nothing, and ingest's memory stays flat."""
    curve = security == "curve"
    # A small ASan quarantine (sanitizer builds), so that RSS shows what ingest keeps.
    asan = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=16") if x)
    ingest = make_ingest(ASAN_OPTIONS=asan, **(keys.ingest_env() if curve else {}))
    k = keys if curve else None
    dur = 60 if LONG else 8
    rss0 = rss_kib(ingest.pid)

    good_sub = curve_socket(zmq.SUB, ingest.pub_endpoint, k, cert=keys.gateway)
    good_sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert any(t == "$hb" for t, _ in drain_sub(good_sub, 2.5))

    stop = threading.Event()
    tallies = [{"n": 0}, {"n": 0}]
    threads = [threading.Thread(target=garbage, args=(p, stop, t), daemon=True)
               for p, t in ((ingest.zmq_port, tallies[0]), (ingest.pub_port, tallies[1]))]
    big_dealer, big_mon = curve_socket(zmq.DEALER, ingest.zmq_endpoint, k, monitor=True)
    for t in threads:
        t.start()
    bigsub = start_bigsub(ingest, keys, 4, curve)

    sent, big_sent, big_replies, big_events, received = 0, 0, 0, [], []
    dealer = curve_socket(zmq.DEALER, ingest.zmq_endpoint, k)
    try:
        end = time.monotonic() + dur
        while time.monotonic() < end:
            r = submit(dealer, [ev(summary=str(sent + j)) for j in range(20)], timeout=10)
            assert r and r["ok"], (r, sent)
            sent += 20
            if sent % 200 == 0:
                try:  # over the 1 MiB limit
                    big_dealer.send(b"\x91" + b"x" * ((1 << 20) + 100), zmq.NOBLOCK)
                    big_sent += 1
                except zmq.Again:
                    pass  # between connections
            while big_dealer.poll(0, zmq.POLLIN):
                big_dealer.recv_multipart()
                big_replies += 1
            while good_sub.poll(0, zmq.POLLIN):
                received.append(good_sub.recv_multipart())
            big_events += monitor_events(big_mon)
            time.sleep(0.01)
        received += [[t.encode(), b] for t, b in drain_sub(good_sub, 2.0)]
        out, err = bigsub.communicate(timeout=60)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        dealer.close(0)
        if bigsub.poll() is None:
            bigsub.kill()
    rss1 = rss_kib(ingest.pid)

    ids = [adwtest.mp_unpack(f[-1])["id"] for f in received if f[0] != b"$hb"]
    assert ids == list(range(1, sent + 1)), (len(ids), sent)  # lost 0, in order, once
    assert count(ingest.pg) == sent
    assert big_replies == 0
    # Every hostile libzmq peer was cut off (the DEALER reconnects and tries again).
    big_events += monitor_events(big_mon, 0.5)
    assert "DISCONNECTED" in big_events, big_events
    subs = json.loads(out.strip().splitlines()[-1])
    assert [(x["cut"], x["received"]) for x in subs] == [(True, 0)] * 4, (subs, err[-500:])
    big_dealer.close(0)
    good_sub.close(0)
    assert ingest.alive()
    # Still serving after all that.
    with adwtest.ZmqClient(ingest.zmq_endpoint) if not curve else _curve_client(
            ingest, keys) as z:
        assert z.submit(ev())["ok"]
    print(f"{security}: sent {sent} events, lost 0; garbage connections {tallies[0]['n']} "
          f"(ROUTER) {tallies[1]['n']} (PUB); oversize frames {big_sent}; 1 MiB SUBs 4 cut; "
          f"ingest RSS {rss0} -> {rss1} KiB")
    assert rss1 - rss0 < 100 * 1024, (rss0, rss1)


class _curve_client:
    def __init__(self, ingest, keys):
        self.s = curve_socket(zmq.DEALER, ingest.zmq_endpoint, keys)

    def submit(self, obj):
        return submit(self.s, obj)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.s.close(0)
