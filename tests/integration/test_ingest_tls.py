"""adw-ingest with ADW_INGEST_TLS_CERT / ADW_INGEST_TLS_KEY: its HTTP speaks only TLS, driven
without blocking. Events posted over https are stored and acknowledged; keep-alive holds; a
handshake that stalls is cut off at the request timeout while other clients are served; bytes
that are not TLS close that connection only; a bad certificate stops the start."""

import http.client
import json
import os
import socket
import ssl
import subprocess
import time

import adwtest
import pytest
import tls_common as T

pytestmark = pytest.mark.needs_bin("adw-ingest")


def ev(i, adw_id="tls-ingest"):
    return {"type": "adw_event", "adw_id": adw_id, "step": "build", "event_type": "TextBlock",
            "summary": f"event {i}"}


def tls_ingest(make_ingest, tmp_path, **env):
    cert, key = T.make_cert(tmp_path)
    ing = make_ingest(start=False, ADW_INGEST_TLS_CERT=cert, ADW_INGEST_TLS_KEY=key, **env)
    ing.start()
    ctx = T.client_ctx(cert)
    T.wait_https_ready(ing, ing.http_port, ctx)
    ing.cert, ing.ctx = cert, ctx
    return ing


def metric(ing, series):
    st, _, body = T.https(ing.http_port, ing.ctx, "GET", "/metrics")
    assert st == 200
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def client_hello(ctx):
    """The bytes of a real TLS ClientHello for 127.0.0.1."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=T.LOOPBACK)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def closed_by_peer(s, timeout):
    """Waits up to timeout for the server to close s (EOF or reset); True when it did."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def test_post_over_https_stored_and_acknowledged_keep_alive(make_ingest, tmp_path, db):
    ing = tls_ingest(make_ingest, tmp_path)
    assert "listening: https" in ing.log_text()
    n = 2000 if os.environ.get("ADW_LONG") else 200
    c = http.client.HTTPSConnection(T.LOOPBACK, ing.http_port, context=ing.ctx, timeout=10)
    ids = []
    try:
        c.connect()
        sock = c.sock
        for i in range(n):
            st, _, body = T.https(ing.http_port, ing.ctx, "POST", "/api/events", ev(i), conn=c)
            assert st == 200 and body["status"] == "broadcasted", (st, body)
            ids.append(body["id"])
            assert c.sock is sock, f"the connection was not kept alive (request {i})"
        # a batch, NDJSON and a big body (many TLS records) on the same connection
        st, _, body = T.https(ing.http_port, ing.ctx, "POST", "/api/events",
                              [ev(i, "tls-batch") for i in range(500)], conn=c)
        assert st == 200 and len(body["ids"]) == 500
        big = {**ev(0, "tls-big"), "payload": {"blob": "x" * 60000}}
        st, _, body = T.https(ing.http_port, ing.ctx, "POST", "/api/events", big, conn=c)
        assert st == 200
        assert c.sock is sock
    finally:
        c.close()
    assert ids == list(range(1, n + 1))
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'tls-ingest'") == n
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'tls-batch'") == 500
    assert db.scalar("SELECT length(doc->'payload'->>'blob') FROM events "
                     "WHERE adw_id = 'tls-big'") == 60000
    # errors keep their statuses over TLS
    st, _, body = T.https(ing.http_port, ing.ctx, "POST", "/api/events", {"type": "nope"})
    assert st == 400
    st, _, _ = T.https(ing.http_port, ing.ctx, "GET", "/nowhere")
    assert st == 404


