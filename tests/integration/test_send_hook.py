"""adw-send --hook: a Claude Code hook's stdin JSON, for every hook event fixture, mapped as
ingest's POST /api/hooks maps it."""

import json

import adwtest
import pytest
from test_send_helpers import HOOKS, count, docs, run_send

pytestmark = pytest.mark.needs_bin("adw-send", "adw-ingest")

FIXTURES = sorted(p.name for p in HOOKS.glob("*.json") if p.name != "no_session_id.json")


@pytest.mark.parametrize("name", FIXTURES)
def test_each_hook_event_is_stored_like_post_api_hooks(ingest, tmp_path, name):
    raw = (HOOKS / name).read_bytes()
    hook = json.loads(raw)
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--hook", "--adw-id",
                  "hk-1", "--step", "build", "--strict"], input=raw)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""  # stdout of a hook is context for Claude Code: nothing there
    st, _, body = adwtest.post_json(ingest.base_url + "/api/hooks?adw_id=hk-1&step=build", hook)
    assert st == 200, body
    mine, theirs = docs(ingest.pg)
    assert mine["type"] == "adw_event" and mine["event_type"] == hook["hook_event_name"]
    assert mine["adw_id"] == "hk-1" and mine["step"] == "build"
    assert mine["payload"] == hook
    for k in ("type", "adw_id", "step", "event_type", "summary", "payload"):
        assert mine.get(k) == theirs.get(k), k
    assert mine["summary"]
    assert len(mine["event_id"]) == 32 and "timestamp" in mine


def test_session_id_stands_in_for_a_missing_adw_id(ingest, tmp_path):
    raw = (HOOKS / "pre_tool_use.json").read_bytes()
    r = run_send(["--http", ingest.base_url, "--spool", tmp_path, "--hook", "--strict"],
                 input=raw)
    assert r.returncode == 0, r.stderr
    [doc] = docs(ingest.pg)
    assert doc["adw_id"] == json.loads(raw)["session_id"][:8] and "step" not in doc


def test_adw_id_from_the_environment(ingest, tmp_path):
    raw = (HOOKS / "stop.json").read_bytes()
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--hook"], input=raw,
                 env={"ADW_ID": "from-env", "ADW_STEP": "review"})
    assert r.returncode == 0, r.stderr
    [doc] = docs(ingest.pg)
    assert (doc["adw_id"], doc["step"]) == ("from-env", "review")


def test_no_adw_id_and_no_session_id_is_invalid(ingest, tmp_path):
    raw = (HOOKS / "no_session_id.json").read_bytes()
    base = ["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--hook"]
    r = run_send(base, input=raw)
    assert r.returncode == 0 and "adw_id" in r.stderr
    assert run_send([*base, "--strict"], input=raw).returncode == 65
    r = run_send([*base, "--adw-id", "given", "--strict"], input=raw)
    assert r.returncode == 0, r.stderr
    assert count(ingest.pg) == 1


@pytest.mark.parametrize("data, why", [
    (b"not json", "not JSON"),
    (b'{"hook_event_name": "PreToolUse", "session_id": "abcdefgh12", ', "not JSON"),
    (b"[1,2]", "object"),
    (b'{"session_id": "abcdefgh12"}', "hook_event_name"),
    (b"", "empty"),
])
def test_bad_hook_input(ingest, tmp_path, data, why):
    base = ["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--hook"]
    r = run_send(base, input=data)
    assert r.returncode == 0 and why in r.stderr, r.stderr
    assert run_send([*base, "--strict"], input=data).returncode == 65
    assert count(ingest.pg) == 0


def test_a_huge_tool_response_is_shortened_not_refused(ingest, tmp_path):
    hook = json.loads((HOOKS / "post_tool_use.json").read_bytes())
    hook["tool_response"] = {"content": "z" * 2_000_000}
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--hook", "--adw-id",
                  "big", "--strict", "--timeout-ms", "10000"], input=json.dumps(hook))
    assert r.returncode == 0, r.stderr
    [doc] = docs(ingest.pg)
    assert doc["payload"]["adw_truncated"] is True
    assert len(json.dumps(doc["payload"])) <= 70000
