"""Tokens on every entry point, and never in a log. Ingest (HTTP, plain and TLS) and the
gateway (WebSocket upgrade, REST, dashboard; plain and TLS) get requests with the right token,
wrong ones, near misses and none, in the Authorization header and in the `token` query
parameter, at log level debug in JSON; adw-send runs with the token at debug level too.
Wrong or missing tokens get 401 (HTTP) or a refused upgrade, and no event; afterwards no token
string, right or wrong, appears in any process's log."""

import http.client
import json
import os
import socket
import subprocess
import urllib.parse

import adwtest
import pytest
import tls_common as T
from test_gateway_common import ev, post

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway", "adw-send")

ING_TOK = "ingTok-SECRET-7f3a9c"
GW_TOK = "gwTok-SECRET-91b2d4"
RD_TOK = "rdTok-SECRET-55c1e0"
WRONG = ["wrongTok-SECRET-0000", ING_TOK[:-1], ING_TOK + "x", GW_TOK[:-1] + "5", RD_TOK.upper(),
         GW_TOK + GW_TOK]
SECRETS = [ING_TOK, GW_TOK, RD_TOK] + WRONG
LOG_ENV = {"ADW_LOG_LEVEL": "debug", "ADW_LOG_FORMAT": "json"}


class Http:
    """Requests on fresh connections, plain or TLS: (status, parsed body or text)."""

    def __init__(self, port, ctx=None):
        self.port, self.ctx = port, ctx

    def __call__(self, method, path, body=None, headers=None):
        if self.ctx:
            c = http.client.HTTPSConnection(T.LOOPBACK, self.port, context=self.ctx, timeout=10)
        else:
            c = http.client.HTTPConnection(T.LOOPBACK, self.port, timeout=10)
        try:
            h = dict(headers or {})
            if body is not None:
                body = json.dumps(body)
                h.setdefault("Content-Type", "application/json")
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            raw = r.read().decode("utf-8", "replace")
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw
        finally:
            c.close()


def ws_try(url, ctx, headers=None):
    """Opens a WebSocket; returns ("open", first messages) or ("refused", status)."""
    w = adwtest.WsClient(url, timeout=10, headers=headers, connect=False)
    if ctx:
        w.kw["ssl"] = ctx
    try:
        w.connect()
    except adwtest.WsHandshakeError as e:
        return "refused", e.status
    try:
        return "open", w.collect(timeout=0.7)
    finally:
        w.close()


