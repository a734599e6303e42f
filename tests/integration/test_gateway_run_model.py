"""adw-gateway: the run model read side. The `agent_ids` filter (live over WebSocket through the
query string and subscribe, on `since` replay, on REST /api/events; its limits crossed); the
run's `stalled`, `failed_steps` and `stop_failure` (list and detail) and the detail's `agents`,
`tool_calls` and `tool_failures`, each read from the stored rows named in proto/websocket.md;
read tokens' scopes on all of them.

Events go in through a real ingest, in the shapes Claude Code's hooks send (the hook body as the
payload, a subagent's `agent_id` / `agent_type` at the top level). The assertions are about the
gateway's output for the rows stored; where ingest does not store a row yet, the test writes it
(see STAND-IN below) and the expected output is derived from what the test wrote.
"""

import json
import urllib.parse

import adwtest
import pytest
from test_gateway_common import connect, ev, is_event, post, wait_delivered, wait_type

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

# STAND-IN, to be removed once ingest's migration 2 (proto/schema.sql) creates these and the
# batch statement fills them: the columns and tables of migration 2 that the gateway reads, and
# a trigger that fills events.agent_id / agent_type from the event as ingest's insert will.
# Every statement is a no-op on a database that migration 2 already shaped (except the trigger,
# which then writes the values ingest wrote).
MIGRATION2_STAND_IN = """
ALTER TABLE events ADD COLUMN IF NOT EXISTS agent_id text,
                   ADD COLUMN IF NOT EXISTS agent_type text;
CREATE INDEX IF NOT EXISTS events_adw_id_agent_id ON events (adw_id, agent_id, id)
    WHERE agent_id IS NOT NULL;
ALTER TABLE adw_runs ADD COLUMN IF NOT EXISTS stalled boolean NOT NULL DEFAULT false,
                     ADD COLUMN IF NOT EXISTS stop_failure text,
                     ADD COLUMN IF NOT EXISTS stop_failure_id bigint;
CREATE TABLE IF NOT EXISTS adw_agents (
    adw_id text NOT NULL,
    agent_id text NOT NULL,
    agent_type text,
    status text NOT NULL,
    event_count bigint NOT NULL,
    cost_usd double precision NOT NULL,
    tokens bigint NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,
    PRIMARY KEY (adw_id, agent_id)
);
CREATE TABLE IF NOT EXISTS adw_tool_calls (
    adw_id text NOT NULL,
    tool_use_id text NOT NULL,
    tool_name text,
    agent_id text,
    status text NOT NULL,
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    PRIMARY KEY (adw_id, tool_use_id)
);
CREATE OR REPLACE FUNCTION adw_test_event_agent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.agent_id := coalesce(NEW.agent_id, NEW.doc->>'agent_id');
    NEW.agent_type := coalesce(NEW.agent_type, NEW.doc->>'agent_type');
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS adw_test_event_agent ON events;
CREATE TRIGGER adw_test_event_agent BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION adw_test_event_agent();
"""


def apply_stand_in(pg):
    """STAND-IN (see MIGRATION2_STAND_IN): after ingest has migrated, before events go in."""
    pg.query(MIGRATION2_STAND_IN)


@pytest.fixture
def gw(db, ingest, make_gateway):
    apply_stand_in(db)
    return make_gateway(ingest)


SESSION = "3f1c2a9e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
TRANSCRIPT = f"/home/dev/.claude/projects/-home-dev-app/{SESSION}.jsonl"
AGENT_A = "a7c41e0b9d2f4e6a"  # an Explore subagent
AGENT_B = "b3e9f0a1c2d84b57"  # a Plan subagent


