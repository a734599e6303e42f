"""Helpers shared by the adw-gateway integration tests (no tests here).

Events go in through ingest's HTTP API in batches; WebSocket clients come from the harness
(adwtest.WsClient, adwtest.RawWs). Nothing waits without a bound.
"""

import json
import time
import urllib.parse

import adwtest


def ev(adw_id="a1", step="build", event_type="TextBlock", type_="adw_event", **extra):
    """An event as a hook would send it; step=None leaves the key out. For type_ "system",
    event_type is used as the system event's `event`."""
    e = {"type": type_, "adw_id": adw_id}
    if step is not None:
        e["step"] = step
    if type_ == "system":
        e["event"] = event_type
    elif event_type is not None:
        e["event_type"] = event_type
    e.update(extra)
    return e


def post(ingest, events, client=None, batch=500):
    """Posts events (a list) to ingest in batches; returns their ids in order."""
    ids = []
    c = client or ingest.http(timeout=30)
    try:
        for i in range(0, len(events), batch):
            chunk = events[i:i + batch]
            st, _, body = c.post_json("/api/events", chunk)
            assert st == 200, (st, body)
            ids.extend(body["ids"])
    finally:
        if client is None:
            c.close()
    return ids


def is_event(m):
    return isinstance(m, dict) and "id" in m and "received_at" in m


def recv_events(ws, n, timeout=20.0):
    """Waits for n events on ws (other messages are skipped but stay in ws.seen)."""
    return ws.events(n, timeout=timeout)


def hello(ws, timeout=10.0):
    """The first message, which must be the hello."""
    m = ws.recv(timeout)
    assert isinstance(m, dict) and m.get("type") == "hello", m
    return m


def wait_type(ws, type_, timeout=10.0):
    """The next message of this type (events and others before it are kept in ws.seen)."""
    return ws.wait_for(lambda m: isinstance(m, dict) and m.get("type") == type_ and "id" not in m,
                       timeout)


def ws_url(gw, **params):
    q = urllib.parse.urlencode(params)
    return gw.ws_url + ("?" + q if q else "")


def connect(gw, timeout=10.0, **params):
    """A WsClient on gw with query parameters; its hello already read (returned as .hello)."""
    ws = adwtest.WsClient(ws_url(gw, **params), timeout=timeout)
    ws.hello = hello(ws, timeout)
    return ws


def assert_contiguous(ids, first=None, last=None):
    """ids are strictly increasing by one (from first, to last when given)."""
    assert ids == sorted(set(ids)), f"duplicates or disorder: {ids[:50]}"
    if ids:
        assert ids == list(range(ids[0], ids[-1] + 1)), "a gap in the ids"
        if first is not None:
            assert ids[0] == first, (ids[0], first)
        if last is not None:
            assert ids[-1] == last, (ids[-1], last)


def metric(gw, name):
    """The value of a metric line `name` (with labels if given) from /metrics, or None."""
    st, _, body = adwtest.http_get(gw.base_url + "/metrics")
    assert st == 200
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def gateway_position(gw, timeout=15.0):
    """Waits until a new client's hello reports a position; returns its last_id."""
    ws = connect(gw)
    try:
        return ws.hello["last_id"]
    finally:
        ws.close()


def wait_delivered(gw, last_id, timeout=20.0):
    """Waits until the gateway has published up to last_id (seen through a fresh hello)."""
    def reached():
        ws = connect(gw)
        try:
            return ws.hello["last_id"] >= last_id
        finally:
            ws.close()

    adwtest.wait_for(reached, timeout, interval=0.1, what=f"gateway at id {last_id}")


def dumps(m):
    return json.dumps(m, sort_keys=True)


def now():
    return time.monotonic()
