"""adw-gateway: hello, live delivery, the filter matrix (live and replayed), filter changes,
and bad client input, against a real ingest and PostgreSQL."""

import itertools
import json
import struct

import adwtest
import pytest
from test_gateway_common import (assert_contiguous, connect, ev, hello, is_event, post,
                                 recv_events, wait_delivered, wait_type, ws_url)

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")


def test_hello_then_events_in_order(ingest, gateway):
    ws = connect(gateway)
    h = ws.hello
    assert h["version"] and isinstance(h["version"], str)
    assert h["last_id"] == 0 and h["heartbeat_s"] == 30
    assert isinstance(h["epoch"], int) and h["epoch"] > 0
    sent = [ev(summary=f"n{i}", payload={"i": i, "cost_usd": 0.5}) for i in range(20)]
    ids = post(ingest, sent)
    got = recv_events(ws, 20)
    assert [m["id"] for m in got] == ids
    for m, e in zip(got, sent):
        for k, v in e.items():
            assert m[k] == v
        assert m["received_at"].endswith("Z")
    # The event as delivered is the event as stored.
    row = gateway.pg.scalar("SELECT doc FROM events WHERE id = %s", (ids[3],))
    assert row == got[3]
    # A second client connecting now starts at the current position.
    ws2 = connect(gateway)
    assert ws2.hello["last_id"] == ids[-1]
    assert ws2.hello["epoch"] == h["epoch"]
    ws.close()
    ws2.close()


# The corpus for the filter matrix: every combination of two runs, three steps (one absent),
# two event types and both kinds of event.
CORPUS = [
    ev(adw_id=a, step=s, event_type=t if k == "adw_event" else e, type_=k)
    for a, s, (k, t, e) in itertools.product(
        ["r1", "r2"], ["plan", "build", None],
        [("adw_event", "TextBlock", None), ("adw_event", "ToolUseBlock", None),
         ("system", None, "step_start")])
]

FILTERS = [
    {},
    {"adw_id": "r1"},
    {"adw_id": "r1,r2"},
    {"steps": "plan"},
    {"steps": "plan,build"},
    {"event_types": "ToolUseBlock"},
    {"event_types": "step_start"},
    {"event_types": "TextBlock,step_start"},
    {"types": "system"},
    {"types": "adw_event,system"},
    {"adw_id": "r2", "steps": "build"},
    {"adw_id": "r1", "steps": "plan,build", "event_types": "TextBlock"},
    {"adw_id": "r2", "types": "system", "steps": "plan"},
    {"adw_id": "nope"},
    {"steps": "review"},
]


def matches(f, e):
    """The contract's rule: AND across keys, OR within a comma list; absent key: anything."""
    fields = {"adw_id": e.get("adw_id"), "steps": e.get("step"),
              "event_types": e.get("event_type", e.get("event")), "types": e.get("type")}
    for k, v in f.items():
        if fields[k] not in v.split(","):
            return False
    return True


def as_subscribe(f):
    return {k: v.split(",") for k, v in f.items()}


def test_filter_matrix_live_and_replay(ingest, gateway):
    # Live: one client per filter through the query string, one through subscribe.
    by_query = [connect(gateway, **f) for f in FILTERS]
    by_msg = []
    for f in FILTERS:
        ws = connect(gateway)
        ws.send({"action": "subscribe", "filters": as_subscribe(f)})
        sub = wait_type(ws, "subscribed")
        assert sub["filters"] == as_subscribe(f)
        by_msg.append(ws)
    ids = post(ingest, CORPUS)
    end = post(ingest, [ev(adw_id="r1", step="plan", event_type="TextBlock")])[0]
    # Clients whose filter takes the end marker first: once one has it, the gateway has queued
    # everything up to it for every client, so a short wait shows the others have no extras.
    order = sorted(zip(FILTERS, by_query, by_msg), key=lambda t: not matches(t[0], CORPUS[0]))
    for f, q, m in order:
        want = [i for i, e in zip(ids, CORPUS) if matches(f, e)]
        if matches(f, CORPUS[0]):  # the end marker is like CORPUS[0]
            want.append(end)
        for ws in (q, m):
            got = ws.collect(timeout=20, pred=is_event, count=len(want)) if want else []
            got += ws.collect(timeout=0.3, pred=is_event)
            assert [x["id"] for x in got] == want, f
            for x in got:
                if x["id"] != end:
                    assert matches(f, x)
    for ws in by_query + by_msg:
        ws.close()
    # Replay: the same filters applied by PostgreSQL give the same events.
    for f in FILTERS:
        want = [i for i, e in zip(ids, CORPUS) if matches(f, e)]
        if matches(f, CORPUS[0]):
            want.append(end)
        ws = connect(gateway, since=0, **f)
        got = ws.collect(timeout=20, until=lambda x: x.get("type") == "replayed" and "id" not in x)
        assert got and got[-1]["type"] == "replayed", (f, got[-3:])
        assert got[-1]["count"] == len(want) and got[-1]["last_id"] == end
        assert [x["id"] for x in got if is_event(x)] == want, f
        ws.close()


