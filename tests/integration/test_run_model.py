"""The run model in storage, through real adw-ingest and PostgreSQL: a run's status from
run-level events only (over whole runs, in one batch, over ZeroMQ, by COPY), the rows of an
older schema migrated to the new rule, `agent_id` / `agent_type` on events, adw_agents and
adw_tool_calls from realistic Claude Code hook bodies, stop failures and the stalled flag."""

import json
import re
from pathlib import Path

import adwtest
import pytest

pytestmark = pytest.mark.needs_bin("adw-ingest")

ROOT = Path(__file__).resolve().parents[2]
SESSION = ROOT / "tests" / "data" / "hooks" / "subagent_session"
AGENT = "a4c81f2e9b3d7a60"  # the subagent of tests/data/hooks/subagent_session


def ev(adw_id="run1", event_type="TextBlock", **kw):
    e = {"type": "adw_event", "adw_id": adw_id, "event_type": event_type}
    e.update(kw)
    return e


def sysev(event, adw_id="run1", **kw):
    e = {"type": "system", "adw_id": adw_id, "event": event}
    e.update(kw)
    return e


def post(ingest, events, path="/api/events"):
    with ingest.http() as c:
        st, h, body = c.post_json(path, events)
        assert st == 200, body
        if path.startswith("/api/hooks"):  # {} (no decision); the id in X-ADW-Event-Id
            assert body == {}, body
            return {"id": int(h["X-ADW-Event-Id"])}
        return body


def refused(ingest, events):
    with ingest.http() as c:
        st, _, body = c.post_json("/api/events", events)
        assert st == 400, body
        return body["error"]


def run_status(db, adw_id="run1"):
    return db.scalar("SELECT status FROM adw_runs WHERE adw_id = %s", (adw_id,))


def run_row(db, adw_id="run1"):
    cols = ("status", "stalled", "stop_failure", "stop_failure_id", "event_count", "last_id")
    rows = db.query(f"SELECT {', '.join(cols)} FROM adw_runs WHERE adw_id = %s", (adw_id,))
    return dict(zip(cols, rows[0])) if rows else None


def step_status(db, adw_id="run1"):
    return dict(db.query("SELECT step, status FROM adw_steps WHERE adw_id = %s", (adw_id,)))


def agents(db, adw_id="run1"):
    cols = ("agent_id", "agent_type", "status", "event_count", "cost_usd", "tokens", "first_id",
            "last_id")
    return {r[0]: dict(zip(cols, r)) for r in db.query(
        f"SELECT {', '.join(cols)} FROM adw_agents WHERE adw_id = %s ORDER BY first_id",
        (adw_id,))}


def tool_calls(db, adw_id="run1"):
    cols = ("tool_use_id", "tool_name", "agent_id", "status", "first_id", "last_id")
    return {r[0]: dict(zip(cols, r)) for r in db.query(
        f"SELECT {', '.join(cols)} FROM adw_tool_calls WHERE adw_id = %s", (adw_id,))}


def session_bodies():
    return [(p.name, json.loads(p.read_text())) for p in sorted(SESSION.glob("*.json"))]


def as_event(adw_id, body):
    """The event /api/hooks makes of a hook body, with agent_id / agent_type from the body
    (what the hook mapper adds), sent through /api/events."""
    e = ev(adw_id, body["hook_event_name"], payload=body)
    for k in ("agent_id", "agent_type"):
        if k in body:
            e[k] = body[k]
    return e


# ---------------------------------------------------------------------------------------------
# The status rule over whole runs


