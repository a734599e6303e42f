"""The run export (GET /api/adws/{id}/events.ndjson and .csv): a 100,000-event run streamed
in id order, each line or row equal to what /api/events gives, the gateway's memory flat while
it streams, a slow reader holding up no one else, 404 for an unknown run or one outside a read
token's scope, and clients that leave mid-download leaving the gateway healthy."""

import csv
import http.client
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import adwtest
import pytest
import tls_common as T
from test_gateway_common import connect, ev, post

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

FULL = "full-Secret-0123"
TOK_A = "tokA-77"
READ = f"{TOK_A}=team-a-"
AUTH = {"Authorization": f"Bearer {FULL}"}
COLUMNS = ["id", "received_at", "ts", "type", "step", "event_type", "event", "status",
           "agent_id", "summary", "cost_usd", "tokens", "payload"]
RSS_BOUND = 64 << 20


@pytest.fixture
def gw(make_gateway, ingest):
    # A small ASan quarantine (sanitizer builds), so that RSS shows what the gateway keeps
    # rather than the freed memory ASan holds back.
    asan = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=16") if x)
    return make_gateway(ingest, ADW_GATEWAY_TOKEN=FULL, ADW_GATEWAY_READ_TOKENS=READ,
                        ASAN_OPTIONS=asan)


def shaped(run, i):
    """Events in the shapes Claude Code's hooks give, with text that CSV must quote."""
    k = i % 5
    if k == 0:
        return ev(run, step="build", event_type="PreToolUse", session_id="s-1",
                  summary=f"Bash: echo \"a,b\"\r\n#{i}",
                  payload={"tool_name": "Bash", "tool_input": {"command": f"echo \"a,b\" {i}"}})
    if k == 1:
        return ev(run, step="build", event_type="PostToolUse", agent_id="agent-7",
                  summary=f"Read: /src/naïve, ünïcode ✓ {i}",
                  payload={"tool_name": "Read", "tool_input": {"file_path": "/src/naïve.c"},
                           "tool_response": {"ok": True, "lines": [1, 2, None]}})
    if k == 2:
        return ev(run, step="review", event_type="TextBlock", summary=f"plain {i}",
                  cost_usd=0.125 + i / 1e6, tokens=1000 + i)
    if k == 3:
        return ev(run, step="review", event_type="step_complete", type_="system",
                  status="completed", summary="", payload=None)
    return ev(run, step=None, event_type="Notification", summary="line1\nline2 \"q\"",
              payload={"message": "x" * (i % 300)})


def load(ingest, run, n, other=None):
    """Posts n events of run (arrays of 1,000, one HTTP connection); every 10th array also
    carries events of `other`. Returns (ids of run, seconds taken)."""
    c = ingest.http(timeout=60)
    t0 = time.monotonic()
    ids = []
    try:
        for start in range(0, n, 1000):
            batch = [shaped(run, i) for i in range(start, min(n, start + 1000))]
            st, _, body = c.post_json("/api/events", batch)
            assert st == 200, (st, body)
            ids.extend(body["ids"])
            if other and start % 10000 == 0:
                post(ingest, [ev(other, summary="elsewhere")] * 3, client=c)
    finally:
        c.close()
    return ids, time.monotonic() - t0