def hook(adw_id, step, name, agent=None, agent_type=None, summary=None, **body):
    """An adw_event as `adw-send --hook` sends a Claude Code hook body: the body is the payload;
    a subagent's agent_id / agent_type (when given) also at the top level of the event."""
    payload = {"session_id": SESSION, "transcript_path": TRANSCRIPT, "cwd": "/home/dev/app",
               "permission_mode": "default", "hook_event_name": name}
    if agent:
        payload["agent_id"] = agent
        payload["agent_type"] = agent_type
    payload.update(body)
    e = ev(adw_id=adw_id, step=step, event_type=name, payload=payload,
           summary=summary or name)
    if agent:
        e["agent_id"] = agent
        e["agent_type"] = agent_type
    return e


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
    ids = post(ingest, corpus)
    got_all = everything.collect(timeout=20, pred=is_event, count=len(ids))
    assert [e["id"] for e in got_all] == ids
    # Echoed unchanged, and only on the subagents' events.
    for e, sent in zip(got_all, corpus):
        assert e.get("agent_id") == sent.get("agent_id")
        assert e.get("agent_type") == sent.get("agent_type")
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
    ids = post(ingest, [hook("lim", "build", "PreToolUse", long64, "Explore"),
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
    more = post(ingest, [hook("lim", "build", "Stop"),
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
    post(ingest, [ev(adw_id="quiet", step="plan", event_type="step_start", type_="system"),
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

    post(ingest, [
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
    post(ingest, [sys("test", "step_start"), sys("test", "step_complete", "completed")])
    assert run_of(c, "fs")[1]["failed_steps"] == ["build"]
    c.close()


def test_stalled_and_stop_failure(gw, ingest, db):
    ids = post(ingest, [
        hook("sf-1", "build", "UserPromptSubmit", prompt="Deploy"),
        hook("sf-1", "build", "StopFailure", error="rate_limit",
             error_details="429 Too Many Requests"),
        hook("sf-2", "build", "UserPromptSubmit", prompt="Deploy"),
    ])
    # STAND-IN for ingest's batch statement (stop_failure from the StopFailure event) and its
    # stall scanner (stalled), until they exist: the rows as they will store them.
    db.query("UPDATE adw_runs SET stop_failure = %s, stop_failure_id = %s WHERE adw_id = %s",
             ("rate_limit", ids[1], "sf-1"))
    db.query("UPDATE adw_runs SET stalled = true WHERE adw_id = %s", ("sf-2",))
    c = gw.http()
    l1, r1 = run_of(c, "sf-1")
    l2, r2 = run_of(c, "sf-2")
    for r in (l1, r1):
        assert r["stop_failure"] == {"reason": "rate_limit", "id": ids[1]}
        assert r["stalled"] is False
    for r in (l2, r2):
        assert r["stop_failure"] is None
        assert r["stalled"] is True
    # The status filter still works next to the new fields.
    st, _, body = c.get("/api/adws?status=running")
    assert st == 200 and {"sf-1", "sf-2"} <= {r["adw_id"] for r in body["adws"]}
    # A reason with quotes and non-ASCII text comes back as stored.
    db.query("UPDATE adw_runs SET stop_failure = %s WHERE adw_id = %s",
             ('overloaded: "server busy" — retry', "sf-1"))
    assert run_of(c, "sf-1")[1]["stop_failure"] == {
        "reason": 'overloaded: "server busy" — retry', "id": ids[1]}
    c.close()


def insert_agent(db, adw_id, agent_id, agent_type, status, count, cost, tokens, first_ts,
                 last_ts, first_id, last_id):
    db.query("INSERT INTO adw_agents (adw_id, agent_id, agent_type, status, event_count,"
             " cost_usd, tokens, first_ts, last_ts, first_id, last_id)"
             " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
             (adw_id, agent_id, agent_type, status, count, cost, tokens, first_ts, last_ts,
              first_id, last_id))


def insert_tool_call(db, adw_id, tool_use_id, tool_name, agent_id, status, first_id, last_id):
    db.query("INSERT INTO adw_tool_calls (adw_id, tool_use_id, tool_name, agent_id, status,"
             " first_id, last_id, first_ts, last_ts)"
             " VALUES (%s, %s, %s, %s, %s, %s, %s, now(), now())",
             (adw_id, tool_use_id, tool_name, agent_id, status, first_id, last_id))


def test_agents_and_tool_calls(gw, ingest, db):
    corpus = subagent_run("ag-1")
    ids = post(ingest, corpus + subagent_run("ag-2"))
    pos = {(e["event_type"], e.get("agent_id"), e["payload"].get("tool_use_id")): i
           for i, e in zip(ids, corpus)}
    # STAND-IN for ingest's batch statement, until it fills adw_agents and adw_tool_calls: the
    # rows it will store for corpus. Inserted out of order: the answer is in first_id order.
    insert_agent(db, "ag-1", AGENT_B, "Plan", "running", 3, 0.0125, 2048,
                 "2026-03-01T09:00:05.250Z", "2026-03-01T09:00:07Z",
                 pos[("SubagentStart", AGENT_B, None)],
                 pos[("PostToolUseFailure", AGENT_B, "toolu_01B1")])
    insert_agent(db, "ag-1", AGENT_A, "Explore", "completed", 4, 0.5, 10,
                 "2026-03-01T09:00:01Z", "2026-03-01T09:01:00.000001Z",
                 pos[("SubagentStart", AGENT_A, None)], pos[("SubagentStop", AGENT_A, None)])
    insert_agent(db, "ag-1", "c0ffee00", None, "running", 1, 0.0, 0,
                 "2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z", ids[-1] + 100, ids[-1] + 100)
    insert_agent(db, "ag-2", AGENT_A, "Explore", "running", 9, 9.0, 9,
                 "2026-03-01T09:00:00Z", "2026-03-01T09:00:00Z", 1, 1)
    insert_tool_call(db, "ag-1", "toolu_01Main", "Task", None, "completed",
                     pos[("PreToolUse", None, "toolu_01Main")],
                     pos[("PostToolUse", None, "toolu_01Main")])
    insert_tool_call(db, "ag-1", "toolu_01A1", "Read", AGENT_A, "completed",
                     pos[("PreToolUse", AGENT_A, "toolu_01A1")],
                     pos[("PostToolUse", AGENT_A, "toolu_01A1")])
    insert_tool_call(db, "ag-1", "toolu_01B1", "Bash", AGENT_B, "failed",
                     pos[("PreToolUse", AGENT_B, "toolu_01B1")],
                     pos[("PostToolUseFailure", AGENT_B, "toolu_01B1")])
    insert_tool_call(db, "ag-1", "toolu_01Open", "Grep", AGENT_B, "running", ids[-1], ids[-1])
    for i, status in enumerate(("failed", "failed", "completed")):
        insert_tool_call(db, "ag-2", f"toolu_other{i}", "Bash", None, status, 1, 1)

    c = gw.http()
    listed, run = run_of(c, "ag-1")
    assert run["agents"] == [
        {"agent_id": AGENT_A, "agent_type": "Explore", "status": "completed", "event_count": 4,
         "cost_usd": 0.5, "tokens": 10, "first_ts": "2026-03-01T09:00:01.000000Z",
         "last_ts": "2026-03-01T09:01:00.000001Z"},
        {"agent_id": AGENT_B, "agent_type": "Plan", "status": "running", "event_count": 3,
         "cost_usd": 0.0125, "tokens": 2048, "first_ts": "2026-03-01T09:00:05.250000Z",
         "last_ts": "2026-03-01T09:00:07.000000Z"},
        {"agent_id": "c0ffee00", "agent_type": None, "status": "running", "event_count": 1,
         "cost_usd": 0.0, "tokens": 0, "first_ts": "2026-03-01T10:00:00.000000Z",
         "last_ts": "2026-03-01T10:00:00.000000Z"},
    ]
    assert isinstance(run["agents"][2]["cost_usd"], float)
    assert (run["tool_calls"], run["tool_failures"]) == (4, 1)
    for k in ("agents", "tool_calls", "tool_failures"):
        assert k not in listed
    other = run_of(c, "ag-2")[1]
    assert [a["event_count"] for a in other["agents"]] == [9]
    assert (other["tool_calls"], other["tool_failures"]) == (3, 2)
    # The stored events carry what the rows summarise: the agents' events by agent_ids.
    st, _, body = c.get(f"/api/events?adw_id=ag-1&agent_ids={AGENT_A}")
    assert [e["event_type"] for e in body["events"]] == [
        "SubagentStart", "PreToolUse", "PostToolUse", "SubagentStop"]
    c.close()


FULL = "full-Secret-0123"
TOK_A = "tokA-9f8e7d"
READ = f"{TOK_A}=team-a-"


def test_scope_on_new_fields(db, ingest, make_gateway):
    apply_stand_in(db)
    gw = make_gateway(ingest, ADW_GATEWAY_TOKEN=FULL, ADW_GATEWAY_READ_TOKENS=READ)
    corpus = subagent_run("team-a-1") + subagent_run("team-b-1")
    ids = post(ingest, corpus)
    for run in ("team-a-1", "team-b-1"):
        insert_agent(db, run, AGENT_A, "Explore", "running", 1, 0.0, 0,
                     "2026-03-01T09:00:00Z", "2026-03-01T09:00:00Z", 1, 1)
        db.query("UPDATE adw_runs SET stalled = true, stop_failure = 'billing_error',"
                 " stop_failure_id = 1 WHERE adw_id = %s", (run,))
    c = gw.http()
    auth = {"Authorization": f"Bearer {TOK_A}"}
    st, _, body = c.get("/api/adws", headers=auth)
    assert st == 200 and [r["adw_id"] for r in body["adws"]] == ["team-a-1"]
    assert body["adws"][0]["stalled"] is True
    st, _, run = c.get("/api/adws/team-a-1", headers=auth)
    assert st == 200 and [a["agent_id"] for a in run["agents"]] == [AGENT_A]
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
    more = post(ingest, [hook("team-b-1", "build", "PreToolUse", AGENT_A, "Explore"),
                         hook("team-a-1", "build", "PreToolUse", AGENT_B, "Plan")])
    assert [m["id"] for m in ws.events(1, timeout=10)] == [more[1]]
    assert not [m for m in ws.collect(timeout=0.5) if is_event(m)]
    ws.close()