def test_status_over_a_whole_run(ingest, db):
    post(ingest, sysev("adw_start"))
    assert run_status(db) == "running"
    post(ingest, sysev("step_start", step="plan", status="running"))
    post(ingest, ev(step="plan"))
    # A finished step is not a finished run.
    post(ingest, sysev("step_complete", step="plan", status="completed", duration_ms=900))
    assert run_status(db) == "running"
    assert step_status(db) == {"plan": "completed"}
    # A failed step: the step is failed, the run goes on.
    post(ingest, sysev("step_start", step="build", status="running"))
    post(ingest, sysev("step_failed", step="build", status="failed"))
    assert run_status(db) == "running"
    assert step_status(db) == {"plan": "completed", "build": "failed"}
    # An adw_event's status changes nothing, with or without a step.
    post(ingest, [ev(status="completed"), ev(step="build", status="failed"),
                  ev(event_type="Stop", status="completed")])
    assert run_status(db) == "running"
    # A system event without a step carries the run's status.
    post(ingest, sysev("paused", status="paused"))
    assert run_status(db) == "paused"
    post(ingest, sysev("resumed", status="running"))
    assert run_status(db) == "running"
    post(ingest, sysev("step_start", step="test", status="running"))
    post(ingest, sysev("step_complete", step="test", status="completed"))
    assert run_status(db) == "running"
    # The run's end, whatever its step.
    post(ingest, sysev("adw_complete", step="test"))
    assert run_status(db) == "completed"
    assert step_status(db)["test"] == "completed"
    # A later step event does not reopen it; a run-level event does.
    post(ingest, sysev("step_start", step="extra", status="running"))
    assert run_status(db) == "completed"
    post(ingest, sysev("adw_failed", status="completed"))
    assert run_status(db) == "failed"


def test_status_in_one_batch_over_zmq_and_by_copy(ingest, db):
    run = [sysev("adw_start", "b1"), sysev("step_start", "b1", step="plan", status="running"),
           sysev("step_complete", "b1", step="plan", status="completed"),
           sysev("step_start", "b1", step="build", status="running"),
           sysev("step_failed", "b1", step="build", status="failed")]
    post(ingest, run)
    assert run_status(db, "b1") == "running"
    assert step_status(db, "b1") == {"plan": "completed", "build": "failed"}
    # Over ZeroMQ the same rule.
    r = adwtest.zmq_submit(ingest.zmq_endpoint, [dict(e, adw_id="z1") for e in run])
    assert r["ok"]
    assert run_status(db, "z1") == "running"
    r = adwtest.zmq_submit(ingest.zmq_endpoint, [sysev("adw_failed", "z1", step="build"),
                                                 sysev("step_start", "z1", step="again",
                                                       status="running")])
    assert r["ok"]
    assert run_status(db, "z1") == "failed"
    # A batch of 64 or more events goes in by COPY; the run state follows the same rule.
    big = []
    for i in range(40):
        big.append(sysev("step_start", "c1", step=f"s{i}", status="running"))
        big.append(sysev("step_complete", "c1", step=f"s{i}", status="completed"))
    post(ingest, big)
    assert run_status(db, "c1") == "running"
    assert set(step_status(db, "c1").values()) == {"completed"}
    post(ingest, big[:70] + [sysev("adw_complete", "c1")] + big[:3])
    assert run_status(db, "c1") == "completed"
    assert db.scalar("SELECT event_count FROM adw_runs WHERE adw_id = 'c1'") == 80 + 74


# ---------------------------------------------------------------------------------------------
# Rows migrated from the old rule


def migration_1_sql():
    """Migration 1 as ingest/migrate.c holds it: the first element of MIGRATIONS, its C string
    literals joined."""
    src = (ROOT / "ingest" / "migrate.c").read_text()
    body = src[src.index("MIGRATIONS[] = {") + len("MIGRATIONS[] = {"):]
    out, i = [], 0
    while True:
        m = re.compile(r'\s*(?:/\*.*?\*/\s*)*', re.S).match(body, i)
        i = m.end()
        if body[i] != '"':
            assert body[i] == ",", body[i:i + 40]
            break
        j = i + 1
        while body[j] != '"':
            j += 2 if body[j] == "\\" else 1
        out.append(body[i + 1:j].encode().decode("unicode_escape"))
        i = j + 1
    sql = "".join(out)
    assert sql.startswith("CREATE TABLE adw_meta") and "CREATE TABLE adw_steps" in sql
    return sql


