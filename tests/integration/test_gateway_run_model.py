"""adw-gateway: the run model read side. The `agent_ids` filter (live over WebSocket through the
query string and subscribe, on `since` replay, on REST /api/events; its limits crossed); the
run's `stalled`, `failed_steps` and `stop_failure` (list and detail) and the detail's `agents`,
`tool_calls` and `tool_failures`, each read from the stored rows named in proto/websocket.md;
read tokens' scopes on all of them.

Everything goes in through a real ingest, which stores and derives every row the gateway reads:
Claude Code hook bodies posted to /api/hooks (a subagent's hooks carry `agent_id` /
`agent_type`, which the hook mapper lifts onto the event), cost-bearing messages and `system`
events (`run_stalled`) to /api/events. The expected output is computed in the test from what it
sent (the rules of proto/decisions.md), never read back from the rows the gateway reads.
"""

import datetime
import json
import urllib.parse
from pathlib import Path

import adwtest
import pytest
from test_gateway_common import connect, ev, is_event, wait_delivered, wait_type

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "tests" / "data" / "hooks"


@pytest.fixture
def gw(ingest, make_gateway):
    return make_gateway(ingest)


class Hook:
    """A Claude Code hook body as `POST /api/hooks?adw_id=A&step=S` receives it."""

    def __init__(self, adw_id, step, body):
        self.adw_id, self.step, self.body = adw_id, step, body

    def get(self, key, default=None):
        """The key of the event ingest makes of this body (proto/http.md, Hooks)."""
        if key in ("agent_id", "agent_type"):
            v = self.body.get(key)
            ok = isinstance(v, str) and 1 <= len(v.encode()) <= 64
            return v if ok else default
        if key == "event_type":
            return self.body["hook_event_name"]
        if key == "payload":
            return self.body
        return {"adw_id": self.adw_id, "step": self.step, "type": "adw_event"}.get(key, default)

    def __getitem__(self, key):
        v = self.get(key, KeyError)
        if v is KeyError:
            raise KeyError(key)
        return v


def send(ingest, items):
    """Posts items in order, Hook bodies to /api/hooks and event dicts to /api/events, one
    request each; returns their ids."""
    ids = []
    with ingest.http(timeout=30) as c:
        for it in items:
            if isinstance(it, Hook):
                q = urllib.parse.urlencode({"adw_id": it.adw_id, "step": it.step})
                st, h, body = c.post_json(f"/api/hooks?{q}", it.body)
                assert (st, body) == (200, {}), (st, body)  # no decision; the id in a header
                body = {"id": int(h["X-ADW-Event-Id"])}
            else:
                st, _, body = c.post_json("/api/events", it)
            assert st == 200, (st, body)
            ids.append(body["id"])
    return ids


def stalled_event(adw_id, step, idle_s, last_id):
    """The event ingest's stall scanner stores for an idle run (SPEC: Stalls)."""
    e = ev(adw_id=adw_id, step=step, event_type="run_stalled", type_="system",
           summary=f"No event for {idle_s // 60} min", payload={"idle_s": idle_s,
                                                                "last_id": last_id})
    return e


SESSION = "3f1c2a9e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
TRANSCRIPT = f"/home/dev/.claude/projects/-home-dev-app/{SESSION}.jsonl"
AGENT_A = "a7c41e0b9d2f4e6a"  # an Explore subagent
AGENT_B = "b3e9f0a1c2d84b57"  # a Plan subagent


def hook(adw_id, step, name, agent=None, agent_type=None, **body):
    """A Claude Code hook body (the shape its hooks send on stdin); inside a subagent it carries
    the subagent's agent_id (and agent_type when given) at its top level."""
    payload = {"session_id": SESSION, "transcript_path": TRANSCRIPT, "cwd": "/home/dev/app",
               "permission_mode": "default", "hook_event_name": name}
    if agent:
        payload["agent_id"] = agent
        if agent_type is not None:
            payload["agent_type"] = agent_type
    payload.update(body)
    return Hook(adw_id, step, payload)


