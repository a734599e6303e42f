"""Claude Code's OTel log records joined to runs, through real adw-ingest and PostgreSQL: a
record with only `session.id` filed under the run the hooks (or stream-json) of that session
were filed under (hooks before the records, in the same commit, after a restart), the 8-char
fallback for a session never seen, the spend counted once (OTel's sums when a run, step or
agent has any, else the others', in either order, by the one statement and by COPY), and a
database of schema version 2 migrated with its totals kept."""

import json
import re
import sys
import threading
import time
from pathlib import Path

import adwtest
import pytest
from faultload import metric, wait_status
from test_send_helpers import STREAMS, run_send

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from faultproxy import FaultProxy  # noqa: E402

pytestmark = pytest.mark.needs_bin("adw-ingest")

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "tests" / "data" / "hooks" / "subagent_run"
HOOK_SESSION = "7c2e4b1a-9d3f-4e8b-a6c5-1f0e2d3b4a59"  # tests/data/hooks/subagent_run
STREAM_SESSION = "5f0c8a1e-2b7d-4c11-9e3a-0d6f1b2c3d4e"  # tests/data/streamjson/session.jsonl
STREAM_COST = 0.0456  # its result's total_cost_usd
STREAM_TOKENS = {"input_tokens": 22, "output_tokens": 181, "cache_read_tokens": 57200,
                 "cache_creation_tokens": 3200}
T0 = 1796655845123000000  # 2026-12-07T..., nanoseconds


# ---------------------------------------------------------------------------------------------
# OTLP requests as Claude Code's exporter sends them


def kv(key, value):
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def record(name, session, seq, attrs, t=None):
    """One log record of claude_code.<name>: the standard attributes, then attrs (numbers as
    Claude Code sends them: strings)."""
    t = t if t is not None else T0 + seq * 1000000
    base = [("event.name", name), ("user.id", "e3b0c44298fc1c149afbf4c8996fb924"),
            ("session.id", session), ("app.version", "2.0.14"),
            ("organization.id", "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"),
            ("user.account_uuid", "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"),
            ("terminal.type", "vscode"), ("event.timestamp", "2026-12-07T15:04:05.123Z"),
            ("event.sequence", str(seq)), ("prompt.id", f"prompt-{session[:8]}")]
    return {"timeUnixNano": str(t), "observedTimeUnixNano": str(t + 400000),
            "severityNumber": 9, "severityText": "INFO",
            "body": {"stringValue": f"claude_code.{name}"},
            "attributes": [kv(k, v) for k, v in base + list(attrs)]}


def api_request(session, seq, cost, inp, out, cache_read=0, cache_creation=0):
    return record("api_request", session, seq, [
        ("model", "claude-sonnet-4-5-20250929"), ("cost_usd", repr(cost)),
        ("duration_ms", "2100"), ("input_tokens", str(inp)), ("output_tokens", str(out)),
        ("cache_read_tokens", str(cache_read)), ("cache_creation_tokens", str(cache_creation))])


def user_prompt(session, seq):
    return record("user_prompt", session, seq, [("prompt_length", "42"),
                                                ("prompt", "<REDACTED>")])


def logs(records, adw_id=None, step=None):
    """An ExportLogsServiceRequest: Claude Code's resource (with adw.id / adw.step from
    OTEL_RESOURCE_ATTRIBUTES when given) and its events scope."""
    res = [kv("service.name", "claude-code"), kv("service.version", "2.0.14"),
           kv("os.type", "linux"), kv("host.arch", "amd64")]
    if adw_id:
        res.append(kv("adw.id", adw_id))
    if step:
        res.append(kv("adw.step", step))
    return {"resourceLogs": [{"resource": {"attributes": res},
                              "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events",
                                                       "version": "2.0.14"},
                                             "logRecords": records}]}]}


def post_logs(ingest, body, timeout=10.0):
    st, _, answer = adwtest.post_json(ingest.base_url + "/v1/logs", body, timeout=timeout)
    assert (st, answer) == (200, {}), answer


# ---------------------------------------------------------------------------------------------
# Hooks, stream-json, rows