def test_rows_of_the_old_rule_migrated(make_ingest, db):
    conn = db.connect(autocommit=False)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE adw_schema_migrations (version integer PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())")
        cur.execute(migration_1_sql())
        cur.execute("INSERT INTO adw_schema_migrations (version) VALUES (1)")
        # Runs as the old rule left them: the last status any system event carried.
        events = [
            # (adw_id, type, step, event, status): the old status, the new one
            ("old1", "system", None, "adw_start", None),
            ("old1", "system", "plan", "step_start", "running"),
            ("old1", "system", "plan", "step_complete", "completed"),  # completed -> running
            ("old2", "system", None, "adw_start", None),
            ("old2", "system", "plan", "step_failed", "failed"),
            ("old2", "system", None, "adw_complete", None),  # completed -> completed
            ("old3", "system", None, "adw_start", None),
            ("old3", "system", None, "paused", "paused"),
            ("old3", "system", "build", "step_failed", "failed"),  # failed -> paused
            ("old4", "system", None, "adw_failed", None),
            ("old4", "system", "x", "step_start", "running"),  # running -> failed
            ("old5", "adw_event", None, None, "completed"),  # completed (an adw_event) -> running
            ("old6", "system", "plan", "adw_complete", "running"),  # running -> completed
        ]
        old = {"old1": "completed", "old2": "completed", "old3": "failed", "old4": "running",
               "old5": "completed", "old6": "running"}
        for i, (a, t, step, event, status) in enumerate(events, 1):
            doc = {"id": i, "received_at": "2026-01-01T10:00:00Z", "type": t, "adw_id": a}
            for k, v in (("step", step), ("event", event), ("status", status)):
                if v is not None:
                    doc[k] = v
            if t == "adw_event":
                doc["event_type"] = "TextBlock"
            cur.execute("INSERT INTO events (id, adw_id, type, step, event_type, event, status,"
                        " ts, received_at, doc) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                        " '2026-01-01T10:00:00Z', '2026-01-01T10:00:00Z', %s)",
                        (i, a, t, step, doc.get("event_type"), event, status, json.dumps(doc)))
        for a, status in old.items():
            ids = [i for i, e in enumerate(events, 1) if e[0] == a]
            cur.execute("INSERT INTO adw_runs (adw_id, status, event_count, cost_usd, tokens,"
                        " input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,"
                        " first_ts, last_ts, first_id, last_id, updated_at) VALUES (%s, %s, %s,"
                        " 0, 0, 0, 0, 0, 0, '2026-01-01T10:00:00Z', '2026-01-01T10:00:00Z',"
                        " %s, %s, '2026-01-01T10:00:00Z')",
                        (a, status, len(ids), min(ids), max(ids)))
    conn.close()

    ing = make_ingest()
    assert db.scalar("SELECT max(version) FROM adw_schema_migrations") == 8
    got = dict(db.query("SELECT adw_id, status FROM adw_runs"))
    assert got == {"old1": "running", "old2": "completed", "old3": "paused", "old4": "failed",
                   "old5": "running", "old6": "completed"}
    # The new columns and tables, with their defaults for the old rows.
    assert db.query("SELECT DISTINCT stalled, stop_failure, stop_failure_id FROM adw_runs") == [
        (False, None, None)]
    assert db.scalar("SELECT count(*) FROM events WHERE agent_id IS NOT NULL") == 0
    assert db.scalar("SELECT count(*) FROM adw_agents") == 0
    assert db.scalar("SELECT count(*) FROM adw_tool_calls") == 0
    idx = {r[0] for r in db.query("SELECT indexname FROM pg_indexes WHERE tablename = 'events'")}
    assert "events_adw_id_agent_id" in idx
    # The run goes on from its stored state, under the new rule.
    assert post(ing, sysev("step_complete", "old1", step="plan", status="completed")) == {
        "status": "broadcasted", "id": len(events) + 1}
    assert run_status(db, "old1") == "running"
    post(ing, sysev("adw_complete", "old1"))
    assert run_status(db, "old1") == "completed"
    # Restarted on a current schema, nothing is migrated again.
    ing.restart()
    assert db.scalar("SELECT count(*) FROM adw_schema_migrations") == 8
    assert run_status(db, "old1") == "completed"


# ---------------------------------------------------------------------------------------------
# agent_id / agent_type, adw_agents


