"""adw-ingest over HTTP against a real PostgreSQL: every answer of the contract's HTTP table,
every error code, framing attacks, keep-alive and pipelining, idempotency, hooks."""

import json
import re
from pathlib import Path

import adwtest
import pytest

pytestmark = pytest.mark.needs_bin("adw-ingest")

HOOKS = Path(__file__).resolve().parents[1] / "data" / "hooks"
RFC3339_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PATHS = ("/api/events", "/api/events/broadcast")


def ev(adw_id="run1", **kw):
    e = {"type": "adw_event", "adw_id": adw_id, "event_type": "ToolUseBlock"}
    e.update(kw)
    return e


def count(db):
    return db.scalar("SELECT count(*) FROM events")


def docs(db):
    return [r[0] for r in db.query("SELECT doc FROM events ORDER BY id")]


def raw(ingest, data, timeout=10.0):
    """Sends bytes on a fresh connection; returns (status, headers, parsed body, closed)."""
    with adwtest.RawConn(port=ingest.http_port, timeout=timeout) as c:
        c.send(data)
        st, h, body = c.read_response()
        closed = c.wait_closed(2.0) if h.get("connection") == "close" else False
        return st, h, json.loads(body) if body else None, closed


def post_head(path, length=None, ctype="application/json", extra=""):
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return head + extra + "\r\n"


# ---------------------------------------------------------------------------------------------
# Accepted submissions


@pytest.mark.parametrize("path", PATHS)
def test_single_event_answer_and_row(ingest, db, path):
    with ingest.http() as c:
        sent = ev(step="build", summary="Writing auth", timestamp="2026-01-01T14:30:00Z",
                  payload={"tool_name": "Write", "duration_ms": 45}, extra={"k": [1, None]})
        st, h, body = c.post_json(path, sent)
        assert (st, body) == (200, {"status": "broadcasted", "id": 1})
        assert h.get("Content-Type").startswith("application/json")
        st, _, body = c.post_json(path, ev())
        assert (st, body) == (200, {"status": "broadcasted", "id": 2})
    rows = db.query("SELECT id, adw_id, type, step, event_type, ts, received_at, doc "
                    "FROM events ORDER BY id")
    assert [r[0] for r in rows] == [1, 2]
    doc = rows[0][7]
    # The stored document is the event exactly as submitted plus id and received_at.
    assert doc.pop("id") == 1
    received = doc.pop("received_at")
    assert RFC3339_US.match(received)
    assert doc == sent
    assert rows[0][1:5] == ("run1", "adw_event", "build", "ToolUseBlock")
    assert rows[0][5].isoformat() == "2026-01-01T14:30:00+00:00"
    assert rows[0][6].strftime("%Y-%m-%dT%H:%M:%S.%fZ") == received
    # Without a timestamp, ts is the time of receipt.
    assert rows[1][5] == rows[1][6]


@pytest.mark.parametrize("path", PATHS)
def test_array_and_ndjson(ingest, db, path):
    with ingest.http() as c:
        st, _, body = c.post_json(path, [ev(), ev("run2"), ev(summary="3")])
        assert (st, body) == (200, {"status": "broadcasted", "ids": [1, 2, 3]})
        st, _, body = c.post_json(path, [ev()])
        assert (st, body) == (200, {"status": "broadcasted", "ids": [4]})
        st, _, body = c.post_json(path, [ev("n1"), ev("n2")], content_type="application/x-ndjson")
        assert (st, body) == (200, {"status": "broadcasted", "ids": [5, 6]})
        # CRLF line ends, blank lines and no final newline are fine.
        text = "\r\n" + json.dumps(ev("n3")) + "\r\n\r\n  \n" + json.dumps(ev("n4"))
        st, _, body = c.post_json(path, text, content_type="application/x-ndjson")
        assert (st, body) == (200, {"status": "broadcasted", "ids": [7, 8]})
        # One NDJSON line still answers "ids".
        st, _, body = c.post_json(path, [ev("n5")], content_type="application/x-ndjson")
        assert (st, body) == (200, {"status": "broadcasted", "ids": [9]})
        # A single event after a batch on the same connection answers "id" again.
        st, _, body = c.post_json(path, ev())
        assert (st, body) == (200, {"status": "broadcasted", "id": 10})
    assert [d["adw_id"] for d in docs(db)][:9] == [
        "run1", "run2", "run1", "run1", "n1", "n2", "n3", "n4", "n5"]


