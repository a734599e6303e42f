"""adw-gateway with ADW_GATEWAY_TLS_CERT / ADW_GATEWAY_TLS_KEY: WebSocket (wss), REST and the
dashboard over TLS on the one port; plain HTTP on that port fails without harming anyone; a bad
certificate or key stops the gateway at start with a clear reason."""

import http.client
import os
import socket
import ssl

import adwtest
import pytest
import tls_common as T
from test_gateway_common import ev, post

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")


def tls_gateway(make_gateway, ingest, cert, key, **env):
    gw = make_gateway(ingest, start=False, ADW_GATEWAY_TLS_CERT=cert, ADW_GATEWAY_TLS_KEY=key,
                      **env)
    gw.start()
    return gw


def wss(gw, ctx, query="", timeout=10.0, headers=None):
    url = f"wss://{T.LOOPBACK}:{gw.http_port}/ws/events" + ("?" + query if query else "")
    w = adwtest.WsClient(url, timeout=timeout, headers=headers, connect=False)
    w.kw["ssl"] = ctx
    w.connect()
    m = w.recv(timeout)
    assert m.get("type") == "hello", m
    w.hello = m
    return w


def test_wss_rest_and_dashboard_over_tls(make_gateway, ingest, tmp_path):
    cert, key = T.make_cert(tmp_path)
    ctx = T.client_ctx(cert)
    gw = tls_gateway(make_gateway, ingest, cert, key)
    T.wait_https_ready(gw, gw.http_port, ctx)
    assert "listening: https" in gw.log_text()

    n = 2000 if os.environ.get("ADW_LONG") else 300
    w = wss(gw, ctx, "adw_id=tls-1")
    try:
        ids = post(ingest, [ev("tls-1", summary=f"e{i}") if i % 2 == 0 else ev("other-1")
                            for i in range(2 * n)])
        got = w.events(n, timeout=30)
        assert [e["adw_id"] for e in got] == ["tls-1"] * n
        assert [e["id"] for e in got] == ids[0::2]
        # resume over wss
        r = wss(gw, ctx, f"adw_id=tls-1&since={ids[0]}")
        try:
            again = r.events(n - 1, timeout=30)
            assert [e["id"] for e in again] == ids[2::2]
        finally:
            r.close()
    finally:
        w.close()

    st, _, body = T.https(gw.http_port, ctx, "GET", "/api/adws/tls-1")
    assert st == 200 and body["event_count"] == n, (st, body)
    st, _, body = T.https(gw.http_port, ctx, "GET", "/api/events?adw_id=tls-1&limit=5")
    assert st == 200 and len(body["events"]) == 5
    st, hdrs, page = T.https(gw.http_port, ctx, "GET", "/")
    assert st == 200 and "text/html" in hdrs.get("content-type", "")
    # The dashboard's script picks wss when the page came over https.
    st, _, js = T.https(gw.http_port, ctx, "GET", "/app.js")
    assert st == 200
    js = js if isinstance(js, str) else js.decode()
    assert "location.protocol === 'https:' ? 'wss:' : 'ws:'" in js


def test_plain_http_on_tls_port_fails_cleanly(make_gateway, ingest, tmp_path):
    cert, key = T.make_cert(tmp_path)
    ctx = T.client_ctx(cert)
    gw = tls_gateway(make_gateway, ingest, cert, key)
    T.wait_https_ready(gw, gw.http_port, ctx)
    w = wss(gw, ctx)
    try:
        rounds = 50 if os.environ.get("ADW_LONG") else 10
        for i in range(rounds):
            # a plain HTTP request: no HTTP answer comes back
            c = http.client.HTTPConnection(T.LOOPBACK, gw.http_port, timeout=5)
            with pytest.raises((OSError, http.client.HTTPException)):
                c.request("GET", "/readyz")
                r = c.getresponse()
                r.read()
                raise AssertionError(f"plain HTTP got an answer: {r.status}")
            c.close()
            # a plain WebSocket upgrade
            with pytest.raises(Exception):
                adwtest.WsClient(gw.ws_url, timeout=5)
            # a TLS client that does not trust the certificate is refused by itself
            with pytest.raises(ssl.SSLError):
                T.https(gw.http_port, ssl.create_default_context(), "GET", "/healthz")
        # garbage bytes then a half-open connection left behind
        s = socket.create_connection((T.LOOPBACK, gw.http_port), timeout=5)
        s.sendall(b"\x00\xffnot tls at all\r\n\r\n" * 10)
        ids = post(ingest, [ev("after-plain", summary=str(i)) for i in range(20)])
        got = w.events(20, timeout=20)
        assert [e["id"] for e in got] == ids
        st, _, _ = T.https(gw.http_port, ctx, "GET", "/readyz")
        assert st == 200
        s.close()
        assert gw.alive()
    finally:
        w.close()


@pytest.mark.parametrize("case", ["missing_cert", "missing_key", "cert_only", "key_mismatch",
                                  "not_pem"])
def test_bad_certificate_stops_start(make_gateway, ingest, tmp_path, case):
    cert, key = T.make_cert(tmp_path)
    cert2, key2 = T.make_cert(tmp_path, "other")
    junk = tmp_path / "junk.pem"
    junk.write_text("this is not a certificate\n")
    env, want = {
        "missing_cert": ({"ADW_GATEWAY_TLS_CERT": str(tmp_path / "nope.pem"),
                          "ADW_GATEWAY_TLS_KEY": key}, "nope.pem: No such file"),
        "missing_key": ({"ADW_GATEWAY_TLS_CERT": cert,
                         "ADW_GATEWAY_TLS_KEY": str(tmp_path / "nokey.pem")},
                        "nokey.pem: No such file"),
        "cert_only": ({"ADW_GATEWAY_TLS_CERT": cert}, "set both or neither"),
        "key_mismatch": ({"ADW_GATEWAY_TLS_CERT": cert, "ADW_GATEWAY_TLS_KEY": key2},
                         "does not match"),
        "not_pem": ({"ADW_GATEWAY_TLS_CERT": str(junk), "ADW_GATEWAY_TLS_KEY": key},
                    "not a PEM certificate"),
    }[case]
    gw = make_gateway(ingest, start=False, **env)
    gw.start()
    rc = T.wait_exit(gw)
    assert rc not in (0, None), rc
    log = gw.log_text()
    assert want in log, log
    assert len([l for l in log.splitlines() if "TLS" in l or "both" in l]) == 1, log