def test_agent_keys_stored_and_validated(ingest, db):
    post(ingest, [ev(agent_id="agent-1", agent_type="Explore"), ev(agent_id="agent-1"),
                  ev(agent_id=None, agent_type=None), ev()])
    rows = db.query("SELECT id, agent_id, agent_type, doc->>'agent_id' FROM events ORDER BY id")
    assert rows == [(1, "agent-1", "Explore", "agent-1"), (2, "agent-1", None, "agent-1"),
                    (3, None, None, None), (4, None, None, None)]
    # The doc keeps the keys as sent (null included).
    assert db.scalar("SELECT doc ? 'agent_id' FROM events WHERE id = 3") is True
    a64 = "é" * 32  # 64 bytes
    post(ingest, ev("run2", agent_id=a64, agent_type="t" * 64))
    assert db.scalar("SELECT agent_id FROM events WHERE adw_id = 'run2'") == a64
    for key in ("agent_id", "agent_type"):
        assert f"{key} is 65 bytes, over the limit of 64" in refused(ingest, ev(**{key: "x" * 65}))
        assert f"{key} must not be empty" in refused(ingest, ev(**{key: ""}))
        assert f"{key} must be a string" in refused(ingest, [ev(), ev(**{key: 7})])
        r = adwtest.zmq_submit(ingest.zmq_endpoint, [ev(), ev(**{key: "é" * 33})])
        assert r["ok"] is False and f"{key} is 66 bytes, over the limit of 64" in r["error"]
        r = adwtest.zmq_submit(ingest.zmq_endpoint, ev(**{key: ["a"]}))
        assert r["ok"] is False and f"{key} must be a string" in r["error"]
    r = adwtest.zmq_submit(ingest.zmq_endpoint, ev("run3", agent_id="z" * 64, agent_type="Plan"))
    assert r["ok"]
    assert db.query("SELECT agent_id, agent_type FROM events WHERE adw_id = 'run3'") == [
        ("z" * 64, "Plan")]
    assert db.scalar("SELECT count(*) FROM events") == 6


def test_agent_keys_published_as_sent(ingest, db):
    with ingest.sub() as sub:
        adwtest.wait_for(lambda: post(ingest, ev("warm")) and sub.events(), 10, interval=0.2,
                         what="the subscription")
        post(ingest, [ev("pub1", agent_id="ag-9", agent_type="Plan"), ev("pub1", agent_id=None)])
        m = sub.wait_for(lambda m: m.body.get("adw_id") == "pub1")
        assert (m.body["agent_id"], m.body["agent_type"]) == ("ag-9", "Plan")
        m = sub.wait_for(lambda m: m.body.get("adw_id") == "pub1" and "agent_type" not in m.body)
        assert "agent_id" in m.body and m.body["agent_id"] is None


def test_agent_totals_with_cost_events(ingest, db):
    post(ingest, [ev(event_type="SubagentStart", agent_id="ag-1", agent_type="Explore"),
                  ev(event_type="AssistantMessage", agent_id="ag-1",
                     payload={"cost_usd": 0.25, "input_tokens": 100, "output_tokens": 20}),
                  ev(event_type="AssistantMessage", payload={"cost_usd": 1.0, "tokens": 5}),
                  ev(event_type="SubagentStart", agent_id="ag-2", agent_type="Plan",
                     timestamp="2026-01-01T10:00:00Z")])
    a = agents(db)
    assert list(a) == ["ag-1", "ag-2"]
    assert (a["ag-1"]["agent_type"], a["ag-1"]["status"], a["ag-1"]["event_count"]) == (
        "Explore", "running", 2)
    assert a["ag-1"]["cost_usd"] == pytest.approx(0.25) and a["ag-1"]["tokens"] == 120
    assert (a["ag-2"]["status"], a["ag-2"]["event_count"], a["ag-2"]["cost_usd"]) == (
        "running", 1, 0)
    # Later batches add to the stored rows; agent_type keeps its last given value.
    post(ingest, ev(event_type="AssistantMessage", agent_id="ag-1",
                    payload={"cost_usd": 0.5, "tokens": 30}))
    adwtest.zmq_submit(ingest.zmq_endpoint,
                       ev(event_type="SubagentStop", agent_id="ag-1", agent_type="Explore"))
    post(ingest, ev(agent_id="ag-2", agent_type="Plan2"))
    a = agents(db)
    assert (a["ag-1"]["status"], a["ag-1"]["event_count"], a["ag-1"]["tokens"]) == (
        "completed", 4, 150)
    assert a["ag-1"]["cost_usd"] == pytest.approx(0.75)
    assert (a["ag-2"]["agent_type"], a["ag-2"]["status"], a["ag-2"]["event_count"]) == (
        "Plan2", "running", 2)
    # An event after the SubagentStop does not bring the agent back to running.
    post(ingest, ev(agent_id="ag-1"))
    assert agents(db)["ag-1"]["status"] == "completed"
    # The totals match a recount from the events table; the run's include every agent's.
    for agent_id, row in agents(db).items():
        n, cost, first, last = db.query(
            "SELECT count(*), sum(coalesce((doc->'payload'->>'cost_usd')::float8, 0)), min(id),"
            " max(id) FROM events WHERE adw_id = 'run1' AND agent_id = %s", (agent_id,))[0]
        assert (row["event_count"], row["first_id"], row["last_id"]) == (n, first, last)
        assert row["cost_usd"] == pytest.approx(cost)
    assert db.scalar("SELECT cost_usd FROM adw_runs WHERE adw_id = 'run1'") == pytest.approx(1.75)
    first_ts, last_ts = db.query(
        "SELECT first_ts, last_ts FROM adw_agents WHERE agent_id = 'ag-2'")[0]
    assert first_ts.isoformat() == "2026-01-01T10:00:00+00:00" and last_ts > first_ts