def test_batch_of_1000_and_1001(ingest, db):
    with ingest.http() as c:
        st, _, body = c.post_json("/api/events", [ev(summary=str(i)) for i in range(1000)])
        assert st == 200 and body["ids"] == list(range(1, 1001))
        st, _, body = c.post_json("/api/events", [ev() for _ in range(1001)])
        assert st == 400 and "1001" in body["error"] and "1000" in body["error"]
        st, _, body = c.post_json("/api/events", [ev() for _ in range(1001)],
                                  content_type="application/x-ndjson")
        assert st == 400 and body["index"] == 1000
        st, _, body = c.post_json("/api/events", [])
        assert st == 400 and "empty" in body["error"]
        st, _, body = c.post_json("/api/events", "\n\n", content_type="application/x-ndjson")
        assert st == 400 and "error" in body
    assert count(db) == 1000
    assert db.scalar("SELECT event_count FROM adw_runs WHERE adw_id = 'run1'") == 1000


@pytest.mark.parametrize("i", [0, 5, 999])
def test_batch_all_or_nothing(ingest, db, i):
    batch = [ev(summary=str(k)) for k in range(1000)]
    batch[i] = ev(duration_ms=-1)
    with ingest.http() as c:
        st, _, body = c.post_json("/api/events", batch)
        assert st == 400
        assert body["index"] == i
        assert body["error"].startswith(f"event {i}: ")
        assert "duration_ms must be a non-negative integer" in body["error"]
        # NDJSON: a line that is not JSON, and a line that breaks a rule.
        lines = [json.dumps(e) for e in batch]
        lines[i] = '{"type":'
        st, _, body = c.post_json("/api/events", "\n".join(lines),
                                  content_type="application/x-ndjson")
        assert st == 400 and body["index"] == i
        lines[i] = json.dumps(ev(adw_id="bad id"))
        st, _, body = c.post_json("/api/events", "\n".join(lines),
                                  content_type="application/x-ndjson")
        assert st == 400 and body["index"] == i and "adw_id" in body["error"]
        # The connection is still usable, and nothing was stored.
        st, _, body = c.post_json("/api/events", ev())
        assert (st, body) == (200, {"status": "broadcasted", "id": 1})
    assert count(db) == 1
    assert db.scalar("SELECT event_count FROM adw_runs") == 1


# ---------------------------------------------------------------------------------------------
# 400: bad JSON and schema


@pytest.mark.parametrize("body,want", [
    (b"", "empty body"),
    (b"   \n", "empty body"),
    (b"{", None),
    (b"[1,", None),
    (b'{"type":"adw_event","type":"system"}', "duplicate"),
    (b'{"type":"adw_event","adw_id":"a","event_type":"x","summary":"\xc3\x28"}', None),
    (b'{"type":"adw_event","adw_id":"a","event_type":"x"} trailing', None),
    (b'{"tokens":99999999999999999999}', None),
    (b"[" * 1000 + b"]" * 1000, "nesting"),
])
def test_bad_json(ingest, db, body, want):
    with ingest.http() as c:
        st, _, answer = c.request("POST", "/api/events", body,
                                  {"Content-Type": "application/json"})
        assert st == 400
        assert set(answer) == {"error"}
        if want:
            assert want in answer["error"]
    assert count(db) == 0


@pytest.mark.parametrize("event,want", [
    ({"type": "adw_event", "event_type": "x"}, "adw_id is required"),
    (ev(adw_id="x" * 65), "adw_id must be 1-64 characters"),
    (ev(type="other"), 'type must be "adw_event" or "system"'),
    ({"type": "system", "adw_id": "a"}, "event is required"),
    (ev(step="s" * 65), "step is 65 bytes, over the limit of 64"),
    (ev(summary="s" * 4097), "summary is 4097 bytes"),
    (ev(timestamp="2026-02-30T00:00:00Z"), "timestamp must be an RFC 3339 date-time"),
    (ev(payload=[1]), "payload must be a JSON object"),
    (ev(payload={"k": "x" * 65529}), "payload is over the limit of 65536 bytes"),
    (ev(id=5), "id is assigned by ingest"),
    (ev(received_at="2026-01-01T00:00:00Z"), "received_at is assigned by ingest"),
    (ev(payload={"tokens": 1.5}), "payload.tokens must be a non-negative integer"),
    (b'"just a string"', "expected an event object or an array of events"),
    (b"42", "expected an event object or an array of events"),
])
def test_schema_errors(ingest, db, event, want):
    with ingest.http() as c:
        st, _, body = c.post_json("/api/events", event)
        assert st == 400, body
        assert want in body["error"]
        assert "index" not in body
    assert count(db) == 0


