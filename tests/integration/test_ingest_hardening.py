"""Hostile load on ingest's HTTP side: slowloris (hundreds of connections trickling a request
head) and file descriptors exhausted (a descriptor limit of 256 and 1,000 connection attempts).
Each time a legitimate client is still served and nothing but its event is stored."""

import socket
import subprocess
import time

import adwtest
import pytest

EVENT = {"type": "adw_event", "adw_id": "harden", "step": "build", "event_type": "TextBlock"}


def stored(pg):
    return pg.scalar("SELECT count(*) FROM events")


@pytest.mark.needs_bin("adw-ingest")
def test_slowloris_connections_time_out_while_a_legitimate_client_is_served(make_ingest):
    ing = make_ingest(ADW_INGEST_REQUEST_TIMEOUT_MS="4000")
    slow = []
    for _ in range(300):
        s = socket.create_connection((adwtest.LOOPBACK, ing.http_port), timeout=5)
        s.sendall(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        slow.append(s)
    for k in range(3):  # trickle a byte of a header on each, a few times
        for s in slow:
            s.sendall(b"X-Slow-%d: a\r\n" % k)
        time.sleep(0.2)
    # A legitimate request is served while all of them are held open.
    status, _, body = adwtest.post_json(ing.base_url + "/api/events", EVENT, timeout=10)
    assert status == 200 and body["id"] == 1
    # Past the request timeout every trickling connection is answered 408 and closed.
    answered = 0
    for s in slow:
        s.settimeout(10)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        answered += data.startswith(b"HTTP/1.1 408")
        s.close()
    assert answered == len(slow)
    assert stored(ing.pg) == 1
    status, _, _ = adwtest.post_json(ing.base_url + "/api/events", EVENT)
    assert status == 200


@pytest.mark.needs_bin("adw-ingest")
def test_descriptors_exhausted_excess_refused_existing_clients_keep_working(make_ingest):
    ing = make_ingest()
    subprocess.run(["prlimit", f"--pid={ing.pid}", "--nofile=256:256"], check=True)
    keep = ing.http()
    status, _, _ = keep.post_json("/api/events", EVENT)
    assert status == 200
    held, refused = [], 0
    for _ in range(1000):
        try:
            s = socket.create_connection((adwtest.LOOPBACK, ing.http_port), timeout=2)
            held.append(s)
        except OSError:
            refused += 1
    # The connection made before keeps working while the descriptors are gone.
    status, _, body = keep.post_json("/api/events", EVENT)
    assert status == 200 and body["id"] == 2
    # The excess was refused: closed at once (EOF) rather than served or left hanging forever.
    closed = 0
    for s in held:
        s.settimeout(0.5)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = s.recv(100)
            closed += data == b"" or not data.startswith(b"HTTP/1.1 200")
        except OSError:
            closed += 1
    assert refused + closed >= 1000 - 256
    for s in held:
        s.close()
    # Once they are gone, new clients are served again and the process is healthy.
    adwtest.wait_for(lambda: adwtest.http_get(ing.base_url + "/healthz")[0] == 200, 10)
    status, _, _ = adwtest.post_json(ing.base_url + "/api/events", EVENT)
    assert status == 200
    assert stored(ing.pg) == 3
    assert ing.alive()