def tool(adw_id, step, name, tool_use_id, tool_name, agent=None, agent_type=None, **body):
    body.setdefault("tool_input", {"command": "pytest -q"} if tool_name == "Bash"
                    else {"file_path": "/home/dev/app/src/main.c"})
    return hook(adw_id, step, name, agent, agent_type, tool_name=tool_name,
                tool_use_id=tool_use_id, **body)


def subagent_run(adw_id):
    """A build step in which the main agent spawns an Explore and a Plan subagent, each using
    tools (one of them failing), then goes on alone."""
    return [
        hook(adw_id, "build", "UserPromptSubmit", prompt="Fix the failing tests"),
        tool(adw_id, "build", "PreToolUse", "toolu_01Main", "Task",
             tool_input={"subagent_type": "Explore", "prompt": "Find the tests"}),
        hook(adw_id, "build", "SubagentStart", AGENT_A, "Explore"),
        tool(adw_id, "build", "PreToolUse", "toolu_01A1", "Read", AGENT_A, "Explore"),
        tool(adw_id, "build", "PostToolUse", "toolu_01A1", "Read", AGENT_A, "Explore",
             tool_response={"type": "text", "file": {"numLines": 120}}),
        hook(adw_id, "build", "SubagentStart", AGENT_B, "Plan"),
        tool(adw_id, "build", "PreToolUse", "toolu_01B1", "Bash", AGENT_B, "Plan"),
        tool(adw_id, "build", "PostToolUseFailure", "toolu_01B1", "Bash", AGENT_B, "Plan",
             error="Command failed with exit code 1", is_interrupt=False),
        hook(adw_id, "build", "SubagentStop", AGENT_A, "Explore", stop_hook_active=False,
             agent_transcript_path=f"/home/dev/.claude/projects/-home-dev-app/{AGENT_A}.jsonl"),
        tool(adw_id, "build", "PostToolUse", "toolu_01Main", "Task",
             tool_response={"status": "completed"}),
        hook(adw_id, "build", "Stop", stop_hook_active=False),
    ]


def agent_of(e):
    return e.get("agent_id")


def matches(f, e):
    """The filter semantics of proto/websocket.md for the keys used here."""
    if f.get("adw_id") and e["adw_id"] not in f["adw_id"].split(","):
        return False
    if f.get("agent_ids") and agent_of(e) not in f["agent_ids"].split(","):
        return False
    return True


FILTERS = [
    {"agent_ids": AGENT_A},
    {"agent_ids": f"{AGENT_A},{AGENT_B}"},
    {"agent_ids": AGENT_B, "adw_id": "sub-1"},
    {"agent_ids": "nobody"},
]


def as_subscribe(f):
    return {k: v.split(",") for k, v in f.items()}


