"""adw-send --stream-json: `claude -p --output-format stream-json --verbose` output, sent
line by line as it arrives."""

import json
import subprocess
import time

import adwtest
import pytest
from test_send_helpers import STREAMS, count, docs, run_send, send_env, spooled

pytestmark = pytest.mark.needs_bin("adw-send", "adw-ingest")


def test_a_session_becomes_events_in_order(ingest, tmp_path):
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--stream-json",
                  "--adw-id", "st-1", "--step", "build", "--strict"],
                 input=(STREAMS / "session.jsonl").read_bytes())
    assert r.returncode == 0, r.stderr
    d = docs(ingest.pg)
    types = [x["event_type"] for x in d]
    assert types[0] == "SystemInit" and types[-1] == "ResultMessage"
    for t in ("ThinkingBlock", "TextBlock", "ToolUseBlock", "ToolResultBlock"):
        assert t in types, t
    assert all(x["adw_id"] == "st-1" and x["step"] == "build" for x in d)
    assert len({x["event_id"] for x in d}) == len(d)
    run = ingest.pg.query("SELECT event_count, cost_usd FROM adw_runs WHERE adw_id='st-1'")
    assert run[0][0] == len(d) and float(run[0][1]) > 0


def test_failed_run_maps_its_result(ingest, tmp_path):
    r = run_send(["--http", ingest.base_url, "--spool", tmp_path, "--stream-json",
                  "--adw-id", "st-2", "--strict"], input=(STREAMS / "failed.jsonl").read_bytes())
    assert r.returncode == 0, r.stderr
    last = docs(ingest.pg)[-1]
    assert last["event_type"] == "ResultMessage" and last["status"] == "failed"


def test_garbage_lines_are_reported_and_the_rest_sent(ingest, tmp_path):
    base = ["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--stream-json", "--adw-id",
            "st-3"]
    data = (STREAMS / "garbage.jsonl").read_bytes()
    r = run_send(base, input=data)
    assert r.returncode == 0, r.stderr
    assert "stream line 1" in r.stderr and "not sent" in r.stderr
    n = count(ingest.pg)
    assert n >= 3
    r = run_send([*base, "--strict"], input=data)
    assert r.returncode == 65
    assert count(ingest.pg) == 2 * n


def test_session_id_names_the_run_without_adw_id(ingest, tmp_path):
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--stream-json"],
                 input=(STREAMS / "session.jsonl").read_bytes())
    assert r.returncode == 0, r.stderr
    assert {x["adw_id"] for x in docs(ingest.pg)} == {"5f0c8a1e"}


def test_events_are_sent_as_they_arrive_not_at_eof(ingest, tmp_path):
    lines = (STREAMS / "session.jsonl").read_bytes().splitlines(keepends=True)
    p = subprocess.Popen([str(adwtest.binary("adw-send")), "--zmq", ingest.zmq_endpoint,
                          "--spool", tmp_path, "--stream-json", "--adw-id", "live", "--tee"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=send_env())
    try:
        p.stdin.write(lines[0])
        p.stdin.flush()
        adwtest.wait_for(lambda: count(ingest.pg) == 1, 15, what="the first event")
        assert p.stdout.readline() == lines[0]  # --tee copies the input through
        p.stdin.write(lines[1])
        p.stdin.flush()
        adwtest.wait_for(lambda: count(ingest.pg) >= 2, 15, what="the second line's events")
        assert p.poll() is None
        p.stdin.write(b"".join(lines[2:]))
        p.stdin.close()
        assert p.wait(30) == 0
    finally:
        p.kill()
    assert docs(ingest.pg)[-1]["event_type"] == "ResultMessage"


def test_ingest_down_mid_stream_spools_then_delivers_at_the_end(ingest, tmp_path):
    spool = tmp_path / "spool"
    lines = (STREAMS / "session.jsonl").read_bytes().splitlines(keepends=True)
    p = subprocess.Popen([str(adwtest.binary("adw-send")), "--zmq", ingest.zmq_endpoint,
                          "--spool", spool, "--stream-json", "--adw-id", "mid",
                          "--timeout-ms", "1000"],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=send_env())
    try:
        p.stdin.write(lines[0])
        p.stdin.flush()
        adwtest.wait_for(lambda: count(ingest.pg) == 1, 15, what="the first event")
        ingest.stop()
        t = time.monotonic()
        p.stdin.write(b"".join(lines[1:6]))
        p.stdin.flush()
        adwtest.wait_for(lambda: len(spooled(spool)) >= 5, 15, what="spooled events")
        assert time.monotonic() - t < 10  # the backoff: no timeout per event
        ingest.start_again()
        ingest.wait_ready(ingest.base_url + "/readyz")
        p.stdin.write(b"".join(lines[6:]))
        p.stdin.close()
        assert p.wait(30) == 0
    finally:
        p.kill()
    d = docs(ingest.pg)
    assert spooled(spool) == []
    assert d[0]["event_type"] == "SystemInit" and d[-1]["event_type"] == "ResultMessage"
    ts = [x["timestamp"] for x in d]
    assert ts == sorted(ts)  # order kept across the outage
    assert len({x["event_id"] for x in d}) == len(d)


def test_sigterm_stops_reading_and_exits_cleanly(ingest, tmp_path):
    p = subprocess.Popen([str(adwtest.binary("adw-send")), "--zmq", ingest.zmq_endpoint,
                          "--spool", tmp_path, "--stream-json", "--adw-id", "sig"],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=send_env())
    try:
        p.stdin.write((STREAMS / "session.jsonl").read_bytes().splitlines(keepends=True)[0])
        p.stdin.flush()
        adwtest.wait_for(lambda: count(ingest.pg) == 1, 15, what="the first event")
        p.terminate()
        assert p.wait(10) == 0
    finally:
        p.kill()
        p.stdin.close()


def test_a_line_over_the_limit_is_skipped(ingest, tmp_path):
    big = json.dumps({"type": "user", "message": {"content": "x" * (17 << 20)}}).encode()
    data = big + b"\n" + (STREAMS / "failed.jsonl").read_bytes()
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--stream-json",
                  "--adw-id", "long"], input=data, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "longer than" in r.stderr
    assert docs(ingest.pg)[-1]["event_type"] == "ResultMessage"


