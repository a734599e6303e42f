"""adw-bench --demo: simulated ADW runs through the client library into a real ingest."""

import signal
import subprocess
import time

import adwtest
import pytest
from test_send_helpers import docs, send_env

pytestmark = pytest.mark.needs_bin("adw-bench", "adw-ingest")


def bench(args, timeout=120):
    return subprocess.run([str(adwtest.binary("adw-bench")), *map(str, args)],
                          capture_output=True, env=send_env(), timeout=timeout)


@pytest.mark.parametrize("transport", ["zmq", "http"])
def test_demo_plays_whole_runs_with_steps_tools_and_costs(ingest, transport):
    where = ["--zmq", ingest.zmq_endpoint] if transport == "zmq" else ["--http", ingest.base_url]
    r = bench(["--demo", *where, "--runs", 4, "--concurrency", 2, "--speed", 200, "--seed", 7])
    assert r.returncode == 0, r.stderr
    d = docs(ingest.pg)
    runs = {x["adw_id"] for x in d}
    assert len(runs) == 4
    for run in runs:
        mine = [x for x in d if x["adw_id"] == run]
        assert mine[0]["event"] == "adw_start"
        assert mine[-1]["event"] in ("adw_complete", "adw_failed")
        steps = [x["step"] for x in mine if x.get("event") == "step_start"]
        assert steps[:2] == ["plan", "build"]
        for x in mine:
            if x.get("event") == "step_complete":
                assert x["status"] in ("completed", "failed") and x["duration_ms"] >= 0
        types = {x.get("event_type") for x in mine}
        assert {"ToolUseBlock", "TextBlock", "ThinkingBlock", "PreToolUse",
                "PostToolUse"} <= types
        tools = {x["payload"]["tool_name"] for x in mine if x.get("event_type") == "ToolUseBlock"}
        assert {"Read", "Edit", "Bash"} <= tools
    rows = ingest.pg.query("SELECT status, cost_usd, input_tokens, output_tokens, "
                           "cache_read_tokens FROM adw_runs")
    assert len(rows) == 4
    for status, cost, inp, out, cache in rows:
        assert status in ("completed", "failed")
        assert float(cost) > 0 and inp > 0 and out > 0 and cache > 0
    # The context grows: each run's cache reads rise from message to message.
    for run in runs:
        reads = [x["payload"]["cache_read_tokens"] for x in d
                 if x["adw_id"] == run and x.get("event_type") == "TextBlock"]
        assert reads == sorted(reads)


def test_demo_pace_is_watchable_and_it_stops_on_sigterm(ingest):
    t = time.monotonic()
    p = subprocess.Popen([str(adwtest.binary("adw-bench")), "--demo", "--zmq",
                          ingest.zmq_endpoint, "--concurrency", "3"],
                         stderr=subprocess.PIPE, env=send_env())
    try:
        adwtest.wait_for(lambda: ingest.pg.scalar("SELECT count(*) FROM events") >= 6, 60,
                         what="the first events")
        time.sleep(1)
        n = ingest.pg.scalar("SELECT count(*) FROM events")
        elapsed = time.monotonic() - t
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        p.kill()
    # A few events per second per run: not a flood (at most 1000/150 per run and second).
    assert n <= elapsed * 3 * (1000 / 150) + 3, (n, elapsed)
    runs = ingest.pg.scalar("SELECT count(DISTINCT adw_id) FROM events")
    assert 1 <= runs <= 3


def test_demo_duration_and_usage_errors(ingest):
    t = time.monotonic()
    r = bench(["--demo", "--zmq", ingest.zmq_endpoint, "--duration", 1, "--speed", 5])
    assert r.returncode == 0 and time.monotonic() - t < 10
    assert ingest.pg.scalar("SELECT count(*) FROM events") > 0
    assert bench(["--no-such-flag"]).returncode != 0  # the load generator refuses it
    assert bench(["--demo", "--speed", "fast"]).returncode == 64
    assert bench(["--demo", "--http", "http://x", "--zmq", "tcp://x:1"]).returncode == 64


def test_demo_with_ingest_down_keeps_going_and_says_so():
    r = bench(["--demo", "--zmq", f"tcp://127.0.0.1:{adwtest.free_port()}", "--runs", 1,
               "--speed", 500])
    assert r.returncode == 0
    assert b"not delivered" in r.stderr