def test_payload_of_64k_exactly_is_stored(ingest, db):
    payload = {"k": "x" * (65536 - 8)}
    assert len(json.dumps(payload, separators=(",", ":"))) == 65536
    with ingest.http() as c:
        st, _, body = c.post_json("/api/events", ev(payload=payload))
        assert (st, body["id"]) == (200, 1)
    assert docs(db)[0]["payload"] == payload


# ---------------------------------------------------------------------------------------------
# Hooks


def hook(name):
    return json.loads((HOOKS / name).read_text())


@pytest.mark.parametrize("file,event_type,summary", [
    ("pre_tool_use.json", "PreToolUse", "Write /src/auth.py"),
    ("post_tool_use.json", "PostToolUse", "Write /src/auth.py (ok)"),
    ("stop.json", "Stop", "Stop"),
    ("user_prompt_submit.json", "UserPromptSubmit", "Add a login endpoint with JWT"),
])
def test_hooks(ingest, db, file, event_type, summary):
    h = hook(file)
    with ingest.http() as c:
        # adw_id and step from the query.
        # The answer is what Claude Code reads from a hook: {} (no decision); the stored
        # event's id is in the X-ADW-Event-Id header.
        st, hd, body = c.post_json("/api/hooks?adw_id=run-q&step=build", h)
        assert (st, body, hd["X-ADW-Event-Id"]) == (200, {}, "1")
        # From the headers.
        st, hd, body = c.post_json("/api/hooks", h, {"X-ADW-Id": "run-h", "X-ADW-Step": "plan"})
        assert (st, body, hd["X-ADW-Event-Id"]) == (200, {}, "2")
        # The query wins over the headers.
        st, hd, body = c.post_json("/api/hooks?adw_id=run-q", h, {"X-ADW-Id": "run-h"})
        assert (st, body, hd["X-ADW-Event-Id"]) == (200, {}, "3")
        # Neither: the first 8 characters of session_id.
        st, hd, body = c.post_json("/api/hooks", h)
        assert (st, body, hd["X-ADW-Event-Id"]) == (200, {}, "4")
    d = docs(db)
    assert [(x["adw_id"], x.get("step")) for x in d] == [
        ("run-q", "build"), ("run-h", "plan"), ("run-q", None), ("abc12345", None)]
    for x in d:
        assert x["type"] == "adw_event"
        assert x["event_type"] == event_type
        assert x["summary"] == summary
        assert x["payload"] == h
    rows = db.query("SELECT adw_id, event_count FROM adw_runs ORDER BY adw_id")
    assert rows == [("abc12345", 1), ("run-h", 1), ("run-q", 2)]


def test_hook_errors(ingest, db):
    h = hook("no_session_id.json")
    with ingest.http() as c:
        st, _, body = c.post_json("/api/hooks", h)
        assert st == 400 and "no adw_id" in body["error"]
        st, _, body = c.post_json("/api/hooks?adw_id=bad%20id", hook("stop.json"))
        assert st == 400 and "adw_id" in body["error"]
        st, _, body = c.post_json("/api/hooks", hook("stop.json"), {"X-ADW-Id": "x" * 65})
        assert st == 400 and "X-ADW-Id" in body["error"]
        st, _, body = c.post_json("/api/hooks", [hook("stop.json")])
        assert st == 400 and "object" in body["error"]
        st, _, body = c.post_json("/api/hooks", {"session_id": "abcdefghij"})
        assert st == 400 and "hook_event_name" in body["error"]
        st, _, body = c.post_json("/api/hooks", b"{nope")
        assert st == 400
    assert count(db) == 0


# ---------------------------------------------------------------------------------------------
# 401


