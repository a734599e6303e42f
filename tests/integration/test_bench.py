"""adw-bench measures what it claims: every delivery counted once against the events it
published (all of them, or a filtered client's share), with either WebSocket client (its own
or libwebsockets'), over ZeroMQ and HTTP; and it reports loss, and fails, when deliveries
really are lost (a gateway killed under it)."""

import json
import subprocess
import threading
import time

import adwtest
import pytest

pytestmark = pytest.mark.needs_bin("adw-bench", "adw-ingest", "adw-gateway")


def bench(*args, timeout=120):
    """Runs adw-bench --json; returns (exit code, its report)."""
    r = subprocess.run([str(adwtest.binary("adw-bench")), "--json", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    lines = r.stdout.strip().splitlines()
    assert lines, f"adw-bench printed nothing (rc {r.returncode}): {r.stderr[-2000:]}"
    return r.returncode, json.loads(lines[-1])


@pytest.mark.parametrize("client", ["own", "lws"])
@pytest.mark.parametrize("transport", ["zmq", "http"])
def test_every_delivery_is_counted_once(ingest, make_gateway, client, transport):
    """20 clients, half of them filtered to one run of four: the deliveries are exactly what
    the filters select from the events acknowledged, each once and in order, and the report's
    figures agree with each other."""
    gw = make_gateway(ingest)
    n = 2000
    args = ["--gateway", gw.ws_url, "--zmq", ingest.zmq_endpoint, "--clients", 20, "--threads",
            2, "--half-query", "adw_id=bench-0", "--runs", 4, "--count", n, "--batch", 10,
            "--concurrency", 2, "--drain", 20,
            "--pids", f"ingest={ingest.pid},gateway={gw.pid}"]
    if transport == "http":
        args += ["--http", ingest.base_url]
    if client == "lws":
        args += ["--lws-client"]
    rc, out = bench(*args)
    assert rc == 0, out
    assert out["ws_client"] == ("libwebsockets" if client == "lws" else "adw-bench")
    assert out["transport"] == transport
    assert out["published"] == n and out["failed"] == 0
    assert out["connected"] == 20
    # 10 clients get everything, 10 only run bench-0 (every fourth event).
    assert out["expected_deliveries"] == 10 * n + 10 * (n // 4)
    assert out["deliveries"] == out["expected_deliveries"]
    assert out["latency_us"]["count"] == out["deliveries"]
    assert out["lost"] == 0 and out["duplicated"] == 0 and out["out_of_order"] == 0
    assert 0 < out["latency_us"]["p50"] <= out["latency_us"]["p99"] <= out["latency_us"]["max"]
    assert set(out["processes"]) >= {"ingest", "gateway", "adw-bench"}
    assert out["processes"]["gateway"]["cpu_s"] > 0
    assert out["gateway_cpu_us_per_delivery"] > 0
    assert adwtest.wait_for(lambda: ingest.pg.scalar("SELECT count(*) FROM events") == n, 5,
                            what="every event stored")
    print(f"{client} client over {transport}: {out['deliveries']} deliveries, "
          f"{out['events_per_s']:.0f} events/s, p50 {out['latency_us']['p50'] / 1000:.2f} ms, "
          f"gateway {out['gateway_cpu_us_per_delivery']:.2f} us/delivery, bench "
          f"{out['processes']['adw-bench']['cpu_s']:.2f} s CPU")


@pytest.mark.parametrize("client", ["own", "lws"])
def test_loss_is_reported_when_the_gateway_dies(ingest, make_gateway, client):
    """The gateway is killed (SIGKILL) while adw-bench publishes at 500 events/s: its clients
    are closed and miss the rest, and adw-bench says so (lost > 0, closed, exit 1) rather than
    reporting a clean run."""
    gw = make_gateway(ingest)
    killer = threading.Timer(1.5, gw.kill9)
    killer.start()
    try:
        args = ["--gateway", gw.ws_url, "--zmq", ingest.zmq_endpoint, "--clients", 10,
                "--count", 1500, "--rate", 500, "--batch", 5, "--drain", 3]
        rc, out = bench(*(args + (["--lws-client"] if client == "lws" else [])))
    finally:
        killer.cancel()
    assert out["published"] == 1500  # ingest is fine: everything is stored
    assert out["closed"] == 10
    assert 0 < out["deliveries"] < 10 * 1500
    assert out["lost"] == 10 * 1500 - out["deliveries"]
    assert rc == 1
    print(f"{client} client: gateway killed after {out['deliveries'] / 10:.0f} events per "
          f"client; lost {out['lost']} reported")