def hook_bodies(session=HOOK_SESSION):
    """tests/data/hooks/subagent_run's bodies, as Claude Code posts them, for session."""
    return [json.loads(p.read_text().replace(HOOK_SESSION, session))
            for p in sorted(HOOKS.glob("*.json"))]


def post_hooks(ingest, adw_id, bodies):
    with ingest.http() as c:
        for body in bodies:
            st, _, answer = c.post_json(f"/api/hooks?adw_id={adw_id}", body)
            assert st == 200, answer


def send_stream(ingest, tmp_path, adw_id, step=None):
    """tests/data/streamjson/session.jsonl (its result: $0.0456) through adw-send over HTTP."""
    args = ["--http", ingest.base_url, "--spool", tmp_path / "spool", "--stream-json",
            "--adw-id", adw_id, "--strict"]
    if step:
        args += ["--step", step]
    r = run_send(args, input=(STREAMS / "session.jsonl").read_bytes())
    assert r.returncode == 0, r.stderr


def post_events(ingest, events):
    with ingest.http() as c:
        st, _, answer = c.post_json("/api/events", events)
    assert st == 200, answer
    return answer


RUN_SPEND = ("cost_usd", "tokens", "input_tokens", "output_tokens", "cache_read_tokens",
             "cache_creation_tokens")
ROW_SPEND = ("cost_usd", "tokens")


def spend(db, table, where, params, cols):
    """{column: value} of the visible totals and of both sums (otel_*, rep_*)."""
    names = [c for col in cols for c in (col, f"otel_{col}", f"rep_{col}")]
    rows = db.query(f"SELECT {', '.join(names)} FROM {table} WHERE {where}", params)
    assert len(rows) == 1, rows
    return {n: (float(v) if "cost" in n else v) for n, v in zip(names, rows[0])}


def run_spend(db, adw_id):
    return spend(db, "adw_runs", "adw_id = %s", (adw_id,), RUN_SPEND)


def runs_of(db, where="", params=None):
    return [r[0] for r in db.query(f"SELECT DISTINCT adw_id FROM events {where} ORDER BY 1",
                                   params)]


def otel_docs(db):
    return [r[0] for r in db.query("SELECT doc FROM events WHERE event_id LIKE 'otel-%%'"
                                   " ORDER BY id")]


# ---------------------------------------------------------------------------------------------
# Which run: the session's


def test_records_filed_under_the_run_of_their_sessions_hooks(ingest, db):
    post_hooks(ingest, "feat-42", hook_bodies())
    assert db.query("SELECT session_id, adw_id FROM adw_sessions") == [(HOOK_SESSION, "feat-42")]
    with ingest.sub() as sub:
        sub.wait_joined()
        post_logs(ingest, logs([user_prompt(HOOK_SESSION, 1),
                                api_request(HOOK_SESSION, 2, 0.0123, 1500, 120, 9000, 300)]))
        published = sub.wait_count(2)
    docs = otel_docs(db)
    assert [d["event_type"] for d in docs] == ["user_prompt", "api_request"]
    assert {d["adw_id"] for d in docs} == {"feat-42"}  # the stored document says so too
    assert {m.topic for m in published} == {"feat-42"}
    assert {m.body["adw_id"] for m in published} == {"feat-42"}
    assert [r[0] for r in db.query("SELECT adw_id FROM events WHERE event_id LIKE 'otel-%%'")] \
        == ["feat-42", "feat-42"]
    assert runs_of(db) == ["feat-42"]  # no run under the fallback HOOK_SESSION[:8]
    run = run_spend(db, "feat-42")
    assert run["otel_cost_usd"] == pytest.approx(0.0123) and run["cost_usd"] == run["otel_cost_usd"]
    assert run["otel_tokens"] == 1500 + 120 + 9000 + 300 == run["tokens"]
    assert db.scalar("SELECT event_count FROM adw_runs WHERE adw_id = 'feat-42'") == 13 + 2

    # The session filed again under another run (the latest filing wins): later records go there.
    post_hooks(ingest, "feat-43", hook_bodies()[-2:])
    assert db.query("SELECT adw_id FROM adw_sessions") == [("feat-43",)]
    post_logs(ingest, logs([api_request(HOOK_SESSION, 3, 0.5, 10, 10)]))
    assert otel_docs(db)[-1]["adw_id"] == "feat-43"
    assert run_spend(db, "feat-43")["cost_usd"] == pytest.approx(0.5)
    assert run_spend(db, "feat-42")["cost_usd"] == pytest.approx(0.0123)