def rest_events(gw, run, headers=AUTH):
    c = gw.http(timeout=60)
    out, since = [], 0
    try:
        while True:
            st, _, body = c.get(f"/api/events?adw_id={run}&since={since}&limit=1000",
                                headers=headers)
            assert st == 200, body
            out.extend(body["events"])
            if not body["events"]:
                return out
            since = body["next_since"]
    finally:
        c.close()


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def download(gw, path, headers=AUTH, on_chunk=None):
    """GETs path; returns (status, headers, body bytes), calling on_chunk after each read."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        parts = []
        while True:
            b = resp.read(65536)
            if not b:
                break
            parts.append(b)
            if on_chunk:
                on_chunk()
        return resp.status, resp.headers, b"".join(parts)
    finally:
        conn.close()


def csv_equal(row, e):
    """A CSV row (a list of strings) equals the REST event e field by field."""
    assert len(row) == len(COLUMNS), row
    for name, field in zip(COLUMNS, row):
        v = e.get(name)
        if v is None:
            assert field == "", (name, field, e)
        elif isinstance(v, str):
            assert field == v, (name, field, v)
        else:
            assert json.loads(field) == v, (name, field, v)


def raw_get(gw, path, headers=AUTH):
    s = socket.create_connection(("127.0.0.1", gw.http_port), timeout=10)
    h = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{h}\r\n".encode())
    return s


def test_export_100k_run(ingest, gw):
    n = 100_000
    ids, took = load(ingest, "big-run", n, other="other-run")
    print(f"\n100,000 events through ingest in {took:.1f} s")
    assert len(ids) == n
    rest = rest_events(gw, "big-run")
    assert [e["id"] for e in rest] == ids

    # NDJSON, the gateway's memory sampled before, during and after.
    pid = gw.pid
    before = rss(pid)
    samples = []
    st, hdr, body = download(gw, "/api/adws/big-run/events.ndjson",
                             on_chunk=lambda: samples.append(rss(pid)))
    after = rss(pid)
    assert st == 200
    assert hdr["Content-Type"] == "application/x-ndjson"
    assert hdr["Content-Disposition"] == 'attachment; filename="big-run-events.ndjson"'
    assert hdr.get("Content-Length") is None
    lines = body.split(b"\n")
    assert lines[-1] == b""
    got = [json.loads(x) for x in lines[:-1]]
    assert len(got) == n
    assert [e["id"] for e in got] == ids
    assert got == rest
    growth = max(samples + [after]) - before
    print(f"gateway RSS: before {before >> 20} MiB, peak during {max(samples) >> 20} MiB,"
          f" after {after >> 20} MiB; growth {growth / (1 << 20):.1f} MiB"
          f" for a {len(body) / (1 << 20):.1f} MiB download")
    assert growth < RSS_BOUND

    # CSV, parsed back.
    st, hdr, body = download(gw, "/api/adws/big-run/events.csv")
    assert st == 200
    assert hdr["Content-Type"] == "text/csv; charset=utf-8"
    assert hdr["Content-Disposition"] == 'attachment; filename="big-run-events.csv"'
    text = body.decode("utf-8")
    assert text.startswith(",".join(COLUMNS) + "\r\n")
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == COLUMNS
    assert len(rows) == n + 1
    for row, e in zip(rows[1:], rest):
        csv_equal(row, e)
    print(f"gateway RSS after the CSV download ({len(body) / (1 << 20):.1f} MiB):"
          f" {rss(pid) >> 20} MiB")
    assert rss(pid) - before < RSS_BOUND

    # A slow reader (4 KiB every 50 ms) holds up neither REST nor live WebSocket clients;
    # once it reads at full speed again it gets the whole run.
    slow = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=60)
    # (Its receive buffer left alone: a tiny one makes loopback TCP crawl whoever reads it;
    # the 25 MiB download is far more than the sockets' buffers hold anyway.)
    slow.request("GET", "/api/adws/big-run/events.ndjson", headers=AUTH)
    slow_resp = slow.getresponse()
    assert slow_resp.status == 200
    stop = threading.Event()
    slow_parts = []

    def reader():
        while not stop.is_set():
            b = slow_resp.read(4096)
            if not b:
                return
            slow_parts.append(b)
            time.sleep(0.05)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    live = connect(gw, token=FULL, adw_id="live-run")
    c = gw.http(timeout=10)
    try:
        time.sleep(0.5)
        worst_rest = worst_live = 0.0
        for i in range(5):
            t0 = time.monotonic()
            st, _, body = c.get("/api/adws/big-run", headers=AUTH)
            worst_rest = max(worst_rest, time.monotonic() - t0)
            assert st == 200 and body["event_count"] == n
            t0 = time.monotonic()
            post(ingest, [ev("live-run", summary=f"live {i}")])
            got = live.events(1, timeout=5)
            worst_live = max(worst_live, time.monotonic() - t0)
            assert got[0]["summary"] == f"live {i}"
            time.sleep(0.2)
        stop.set()
        t.join(5)
        slow_bytes = sum(map(len, slow_parts))
        print(f"with a slow reader: REST at most {worst_rest * 1000:.0f} ms, live event at most"
              f" {worst_live * 1000:.0f} ms; the slow reader had read {slow_bytes} bytes")
        assert worst_rest < 2.0 and worst_live < 2.0
        assert 0 < slow_bytes < 4 << 20
        rest_of_it = slow_resp.read()
        lines = (b"".join(slow_parts) + rest_of_it).split(b"\n")
        assert len(lines) == n + 1 and json.loads(lines[-2])["id"] == ids[-1]
    finally:
        stop.set()
        t.join(5)
        slow.close()
        live.close()
        c.close()

    # Clients that leave mid-download.
    for i in range(6):
        s = raw_get(gw, f"/api/adws/big-run/events.{'csv' if i % 2 else 'ndjson'}")
        if i % 3:
            s.recv(8192)
        if i == 5:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    time.sleep(1)
    assert gw.alive
    st, _, body = gw.http().get("/healthz")
    assert st == 200
    st, _, body = download(gw, "/api/adws/other-run/events.ndjson")
    assert st == 200 and len(body.splitlines()) == 30
    print(f"gateway RSS at the end: {rss(pid) >> 20} MiB")
    assert rss(pid) - before < RSS_BOUND


def test_export_not_found_scope_and_small_runs(ingest, gw):
    post(ingest, [shaped("team-a-1", i) for i in range(25)] + [ev("team-b-1")])
    full = AUTH
    scoped = {"Authorization": f"Bearer {TOK_A}"}
    for path in ["/api/adws/nope/events.ndjson", "/api/adws/nope/events.csv",
                 "/api/adws/bad%20id/events.csv", "/api/adws/team-a-1/events.xml"]:
        st, hdr, body = download(gw, path, full)
        assert st == 404, (path, st, body)
        assert hdr["Content-Type"] == "application/json"
        assert "error" in json.loads(body)
    # Outside the token's scope: as if it did not exist; inside: the whole run.
    st, _, body = download(gw, "/api/adws/team-b-1/events.ndjson", scoped)
    assert st == 404, body
    st, _, body = download(gw, "/api/adws/team-a-1/events.ndjson", scoped)
    assert st == 200
    got = [json.loads(x) for x in body.splitlines()]
    assert got == rest_events(gw, "team-a-1", scoped) and len(got) == 25
    st, _, body = download(gw, "/api/adws/team-a-1/events.csv", scoped)
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert rows[0] == COLUMNS and len(rows) == 26
    for row, e in zip(rows[1:], got):
        csv_equal(row, e)
    # No token at all.
    st, _, _ = download(gw, "/api/adws/team-a-1/events.csv", {})
    assert st == 401
    # A run with a single event: chunked, the connection closed after it; the next request on
    # a new one.
    c = gw.http()
    for _ in range(2):
        st, hdr, body = c.get("/api/adws/team-b-1/events.csv", headers=full)
        assert st == 200 and len(body.splitlines()) == 2, body
        assert hdr["Transfer-Encoding"] == "chunked" and hdr["Connection"] == "close"
        st, _, _ = c.get("/healthz")
        assert st == 200
    c.close()
    # HEAD: the headers only.
    conn = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=10)
    conn.request("HEAD", "/api/adws/team-a-1/events.csv", headers=full)
    r = conn.getresponse()
    assert r.status == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    conn.close()


def test_export_over_tls_http1_and_http2(make_gateway, ingest, tmp_path):
    """Over TLS: HTTP/1.1 (chunked) and, through curl, HTTP/2 (no chunking; the stream ends)."""
    cert, key = T.make_cert(tmp_path)
    ctx = T.client_ctx(cert)
    gw = make_gateway(ingest, start=False, ADW_GATEWAY_TLS_CERT=cert, ADW_GATEWAY_TLS_KEY=key)
    gw.start()
    T.wait_https_ready(gw, gw.http_port, ctx)
    n = 2500
    post(ingest, [shaped("tls-run", i) for i in range(n)], batch=1000)
    conn = http.client.HTTPSConnection("127.0.0.1", gw.http_port, context=ctx, timeout=30)
    conn.request("GET", "/api/adws/tls-run/events.ndjson")
    r = conn.getresponse()
    assert r.status == 200 and r.headers["Transfer-Encoding"] == "chunked"
    h1 = r.read()
    conn.close()
    got = [json.loads(x) for x in h1.splitlines()]
    assert len(got) == n and [e["id"] for e in got] == sorted(e["id"] for e in got)
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("no curl for HTTP/2")
    for ext in ("ndjson", "csv"):
        out = subprocess.run([curl, "-sSv", "--http2", "--cacert", cert, "-D", "-", "-o",
                              str(tmp_path / f"h2.{ext}"),
                              f"https://localhost:{gw.http_port}/api/adws/tls-run/events.{ext}"],
                             capture_output=True, timeout=60, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("HTTP/2 200"), out.stdout
        assert "transfer-encoding" not in out.stdout.lower()
        body = (tmp_path / f"h2.{ext}").read_bytes()
        if ext == "ndjson":
            assert body == h1, out.stderr[-3000:]
        else:
            rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
            assert len(rows) == n + 1
            for row, e in zip(rows[1:], got):
                csv_equal(row, e)