def test_token(make_ingest, db):
    ing = make_ingest(ADW_INGEST_TOKEN="s3cr3t-token")
    with ing.http() as c:
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": "Bearer s3cr3t-toke"},
                        {"Authorization": "Bearer s3cr3t-token2"},
                        {"Authorization": "Basic s3cr3t-token"},
                        {"Authorization": "s3cr3t-token"}):
            st, h, body = c.post_json("/api/events", ev(), headers)
            assert st == 401, headers
            assert body == {"error": "missing or wrong bearer token"}
            assert h.get("WWW-Authenticate") == "Bearer"
            st, _, _ = c.post_json("/api/hooks?adw_id=a", hook("stop.json"), headers)
            assert st == 401
        st, _, body = c.post_json("/api/events", ev(),
                                  {"Authorization": "Bearer s3cr3t-token"})
        assert (st, body) == (200, {"status": "broadcasted", "id": 1})
        st, _, _ = c.post_json("/api/events", ev(), {"Authorization": "bearer s3cr3t-token"})
        assert st == 200
        # GETs need no token.
        assert c.get("/healthz")[0] == 200
        assert c.get("/readyz")[0] == 200
    assert count(db) == 2
    assert "s3cr3t-token" not in ing.log_text()


# ---------------------------------------------------------------------------------------------
# 404, 405, 411, 413, 415, 431


def test_404_405(ingest, db):
    with ingest.http() as c:
        for method, path in (("GET", "/"), ("GET", "/api"), ("POST", "/api/event"),
                             ("POST", "/api/events/"), ("GET", "/healthz/x"),
                             ("POST", "/api/events/broadcast/x")):
            st, _, body = c.request(method, path, b"{}" if method == "POST" else None,
                                    {"Content-Type": "application/json"})
            assert st == 404, (method, path)
            assert body == {"error": "not found"}
        for method, path, allow in (("GET", "/api/events", "POST"),
                                    ("PUT", "/api/events/broadcast", "POST"),
                                    ("DELETE", "/api/hooks", "POST"),
                                    ("POST", "/healthz", "GET, HEAD"),
                                    ("PUT", "/metrics", "GET, HEAD")):
            st, h, body = c.request(method, path, b"{}" if method != "GET" else None)
            assert st == 405, (method, path)
            assert "method not allowed" in body["error"]
            assert h.get("Allow") == allow
        st, _, _ = c.get("/healthz")
        assert st == 200
    assert count(db) == 0


def test_411_and_415(ingest, db):
    st, h, body, closed = raw(ingest, post_head("/api/events"))
    assert st == 411 and "Content-Length" in body["error"]
    assert closed
    for ctype in ("text/plain", "application/xml", "application/x-www-form-urlencoded",
                  "multipart/form-data; boundary=x"):
        data = json.dumps(ev()).encode()
        st, _, body, _ = raw(ingest, post_head("/api/events", len(data), ctype).encode() + data)
        assert st == 415, ctype
        assert "Content-Type" in body["error"]
    # What is taken as JSON.
    with ingest.http() as c:
        for ctype in ("application/json", "application/json; charset=utf-8",
                      "APPLICATION/JSON", "text/json", "application/vnd.adw+json"):
            st, _, _ = c.post_json("/api/events", ev(), content_type=ctype)
            assert st == 200, ctype
        st, _, _ = c.request("POST", "/api/events", json.dumps(ev()))  # no Content-Type
        assert st == 200
        # NDJSON is for events, not hooks.
        st, _, _ = c.post_json("/api/hooks?adw_id=a", hook("stop.json"),
                               content_type="application/x-ndjson")
        assert st == 415
    assert count(db) == 6