def test_a_bad_adw_id_still_reads_the_whole_stream(ingest, tmp_path):
    """Closing the pipe early would hand the agent writing into it a SIGPIPE."""
    data = (STREAMS / "session.jsonl").read_bytes() * 50
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--stream-json",
                  "--adw-id", "bad id!", "--tee"], input=data)
    assert r.returncode == 0 and "--adw-id" in r.stderr
    assert r.stdout == data
    assert count(ingest.pg) == 0


TASK = "toolu_01Vq8TaskXk3Ld9Pz7Rw2Mn4"


def test_a_subagents_messages_carry_its_agent_id_and_type(ingest, gateway, tmp_path):
    """tests/data/streamjson/subagent.jsonl: the main agent starts an Explore subagent with a
    Task call; the subagent's messages (parent_tool_use_id = the Task's id) run a Grep and a
    failing Bash. Stored and echoed by the gateway with agent_id / agent_type."""
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--stream-json",
                  "--adw-id", "st-sub", "--strict"],
                 input=(STREAMS / "subagent.jsonl").read_bytes())
    assert r.returncode == 0, r.stderr
    d = docs(ingest.pg)
    got = [(x["event_type"], x.get("agent_id"), x.get("agent_type")) for x in d]
    sub = (TASK, "Explore")
    assert got == [
        ("SystemInit", None, None),
        ("TextBlock", None, None),
        ("ToolUseBlock", None, None),      # the Task call: the main agent's
        ("StreamMessage", *sub),           # the subagent's prompt
        ("ToolUseBlock", *sub),            # Grep
        ("ToolResultBlock", *sub),
        ("ToolUseBlock", *sub),            # Bash
        ("ToolResultBlock", *sub),         # is_error
        ("TextBlock", *sub),
        ("ToolResultBlock", None, None),   # the Task's result, back in the main agent
        ("TextBlock", None, None),
        ("ResultMessage", None, None),
    ]
    assert all("agent_id" not in x and "agent_type" not in x for x in d if not x.get("agent_id"))
    # a tool call pairs: ToolUseBlock payload.id, ToolResultBlock payload.tool_use_id
    uses = {x["payload"]["id"]: x for x in d if x["event_type"] == "ToolUseBlock"}
    results = {x["payload"]["tool_use_id"]: x for x in d if x["event_type"] == "ToolResultBlock"}
    assert set(uses) == set(results) == {TASK, "toolu_01GrepH5s2Wq9Lk4Vb7Nc3Xz",
                                          "toolu_01BashR8m3Tj6Qp1Yd4Fh9Ks"}
    bash = results["toolu_01BashR8m3Tj6Qp1Yd4Fh9Ks"]
    assert bash["status"] == "failed" and bash["payload"]["is_error"] is True
    assert bash["summary"] == "Bash error: Exit code 1"
    assert uses[TASK]["payload"]["input"]["subagent_type"] == "Explore"
    # the gateway's REST echoes the keys as stored
    c = gateway.http()
    st, _, body = c.get("/api/events?adw_id=st-sub&limit=100")
    assert st == 200
    assert [(e["event_type"], e.get("agent_id"), e.get("agent_type")) for e in body["events"]] \
        == got
    c.close()


def test_a_subagent_whose_task_call_was_not_seen_gets_agent_id_alone(ingest, tmp_path):
    """adw-send started after the Task call (or the call forgotten): the id is all it knows."""
    lines = (STREAMS / "subagent.jsonl").read_bytes().splitlines(keepends=True)
    r = run_send(["--http", ingest.base_url, "--spool", tmp_path, "--stream-json", "--adw-id",
                  "st-late", "--strict"], input=b"".join(lines[2:]))
    assert r.returncode == 0, r.stderr
    d = docs(ingest.pg)
    inside = [x for x in d if x.get("agent_id")]
    assert len(inside) == 6
    assert all(x["agent_id"] == TASK and "agent_type" not in x for x in inside)
    assert d[0]["payload"]["parent_tool_use_id"] == TASK