def test_agents_and_tool_calls_by_copy(ingest, db):
    # 80 events in one batch (the COPY path): one row per agent and per tool call.
    batch = []
    for i in range(20):
        tid = f"toolu_{i:02d}"
        agent = {"agent_id": f"ag-{i % 2}", "agent_type": "Explore"}
        batch.append(ev(event_type="PreToolUse", payload={"tool_name": "Read", "tool_use_id": tid},
                        **agent))
        batch.append(ev(event_type="ToolUseBlock",
                        payload={"type": "tool_use", "id": tid, "name": "Read"}, **agent))
        if i % 3 == 0:
            batch.append(ev(event_type="PostToolUseFailure",
                            payload={"tool_name": "Read", "tool_use_id": tid, "error": "ENOENT"},
                            **agent))
        else:
            batch.append(ev(event_type="PostToolUse",
                            payload={"tool_name": "Read", "tool_use_id": tid}, **agent))
        batch.append(ev(event_type="AssistantMessage", payload={"cost_usd": 0.01}, **agent))
    assert len(batch) >= 64
    post(ingest, batch)
    calls = tool_calls(db)
    assert len(calls) == 20
    assert sum(c["status"] == "failed" for c in calls.values()) == 7
    assert {c["status"] for c in calls.values()} == {"completed", "failed"}
    assert calls["toolu_01"]["agent_id"] == "ag-1" and calls["toolu_01"]["tool_name"] == "Read"
    a = agents(db)
    assert {k: (v["event_count"], v["status"]) for k, v in a.items()} == {
        "ag-0": (40, "running"), "ag-1": (40, "running")}
    assert a["ag-0"]["cost_usd"] == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------
# Tool calls and stop failures from Claude Code's hook bodies


def test_tool_calls_and_stop_failure_from_hook_bodies(ingest, db):
    bodies = session_bodies()
    assert [b["hook_event_name"] for _, b in bodies] == [
        "PreToolUse", "SubagentStart", "PreToolUse", "PostToolUse", "PreToolUse",
        "PostToolUseFailure", "SubagentStop", "PostToolUse", "StopFailure"]
    ids = {}
    for name, body in bodies:
        ids[name] = post(ingest, body, "/api/hooks?adw_id=hk1")["id"]
        if name.startswith("05"):
            # The Bash call runs; the Grep call finished; the Task call still runs.
            st = {k: v["status"] for k, v in tool_calls(db, "hk1").items()}
            assert st == {"toolu_01TASKs4Gx8QeV2nLm7Rk9Tb": "running",
                          "toolu_01GREPa7Vn2Kd5Hw8Xq3Jc6Z": "completed",
                          "toolu_01BASHm3Rt6Yp9Wc2Nf5Lk8D": "running"}
    calls = tool_calls(db, "hk1")
    assert {k: (v["tool_name"], v["status"]) for k, v in calls.items()} == {
        "toolu_01TASKs4Gx8QeV2nLm7Rk9Tb": ("Task", "completed"),
        "toolu_01GREPa7Vn2Kd5Hw8Xq3Jc6Z": ("Grep", "completed"),
        "toolu_01BASHm3Rt6Yp9Wc2Nf5Lk8D": ("Bash", "failed"),
    }
    task = calls["toolu_01TASKs4Gx8QeV2nLm7Rk9Tb"]
    assert (task["first_id"], task["last_id"]) == (ids["01_pre_tool_use_task.json"],
                                                   ids["08_post_tool_use_task.json"])
    # /api/hooks took the subagent's agent_id / agent_type from its hook bodies.
    assert calls["toolu_01GREPa7Vn2Kd5Hw8Xq3Jc6Z"]["agent_id"] == AGENT
    assert calls["toolu_01TASKs4Gx8QeV2nLm7Rk9Tb"]["agent_id"] is None  # the main agent's
    a = agents(db, "hk1")
    assert list(a) == [AGENT]
    assert (a[AGENT]["agent_type"], a[AGENT]["status"], a[AGENT]["event_count"]) == (
        "Explore", "completed", sum(1 for _, b in bodies if b.get("agent_id") == AGENT))
    assert (a[AGENT]["first_id"], a[AGENT]["last_id"]) == (ids["02_subagent_start.json"],
                                                           ids["07_subagent_stop.json"])
    # The StopFailure shows on the run with its reason; the run itself is still running.
    r = run_row(db, "hk1")
    assert (r["stop_failure"], r["stop_failure_id"]) == ("rate_limit",
                                                         ids["09_stop_failure.json"])
    assert r["status"] == "running" and r["stalled"] is False
    assert r["event_count"] == 9
    # A later event keeps the stop failure; a later StopFailure replaces it.
    post(ingest, ev("hk1", "TextBlock"))
    assert run_row(db, "hk1")["stop_failure"] == "rate_limit"
    body = dict(bodies[-1][1], error="overloaded")
    sid = post(ingest, body, "/api/hooks?adw_id=hk1")["id"]
    assert (run_row(db, "hk1")["stop_failure"], run_row(db, "hk1")["stop_failure_id"]) == (
        "overloaded", sid)
    # No error string: the summary.
    body = {k: v for k, v in bodies[-1][1].items() if k != "error"}
    sid = post(ingest, body, "/api/hooks?adw_id=hk2")["id"]
    assert (run_row(db, "hk2")["stop_failure"], run_row(db, "hk2")["stop_failure_id"]) == (
        "Stop failure", sid)