def test_a_resource_adw_id_is_not_refiled(ingest, db):
    post_hooks(ingest, "feat-42", hook_bodies()[:1])
    post_logs(ingest, logs([api_request(HOOK_SESSION, 1, 0.2, 5, 5)], adw_id="named-run"))
    assert otel_docs(db)[0]["adw_id"] == "named-run"
    # An OTel record files no session (it is not a hook's): the hooks' run stays the session's.
    assert db.query("SELECT adw_id FROM adw_sessions") == [("feat-42",)]


def test_hooks_and_records_in_one_commit(ingest, db):
    """The hooks and the records wait for the same commit: the records find the session among
    the batch's earlier events (adw_sessions does not have it yet)."""
    session = "0d9e8f7a-1111-4222-8333-444455556666"
    blocker = db.connect(autocommit=False)
    blocker.cursor().execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    threads = []
    try:
        def run(fn, *args):
            t = threading.Thread(target=fn, args=args)
            t.start()
            threads.append(t)

        def pending(n):
            adwtest.wait_for(lambda: metric(ingest, "adw_ingest_pending_events") == n, 10,
                             what=f"{n} events waiting for their commit")

        run(post_events, ingest, {"type": "adw_event", "adw_id": "other", "event_type": "X"})
        pending(1)  # that commit waits on the lock; what comes now queues behind it
        bodies = hook_bodies(session)[:1]
        run(post_hooks, ingest, "feat-7", bodies)
        pending(2)
        run(post_logs, ingest, logs([api_request(session, 1, 0.25, 100, 10),
                                     api_request(session, 2, 0.5, 200, 20)]))
        pending(4)
        blocker.commit()
        for t in threads:
            t.join(20)
    finally:
        blocker.close()
    assert [d["adw_id"] for d in otel_docs(db)] == ["feat-7", "feat-7"]
    # One commit took both requests: the hook's event and the records are in one id range.
    ids = db.query("SELECT id, adw_id FROM events ORDER BY id")
    assert ids == [(1, "other"), (2, "feat-7"), (3, "feat-7"), (4, "feat-7")]
    assert run_spend(db, "feat-7")["cost_usd"] == pytest.approx(0.75)
    assert db.query("SELECT adw_id, last_id FROM adw_sessions") == [("feat-7", 2)]


def test_the_sessions_run_survives_a_restart(ingest, db):
    post_hooks(ingest, "feat-42", hook_bodies()[:3])
    ingest.restart()
    post_logs(ingest, logs([api_request(HOOK_SESSION, 1, 0.1, 10, 1)]))
    assert otel_docs(db)[0]["adw_id"] == "feat-42"


def test_a_session_never_seen_keeps_the_fallback(ingest, db):
    session = "e1f2a3b4-0000-4111-8222-933344445555"
    post_hooks(ingest, "feat-42", hook_bodies()[:2])  # another session
    post_logs(ingest, logs([api_request(session, 1, 0.3, 30, 3), user_prompt(session, 2)]))
    docs = otel_docs(db)
    assert {d["adw_id"] for d in docs} == {"e1f2a3b4"}  # the hooks' fallback: 8 characters
    assert run_spend(db, "e1f2a3b4")["cost_usd"] == pytest.approx(0.3)
    # A record that came before its session's hooks stays where it was filed.
    post_hooks(ingest, "late-run", hook_bodies(session)[:1])
    assert {d["adw_id"] for d in otel_docs(db)} == {"e1f2a3b4"}
    post_logs(ingest, logs([api_request(session, 3, 0.1, 1, 1)]))
    assert otel_docs(db)[-1]["adw_id"] == "late-run"


