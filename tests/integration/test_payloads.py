"""Awkward payloads end to end: quotes, backslashes, TAB and other control characters, a lone
`\\.` line (COPY's end-of-data marker in text form), non-BMP characters, line separators, in
values and in keys, sent over HTTP (single, array, NDJSON; small batches take the prepared
statement, batches of 64 or more take COPY), over ZeroMQ (msgpack) and through adw-send (JSON
on stdin, msgpack on the wire). Each is stored and comes back byte-exact from the WebSocket
(live), the REST API, a `since` replay and the `doc` column. What cannot be stored as sent
(`\\u0000`, which PostgreSQL's jsonb refuses; invalid UTF-8; lone surrogates; msgpack bin) is
refused with a reason naming the event, and a batch holding one is refused whole (the contract's
all-or-nothing): nothing of it is stored or delivered, and the ids stay contiguous."""

import json
import os

import adwtest
import msgpack
import pytest
from test_gateway_common import assert_contiguous, connect, is_event
from test_send_helpers import run_send

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

TRICKY = {
    "quote": "it's o'clock, isn''t it",
    "backslash": "C:\\temp\\new \\u0041 \\\\ not escapes",
    "tab": "col1\tcol2\t",
    "copy_end": "line1\n\\.\nline3",
    "copy_end_alone": "\\.",
    "copy_end_crlf": "\\.\r\n",
    "crlf": "a\r\nb\rc",
    "controls": "".join(chr(c) for c in range(1, 32)) + "\x7f",
    "unicode": "héllo — ✓ 𝄞 日本 \U0001F600",
    "separators": "\u2028\u2029\ufeff",
    "double_quote": 'say "hi" \\"',
    "html": "</script><!-- &amp; -->",
    "empty": "",
    "percent": "%s %d %n {} $1 ${x}",
}


def tricky_event(tag, i):
    payload = dict(TRICKY)
    payload["keys"] = {v: k for k, v in TRICKY.items() if v}  # every awkward string as a key
    payload["nested"] = [[TRICKY["tab"], {"x\t\\.": TRICKY["copy_end"]}], [], {}]
    payload["i"] = i
    return {
        "type": "adw_event",
        "adw_id": f"pl-{tag}",
        "step": "it's\tb\\uild\n\\.",
        "event_type": "Tool'\\Use\"\t",
        "status": "ok\t'\\",
        "summary": "\t'\\\n\\.\n" + TRICKY["unicode"] + TRICKY["controls"],
        "payload": payload,
        "x-top\t'\\": TRICKY["copy_end"],  # an unknown top-level key, kept as sent
        "event_id": f"{tag}-{i}-'\\\t\\.",
    }


def strip(m):
    return {k: v for k, v in m.items() if k not in ("id", "received_at")}


def strict_loads(raw):
    """json.loads refusing raw control characters in strings and duplicate keys."""
    def pairs(kv):
        keys = [k for k, _ in kv]
        assert len(keys) == len(set(keys)), f"duplicate keys {keys}"
        return dict(kv)
    return json.loads(raw, strict=True, object_pairs_hook=pairs)


def raw_ws_events(ws, n, timeout=30):
    """The next n event messages on a RawWs as (raw text, parsed)."""
    out = []
    while len(out) < n:
        op, payload, _ = ws.recv_frame(timeout=timeout)
        assert op == ws.OP_TEXT, (op, payload)
        assert not any(b < 0x20 for b in payload), payload  # escaped, never raw
        text = payload.decode("utf-8")  # strict: valid UTF-8
        m = strict_loads(text)
        if is_event(m):
            out.append((text, m))
    return out


def submit(ingest, channel, events, tmp_path=None):
    """Submits events over channel; returns their ids. (A refusal fails the test.)"""
    if channel == "http_single":
        ids = []
        with ingest.http() as c:
            for e in events:
                st, _, body = c.post_json("/api/events", e)
                assert st == 200, body
                ids.append(body["id"])
        return ids
    if channel in ("http_array", "http_array_copy"):
        with ingest.http() as c:
            st, _, body = c.post_json("/api/events", events)
        assert st == 200, body
        return body["ids"]
    if channel == "http_ndjson":
        with ingest.http() as c:
            st, _, body = c.post_json("/api/events", events,
                                      content_type="application/x-ndjson")
        assert st == 200, body
        return body["ids"]
    if channel in ("zmq_single", "zmq_array", "zmq_array_copy"):
        with ingest.zmq() as z:
            if channel == "zmq_single":
                ids = []
                for e in events:
                    r = z.submit(e)
                    assert r["ok"], r
                    ids += r["ids"]
                return ids
            r = z.submit(events)
            assert r["ok"], r
            return r["ids"]
    if channel == "adw_send_json_zmq":  # JSON on stdin, msgpack on the wire
        r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path / "spool", "--json",
                      "--strict"], input=json.dumps(events, ensure_ascii=False).encode())
        assert r.returncode == 0, r.stderr
        rows = ingest.pg.query("SELECT id FROM events WHERE adw_id = %s ORDER BY id",
                               (events[0]["adw_id"],))
        return [row[0] for row in rows]
    raise AssertionError(channel)


