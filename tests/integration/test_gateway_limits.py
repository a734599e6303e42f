"""adw-gateway: heartbeats and the silent-client timeout, slow consumers, SIGTERM, the client
limit, and the token and Origin checks."""

import json
import socket
import struct
import time

import adwtest
import pytest
from test_gateway_common import (connect, ev, hello, is_event, metric, post, recv_events,
                                 wait_delivered, wait_type, ws_url)

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")


def test_heartbeat_timeout_closes_silent_client_only(ingest, make_gateway):
    gw = make_gateway(ingest, ADW_GATEWAY_HEARTBEAT_S="1")
    alive = connect(gw)  # the library answers protocol pings: it counts as alive
    assert alive.hello["heartbeat_s"] == 1
    with adwtest.RawWs(gw.ws_url) as silent:
        t0 = time.monotonic()
        (code, reason), frames = silent.recv_until_close(timeout=15)
        waited = time.monotonic() - t0
        assert code == 4000 and reason == "heartbeat timeout"
        assert waited >= 2.5
        ops = [op for op, _ in frames]
        assert silent.OP_PING in ops  # protocol pings...
        texts = [json.loads(p) for op, p in frames if op == silent.OP_TEXT]
        assert texts[0]["type"] == "hello"
        assert any(m["type"] == "ping" and m["ts"].endswith("Z") for m in texts)  # ...and JSON
    # The responsive client is still there and still gets events and pings.
    ids = post(ingest, [ev()])
    assert [m["id"] for m in recv_events(alive, 1)] == ids
    assert wait_type(alive, "ping", timeout=5)
    assert alive.close_code is None
    assert metric(gw, 'adw_gateway_drops_total{reason="heartbeat_timeout"}') >= 1
    alive.close()


def test_any_client_frame_counts_as_alive(ingest, make_gateway):
    gw = make_gateway(ingest, ADW_GATEWAY_HEARTBEAT_S="1")
    with adwtest.RawWs(gw.ws_url) as raw:
        raw.recv_frame()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # answers nothing, but says pong now and then
            raw.send_text({"action": "pong"})
            time.sleep(0.5)
        raw.send_text({"action": "ping"})
        while True:
            op, payload, _ = raw.recv_frame(timeout=5)
            assert op != raw.OP_CLOSE, payload
            if op == raw.OP_TEXT and json.loads(payload)["type"] == "pong":
                break


def slow_raw_client(gw):
    """A RawWs with a small socket buffer, which reads nothing until told to. (Not tiny: a
    window of a few KiB closed for seconds makes TCP itself crawl once reading resumes.)"""
    raw = adwtest.RawWs(gw.ws_url)
    assert raw.status == 101
    raw.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    return raw


def test_slow_consumer_closed_4008_others_unaffected_and_resume(ingest, make_gateway):
    gw = make_gateway(ingest, ADW_GATEWAY_MAX_QUEUE="2M")
    fast = adwtest.WsClient(gw.ws_url, max_queue=None)  # reads all the time, even while we post
    hello(fast)
    slow = slow_raw_client(gw)
    blob = "b" * 20000
    ids = post(ingest, [ev(payload={"blob": blob, "i": i}) for i in range(600)], batch=40)
    # The fast client gets everything, in order, while the slow one sits.
    got = [m["id"] for m in recv_events(fast, 600, timeout=90)]
    assert got == ids
    adwtest.wait_for(lambda: metric(gw, 'adw_gateway_drops_total{reason="slow_consumer"}'),
                     20, what="slow consumer culled")
    # The slow client reads what reached it, then the close naming the last id it was given.
    (code, reason), frames = slow.recv_until_close(timeout=60)
    slow.close()
    assert code == 4008 and reason.startswith("slow consumer; last_id="), (code, reason)
    last = int(reason.split("=")[1])
    seen = [json.loads(p) for op, p in frames if op == slow.OP_TEXT]
    assert seen[0]["type"] == "hello"
    seen_ids = [m["id"] for m in seen if is_event(m)]
    assert seen_ids == ids[:len(seen_ids)] and seen_ids[-1] == last
    assert last < ids[-1]
    # It resumes with since and has everything.
    again = connect(gw, since=last)
    rest = again.collect(timeout=60, until=lambda m: is_event(m) and m["id"] == ids[-1])
    assert seen_ids + [m["id"] for m in rest if is_event(m)] == ids
    again.close()
    fast.close()