def test_subscribe_changes_filter_mid_stream(ingest, gateway):
    ws = connect(gateway, adw_id="r1")
    a = post(ingest, [ev(adw_id="r1"), ev(adw_id="r2"), ev(adw_id="r1", step="plan")])
    assert [m["id"] for m in recv_events(ws, 2)] == [a[0], a[2]]
    ws.send({"type": "subscribe", "filters": {"adw_id": "r2", "steps": ["build"]}})
    sub = wait_type(ws, "subscribed")
    assert sub["filters"] == {"adw_id": ["r2"], "steps": ["build"]} and sub["since"] is None
    b = post(ingest, [ev(adw_id="r1"), ev(adw_id="r2", step="plan"), ev(adw_id="r2")])
    assert [m["id"] for m in recv_events(ws, 1)] == [b[2]]
    # An empty subscription means everything again.
    ws.send({"action": "subscribe"})
    assert wait_type(ws, "subscribed")["filters"] == {}
    c = post(ingest, [ev(adw_id="x"), ev(adw_id="y", step=None)])
    assert [m["id"] for m in recv_events(ws, 2)] == c
    assert not [m for m in ws.collect(timeout=0.5) if is_event(m)]
    ws.close()


def test_subscribe_with_since_replays_then_continues_live(ingest, gateway):
    ids = post(ingest, [ev(adw_id="r1", summary=str(i)) for i in range(30)])
    wait_delivered(gateway, ids[-1])  # so that all of them are replayed, none live
    ws = connect(gateway)
    ws.send({"action": "subscribe", "filters": {"adw_id": ["r1"]}, "since": ids[9]})
    assert wait_type(ws, "subscribed")["since"] == ids[9]
    got = ws.collect(timeout=20, until=lambda m: m.get("type") == "replayed" and "id" not in m)
    assert [m["id"] for m in got if is_event(m)] == ids[10:]
    assert got[-1] == {"type": "replayed", "count": 20, "last_id": ids[-1], "complete": True}
    more = post(ingest, [ev(adw_id="r1"), ev(adw_id="r2"), ev(adw_id="r1")])
    assert [m["id"] for m in recv_events(ws, 2)] == [more[0], more[2]]
    # since beyond everything: nothing replayed, live continues.
    ws.send({"action": "subscribe", "since": 10**9})
    wait_type(ws, "subscribed")
    r = wait_type(ws, "replayed")
    assert r["count"] == 0 and r["last_id"] == 10**9
    ws.close()


def test_ping_pong_and_liveness_messages(gateway):
    ws = connect(gateway)
    ws.send({"action": "ping"})
    m = wait_type(ws, "pong")
    assert m["ts"].endswith("Z") and "T" in m["ts"]
    ws.send({"type": "ping"})
    wait_type(ws, "pong")
    ws.send({"action": "pong"})  # answers nothing
    ws.send({"action": "ping"})
    assert ws.recv()["type"] == "pong"
    ws.close()


BAD_MESSAGES = [
    ("not json", "invalid JSON"),
    ("{\"action\":", "invalid JSON"),
    ("[1,2]", "JSON object"),
    ("42", "JSON object"),
    ("{}", "missing action"),
    ({"action": 5}, "action must be a string"),
    ({"action": "dance"}, "unknown action"),
    ({"action": "subscribe", "filters": "r1"}, "filters must be an object"),
    ({"action": "subscribe", "filters": {"adw_id": 7}}, "filters.adw_id"),
    ({"action": "subscribe", "filters": {"steps": [1]}}, "filters.steps"),
    ({"action": "subscribe", "filters": {"stepz": ["a"]}}, "unknown filter key"),
    ({"action": "subscribe", "filters": {"steps": ["x" * 65]}}, "steps"),
    ({"action": "subscribe", "filters": {"steps": [str(i) for i in range(65)]}}, "at most"),
    ({"action": "subscribe", "since": "5"}, "since"),
    ({"action": "subscribe", "since": -1}, "since"),
    ({"action": "subscribe", "since": 1.5}, "since"),
    ("{\"action\":\"ping\",\"action\":\"ping\"}", "invalid JSON"),
]


