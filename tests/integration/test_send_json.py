"""adw-send --json: whole events from stdin (one object, an array, NDJSON), and bad stdin."""

import json

import pytest
from test_send_helpers import DATA, count, docs, run_send, spooled

pytestmark = pytest.mark.needs_bin("adw-send", "adw-ingest")

SEND = DATA / "send"


@pytest.fixture
def base(ingest, tmp_path):
    return ["--zmq", ingest.zmq_endpoint, "--spool", tmp_path / "spool", "--json"]


def test_one_object(ingest, base):
    ev = {"type": "adw_event", "adw_id": "o1", "event_type": "TextBlock", "summary": "hello",
          "extra": {"kept": [1, 2.5, None]}}
    r = run_send([*base, "--strict"], input=json.dumps(ev))
    assert r.returncode == 0, r.stderr
    [doc] = docs(ingest.pg)
    assert doc["extra"] == {"kept": [1, 2.5, None]} and doc["summary"] == "hello"
    assert len(doc["event_id"]) == 32


def test_an_array_keeps_order_and_given_event_ids(ingest, base):
    r = run_send([*base, "--strict"], input=(SEND / "events.json").read_bytes())
    assert r.returncode == 0, r.stderr
    d = docs(ingest.pg)
    assert [x.get("event") or x.get("event_type") for x in d] == \
        ["adw_start", "ThinkingBlock", "adw_complete"]
    assert d[1]["event_id"] == "arr-1-think-1"
    assert ingest.pg.scalar("SELECT status FROM adw_runs WHERE adw_id='arr-1'") == "completed"


def test_ndjson_with_blank_lines(ingest, base):
    r = run_send([*base, "--strict"], input=(SEND / "events.ndjson").read_bytes())
    assert r.returncode == 0, r.stderr
    d = docs(ingest.pg)
    assert len(d) == 4 and d[0]["event"] == "step_start" and d[3]["event"] == "step_complete"
    run = ingest.pg.query("SELECT input_tokens, output_tokens FROM adw_runs")
    assert run == [(1200, 80)]


def test_adw_id_and_step_fill_in_where_events_have_none(ingest, base):
    evs = [{"type": "adw_event", "event_type": "TextBlock"},
           {"type": "adw_event", "adw_id": "own", "step": "fix", "event_type": "TextBlock"}]
    r = run_send([*base, "--adw-id", "filled", "--step", "plan", "--strict"],
                 input=json.dumps(evs))
    assert r.returncode == 0, r.stderr
    a, b = docs(ingest.pg)
    assert (a["adw_id"], a["step"]) == ("filled", "plan")
    assert (b["adw_id"], b["step"]) == ("own", "fix")


def test_more_than_a_batch_goes_in_several_requests_in_order(ingest, base):
    evs = [{"type": "adw_event", "adw_id": "big", "event_type": "TextBlock", "summary": str(i)}
           for i in range(2500)]
    r = run_send([*base, "--timeout-ms", "30000", "--strict"],
                 input="\n".join(json.dumps(e) for e in evs))
    assert r.returncode == 0, r.stderr
    assert [d["summary"] for d in docs(ingest.pg)] == [str(i) for i in range(2500)]


def test_invalid_events_are_reported_and_the_rest_sent(ingest, base):
    r = run_send(base, input=(SEND / "mixed.ndjson").read_bytes())
    assert r.returncode == 0, r.stderr
    assert "line 2 is not JSON" in r.stderr
    assert "adw_id" in r.stderr and "not a JSON object" in r.stderr
    assert [d["summary"] for d in docs(ingest.pg)] == ["first", "last"]
    r = run_send([*base, "--strict"], input=(SEND / "mixed.ndjson").read_bytes())
    assert r.returncode == 65


@pytest.mark.parametrize("data, why", [
    (b"this is not json", "not JSON"),
    ((SEND / "truncated.json").read_bytes(), "not JSON"),
    (b'{"type":"adw_event","adw_id":"x","event_type":"T"} trailing', "not JSON"),
    (b"", "empty"),
    (b"   \n\t ", "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    (b'{"a":1,"a":2}', "a"),
    (b"42", "not a JSON object"),
    (b"[]", None),
])
def test_bad_stdin_exit_0_or_65_nothing_sent(ingest, base, tmp_path, data, why):
    r = run_send(base, input=data)
    assert r.returncode == 0, r.stderr
    if why:
        assert why in r.stderr
    r = run_send([*base, "--strict"], input=data)
    assert r.returncode == (65 if why else 0), r.stderr
    assert count(ingest.pg) == 0
    assert spooled(tmp_path / "spool") == []


def test_huge_stdin_is_refused_with_a_clear_message(ingest, base):
    big = json.dumps({"type": "adw_event", "adw_id": "h", "event_type": "T",
                      "summary": "x" * 3000, "payload": {"blob": "y" * 200000}})
    r = run_send([*base, "--max-input", "64k", "--strict"], input=big)
    assert r.returncode == 65 and "over 65536 bytes" in r.stderr
    # Under the input limit, but the payload is over the contract's 64 KiB: refused by name.
    r = run_send([*base, "--strict"], input=big)
    assert r.returncode == 65 and "payload" in r.stderr
    assert count(ingest.pg) == 0


def test_stdin_that_never_ends_is_abandoned_at_the_timeout(ingest, tmp_path, proc):
    import subprocess
    import time
    from test_send_helpers import send_env
    import adwtest
    t = time.monotonic()
    p = subprocess.Popen([str(adwtest.binary("adw-send")), "--zmq", ingest.zmq_endpoint,
                          "--spool", tmp_path, "--json", "--timeout-ms", "500", "--strict"],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=send_env())
    p.stdin.write(b'{"type":"adw_event",')
    p.stdin.flush()
    try:
        rc = p.wait(15)
    finally:
        p.kill()
        p.stdin.close()
    assert rc == 65 and time.monotonic() - t < 10
    assert b"did not end" in p.stderr.read()
    assert count(ingest.pg) == 0