COUNTS = {"http_single": 3, "http_array": 10, "http_array_copy": 100, "http_ndjson": 70,
          "zmq_single": 3, "zmq_array": 10, "zmq_array_copy": 100, "adw_send_json_zmq": 5}
if os.environ.get("ADW_LONG"):  # ten times as many; a body stays under ingest's 1 MiB (an
    COUNTS = {k: min(500, 10 * v) for k, v in COUNTS.items()}  # event is about 1.8 KB)


@pytest.mark.parametrize("channel", sorted(COUNTS))
def test_awkward_strings_come_back_byte_exact(ingest, make_gateway, tmp_path, channel):
    gw = make_gateway(ingest)
    tag = channel.replace("_", "-")
    live = adwtest.RawWs(gw.ws_url + f"?adw_id=pl-{tag}")
    assert strict_loads(live.recv_frame()[1])["type"] == "hello"
    sent = [tricky_event(tag, i) for i in range(COUNTS[channel])]
    ids = submit(ingest, channel, sent, tmp_path)
    assert len(ids) == len(sent)
    if channel == "adw_send_json_zmq":  # adw-send stamps the time it was handed an event
        stamped = ingest.pg.query("SELECT doc->>'timestamp' FROM events WHERE id = ANY(%s) "
                                  "ORDER BY id", (ids,))
        sent = [dict(e, timestamp=t) for e, (t,) in zip(sent, stamped)]
        assert all(e["timestamp"].endswith("Z") for e in sent)
    assert_contiguous(ids)
    # Live, as raw frames: strict JSON, and the values exactly as sent, key order kept.
    got = raw_ws_events(live, len(sent))
    live.close()
    assert [m["id"] for _, m in got] == ids
    for (text, m), e in zip(got, sent):
        assert strip(m) == e
        assert list(strip(m)) == list(e)  # the live path keeps key order
        assert list(m["payload"]) == list(e["payload"])
    # REST: the same values (parsed strictly from the raw body).
    with adwtest.RawConn(port=gw.http_port, timeout=30) as c:
        c.send(f"GET /api/events?adw_id=pl-{tag}&since={ids[0] - 1}&limit=1000 HTTP/1.1\r\n"
               "Host: x\r\n\r\n")
        st, _, raw_body = c.read_response()
    assert st == 200
    assert not any(b < 0x20 for b in raw_body)
    page = strict_loads(raw_body.decode("utf-8"))
    assert [e["id"] for e in page["events"]] == ids
    assert [strip(e) for e in page["events"]] == sent
    # Replay with since: from the stored jsonb, the same values.
    again = connect(gw, adw_id=f"pl-{tag}", since=ids[0] - 1)
    replayed = again.events(len(sent), timeout=30)
    again.close()
    assert [m["id"] for m in replayed] == ids
    assert [strip(m) for m in replayed] == sent
    # The doc column, as users query it.
    rows = ingest.pg.query("SELECT id, doc, step, event_type, event_id FROM events "
                           "WHERE adw_id = %s ORDER BY id", (f"pl-{tag}",))
    assert [r[0] for r in rows] == ids
    for (_, doc, step, etype, eid), e in zip(rows, sent):
        assert strip(doc) == e
        assert (step, etype, eid) == (e["step"], e["event_type"], e["event_id"])


# ---------------------------------------------------------------------------------------------
# Refused: what jsonb cannot hold, and what is not Unicode.

def ok_event(i=0):
    return {"type": "adw_event", "adw_id": "pl-bad", "event_type": "T", "payload": {"i": i}}


JSON_BAD = {  # raw JSON text of one event -> a word the reason must contain
    "nul_in_payload_value": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                             b'"payload":{"s":"a\\u0000b"}}', "NUL"),
    "nul_in_payload_key": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                           b'"payload":{"a\\u0000":1}}', "NUL"),
    "nul_in_summary": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                       b'"summary":"\\u0000"}', "NUL"),
    "nul_in_extra": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                     b'"x":["\\u0000"]}', "NUL"),
    "utf8_ff": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                b'"payload":{"s":"\xff"}}', "UTF-8"),
    "utf8_bad_continuation": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                              b'"summary":"\xc3\x28"}', "UTF-8"),
    "utf8_overlong_slash": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                            b'"payload":{"\xc0\xaf":1}}', "UTF-8"),
    "utf8_encoded_surrogate": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                               b'"payload":{"s":"\xed\xa0\x80"}}', "UTF-8"),
    "utf8_truncated": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                       b'"payload":{"s":"\xe2\x82"}}', "UTF-8"),
    "lone_high_surrogate_escape": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                                   b'"payload":{"s":"\\ud800"}}', None),
    "lone_low_surrogate_escape": (b'{"type":"adw_event","adw_id":"pl-bad","event_type":"T",'
                                  b'"payload":{"s":"x\\udc00y"}}', None),
}