def test_subagent_session_with_agent_ids(ingest, db):
    # The same session as events carrying agent_id / agent_type as the hook mapper sets them.
    bodies = session_bodies()
    out = post(ingest, [as_event("sa1", b) for _, b in bodies])
    assert out["status"] == "broadcasted"
    a = agents(db, "sa1")
    assert list(a) == [AGENT]
    assert (a[AGENT]["agent_type"], a[AGENT]["status"], a[AGENT]["event_count"]) == (
        "Explore", "completed", 6)
    assert (a[AGENT]["first_id"], a[AGENT]["last_id"]) == (2, 7)
    calls = tool_calls(db, "sa1")
    assert calls["toolu_01GREPa7Vn2Kd5Hw8Xq3Jc6Z"]["agent_id"] == AGENT
    assert calls["toolu_01BASHm3Rt6Yp9Wc2Nf5Lk8D"]["agent_id"] == AGENT
    assert calls["toolu_01TASKs4Gx8QeV2nLm7Rk9Tb"]["agent_id"] is None  # the main agent's
    assert calls["toolu_01BASHm3Rt6Yp9Wc2Nf5Lk8D"]["status"] == "failed"
    # One event at a time the same result.
    for _, b in bodies:
        post(ingest, as_event("sa2", b))
    assert agents(db, "sa2") == {AGENT: dict(a[AGENT], first_id=11, last_id=16)}
    assert {k: v["status"] for k, v in tool_calls(db, "sa2").items()} == {
        k: v["status"] for k, v in calls.items()}
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'sa2' AND agent_id = %s",
                     (AGENT,)) == 6