def test_sigterm_closes_clients_1001_and_exits_0(ingest, gateway):
    a, b = connect(gateway), connect(gateway)
    with adwtest.RawWs(gateway.ws_url) as raw:
        raw.recv_frame()
        gateway.terminate()
        (code, _), _ = raw.recv_until_close(timeout=10)
        assert code == 1001
    assert a.wait_closed(10)[0] == 1001
    assert b.wait_closed(10)[0] == 1001
    assert gateway.wait(15) == 0
    assert "stopped" in gateway.log_text()


def test_max_clients(ingest, make_gateway):
    gw = make_gateway(ingest, ADW_GATEWAY_MAX_CLIENTS="2")
    a, b = connect(gw), connect(gw)
    with pytest.raises(adwtest.WsHandshakeError) as e:
        adwtest.WsClient(gw.ws_url)
    assert e.value.status == 503
    a.close()
    adwtest.wait_for(lambda: metric(gw, "adw_gateway_clients") == 1, 10)
    c = connect(gw)
    c.close()
    b.close()


def test_token_required_on_ws_and_api(ingest, make_gateway):
    gw = make_gateway(ingest, ADW_GATEWAY_TOKEN="s3cret")
    for url in (gw.ws_url, ws_url(gw, token="wrong"), ws_url(gw, token="s3cret2")):
        with pytest.raises(adwtest.WsHandshakeError) as e:
            adwtest.WsClient(url)
        assert e.value.status == 401
    connect(gw, token="s3cret").close()
    ws = adwtest.WsClient(gw.ws_url, headers={"Authorization": "Bearer s3cret"})
    hello(ws)
    ws.close()
    with adwtest.RawWs(gw.ws_url, headers={"Authorization": "Bearer nope"}) as raw:
        assert raw.status == 401
    c = gw.http()
    st, h, body = c.get("/api/adws")
    assert st == 401 and body["error"] and h.get("WWW-Authenticate") == "Bearer"
    assert c.get("/api/events?token=bad")[0] == 401
    assert c.get("/api/adws?token=s3cret")[0] == 200
    assert c.get("/api/events", headers={"Authorization": "Bearer s3cret"})[0] == 200
    assert c.get("/healthz")[0] == 200  # not behind the token
    assert c.get("/readyz")[0] == 200
    c.close()


def test_origin_checks(ingest, make_gateway, gateway):
    host = f"127.0.0.1:{gateway.http_port}"
    allowed = [f"http://{host}", "http://localhost:3000", "https://localhost",
               "http://127.0.0.1:9", None]
    refused = ["http://evil.example", "https://localhost.evil.example", "null",
               "http://127.0.0.2:8080", "file://"]
    for origin in allowed:
        hdr = {"Origin": origin} if origin else {}
        with adwtest.RawWs(gateway.ws_url, headers=hdr) as raw:
            assert raw.status == 101, origin
    for origin in refused:
        with adwtest.RawWs(gateway.ws_url, headers={"Origin": origin}) as raw:
            assert raw.status == 403, origin
    gw = make_gateway(ingest, ADW_GATEWAY_ORIGINS="https://dash.example, http://ops.example:81")
    host2 = f"127.0.0.1:{gw.http_port}"
    for origin, status in [("https://dash.example", 101), ("http://ops.example:81", 101),
                           ("http://ops.example", 403), ("http://localhost:3000", 403),
                           (f"http://{host2}", 101)]:
        with adwtest.RawWs(gw.ws_url, headers={"Origin": origin}) as raw:
            assert raw.status == status, origin
    gw3 = make_gateway(ingest, ADW_GATEWAY_ORIGINS="*")
    with adwtest.RawWs(gw3.ws_url, headers={"Origin": "http://anything.example"}) as raw:
        assert raw.status == 101


def test_not_ready_until_subscribed(db, make_ingest, make_gateway):
    # A gateway whose ingest is not there yet: alive but not ready, WebSocket refused with 503.
    port = adwtest.free_port()
    gw = make_gateway(f"tcp://127.0.0.1:{port}", start=False)
    gw.start()
    gw.wait_ready(gw.base_url + "/healthz", 20)
    st, _, body = adwtest.http_get(gw.base_url + "/readyz")
    assert st == 503 and "ingest" in body["error"]
    ing = make_ingest(start=False)
    ing.pub_port = port
    for k, v in ing._env().items():
        ing.env[k] = str(v)
    ing.start_ready()
    gw.wait_ready(gw.base_url + "/readyz", 20)
    ws = connect(gw)
    ids = post(ing, [ev()])
    assert [m["id"] for m in recv_events(ws, 1)] == ids
    ws.close()