def test_agent_ids_live_replay_and_rest(gw, ingest):
    corpus = subagent_run("sub-1") + subagent_run("sub-2")
    by_query = [connect(gw, **f) for f in FILTERS]
    by_msg = []
    for f in FILTERS:
        ws = connect(gw)
        ws.send({"action": "subscribe", "filters": as_subscribe(f)})
        assert wait_type(ws, "subscribed")["filters"] == as_subscribe(f)
        by_msg.append(ws)
    # An empty list is no constraint: this client sees everything.
    everything = connect(gw, agent_ids="")
    ids = send(ingest, corpus)
    got_all = everything.collect(timeout=20, pred=is_event, count=len(ids))
    assert [e["id"] for e in got_all] == ids
    # The hook mapper lifted the body's agent keys onto the subagents' events only; the body
    # stays the payload.
    for e, sent in zip(got_all, corpus):
        assert e.get("agent_id") == sent.body.get("agent_id")
        assert e.get("agent_type") == sent.body.get("agent_type")
        assert (e["event_type"], e["step"], e["payload"]) == (
            sent.body["hook_event_name"], "build", sent.body)
    assert {e.get("agent_id") for e in got_all} == {None, AGENT_A, AGENT_B}
    everything.close()
    # Every event is queued for every client once the last one reached a client.
    for f, q, m in zip(FILTERS, by_query, by_msg):
        want = [i for i, e in zip(ids, corpus) if matches(f, e)]
        for ws in (q, m):
            got = ws.collect(timeout=20, pred=is_event, count=len(want)) if want else []
            got += ws.collect(timeout=0.3, pred=is_event)
            assert [x["id"] for x in got] == want, f
            assert all(x["agent_id"] in f["agent_ids"].split(",") for x in got)
            ws.close()
    assert [i for i, e in zip(ids, corpus) if matches(FILTERS[0], e)], "the corpus has agent A"

    # Replay: PostgreSQL applies the same filters (events.agent_id).
    wait_delivered(gw, ids[-1])
    for f in FILTERS:
        want = [i for i, e in zip(ids, corpus) if matches(f, e)]
        ws = connect(gw, since=0, **f)
        got = ws.collect(timeout=20, until=lambda x: x.get("type") == "replayed" and "id" not in x)
        assert got and got[-1]["type"] == "replayed", (f, got[-3:])
        assert got[-1]["count"] == len(want)
        assert [x["id"] for x in got if is_event(x)] == want, f
        ws.close()
    # The same through subscribe with since.
    ws = connect(gw)
    ws.send({"action": "subscribe", "filters": {"agent_ids": [AGENT_B]}, "since": 0})
    got = ws.collect(timeout=20, until=lambda x: x.get("type") == "replayed" and "id" not in x)
    assert [x["id"] for x in got if is_event(x)] == [
        i for i, e in zip(ids, corpus) if agent_of(e) == AGENT_B]
    ws.close()

    # REST /api/events.
    c = gw.http()
    for f in FILTERS + [{"agent_ids": ""}]:
        q = urllib.parse.urlencode(f)
        st, _, body = c.get(f"/api/events?limit=1000&{q}")
        assert st == 200, body
        assert [e["id"] for e in body["events"]] == [
            i for i, e in zip(ids, corpus) if matches(f, e)], f
    # Paging keeps the filter.
    want = [i for i, e in zip(ids, corpus) if agent_of(e) == AGENT_A]
    seen, since = [], 0
    while True:
        st, _, body = c.get(f"/api/events?agent_ids={AGENT_A}&limit=2&since={since}")
        assert st == 200
        if not body["events"]:
            break
        seen += [e["id"] for e in body["events"]]
        since = body["next_since"]
    assert seen == want
    c.close()


def upgrade_refusal(gw, query):
    """(status, JSON body) of the answer to a WebSocket upgrade with this query string."""
    conn = adwtest.RawConn(port=gw.http_port, timeout=10)
    try:
        conn.send(f"GET /ws/events?{query} HTTP/1.1\r\nHost: 127.0.0.1:{gw.http_port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n")
        status, _, body = conn.read_response()
        return status, json.loads(body)
    finally:
        conn.sock.close()