@pytest.mark.needs_bin("adw-send")
def test_stream_json_files_its_session(ingest, db, tmp_path):
    """`claude -p --output-format stream-json` piped to adw-send, with OTel exported without
    adw.id: its records join the run adw-send named."""
    send_stream(ingest, tmp_path, "st-9")
    assert db.query("SELECT session_id, adw_id FROM adw_sessions") == [(STREAM_SESSION, "st-9")]
    post_logs(ingest, logs([api_request(STREAM_SESSION, 1, 0.04, 20, 180, 57000, 3000)]))
    assert otel_docs(db)[0]["adw_id"] == "st-9"
    run = run_spend(db, "st-9")
    assert run["rep_cost_usd"] == pytest.approx(STREAM_COST)
    assert run["cost_usd"] == pytest.approx(0.04)  # OTel's, not the sum


def test_an_exporters_retry_stores_nothing_twice(ingest, db):
    post_hooks(ingest, "feat-42", hook_bodies()[:1])
    body = logs([api_request(HOOK_SESSION, 1, 0.2, 10, 1), api_request(HOOK_SESSION, 2, 0.3, 5, 5)])
    post_logs(ingest, body)
    before = db.scalar("SELECT count(*) FROM events")
    post_logs(ingest, body)  # the exporter sends it again
    # A retry beside a new record, in one request: only the new one is stored.
    post_logs(ingest, logs(body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
                           + [api_request(HOOK_SESSION, 3, 0.4, 1, 1)]))
    assert db.scalar("SELECT count(*) FROM events") == before + 1
    assert {d["adw_id"] for d in otel_docs(db)} == {"feat-42"}
    run = run_spend(db, "feat-42")
    assert run["cost_usd"] == pytest.approx(0.9) and run["otel_cost_usd"] == pytest.approx(0.9)


@pytest.mark.parametrize("lost,n", [("answer", 2), ("commit", 2), ("answer", 70),
                                    ("commit", 70)])
def test_refiled_records_when_the_commits_outcome_is_lost(db, make_ingest, lost, n):
    """The records re-filed under their session's run go through a commit whose outcome is
    lost (its answer swallowed, or the COMMIT never arriving; n=70 takes the COPY path): ingest
    reads the batch back, and the exporter's retry of a batch not stored stores each record
    once, under the run."""
    with FaultProxy((db.host, db.port)) as fp:
        url = f"postgresql://postgres@127.0.0.1:{fp.port}/{db.dbname}"
        ing = make_ingest(DATABASE_URL=url)
        post_hooks(ing, "feat-42", hook_bodies()[:2])
        body = logs([api_request(HOOK_SESSION, i + 1, 0.01, 100, 10) for i in range(n)])
        trigger = b"adw_batch" if n < 64 else b"COMMIT"
        if lost == "answer":
            fp.blackhole_on(trigger, "down")
        else:
            fp.blackhole_on(trigger, "up", drop_trigger=True)
        result = []
        t = threading.Thread(target=lambda: result.append(
            adwtest.post_json(ing.base_url + "/v1/logs", body, timeout=60)), daemon=True)
        t.start()
        assert fp.triggered.wait(10), "the transaction never went through the proxy"
        time.sleep(1.0)
        assert not result, "answered while the commit's outcome was unknown"
        fp.cut()
        time.sleep(0.2)
        fp.heal()
        t.join(30)
        assert result, "no answer after the link came back"
        st, h, answer = result[0]
        if lost == "answer":
            assert (st, answer) == (200, {})
        else:
            assert st == 503 and h.get("Retry-After") == "1", answer
            deadline = time.monotonic() + 20
            while st == 503 and time.monotonic() < deadline:
                time.sleep(0.1)  # as the exporter retries
                st, _, answer = adwtest.post_json(ing.base_url + "/v1/logs", body, timeout=30)
            assert (st, answer) == (200, {})
        wait_status(ing, "/readyz", 200, timeout=20)
        docs = otel_docs(db)
        assert len(docs) == n and {d["adw_id"] for d in docs} == {"feat-42"}
        assert len({d["event_id"] for d in docs}) == n
        run = run_spend(db, "feat-42")
        assert run["otel_cost_usd"] == pytest.approx(0.01 * n) == run["cost_usd"]
        assert run["tokens"] == 110 * n
        assert runs_of(db) == ["feat-42"]


# ---------------------------------------------------------------------------------------------
# One spend is counted once