def test_stalled_handshakes_time_out_while_others_are_served(make_ingest, tmp_path, db):
    ing = tls_ingest(make_ingest, tmp_path, ADW_INGEST_REQUEST_TIMEOUT_MS="8000")
    hello = client_hello(ing.ctx)
    nstall = 400 if os.environ.get("ADW_LONG") else 100
    stalled = []
    for i in range(nstall):
        s = socket.create_connection((T.LOOPBACK, ing.http_port), timeout=5)
        if i % 3 == 0:
            pass  # connects and says nothing
        elif i % 3 == 1:
            s.sendall(hello[:len(hello) // 2])  # half a ClientHello
        else:
            s.sendall(hello)  # the whole ClientHello, then never answers the server
        stalled.append(s)
    # Others are served over TLS while every stalled handshake is pending.
    nreq = 100 if os.environ.get("ADW_LONG") else 30
    for i in range(nreq):
        st, _, body = T.https(ing.http_port, ing.ctx, "POST", "/api/events", ev(i, "served"))
        assert st == 200, body
    assert metric(ing, 'adw_ingest_tls_handshake_failures_total{reason="timeout"}') == 0
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'served'") == nreq
    # Past the request timeout every stalled connection is closed by the server.
    closed = sum(1 for s in stalled if closed_by_peer(s, 30))
    for s in stalled:
        s.close()
    assert closed == nstall
    assert metric(ing, 'adw_ingest_tls_handshake_failures_total{reason="timeout"}') == nstall
    st, _, _ = T.https(ing.http_port, ing.ctx, "POST", "/api/events", ev(0, "after"))
    assert st == 200
    assert ing.alive()


def test_garbage_instead_of_client_hello_closes_that_connection(make_ingest, tmp_path, db):
    ing = tls_ingest(make_ingest, tmp_path)
    garbage = [b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
               b"\x16\x03\x01\x00\x05hello",                 # a record header, then junk
               b"\x16\x03\x01\xff\xff" + b"\x00" * 200,       # an oversized record
               bytes(range(256)) * 8,
               b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10" + b"\x00" * 37]  # SSLv2 hello
    rounds = 20 if os.environ.get("ADW_LONG") else 4
    keep = http.client.HTTPSConnection(T.LOOPBACK, ing.http_port, context=ing.ctx, timeout=10)
    try:
        for r in range(rounds):
            for g in garbage:
                s = socket.create_connection((T.LOOPBACK, ing.http_port), timeout=5)
                s.sendall(g)
                assert closed_by_peer(s, 10), g[:20]
                s.close()
                # the service keeps running, and a kept-alive TLS client keeps its connection
                st, _, _ = T.https(ing.http_port, ing.ctx, "POST", "/api/events",
                                   ev(r, "garbage-round"), conn=keep)
                assert st == 200
    finally:
        keep.close()
    assert metric(ing, 'adw_ingest_tls_handshake_failures_total{reason="error"}') \
        == rounds * len(garbage)
    assert db.scalar("SELECT count(*) FROM events") == rounds * len(garbage)
    assert ing.alive()


@pytest.mark.parametrize("case", ["missing_cert", "key_only", "key_mismatch"])
def test_bad_certificate_stops_start(make_ingest, tmp_path, case):
    cert, key = T.make_cert(tmp_path)
    _, key2 = T.make_cert(tmp_path, "other")
    env, want = {
        "missing_cert": ({"ADW_INGEST_TLS_CERT": str(tmp_path / "nope.pem"),
                          "ADW_INGEST_TLS_KEY": key}, "nope.pem: No such file"),
        "key_only": ({"ADW_INGEST_TLS_KEY": key}, "set both or neither"),
        "key_mismatch": ({"ADW_INGEST_TLS_CERT": cert, "ADW_INGEST_TLS_KEY": key2},
                         "does not match"),
    }[case]
    ing = make_ingest(start=False, **env)
    ing.start()
    assert T.wait_exit(ing) == 2
    assert want in ing.log_text(), ing.log_text()


@pytest.mark.needs_bin("adw-send")
def test_adw_send_over_https(make_ingest, tmp_path, db):
    ing = tls_ingest(make_ingest, tmp_path, ADW_INGEST_TOKEN="send-tok-1")
    url = f"https://{T.LOOPBACK}:{ing.http_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADW_")}

    def send(*args, stdin=None, **extra):
        e = dict(env, ADW_INGEST_TOKEN="send-tok-1", **extra)
        return subprocess.run([adwtest.binary("adw-send"), "--http", url, "--strict",
                               "--spool", "off", "--timeout-ms", "10000", *args],
                              input=stdin, env=e, capture_output=True, timeout=60)

    # one event, flags; the CA from the flag and from the environment
    r = send("--ca-file", ing.cert, "--adw-id", "send-tls", "--event-type", "TextBlock")
    assert r.returncode == 0, r.stderr
    r = send("--adw-id", "send-tls", "--event-type", "TextBlock", ADW_CA_FILE=ing.cert)
    assert r.returncode == 0, r.stderr
    # many, on one kept-alive connection
    n = 3000 if os.environ.get("ADW_LONG") else 300
    lines = "".join(json.dumps({"type": "adw_event", "adw_id": "send-tls-many",
                                "event_type": "TextBlock", "summary": str(i)}) + "\n"
                    for i in range(n))
    r = send("--json", "--ca-file", ing.cert, stdin=lines.encode())
    assert r.returncode == 0, r.stderr
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'send-tls'") == 2
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'send-tls-many'") == n
    # a server it does not trust (the system CAs do not know the self-signed one): not sent
    r = send("--adw-id", "send-tls", "--event-type", "TextBlock")
    assert r.returncode == 74, (r.returncode, r.stderr)
    assert b"not trusted" in r.stderr, r.stderr
    # a CA file that is not there: a clear usage error
    r = send("--ca-file", str(tmp_path / "none.pem"), "--adw-id", "x", "--event-type", "T")
    assert r.returncode != 0 and b"none.pem" in r.stderr, r.stderr
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'send-tls'") == 2
    # the token never shows in what adw-send prints
    assert b"send-tok-1" not in r.stderr