def test_agent_ids_limits(gw, ingest):
    ok64 = ",".join(f"agent-{i}" for i in range(64))
    too_many = ok64 + ",agent-64"
    long64, long65 = "a" * 64, "a" * 65
    ids = send(ingest, [hook("lim", "build", "PreToolUse", long64, "Explore"),
                        hook("lim", "build", "PreToolUse", "agent-63", "Plan")])
    wait_delivered(gw, ids[-1])

    # REST: 64 values and a 64-byte value pass; 65 values and a 65-byte value are refused.
    c = gw.http()
    st, _, body = c.get(f"/api/events?agent_ids={ok64}")
    assert st == 200 and [e["id"] for e in body["events"]] == [ids[1]]
    st, _, body = c.get(f"/api/events?agent_ids={long64}")
    assert st == 200 and [e["id"] for e in body["events"]] == [ids[0]]
    st, _, body = c.get(f"/api/events?agent_ids={too_many}")
    assert st == 400 and body["error"] == "agent_ids: at most 64 values", body
    st, _, body = c.get(f"/api/events?agent_ids={long65}")
    assert st == 400 and body["error"] == "agent_ids: each value must be 1 to 64 bytes", body
    c.close()

    # WebSocket query string: the same bounds; a refusal is a 400 at the upgrade.
    for bad in (too_many, long65):
        with pytest.raises(adwtest.WsHandshakeError) as e:
            adwtest.WsClient(gw.ws_url + "?agent_ids=" + bad, timeout=10)
        assert e.value.status == 400
    assert upgrade_refusal(gw, "agent_ids=" + too_many) == (
        400, {"error": "agent_ids: at most 64 values"})
    assert upgrade_refusal(gw, "agent_ids=" + long65) == (
        400, {"error": "agent_ids: each value must be 1 to 64 bytes"})
    ws = connect(gw, since=0, agent_ids=ok64)
    got = ws.collect(timeout=10, until=lambda x: x.get("type") == "replayed" and "id" not in x)
    assert [x["id"] for x in got if is_event(x)] == [ids[1]]
    ws.close()

    # Subscribe message: refused with an error, the connection and its filter stay.
    ws = connect(gw, agent_ids="agent-63")
    for bad, why in (([f"agent-{i}" for i in range(65)], "agent_ids: at most 64 values"),
                     ([long65], "agent_ids: each value must be 1 to 64 bytes"),
                     ([""], "agent_ids: each value must be 1 to 64 bytes"),
                     ([7], "filters.agent_ids must be a string or an array of strings")):
        ws.send({"action": "subscribe", "filters": {"agent_ids": bad}})
        err = wait_type(ws, "error")
        assert why in err["error"], err
    ws.send({"action": "subscribe", "filters": {"agent_ids": [long64] + [
        f"agent-{i}" for i in range(63)]}})
    assert len(wait_type(ws, "subscribed")["filters"]["agent_ids"]) == 64
    more = send(ingest, [hook("lim", "build", "Stop"),
                         hook("lim", "build", "PostToolUse", long64, "Explore"),
                         hook("lim", "build", "PostToolUse", "agent-99", "Plan")])
    assert [m["id"] for m in ws.events(1, timeout=10)] == [more[1]]
    assert not [m for m in ws.collect(timeout=0.5) if is_event(m)]
    ws.close()


def run_of(c, adw_id):
    st, _, body = c.get("/api/adws?limit=1000")
    assert st == 200
    listed = {r["adw_id"]: r for r in body["adws"]}
    st, _, run = c.get(f"/api/adws/{adw_id}")
    assert st == 200, run
    return listed[adw_id], run


def test_new_run_fields_when_nothing_happened(gw, ingest):
    send(ingest, [ev(adw_id="quiet", step="plan", event_type="step_start", type_="system"),
                  ev(adw_id="quiet", step="plan", event_type="TextBlock")])
    c = gw.http()
    listed, run = run_of(c, "quiet")
    for r in (listed, run):
        assert r["stalled"] is False
        assert r["failed_steps"] == []
        assert r["stop_failure"] is None
    assert run["agents"] == [] and run["tool_calls"] == 0 and run["tool_failures"] == 0
    for k in ("agents", "tool_calls", "tool_failures", "steps"):
        assert k not in listed
    c.close()


def test_failed_steps(gw, ingest):
    def sys(step, event, status=None):
        e = ev(adw_id="fs", step=step, event_type=event, type_="system")
        if status:
            e["status"] = status
        return e

    send(ingest, [
        sys(None, "adw_start"),
        sys("plan", "step_start"), sys("plan", "step_complete", "completed"),
        sys("build", "step_start"), sys("test", "step_start"),
        sys("test", "step_complete", "failed"),
        sys("build", "step_complete", "failed"),
        sys("review", "step_start"),
    ])
    c = gw.http()
    listed, run = run_of(c, "fs")
    # In the order the steps began (first_id), not the order they failed.
    assert listed["failed_steps"] == run["failed_steps"] == ["build", "test"]
    assert {s["step"]: s["status"] for s in run["steps"]}["review"] == "running"
    # A step that failed and then ran again to completion is no longer listed.
    send(ingest, [sys("test", "step_start"), sys("test", "step_complete", "completed")])
    assert run_of(c, "fs")[1]["failed_steps"] == ["build"]
    c.close()