OTEL = [(0.0123, 1500, 120, 9000, 300), (0.0201, 2200, 310, 11000, 0)]
OTEL_COST = 0.0123 + 0.0201
OTEL_KINDS = {"input_tokens": 3700, "output_tokens": 430, "cache_read_tokens": 20000,
              "cache_creation_tokens": 300}


def otel_spend(ingest, adw_id, step=None, session="aa11bb22-0000-4000-8000-000000000001"):
    post_logs(ingest, logs([api_request(session, i + 1, *r) for i, r in enumerate(OTEL)]
                           + [user_prompt(session, 9)], adw_id=adw_id, step=step))


def assert_otel_shown(db, adw_id, step="build"):
    run = run_spend(db, adw_id)
    assert run["otel_cost_usd"] == pytest.approx(OTEL_COST)
    assert run["rep_cost_usd"] == pytest.approx(STREAM_COST)
    assert run["cost_usd"] == pytest.approx(OTEL_COST)
    for k, v in OTEL_KINDS.items():
        assert run[k] == run[f"otel_{k}"] == v, k
        assert run[f"rep_{k}"] == STREAM_TOKENS[k], k
    assert run["tokens"] == sum(OTEL_KINDS.values())
    st = spend(db, "adw_steps", "adw_id = %s AND step = %s", (adw_id, step), ROW_SPEND)
    assert st["cost_usd"] == pytest.approx(OTEL_COST) and st["tokens"] == run["tokens"]
    assert st["rep_cost_usd"] == pytest.approx(STREAM_COST)


@pytest.mark.needs_bin("adw-send")
@pytest.mark.parametrize("otel_first", [True, False], ids=["otel-first", "reported-first"])
def test_spend_counted_once(ingest, db, tmp_path, otel_first):
    if otel_first:
        otel_spend(ingest, "sp-1", step="build")
        send_stream(ingest, tmp_path, "sp-1", step="build")
    else:
        send_stream(ingest, tmp_path, "sp-1", step="build")
        assert run_spend(db, "sp-1")["cost_usd"] == pytest.approx(STREAM_COST)  # reported so far
        otel_spend(ingest, "sp-1", step="build")
    assert_otel_shown(db, "sp-1")


@pytest.mark.needs_bin("adw-send")
def test_only_reported_spend_is_shown(ingest, db, tmp_path):
    send_stream(ingest, tmp_path, "sp-2", step="build")
    # OTel records without spend (a prompt) do not displace it.
    post_logs(ingest, logs([user_prompt("cc00dd11-0000-4000-8000-000000000002", 1)],
                           adw_id="sp-2", step="build"))
    run = run_spend(db, "sp-2")
    assert run["cost_usd"] == pytest.approx(STREAM_COST) == run["rep_cost_usd"]
    assert run["otel_cost_usd"] == 0 and run["otel_tokens"] == 0
    for k, v in STREAM_TOKENS.items():
        assert run[k] == v, k
    st = spend(db, "adw_steps", "adw_id = 'sp-2' AND step = 'build'", None, ROW_SPEND)
    assert st["cost_usd"] == pytest.approx(STREAM_COST)


def test_spend_of_agents_and_hook_payloads(ingest, db):
    """Reported spend on a subagent's events (any event with cost keys): the agent's row shows
    it until OTel spend of that agent comes, in one batch with it or after."""
    base = {"type": "adw_event", "adw_id": "sp-3", "event_type": "AssistantMessage",
            "agent_id": "a1", "agent_type": "Explore"}
    post_events(ingest, [dict(base, payload={"cost_usd": 0.7, "tokens": 70}),
                         dict(base, agent_id="a2", payload={"cost_usd": 0.2, "tokens": 20})])
    agent = spend(db, "adw_agents", "adw_id = 'sp-3' AND agent_id = 'a1'", None, ROW_SPEND)
    assert agent["cost_usd"] == pytest.approx(0.7) and agent["tokens"] == 70
    assert run_spend(db, "sp-3")["cost_usd"] == pytest.approx(0.9)
    # OTel's records carry no agent_id: the run switches to OTel's sum, the agents keep theirs.
    post_logs(ingest, logs([api_request("ee00ff11-0000-4000-8000-000000000003", 1, 0.05, 5, 5)],
                           adw_id="sp-3"))
    assert run_spend(db, "sp-3")["cost_usd"] == pytest.approx(0.05)
    assert run_spend(db, "sp-3")["rep_cost_usd"] == pytest.approx(0.9)
    agent = spend(db, "adw_agents", "adw_id = 'sp-3' AND agent_id = 'a1'", None, ROW_SPEND)
    assert agent["cost_usd"] == pytest.approx(0.7)


