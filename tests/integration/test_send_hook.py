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


# ---------------------------------------------------------------------------------------------
# Subagents: tests/data/hooks/subagent_run is a session in Claude Code's shapes, an Explore
# subagent started by a Task call, with tool hooks (one failing) inside it, then a StopFailure.

SUBAGENT_RUN = sorted((HOOKS / "subagent_run").glob("*.json"))
AGENT = ("ab41e9d07c2f5a38", "Explore")


def agent_keys(doc):
    return doc.get("agent_id"), doc.get("agent_type")


def test_a_subagent_session_keeps_who_did_what(ingest, tmp_path):
    """The same hook bodies through adw-send --hook and POST /api/hooks: the subagent's hooks
    give events with its agent_id and agent_type, the main agent's none."""
    assert len(SUBAGENT_RUN) == 13
    bodies = [json.loads(p.read_bytes()) for p in SUBAGENT_RUN]
    for p, body in zip(SUBAGENT_RUN, bodies):
        r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--hook", "--adw-id",
                      "sa-send", "--strict"], input=p.read_bytes())
        assert r.returncode == 0, (p.name, r.stderr)
        st, _, answer = adwtest.post_json(ingest.base_url + "/api/hooks?adw_id=sa-post", body)
        assert st == 200, (p.name, answer)
    for adw_id in ("sa-send", "sa-post"):
        d = docs(ingest.pg, "WHERE adw_id = %s", (adw_id,))
        assert [x["event_type"] for x in d] == [b["hook_event_name"] for b in bodies]
        assert [x["payload"] for x in d] == bodies  # the bodies, agent keys and all
        inside = [agent_keys(x) for x in d]
        assert inside == [AGENT if "agent_id" in b else (None, None) for b in bodies]
        # SubagentStart .. SubagentStop and every tool hook between them
        assert [x["event_type"] for x in d if x.get("agent_id")] == [
            "SubagentStart", "PreToolUse", "PostToolUse", "PreToolUse", "PostToolUseFailure",
            "SubagentStop"]
        # the Task call is the main agent's; its hooks pair by tool_use_id
        task = [x for x in d if x["payload"].get("tool_name") == "Task"]
        assert [x["event_type"] for x in task] == ["PreToolUse", "PostToolUse"]
        assert {x["payload"]["tool_use_id"] for x in task} == {"toolu_01Vq8TaskXk3Ld9Pz7Rw2Mn4"}
        assert all(agent_keys(x) == (None, None) for x in task)
        failed = [x for x in d if x["event_type"] == "PostToolUseFailure"]
        assert failed[0]["summary"].startswith("Bash: python -m pytest tests/test_auth.py -q "
                                               "(failed: Exit code 1")
        assert d[-1]["event_type"] == "StopFailure"
        assert d[-1]["summary"] == "Stop failure: rate_limit"
    mine, theirs = (docs(ingest.pg, "WHERE adw_id = %s", (a,)) for a in ("sa-send", "sa-post"))
    for a, b in zip(mine, theirs):
        for k in ("event_type", "agent_id", "agent_type", "summary", "payload"):
            assert a.get(k) == b.get(k), k


def body_with(agent_id=..., agent_type=...):
    body = json.loads((HOOKS / "subagent_run" / "05_pre_tool_use_grep.json").read_bytes())
    for k, v in (("agent_id", agent_id), ("agent_type", agent_type)):
        if v is ...:
            body.pop(k)
        else:
            body[k] = v
    return body


@pytest.mark.parametrize("agent_id, agent_type, want", [
    ("a" * 64, "t" * 64, ("a" * 64, "t" * 64)),          # at the limit: kept
    ("é" * 32, "Explore", ("é" * 32, "Explore")),        # 64 bytes of two-byte characters
    ("a" * 65, "t" * 65, (None, None)),                  # one byte over: left out
    ("é" * 33, "Explore", (None, "Explore")),            # 66 bytes
    ("", "", (None, None)),                              # empty
    (7, ["Explore"], (None, None)),                      # not strings
    (None, None, (None, None)),                          # null
    ("ag-1", ..., ("ag-1", None)),                       # agent_id alone
    (..., "code-reviewer", (None, "code-reviewer")),     # agent_type alone (claude --agent)
])
def test_agent_keys_outside_the_contract_are_left_out(ingest, tmp_path, agent_id, agent_type,
                                                      want):
    """Never an error: the event is stored, the key left out, the body kept as the payload."""
    body = body_with(agent_id, agent_type)
    raw = json.dumps(body).encode()
    r = run_send(["--http", ingest.base_url, "--spool", tmp_path, "--hook", "--adw-id", "lim",
                  "--strict"], input=raw)
    assert r.returncode == 0, r.stderr
    st, _, answer = adwtest.post_json(ingest.base_url + "/api/hooks?adw_id=lim", body)
    assert st == 200, answer
    d = docs(ingest.pg)
    assert len(d) == 2
    for doc in d:
        assert agent_keys(doc) == want
        assert ("agent_id" in doc, "agent_type" in doc) == (want[0] is not None,
                                                            want[1] is not None)
        assert doc["payload"] == body
        assert doc["summary"] == "Grep jwt\\.(encode|decode) in /home/dev/app/src"