def stop_failure_body(error):
    """tests/data/hooks/subagent_run's StopFailure hook body with this error (None: none)."""
    body = json.loads((HOOKS / "subagent_run" / "13_stop_failure.json").read_text())
    assert body["hook_event_name"] == "StopFailure"
    if error is None:
        body.pop("error")
    else:
        body["error"] = error
    return body


def test_stalled_and_stop_failure(gw, ingest):
    first = send(ingest, [hook("sf-1", "build", "UserPromptSubmit", prompt="Deploy"),
                          Hook("sf-1", "build", stop_failure_body("rate_limit")),
                          hook("sf-2", "build", "UserPromptSubmit", prompt="Deploy")])
    # What the stall scanner stores for sf-2 after ten idle minutes.
    stall = send(ingest, [stalled_event("sf-2", "build", 600, first[2])])[0]
    c = gw.http()
    l1, r1 = run_of(c, "sf-1")
    l2, r2 = run_of(c, "sf-2")
    for r in (l1, r1):
        assert r["stop_failure"] == {"reason": "rate_limit", "id": first[1]}
        assert r["stalled"] is False
        assert r["status"] == "running"
    for r in (l2, r2):
        assert r["stop_failure"] is None
        assert r["stalled"] is True
        # A stall names the step for display; it sets neither the run's nor a step's status.
        assert r["status"] == "running" and r["failed_steps"] == []
        assert r["last_id"] == stall
    # The status filter still works next to the new fields.
    st, _, body = c.get("/api/adws?status=running")
    assert st == 200 and {"sf-1", "sf-2"} <= {r["adw_id"] for r in body["adws"]}
    # The run's next event clears the stall.
    nxt = send(ingest, [hook("sf-2", "build", "PreToolUse", tool_name="Bash",
                             tool_use_id="toolu_01Next", tool_input={"command": "make"})])[0]
    l2, r2 = run_of(c, "sf-2")
    assert (l2["stalled"], r2["stalled"], r2["last_id"]) == (False, False, nxt)
    # A stall keeps the stop failure (never cleared); a later StopFailure replaces it, its
    # reason (quotes, non-ASCII text) coming back as sent.
    send(ingest, [stalled_event("sf-1", "build", 900, first[1])])
    l1, r1 = run_of(c, "sf-1")
    assert (l1["stalled"], r1["stalled"]) == (True, True)
    assert r1["stop_failure"] == {"reason": "rate_limit", "id": first[1]}
    reason = 'overloaded: "server busy" — retry'
    again = send(ingest, [Hook("sf-1", "build", stop_failure_body(reason))])[0]
    for r in run_of(c, "sf-1"):
        assert r["stop_failure"] == {"reason": reason, "id": again}
        assert r["stalled"] is False
    c.close()


def ts_of(it, delivered):
    """The event's time as ingest takes it: its `timestamp`, else when it was received."""
    t = it.get("timestamp") or delivered["received_at"]
    dt = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    return dt.astimezone(datetime.timezone.utc)


def tokens_of(payload):
    if "tokens" in payload:
        return payload["tokens"]
    return sum(payload.get(k, 0) for k in ("input_tokens", "output_tokens",
                                           "cache_read_tokens", "cache_creation_tokens"))


def expected_agents(items, ids, delivered):
    """GET /api/adws/{id}'s `agents` for the items sent to one run, by proto/decisions.md."""
    agents = {}
    for it, i in zip(items, ids):
        agent = it.get("agent_id")
        if agent is None:
            continue
        payload = it.get("payload") or {}
        ts = ts_of(it, delivered[i])
        a = agents.setdefault(agent, {"agent_id": agent, "agent_type": None,
                                      "status": "running", "event_count": 0, "cost_usd": 0.0,
                                      "tokens": 0, "first_ts": ts, "last_ts": ts})
        if it.get("agent_type") is not None:
            a["agent_type"] = it.get("agent_type")
        if it["event_type"] == "SubagentStop":
            a["status"] = "completed"
        a["event_count"] += 1
        a["cost_usd"] += payload.get("cost_usd", 0.0)
        a["tokens"] += tokens_of(payload)
        a["first_ts"], a["last_ts"] = min(a["first_ts"], ts), max(a["last_ts"], ts)
    for a in agents.values():
        for k in ("first_ts", "last_ts"):
            a[k] = a[k].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return list(agents.values())  # dicts keep the order of each agent's first event