def test_413_content_length_and_chunked(make_ingest, db):
    ing = make_ingest(ADW_INGEST_MAX_BODY="4096")
    # Content-Length over the limit: refused from the head alone, the body never read.
    st, _, body, closed = raw(ing, post_head("/api/events", 4097))
    assert st == 413 and "4097" in body["error"] and "4096" in body["error"]
    assert closed
    # At the limit: read (and refused as JSON, since it is padding).
    data = b" " * 4090 + b'{"a":1}'[:6]
    data = data[:4096]
    st, _, body, _ = raw(ing, post_head("/api/events", 4096).encode() + data)
    assert st == 400
    # A chunked body that grows over the limit.
    head = ("POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"1000\r\n" + b" " * 4096 + b"\r\n"
    with adwtest.RawConn(port=ing.http_port) as c:
        c.send(head.encode() + chunk)
        c.send(b"10\r\n" + b" " * 16 + b"\r\n")
        st, _, body = c.read_response()
        assert st == 413
        assert c.wait_closed(3)
    # A chunked body under the limit is taken.
    payload = json.dumps(ev()).encode()
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (payload[:10], payload[10:])) + \
        b"0\r\n\r\n"
    st, _, answer, _ = raw(ing, head.encode() + body)
    assert (st, answer) == (200, {"status": "broadcasted", "id": 1})
    # A JSON body just over the limit via the client library.
    with ing.http() as c:
        st, _, answer = c.post_json("/api/events", ev(summary="s" * 4096))
        assert st == 413
    assert count(db) == 1


def test_431(make_ingest, db):
    ing = make_ingest(ADW_INGEST_MAX_HEAD="2048")
    data = json.dumps(ev()).encode()
    head = post_head("/api/events", len(data), extra="X-Big: " + "a" * 3000 + "\r\n")
    st, _, body, closed = raw(ing, head.encode() + data)
    assert st == 431 and closed
    # Many headers, each small.
    extra = "".join(f"X-H{i}: v\r\n" for i in range(300))
    st, _, _, _ = raw(ing, post_head("/api/events", len(data), extra=extra).encode() + data)
    assert st == 431
    st, _, _, _ = raw(ing, post_head("/api/events", len(data), extra="X-Ok: 1\r\n").encode() + data)
    assert st == 200
    assert count(db) == 1


# ---------------------------------------------------------------------------------------------
# Framing attacks: each answered 400 and the connection closed; nothing stored


SMUGGLE = json.dumps(ev(adw_id="smuggled"))


@pytest.mark.parametrize("head", [
    # Content-Length and Transfer-Encoding together.
    "Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n",
    # Two Content-Lengths, different and equal.
    "Content-Length: {n}\r\nContent-Length: 5\r\n",
    "Content-Length: {n}\r\nContent-Length: {n}\r\n",
    "Content-Length: {n}, {n}\r\n",
    # Negative, signed, hex, or junk lengths.
    "Content-Length: -1\r\n",
    "Content-Length: +{n}\r\n",
    "Content-Length: 0x10\r\n",
    "Content-Length: {n}a\r\n",
    "Content-Length: 99999999999999999999999\r\n",
    # Obsolete folding and spaces before the colon.
    "Content-Length : {n}\r\n",
    "X-Fold: a\r\n b\r\nContent-Length: {n}\r\n",
])
def test_framing_attacks(ingest, db, head):
    check_framing_refused(ingest, db, head, 400)


@pytest.mark.parametrize("head", [
    # Transfer codings other than chunked alone: not implemented.
    "Transfer-Encoding: gzip, chunked\r\n",
    "Transfer-Encoding: chunked, identity\r\n",
    "Transfer-Encoding: xchunked\r\n",
    "Transfer-Encoding: gzip\r\n",
])
def test_unknown_transfer_coding(ingest, db, head):
    check_framing_refused(ingest, db, head, 501)


def check_framing_refused(ingest, db, head, status):
    body = f"{len(SMUGGLE):x}\r\n{SMUGGLE}\r\n0\r\n\r\n"
    n = len(body)
    req = (f"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           + head.format(n=n) + "\r\n" + body
           + f"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: {len(SMUGGLE)}\r\n\r\n"
           + SMUGGLE)
    with adwtest.RawConn(port=ingest.http_port) as c:
        c.send(req)
        st, h, answer = c.read_response()
        assert st == status, head
        assert "error" in json.loads(answer)
        assert h.get("connection") == "close"
        assert c.wait_closed(3)
    assert count(db) == 0


def test_chunked_encoding_errors(ingest, db):
    head = ("POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    for body in ("zz\r\n{}\r\n0\r\n\r\n", "2\r\n{}}\r\n0\r\n\r\n", "2\n{}\r\n0\r\n\r\n",
                 "-2\r\n{}\r\n0\r\n\r\n", "ffffffffffffffffff\r\n"):
        st, _, answer, closed = raw(ingest, head + body)
        assert st == 400, body
        assert closed
    assert count(db) == 0