def test_tool_call_statuses_never_downgrade(ingest, db):
    pre = ev(event_type="PreToolUse", payload={"tool_name": "Edit", "tool_use_id": "toolu_E"})
    post(ingest, pre)
    assert tool_calls(db)["toolu_E"]["status"] == "running"
    post(ingest, ev(event_type="PostToolUse", payload={"tool_name": "Edit",
                                                       "tool_use_id": "toolu_E"}))
    assert tool_calls(db)["toolu_E"]["status"] == "completed"
    # A late PreToolUse / PermissionRequest / ToolUseBlock of a finished call leaves it.
    post(ingest, [pre, ev(event_type="PermissionRequest", payload={"tool_use_id": "toolu_E"})])
    adwtest.zmq_submit(ingest.zmq_endpoint,
                       ev(event_type="ToolUseBlock", payload={"type": "tool_use", "id": "toolu_E",
                                                              "name": "Edit"}))
    assert tool_calls(db)["toolu_E"]["status"] == "completed"
    # stream-json's blocks: a tool result with is_error fails the call, else completes it.
    post(ingest, [ev(event_type="ToolUseBlock",
                     payload={"type": "tool_use", "id": "toolu_S1", "name": "Bash"}),
                  ev(event_type="ToolUseBlock",
                     payload={"type": "tool_use", "id": "toolu_S2", "name": "Read"})])
    post(ingest, [ev(event_type="ToolResultBlock", status="failed",
                     payload={"type": "tool_result", "tool_use_id": "toolu_S1", "is_error": True}),
                  ev(event_type="ToolResultBlock", status="completed",
                     payload={"type": "tool_result", "tool_use_id": "toolu_S2"})])
    calls = tool_calls(db)
    assert (calls["toolu_S1"]["tool_name"], calls["toolu_S1"]["status"]) == ("Bash", "failed")
    assert (calls["toolu_S2"]["tool_name"], calls["toolu_S2"]["status"]) == ("Read", "completed")
    post(ingest, ev(event_type="PreToolUse", payload={"tool_use_id": "toolu_S1"}))
    assert tool_calls(db)["toolu_S1"]["status"] == "failed"
    # Events without a usable tool_use_id make no row; the tool calls don't touch the run.
    post(ingest, [ev(event_type="PreToolUse", payload={"tool_name": "Bash"}),
                  ev(event_type="PostToolUse", payload={"tool_use_id": ""}),
                  sysev("PreToolUse", event_type="PreToolUse", payload={"tool_use_id": "x"})])
    assert set(tool_calls(db)) == {"toolu_E", "toolu_S1", "toolu_S2"}
    assert run_status(db) == "running"


# ---------------------------------------------------------------------------------------------
# stalled


def test_stalled_decided_by_the_last_event(ingest, db):
    post(ingest, [sysev("adw_start"), sysev("step_start", step="build", status="running"),
                  sysev("step_complete", step="build", status="completed")])
    assert run_row(db)["stalled"] is False
    stall = sysev("run_stalled", step="build", summary="No event for 10 min",
                  payload={"idle_s": 600, "last_id": 3})
    post(ingest, stall)
    r = run_row(db)
    assert (r["stalled"], r["status"]) == (True, "running")
    # run_stalled names the step for display only: no step status from it.
    assert step_status(db) == {"build": "completed"}
    post(ingest, ev())
    assert run_row(db)["stalled"] is False
    # In one batch the run's last event decides; another run's events don't count.
    post(ingest, [stall, ev(), stall, ev("other")])
    assert run_row(db)["stalled"] is True
    assert run_row(db, "other")["stalled"] is False
    post(ingest, [stall, ev()])
    assert run_row(db)["stalled"] is False
    r = adwtest.zmq_submit(ingest.zmq_endpoint, stall)
    assert r["ok"] and run_row(db)["stalled"] is True


def test_schema_sql_shows_the_migrated_schema(ingest, db):
    """proto/schema.sql, applied to an empty schema, gives the same tables, columns, indexes and
    functions as the migrations."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            # public too: pg_trgm's operator class lives there (an extension is once per database)
            cur.execute("CREATE SCHEMA shown; SET search_path = shown, public")
            cur.execute((ROOT / "proto" / "schema.sql").read_text())

            def columns(schema):
                cur.execute("SELECT table_name, column_name, data_type, is_nullable,"
                            " column_default FROM information_schema.columns"
                            " WHERE table_schema = %s ORDER BY 1, ordinal_position", (schema,))
                return cur.fetchall()

            def indexes(schema):
                cur.execute("SELECT tablename, indexname, replace(indexdef, %s, '')"
                            " FROM pg_indexes WHERE schemaname = %s ORDER BY 1, 2",
                            (f"{schema}.", schema))
                return cur.fetchall()

            def functions(schema):  # the project's own, not pg_trgm's
                cur.execute("SELECT p.proname, pg_get_function_identity_arguments(p.oid),"
                            " p.prosrc FROM pg_proc p"
                            " JOIN pg_namespace n ON n.oid = p.pronamespace"
                            " WHERE n.nspname = %s AND NOT EXISTS (SELECT 1 FROM pg_depend d"
                            " WHERE d.objid = p.oid AND d.deptype = 'e') ORDER BY 1, 2",
                            (schema,))
                return cur.fetchall()

            assert columns("shown") == columns("public")
            assert indexes("shown") == indexes("public")
            assert functions("public") and functions("shown") == functions("public")
            cur.execute("DROP SCHEMA shown CASCADE")
    finally:
        conn.close()