def test_bad_input_gets_an_error_and_the_connection_stays(ingest, gateway):
    ws = connect(gateway, adw_id="keep")
    for msg, reason in BAD_MESSAGES:
        ws.send(msg)
        m = ws.recv()
        assert m.get("type") == "error" and reason in m["error"], (msg, m)
    ws.send(b"\x00binary")
    m = ws.recv()
    assert m["type"] == "error" and "binary" in m["error"]
    # The filter survived the bad subscriptions, and the connection works.
    ids = post(ingest, [ev(adw_id="other"), ev(adw_id="keep")])
    assert [m["id"] for m in recv_events(ws, 1)] == [ids[1]]
    ws.send({"action": "ping"})
    assert wait_type(ws, "pong")
    ws.close()


def test_oversized_frame_closes_1009_and_others_continue(ingest, gateway):
    other = connect(gateway)
    with adwtest.RawWs(gateway.ws_url) as raw:
        assert raw.status == 101
        op, payload, _ = raw.recv_frame()
        assert json.loads(payload)["type"] == "hello"
        raw.send_frame(raw.OP_TEXT, b"{\"action\":\"ping\",\"x\":\"" + b"a" * (64 * 1024) + b"\"}")
        (code, reason), _ = raw.recv_until_close(timeout=10)
        assert code == 1009, (code, reason)
    # Exactly 64 KiB is fine.
    with adwtest.RawWs(gateway.ws_url) as raw:
        raw.recv_frame()
        body = b"{\"action\":\"ping\",\"x\":\""
        body += b"a" * (64 * 1024 - len(body) - 2) + b"\"}"
        assert len(body) == 64 * 1024
        raw.send_frame(raw.OP_TEXT, body)
        op, payload, _ = raw.recv_frame()
        assert json.loads(payload)["type"] == "pong"
    # A message of 65 KiB in fragments is too big as well.
    with adwtest.RawWs(gateway.ws_url) as raw:
        raw.recv_frame()
        raw.send_frame(raw.OP_TEXT, b"[" + b"1," * 20000, fin=False)
        raw.send_frame(0, b"1," * 15000 + b"1]", fin=True)
        (code, _), _ = raw.recv_until_close(timeout=10)
        assert code == 1009
    ids = post(ingest, [ev()])
    assert [m["id"] for m in recv_events(other, 1)] == ids
    other.close()


def test_plain_get_and_bad_upgrades(gateway):
    st, _, body = adwtest.http_get(gateway.ws_url.replace("ws://", "http://"))
    assert st == 426 and "WebSocket" in body["error"]
    with adwtest.RawWs(gateway.ws_url.replace("/ws/events", "/ws/other")) as raw:
        assert raw.status == 404
    with adwtest.RawWs(ws_url(gateway, since="abc")) as raw:
        assert raw.status == 400
    with adwtest.RawWs(ws_url(gateway, steps="x" * 65)) as raw:
        assert raw.status == 400
    # permessage-deflate is not negotiated.
    with adwtest.RawWs(gateway.ws_url, headers={
            "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}) as raw:
        assert raw.status == 101 and "sec-websocket-extensions" not in raw.headers
    # Still serving.
    ws = connect(gateway)
    ws.close()


def test_fragmented_client_message_is_reassembled(gateway):
    with adwtest.RawWs(gateway.ws_url) as raw:
        raw.recv_frame()
        raw.send_frame(raw.OP_TEXT, b"{\"act", fin=False)
        raw.send_frame(raw.OP_PING, b"p")  # control frames may interleave
        raw.send_frame(0, b"ion\":\"ping\"}", fin=True)
        seen = []
        for _ in range(3):
            op, payload, _ = raw.recv_frame()
            seen.append((op, payload))
            if op == raw.OP_TEXT:
                break
        assert (raw.OP_PONG, b"p") in seen
        assert json.loads(seen[-1][1])["type"] == "pong"
        raw.send_frame(raw.OP_CLOSE, struct.pack("!H", 1000))
        (code, _), _ = raw.recv_until_close()
        assert code == 1000


def test_many_clients_each_get_everything(ingest, gateway):
    clients = [connect(gateway) for _ in range(20)]
    ids = post(ingest, [ev(summary=str(i)) for i in range(200)])
    for ws in clients:
        got = [m["id"] for m in recv_events(ws, 200, timeout=30)]
        assert got == ids
        assert_contiguous(got)
        ws.close()