# ---------------------------------------------------------------------------------------------
# Keep-alive, pipelining, HTTP/1.0


def test_keep_alive_and_pipelining(ingest, db):
    def post(e, close=False):
        data = json.dumps(e)
        return (f"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}"
                f"\r\n{data}")

    with adwtest.RawConn(port=ingest.http_port) as c:
        # Five requests in one write, a GET and a bad one among them: five answers, in order.
        c.send(post(ev(summary="1")) + post([ev(summary="2"), ev(summary="3")])
               + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               + post(ev(duration_ms=-1)) + post(ev(summary="4")))
        answers = [c.read_response() for _ in range(5)]
        assert [a[0] for a in answers] == [200, 200, 200, 400, 200]
        assert json.loads(answers[0][2]) == {"status": "broadcasted", "id": 1}
        assert json.loads(answers[1][2]) == {"status": "broadcasted", "ids": [2, 3]}
        assert json.loads(answers[4][2]) == {"status": "broadcasted", "id": 4}
        assert all(a[1].get("connection", "keep-alive") != "close" for a in answers)
        # A request split into many small writes on the same connection.
        data = post(ev(summary="5")).encode()
        for i in range(0, len(data), 7):
            c.send(data[i:i + 7])
        st, _, body = c.read_response()
        assert (st, json.loads(body)["id"]) == (200, 5)
        # Connection: close is honoured after the answer.
        c.send(post(ev(summary="6"), close=True))
        st, h, body = c.read_response()
        assert st == 200 and h.get("connection") == "close"
        assert c.wait_closed(3)
    # HTTP/1.0 closes unless asked to keep alive.
    data = json.dumps(ev(summary="7"))
    st, h, body, closed = raw(ingest, f"POST /api/events HTTP/1.0\r\nContent-Length: {len(data)}"
                                      f"\r\n\r\n{data}")
    assert st == 200 and closed
    assert [d["summary"] for d in docs(db)] == ["1", "2", "3", "4", "5", "6", "7"]


def test_many_requests_on_one_connection(ingest, db):
    with ingest.http() as c:
        for i in range(300):
            st, _, body = c.post_json("/api/events", ev(summary=str(i)))
            assert (st, body["id"]) == (200, i + 1)
    assert count(db) == 300


def test_expect_100_continue(ingest, db):
    data = json.dumps(ev())
    with adwtest.RawConn(port=ingest.http_port) as c:
        c.send(post_head("/api/events", len(data), extra="Expect: 100-continue\r\n"))
        while b"\r\n\r\n" not in c.buf:
            c.buf += c.recv_some(5)
        interim, _, c.buf = c.buf.partition(b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue"
        c.send(data)
        st, _, body = c.read_response()
        assert (st, json.loads(body)) == (200, {"status": "broadcasted", "id": 1})


# ---------------------------------------------------------------------------------------------
# Idempotency


def test_event_id_idempotency(ingest, db):
    with ingest.http() as c:
        st, _, a = c.post_json("/api/events", ev(event_id="k-1", summary="first"))
        st2, _, b = c.post_json("/api/events", ev(event_id="k-1", summary="second"))
        assert (st, st2) == (200, 200)
        assert a == b == {"status": "broadcasted", "id": 1}
        # Twice in one batch, and once more already stored: one new row.
        st, _, body = c.post_json("/api/events", [ev(event_id="k-2"), ev(event_id="k-2"),
                                                  ev(event_id="k-1"), ev()])
        assert (st, body["ids"]) == (200, [2, 2, 1, 3])
        # Over ZeroMQ too.
        reply = adwtest.zmq_submit(ingest.zmq_endpoint, ev(event_id="k-2"))
        assert reply == {"ok": True, "ids": [2]}
        st, _, body = c.post_json("/api/events", ev(event_id="k-3"))
        assert body["id"] == 4
    rows = db.query("SELECT id, event_id, doc->>'summary' FROM events ORDER BY id")
    assert rows == [(1, "k-1", "first"), (2, "k-2", None), (3, None, None), (4, "k-3", None)]
    assert db.scalar("SELECT event_count FROM adw_runs") == 4