def expected_tool_counts(items):
    """(tool_calls, tool_failures) for the hook bodies sent to one run."""
    status = {}
    for it in items:
        tid = (it.get("payload") or {}).get("tool_use_id")
        name = it["event_type"]
        if tid is None:
            continue
        if name in ("PreToolUse", "PermissionRequest"):
            status.setdefault(tid, "running")
        elif name == "PostToolUse":
            status[tid] = "completed"
        elif name == "PostToolUseFailure":
            status[tid] = "failed"
    return len(status), sum(1 for v in status.values() if v == "failed")


def message(adw_id, agent, agent_type, payload, **extra):
    """A cost-bearing assistant message as adw-send --stream-json sends one of a subagent's
    (agent_id = its parent_tool_use_id)."""
    e = ev(adw_id=adw_id, step="build", event_type="AssistantMessage", payload=payload, **extra)
    if agent:
        e["agent_id"] = agent
    if agent_type:
        e["agent_type"] = agent_type
    return e


def delivered_events(c, adw_id):
    st, _, body = c.get(f"/api/events?adw_id={adw_id}&limit=1000")
    assert st == 200, body
    return {e["id"]: e for e in body["events"]}


def test_agents_and_tool_calls(gw, ingest):
    run = subagent_run("ag-1")
    # Cost-bearing messages of the subagents and of the main agent, one with its own timestamp
    # (earlier than every hook's), an unfinished Grep call of the Plan subagent and, last, an
    # agent that never says its type.
    corpus = (run[:3]
              + [message("ag-1", AGENT_A, "Explore",
                         {"cost_usd": 0.25, "input_tokens": 6, "output_tokens": 4})]
              + run[3:5]
              + [message("ag-1", None, None, {"cost_usd": 1.0, "tokens": 500})]
              + run[5:6]
              + [message("ag-1", AGENT_B, "Plan", {"cost_usd": 0.0125, "tokens": 2048},
                         timestamp="2026-03-01T09:00:05.250Z"),
                 tool("ag-1", "build", "PreToolUse", "toolu_01Open", "Grep", AGENT_B, "Plan")]
              + run[6:9]
              + [message("ag-1", AGENT_A, "Explore", {"cost_usd": 0.25})]
              + run[9:]
              + [ev(adw_id="ag-1", step="build", event_type="TextBlock", agent_id="c0ffee00")])
    other = [hook("ag-2", "build", "SubagentStart", AGENT_A, "Explore")]
    for i, fails in enumerate((True, True, False)):
        other += [tool("ag-2", "build", "PreToolUse", f"toolu_other{i}", "Bash"),
                  tool("ag-2", "build", "PostToolUseFailure" if fails else "PostToolUse",
                       f"toolu_other{i}", "Bash")]
    ids = send(ingest, corpus + other)
    ids, other_ids = ids[:len(corpus)], ids[len(corpus):]

    c = gw.http()
    delivered = delivered_events(c, "ag-1")
    assert sorted(delivered) == ids
    listed, got = run_of(c, "ag-1")
    want = expected_agents(corpus, ids, delivered)
    assert got["agents"] == want
    # The figures the corpus was built to give, in first_id order (not first_ts order: the Plan
    # subagent's timestamped message makes its first_ts the earliest).
    assert [(a["agent_id"], a["agent_type"], a["status"], a["event_count"]) for a in want] == [
        (AGENT_A, "Explore", "completed", 6), (AGENT_B, "Plan", "running", 5),
        ("c0ffee00", None, "running", 1)]
    assert [(a["cost_usd"], a["tokens"]) for a in want] == [(0.5, 10), (0.0125, 2048), (0, 0)]
    assert want[1]["first_ts"] == "2026-03-01T09:00:05.250000Z"
    assert isinstance(got["agents"][2]["cost_usd"], float)
    assert (got["tool_calls"], got["tool_failures"]) == expected_tool_counts(corpus) == (4, 1)
    for k in ("agents", "tool_calls", "tool_failures"):
        assert k not in listed
    two = run_of(c, "ag-2")[1]
    assert two["agents"] == expected_agents(other, other_ids, delivered_events(c, "ag-2"))
    assert [a["event_count"] for a in two["agents"]] == [1]
    assert (two["tool_calls"], two["tool_failures"]) == expected_tool_counts(other) == (3, 2)
    # The stored events carry what the rows summarise: the agents' events by agent_ids.
    st, _, body = c.get(f"/api/events?adw_id=ag-1&agent_ids={AGENT_A}")
    assert [e["event_type"] for e in body["events"]] == [
        it["event_type"] for it in corpus if it.get("agent_id") == AGENT_A] == [
        "SubagentStart", "AssistantMessage", "PreToolUse", "PostToolUse", "SubagentStop",
        "AssistantMessage"]
    c.close()