def variants(right):
    """(headers, query) pairs: the right token in each place, wrong ones, none."""
    out = [({"Authorization": f"Bearer {right}"}, {}, True), ({}, {"token": right}, "query"),
           ({"Authorization": f"bearer  {right} "}, {}, True), ({}, {}, False),
           ({"Authorization": f"Basic {right}"}, {}, False), ({"Authorization": right}, {}, False)]
    for w in WRONG:
        out.append(({"Authorization": f"Bearer {w}"}, {}, False))
        out.append(({}, {"token": w}, False))
        out.append(({"Authorization": f"Bearer {w}"}, {"token": w}, False))
    return out


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_tokens_on_every_entry_point_and_never_logged(make_ingest, make_gateway, db, tmp_path,
                                                      tls):
    ctx = None
    tls_env_i, tls_env_g = {}, {}
    if tls:
        cert, key = T.make_cert(tmp_path)
        ctx = T.client_ctx(cert)
        tls_env_i = {"ADW_INGEST_TLS_CERT": cert, "ADW_INGEST_TLS_KEY": key}
        tls_env_g = {"ADW_GATEWAY_TLS_CERT": cert, "ADW_GATEWAY_TLS_KEY": key}
    ing = make_ingest(start=not tls, ADW_INGEST_TOKEN=ING_TOK, **LOG_ENV, **tls_env_i)
    if tls:
        ing.start()
        T.wait_https_ready(ing, ing.http_port, ctx)
    gw = make_gateway(ing, start=not tls, ADW_GATEWAY_TOKEN=GW_TOK,
                      ADW_GATEWAY_READ_TOKENS=f"{RD_TOK}=tok-", **LOG_ENV, **tls_env_g)
    if tls:
        gw.start()
        T.wait_https_ready(gw, gw.http_port, ctx)
    ih, gh = Http(ing.http_port, ctx), Http(gw.http_port, ctx)
    rounds = 5 if os.environ.get("ADW_LONG") else 1

    # --- ingest: every POST route; the token only counts in the Authorization header
    stored = 0
    for _ in range(rounds):
        for headers, query, ok in variants(ING_TOK):
            for path, body in (("/api/events", ev("tok-run", summary="x")),
                               ("/api/events/broadcast", [ev("tok-run"), ev("tok-run")]),
                               ("/api/hooks?adw_id=tok-run",
                                {"hook_event_name": "PreToolUse", "session_id": "abcdefgh1",
                                 "tool_name": "Bash", "tool_input": {"command": "ls"}})):
                q = ("&" if "?" in path else "?") + urllib.parse.urlencode(query) if query else ""
                st, resp = ih("POST", path + q, body, headers)
                if ok is True:
                    assert st == 200, (path, headers, st, resp)
                    stored += len(body) if isinstance(body, list) else 1
                else:  # wrong, missing, or only in the query string: 401, nothing stored
                    assert st == 401, (path, headers, query, st, resp)
                    assert resp == {"error": "missing or wrong bearer token"}
        for path in ("/healthz", "/readyz", "/metrics"):  # public, whatever is in the query
            assert ih("GET", f"{path}?token={WRONG[0]}")[0] == 200
    assert db.scalar("SELECT count(*) FROM events") == stored

    # --- gateway: the WebSocket upgrade, REST, the dashboard
    scheme = "wss" if tls else "ws"
    base = f"{scheme}://{T.LOOPBACK}:{gw.http_port}/ws/events"
    for _ in range(rounds):
        for right in (GW_TOK, RD_TOK):
            for headers, query, ok in variants(right):
                q = dict(query, since=0)
                url = base + "?" + urllib.parse.urlencode(q)
                what, got = ws_try(url, ctx, headers)
                if ok:
                    assert what == "open", (headers, query, got)
                    assert got[0]["type"] == "hello"
                    assert any(isinstance(m, dict) and "id" in m for m in got)
                else:
                    assert (what, got) == ("refused", 401), (headers, query, what, got)
                for path in ("/api/adws", "/api/adws/tok-run", "/api/events?limit=5"):
                    p = path + ("&" if "?" in path else "?") + urllib.parse.urlencode(query) \
                        if query else path
                    st, resp = gh("GET", p, headers=headers)
                    if ok:
                        assert st == 200, (path, headers, query, st, resp)
                    else:
                        assert st == 401 and resp == {"error": "missing or wrong token"}, \
                            (path, headers, query, st, resp)
                        assert "tok-run" not in json.dumps(resp)
    # the dashboard's files are public; its data is not
    st, page = gh("GET", f"/?token={WRONG[0]}")
    assert st == 200 and "<html" in page.lower()
    assert gh("GET", "/api/adws")[0] == 401

    if tls:  # a plain request on the TLS port, with a token: a debug line, no token
        s = socket.create_connection((T.LOOPBACK, ing.http_port), timeout=5)
        s.sendall(f"POST /api/events?token={ING_TOK} HTTP/1.1\r\nAuthorization: Bearer "
                  f"{ING_TOK}\r\nContent-Length: 2\r\n\r\n{{}}".encode())
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()

    # --- adw-send with the token, at debug level
    url = f"{'https' if tls else 'http'}://{T.LOOPBACK}:{ing.http_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADW_")}
    env.update(LOG_ENV, ADW_INGEST_TOKEN=ING_TOK)
    if tls:
        env["ADW_CA_FILE"] = cert
    sends = []
    for tok in (ING_TOK, WRONG[0]):
        env["ADW_INGEST_TOKEN"] = tok
        r = subprocess.run([adwtest.binary("adw-send"), "--http", url, "--strict", "--spool",
                            "off", "--adw-id", "tok-run", "--event-type", "TextBlock"],
                           env=env, capture_output=True, timeout=60)
        sends.append(r)
    assert sends[0].returncode == 0, sends[0].stderr
    assert sends[1].returncode != 0 and b"401" in sends[1].stderr

    # --- no token, right or wrong, in any log
    gw.stop()
    ing.stop()
    logs = {p.name: p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log")}
    logs.update({f"adw-send {i}": (r.stdout + r.stderr).decode("utf-8", "replace")
                 for i, r in enumerate(sends)})
    assert set(logs) >= {"ingest.log", "gateway.log"}
    assert ing.env["ADW_LOG_LEVEL"] == gw.env["ADW_LOG_LEVEL"] == "debug"
    assert all(line.startswith("{") for t in (logs["ingest.log"], logs["gateway.log"])
               for line in t.splitlines()), "not JSON"
    if tls:  # the debug lines of the TLS paths were written, and hold no token either
        assert '"level":"debug"' in logs["ingest.log"]
    leaks = {name: [s for s in SECRETS if s in text or urllib.parse.quote(s) in text]
             for name, text in logs.items()}
    assert leaks == {name: [] for name in logs}, leaks
