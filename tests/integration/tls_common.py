"""Helpers for the TLS tests (no tests here): a self-signed certificate made by `openssl req`,
client contexts that trust it, and HTTPS requests."""

import http.client
import json
import shutil
import ssl
import subprocess
import time

import adwtest
import pytest

LOOPBACK = adwtest.LOOPBACK


def make_cert(directory, name="server"):
    """Writes name.pem (certificate for 127.0.0.1 and localhost) and name.key (P-256) into
    directory; returns (cert_path, key_path)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl command not installed")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


def client_ctx(cafile):
    """An SSL client context that trusts cafile only and checks the host name."""
    return ssl.create_default_context(cafile=cafile)


def https(port, ctx, method, path, body=None, headers=None, timeout=10.0, conn=None):
    """One request over TLS: (status, headers, parsed JSON or text or bytes). With conn (an
    HTTPSConnection) the request goes on that connection (keep-alive)."""
    c = conn or http.client.HTTPSConnection(LOOPBACK, port, context=ctx, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        c.request(method, path, body=body, headers=dict(headers or {}))
        r = c.getresponse()
        raw = r.read()
        ctype = r.headers.get("content-type", "")
        if "json" in ctype:
            out = json.loads(raw)
        elif ctype.startswith("text/"):
            out = raw.decode()
        else:
            out = raw
        return r.status, r.headers, out
    finally:
        if conn is None:
            c.close()


def wait_https_ready(proc, port, ctx, timeout=20.0):
    """Polls GET /readyz over TLS until 200; AssertionError with the log when the process dies
    first or the time runs out."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited with {proc.returncode}\n{proc.log_tail()}")
        try:
            st, _, _ = https(port, ctx, "GET", "/readyz", timeout=2.0)
            if st == 200:
                return
            last = f"status {st}"
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        time.sleep(0.1)
    raise AssertionError(f"{proc.name} not ready over TLS ({last})\n{proc.log_tail()}")


def wait_exit(proc, timeout=15.0):
    """Waits for proc to exit by itself; returns its exit code."""
    adwtest.wait_for(lambda: not proc.alive(), timeout, what=f"{proc.name} to exit")
    return proc.returncode