def test_spend_counted_once_by_copy(ingest, db):
    """A request of 64 or more records goes in by COPY; the upserts follow the same rule."""
    session = "bb22cc33-0000-4000-8000-000000000004"
    post_events(ingest, {"type": "adw_event", "adw_id": "sp-4", "event_type": "ResultMessage",
                         "step": "build", "payload": {"cost_usd": 1.5, "input_tokens": 10,
                                                      "output_tokens": 10}})
    records = [api_request(session, i + 1, 0.01, 100, 10) for i in range(70)]
    post_logs(ingest, logs(records, adw_id="sp-4", step="build"))
    run = run_spend(db, "sp-4")
    assert run["cost_usd"] == pytest.approx(0.7) == run["otel_cost_usd"]
    assert run["input_tokens"] == 7000 and run["output_tokens"] == 700
    assert run["rep_cost_usd"] == pytest.approx(1.5) and run["rep_input_tokens"] == 10
    st = spend(db, "adw_steps", "adw_id = 'sp-4' AND step = 'build'", None, ROW_SPEND)
    assert st["cost_usd"] == pytest.approx(0.7) and st["tokens"] == 7700
    # And the other way round: reported spend by COPY after OTel's.
    post_events(ingest, [{"type": "adw_event", "adw_id": "sp-4", "event_type": "TextBlock",
                          "payload": {"cost_usd": 0.01}} for _ in range(70)])
    run = run_spend(db, "sp-4")
    assert run["cost_usd"] == pytest.approx(0.7)
    assert run["rep_cost_usd"] == pytest.approx(2.2)


# ---------------------------------------------------------------------------------------------
# A database of schema version 2


def migrations_sql(n):
    """The first n migrations as ingest/migrate.c holds them (its C string literals joined)."""
    src = (ROOT / "ingest" / "migrate.c").read_text()
    body = src[src.index("MIGRATIONS[] = {") + len("MIGRATIONS[] = {"):]
    out, parts, i = [], [], 0
    skip = re.compile(r'\s*(?:/\*.*?\*/\s*)*', re.S)
    while len(out) < n:
        i = skip.match(body, i).end()
        if body[i] != '"':
            assert body[i] == ",", body[i:i + 40]
            out.append("".join(parts))
            parts = []
            i += 1
            continue
        j = i + 1
        while body[j] != '"':
            j += 2 if body[j] == "\\" else 1
        parts.append(body[i + 1:j].encode().decode("unicode_escape"))
        i = j + 1
    return out