def state(ingest):
    """(events stored, the highest id)."""
    return ingest.pg.scalar("SELECT count(*) FROM events"), \
        ingest.pg.scalar("SELECT coalesce(max(id), 0) FROM events")


def check_nothing_stored_then_contiguous(ingest, watcher, before, post_good):
    """Nothing was stored; a good event after gets the next id and is the first event that
    `watcher`, subscribed to the run since before the refusals, receives."""
    assert state(ingest) == before
    [good_id] = post_good()
    assert good_id == before[1] + 1
    [m] = watcher.events(1, timeout=10)
    assert m["id"] == good_id and m["payload"] == {"i": 0}
    watcher.close()


@pytest.mark.parametrize("name", sorted(JSON_BAD))
def test_json_refusals_single_and_in_a_batch(ingest, make_gateway, name):
    gw = make_gateway(ingest)
    body, word = JSON_BAD[name]
    before = state(ingest)
    watcher = connect(gw, adw_id="pl-bad")
    with ingest.http() as c:
        st, _, ans = c.request("POST", "/api/events", body, {"Content-Type": "application/json"})
        assert st == 400, ans
        assert ans["error"] and (word is None or word in ans["error"]), ans
        # In an array of 100 (the COPY path) at index 37: the whole array is refused.
        good = [json.dumps(ok_event(i)).encode() for i in range(100)]
        arr = b"[" + b",".join(good[:37] + [body] + good[38:]) + b"]"
        st, _, ans = c.request("POST", "/api/events", arr, {"Content-Type": "application/json"})
        assert st == 400, ans
        assert ans["error"] and (word is None or word in ans["error"]), ans
        # NDJSON names the line.
        nd = b"\n".join(good[:5] + [body] + good[6:10]) + b"\n"
        st, _, ans = c.request("POST", "/api/events", nd,
                               {"Content-Type": "application/x-ndjson"})
        assert st == 400 and ans.get("index") == 5, ans
    check_nothing_stored_then_contiguous(
        ingest, watcher, before, lambda: [adwtest.post_json(ingest.base_url + "/api/events",
                                                            ok_event())[2]["id"]])


def mp_str(b):
    """A msgpack str (not bin) holding the bytes b as they are."""
    n = len(b)
    assert n < 256
    return (bytes([0xa0 | n]) if n < 32 else bytes([0xd9, n])) + b


def mp_event(extra):
    """A msgpack map of an ok event with one more (key bytes, value bytes) member."""
    base = msgpack.packb({"type": "adw_event", "adw_id": "pl-bad", "event_type": "T"})
    assert base[0] == 0x83
    k, v = extra
    return bytes([0x84]) + base[1:] + k + v


MSGPACK_BAD = {
    "nul_in_value": (mp_event((mp_str(b"summary"), mp_str(b"a\x00b"))), "NUL"),
    "nul_in_key": (mp_event((mp_str(b"k\x00"), mp_str(b"v"))), "NUL"),
    "utf8_ff": (mp_event((mp_str(b"summary"), mp_str(b"\xff"))), "UTF-8"),
    "utf8_overlong": (mp_event((mp_str(b"x"), mp_str(b"\xc0\xaf"))), "UTF-8"),
    "utf8_surrogate": (mp_event((mp_str(b"x"), mp_str(b"\xed\xa0\x80"))), "UTF-8"),
    "bin_value": (mp_event((mp_str(b"x"), msgpack.packb(b"\x00\x01", use_bin_type=True))),
                  None),
    "int_key": (mp_event((msgpack.packb(7), mp_str(b"v"))), None),
    "json_text_frame": (json.dumps(ok_event()).encode(), None),  # JSON is not a ZMQ request
}


@pytest.mark.parametrize("name", sorted(MSGPACK_BAD))
def test_msgpack_refusals_single_and_in_a_batch(ingest, make_gateway, name):
    gw = make_gateway(ingest)
    frame, word = MSGPACK_BAD[name]
    before = state(ingest)
    watcher = connect(gw, adw_id="pl-bad")
    with ingest.zmq() as z:
        r = z.submit(frame)
        assert r["ok"] is False and r["error"], r
        assert word is None or word in r["error"], r
        if name != "json_text_frame":
            # An array of 100 with it at 37: array header, 37 good, the bad one, 62 good.
            good = [msgpack.packb(ok_event(i)) for i in range(100)]
            arr = b"\xdc" + (100).to_bytes(2, "big") + b"".join(good[:37] + [frame] + good[38:])
            r = z.submit(arr)
            assert r["ok"] is False and r["error"], r
            assert word is None or word in r["error"], r
    check_nothing_stored_then_contiguous(
        ingest, watcher, before,
        lambda: adwtest.zmq_submit(ingest.zmq_endpoint, ok_event())["ids"])