FULL = "full-Secret-0123"
TOK_A = "tokA-9f8e7d"
READ = f"{TOK_A}=team-a-"


def test_scope_on_new_fields(ingest, make_gateway):
    gw = make_gateway(ingest, ADW_GATEWAY_TOKEN=FULL, ADW_GATEWAY_READ_TOKENS=READ)
    corpus = subagent_run("team-a-1") + subagent_run("team-b-1")
    ids = send(ingest, corpus)
    failure = {}
    for run in ("team-a-1", "team-b-1"):
        failure[run] = send(ingest, [Hook(run, "build", stop_failure_body("billing_error"))])[0]
        send(ingest, [stalled_event(run, "build", 600, failure[run])])
    c = gw.http()
    auth = {"Authorization": f"Bearer {TOK_A}"}
    st, _, body = c.get("/api/adws", headers=auth)
    assert st == 200 and [r["adw_id"] for r in body["adws"]] == ["team-a-1"]
    assert body["adws"][0]["stalled"] is True
    assert body["adws"][0]["stop_failure"] == {"reason": "billing_error",
                                               "id": failure["team-a-1"]}
    st, _, run = c.get("/api/adws/team-a-1", headers=auth)
    assert st == 200 and [a["agent_id"] for a in run["agents"]] == [AGENT_A, AGENT_B]
    assert run["stalled"] is True and run["stop_failure"]["id"] == failure["team-a-1"]
    st, _, body = c.get("/api/adws/team-b-1", headers=auth)
    assert st == 404 and body == {"error": "no run with adw_id team-b-1"}
    # agent_ids names an agent that worked in both runs: only the scope's events come back.
    want = [i for i, e in zip(ids, corpus) if agent_of(e) == AGENT_A
            and e["adw_id"] == "team-a-1"]
    st, _, body = c.get(f"/api/events?agent_ids={AGENT_A}", headers=auth)
    assert st == 200 and [e["id"] for e in body["events"]] == want
    st, _, body = c.get(f"/api/events?agent_ids={AGENT_A}&adw_id=team-b-1", headers=auth)
    assert st == 403 and "outside this token's scope" in body["error"]
    c.close()
    # Over the WebSocket, replay and live.
    ws = adwtest.WsClient(gw.ws_url + f"?since=0&agent_ids={AGENT_A}", headers=auth)
    got = ws.collect(timeout=20, until=lambda x: x.get("type") == "replayed" and "id" not in x)
    assert [x["id"] for x in got if is_event(x)] == want
    ws.send({"action": "subscribe", "filters": {"agent_ids": [AGENT_A, AGENT_B]}})
    wait_type(ws, "subscribed")
    more = send(ingest, [hook("team-b-1", "build", "PreToolUse", AGENT_A, "Explore"),
                         hook("team-a-1", "build", "PreToolUse", AGENT_B, "Plan")])
    assert [m["id"] for m in ws.events(1, timeout=10)] == [more[1]]
    assert not [m for m in ws.collect(timeout=0.5) if is_event(m)]
    ws.close()
