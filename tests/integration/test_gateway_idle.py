"""What an idle client's small footprint must not cost: libwebsockets hands a client's message
over in pieces of 128 bytes (the receive buffer each connection keeps), so a large message is
put together by the gateway, within the 65,536-byte limit, whether it came in one frame or in
fragments; a control frame of 125 bytes (the most a control frame holds) is answered whole; the
heartbeat reaches every client, and a client that stays silent is still closed."""

import json

import adwtest
import pytest
from test_gateway_common import connect, ev, is_event, post, recv_events, ws_url

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

R = adwtest.RawWs


def read_json(raw, pred, timeout=10):
    """Reads frames from raw until a text message for which pred is true; returns it."""
    while True:
        op, payload, _ = raw.recv_frame(timeout=timeout)
        assert op != R.OP_CLOSE, payload
        if op == R.OP_TEXT:
            m = json.loads(payload)
            if pred(m):
                return m


def subscribe_message(ids, size):
    """A subscribe to the runs ids, padded with whitespace to exactly size bytes."""
    body = json.dumps({"action": "subscribe", "filters": {"adw_id": ids}})
    assert len(body) < size
    return (body[:-1] + " " * (size - len(body)) + "}").encode()


def test_control_frame_of_125_bytes_answered_whole(ingest, make_gateway):
    gw = make_gateway(ingest)
    raw = R(gw.ws_url)
    assert raw.status == 101
    payload = bytes(range(125))
    raw.send_frame(R.OP_PING, payload)
    while True:
        op, got, _ = raw.recv_frame(timeout=10)
        assert op != R.OP_CLOSE, got
        if op == R.OP_PONG:
            break
    assert got == payload
    raw.close()


@pytest.mark.parametrize("how", ["one_frame", "fragments"])
def test_message_of_the_limit_put_together_from_pieces(ingest, make_gateway, how):
    """A subscribe of exactly 65,536 bytes, in one frame or in three fragments with a ping
    between them, is taken whole: its filter applies to the events that follow."""
    gw = make_gateway(ingest)
    raw = R(gw.ws_url)
    read_json(raw, lambda m: m.get("type") == "hello")
    ids = [f"run-{i:02d}-" + "x" * 50 for i in range(64)]
    msg = subscribe_message(ids, 65536)
    if how == "one_frame":
        raw.send_frame(R.OP_TEXT, msg)
    else:
        raw.send_frame(R.OP_TEXT, msg[:100], fin=False)
        raw.send_frame(R.OP_PING, b"between")
        raw.send_frame(0, msg[100:40000], fin=False)
        raw.send_frame(0, msg[40000:], fin=True)
    sub = read_json(raw, lambda m: m.get("type") in ("subscribed", "error"))
    assert sub["type"] == "subscribed", sub
    assert sub["filters"]["adw_id"] == ids
    sent = post(ingest, [ev(adw_id="other"), ev(adw_id=ids[63]), ev(adw_id=ids[0])])
    got = [read_json(raw, is_event)["id"] for _ in range(2)]
    assert got == sent[1:]
    raw.close()


def test_one_byte_over_the_limit_in_pieces_closes_1009(ingest, make_gateway):
    gw = make_gateway(ingest)
    good = connect(gw)
    raw = R(gw.ws_url)
    read_json(raw, lambda m: m.get("type") == "hello")
    msg = subscribe_message(["a1"], 65537)
    raw.send_frame(R.OP_TEXT, msg[:30000], fin=False)
    raw.send_frame(0, msg[30000:], fin=True)
    while True:
        op, payload, _ = raw.recv_frame(timeout=10)
        if op == R.OP_CLOSE:
            break
    assert int.from_bytes(payload[:2], "big") == 1009
    sent = post(ingest, [ev()])
    assert [m["id"] for m in recv_events(good, 1)] == sent
    good.close()


def test_heartbeat_reaches_every_client_and_silence_still_closes(ingest, make_gateway):
    gw = make_gateway(ingest, ADW_GATEWAY_HEARTBEAT_S="1")
    clients = [adwtest.WsClient(ws_url(gw)) for _ in range(3)]
    for c in clients:
        pings = c.collect(count=3, pred=lambda m: m.get("type") == "ping", timeout=10)
        assert len(pings) == 3
    silent = R(gw.ws_url)  # answers neither the protocol ping nor anything else
    code = None
    while code is None:
        op, payload, _ = silent.recv_frame(timeout=15)
        if op == R.OP_CLOSE:
            code = int.from_bytes(payload[:2], "big")
    assert code == 4000
    for c in clients:  # the others answer (WsClient pongs) and stay
        assert c.close_code is None
        c.close()
