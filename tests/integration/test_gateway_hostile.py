"""Hostile WebSocket input that breaks the protocol itself (not only our JSON): the offending
client is closed with the RFC 6455 code and its neighbours keep receiving."""

import adwtest
import pytest


@pytest.mark.needs_bin("adw-ingest", "adw-gateway")
@pytest.mark.parametrize("fragments", [1, 2])
def test_invalid_utf8_text_closes_1007_and_neighbours_keep_receiving(ingest, make_gateway,
                                                                      fragments):
    gw = make_gateway(ingest)
    bad = adwtest.RawWs(gw.ws_url)
    bad.recv_frame()  # hello
    with gw.ws() as good:
        good.recv(5)  # hello
        msg = b'{"action":"ping","x":"\xc3\x28"}'
        if fragments == 1:
            bad.send_frame(0x1, msg)
        else:  # the bad byte pair split across two fragments
            bad.send_frame(0x1, msg[:23], fin=False)
            bad.send_frame(0x0, msg[23:], fin=True)
        (code, _reason), _ = bad.recv_until_close()
        assert code == 1007
        st, _, body = ingest.http().post_json(
            "/api/events", {"type": "adw_event", "adw_id": "n", "event_type": "T"})
        assert st == 200
        assert good.wait_for(lambda m: isinstance(m, dict) and m.get("id") == body["id"], 10)


@pytest.mark.needs_bin("adw-ingest", "adw-gateway")
def test_valid_multibyte_text_is_taken(ingest, make_gateway):
    gw = make_gateway(ingest)
    with gw.ws() as ws:
        ws.recv(5)
        ws.send({"action": "ping", "note": "héllo — ✓ 𝄞"})
        assert ws.wait_for(lambda m: isinstance(m, dict) and m.get("type") == "pong", 5)