def test_a_version_2_database_keeps_its_totals(make_ingest, db):
    conn = db.connect(autocommit=False)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE adw_schema_migrations (version integer PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())")
        for v, sql in enumerate(migrations_sql(2), 1):
            assert "adw_sessions" not in sql and "otel_" not in sql
            cur.execute(sql)
            cur.execute("INSERT INTO adw_schema_migrations (version) VALUES (%s)", (v,))
        ts = "'2026-12-01T10:00:00Z'"
        docs = [("old-1", {"session_id": "11112222-aaaa-4bbb-8ccc-ddddeeeeffff",
                           "hook_event_name": "SessionStart"}),
                ("old-1", {"cost_usd": 1.25, "input_tokens": 100, "output_tokens": 50}),
                ("old-2", {"session_id": "33334444-aaaa-4bbb-8ccc-ddddeeeeffff"}),
                ("old-3", {"session_id": "33334444-aaaa-4bbb-8ccc-ddddeeeeffff"}),  # latest
                ("old-3", {"session_id": ""}), ("old-3", {"session_id": 7})]
        for i, (a, payload) in enumerate(docs, 1):
            doc = {"id": i, "received_at": "2026-12-01T10:00:00Z", "type": "adw_event",
                   "adw_id": a, "event_type": "X", "payload": payload}
            cur.execute("INSERT INTO events (id, adw_id, type, event_type, ts, received_at, doc)"
                        f" VALUES (%s, %s, 'adw_event', 'X', {ts}, {ts}, %s)",
                        (i, a, json.dumps(doc)))
        cur.execute("INSERT INTO adw_runs (adw_id, status, event_count, cost_usd, tokens,"
                    " input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,"
                    f" first_ts, last_ts, first_id, last_id, updated_at) VALUES ('old-1',"
                    f" 'running', 2, 1.25, 150, 100, 50, 7, 3, {ts}, {ts}, 1, 2, {ts})")
        cur.execute("INSERT INTO adw_steps (adw_id, step, status, event_count, cost_usd, tokens,"
                    f" first_ts, last_ts, first_id, last_id) VALUES ('old-1', 'build',"
                    f" 'running', 2, 1.25, 150, {ts}, {ts}, 1, 2)")
        cur.execute("INSERT INTO adw_agents (adw_id, agent_id, status, event_count, cost_usd,"
                    f" tokens, first_ts, last_ts, first_id, last_id) VALUES ('old-1', 'a1',"
                    f" 'running', 1, 0.5, 40, {ts}, {ts}, 2, 2)")
    conn.close()

    ing = make_ingest()
    assert db.scalar("SELECT max(version) FROM adw_schema_migrations") == 8
    run = run_spend(db, "old-1")
    assert run["cost_usd"] == pytest.approx(1.25) == run["rep_cost_usd"]
    assert (run["tokens"], run["input_tokens"], run["output_tokens"], run["cache_read_tokens"],
            run["cache_creation_tokens"]) == (150, 100, 50, 7, 3)
    assert (run["rep_tokens"], run["rep_input_tokens"], run["rep_output_tokens"],
            run["rep_cache_read_tokens"], run["rep_cache_creation_tokens"]) == (150, 100, 50, 7, 3)
    assert run["otel_cost_usd"] == 0 and run["otel_tokens"] == 0
    st = spend(db, "adw_steps", "adw_id = 'old-1'", None, ROW_SPEND)
    assert st == {"cost_usd": 1.25, "otel_cost_usd": 0, "rep_cost_usd": 1.25, "tokens": 150,
                  "otel_tokens": 0, "rep_tokens": 150}
    ag = spend(db, "adw_agents", "adw_id = 'old-1'", None, ROW_SPEND)
    assert ag == {"cost_usd": 0.5, "otel_cost_usd": 0, "rep_cost_usd": 0.5, "tokens": 40,
                  "otel_tokens": 0, "rep_tokens": 40}
    # The sessions of the stored events are filed (the latest event of each wins).
    assert db.query("SELECT session_id, adw_id, last_id FROM adw_sessions ORDER BY 1") == [
        ("11112222-aaaa-4bbb-8ccc-ddddeeeeffff", "old-1", 1),
        ("33334444-aaaa-4bbb-8ccc-ddddeeeeffff", "old-3", 4)]

    # The run goes on: reported spend adds to the others' sum...
    post_events(ing, {"type": "adw_event", "adw_id": "old-1", "event_type": "ResultMessage",
                      "payload": {"cost_usd": 0.25, "input_tokens": 1}})
    run = run_spend(db, "old-1")
    assert run["cost_usd"] == pytest.approx(1.5) and run["input_tokens"] == 101
    # ...and OTel's records of its session, filed by the stored events, replace the totals shown.
    post_logs(ing, logs([api_request("11112222-aaaa-4bbb-8ccc-ddddeeeeffff", 1, 0.9, 80, 40)]))
    run = run_spend(db, "old-1")
    assert run["cost_usd"] == pytest.approx(0.9) and run["rep_cost_usd"] == pytest.approx(1.5)
    assert (run["input_tokens"], run["output_tokens"], run["cache_read_tokens"]) == (80, 40, 0)
    assert run["rep_cache_read_tokens"] == 7
    ing.restart()
    assert db.scalar("SELECT count(*) FROM adw_schema_migrations") == 8
