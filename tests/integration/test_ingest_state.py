"""adw-ingest's derived run state (adw_runs, adw_steps), health and metrics endpoints, schema
versions, and the command line (--help, --version, bad configuration)."""

import re
import subprocess

import adwtest
import pytest

pytestmark = pytest.mark.needs_bin("adw-ingest")

INT64_MAX = 2**63 - 1


def ev(adw_id="run1", **kw):
    e = {"type": "adw_event", "adw_id": adw_id, "event_type": "ToolUseBlock"}
    e.update(kw)
    return e


def sysev(event, adw_id="run1", **kw):
    e = {"type": "system", "adw_id": adw_id, "event": event}
    e.update(kw)
    return e


def post(ingest, events):
    with ingest.http() as c:
        st, _, body = c.post_json("/api/events", events)
        assert st == 200, body
        return body


def run_row(db, adw_id="run1"):
    cols = ("status", "current_step", "event_count", "cost_usd", "tokens", "input_tokens",
            "output_tokens", "cache_read_tokens", "cache_creation_tokens", "first_id", "last_id")
    rows = db.query(f"SELECT {', '.join(cols)} FROM adw_runs WHERE adw_id = %s", (adw_id,))
    return dict(zip(cols, rows[0])) if rows else None


def step_rows(db, adw_id="run1"):
    return {r[0]: r[1:] for r in db.query(
        "SELECT step, status, event_count, cost_usd, tokens, duration_ms, first_id, last_id "
        "FROM adw_steps WHERE adw_id = %s", (adw_id,))}


def test_run_state_through_a_whole_run(ingest, db):
    post(ingest, [sysev("adw_start", timestamp="2026-01-01T10:00:00Z")])
    r = run_row(db)
    assert (r["status"], r["current_step"], r["event_count"]) == ("running", None, 1)
    assert step_rows(db) == {}

    post(ingest, sysev("step_start", step="plan", timestamp="2026-01-01T10:00:01Z"))
    post(ingest, [ev(step="plan", payload={"cost_usd": 0.5, "input_tokens": 100,
                                           "output_tokens": 20}),
                  ev(step="plan", payload={"cost_usd": 0.25, "tokens": 7})])
    r = run_row(db)
    assert r["current_step"] == "plan"
    assert r["event_count"] == 4
    assert r["cost_usd"] == pytest.approx(0.75)
    assert (r["tokens"], r["input_tokens"], r["output_tokens"]) == (127, 100, 20)
    assert step_rows(db)["plan"][:2] == ("running", 3)

    post(ingest, [sysev("step_complete", step="plan", duration_ms=1500),
                  sysev("step_start", step="build"),
                  ev(step="build", payload={"cache_read_tokens": 5,
                                            "cache_creation_tokens": 6}),
                  # An adw_event's status does not set the run's.
                  ev(step="build", status="failed")])
    r = run_row(db)
    assert r["status"] == "running"
    assert r["current_step"] == "build"
    assert (r["tokens"], r["cache_read_tokens"], r["cache_creation_tokens"]) == (138, 5, 6)
    steps = step_rows(db)
    assert steps["plan"][:2] == ("completed", 4)
    assert steps["plan"][4] == 1500
    assert steps["build"][0] == "running"
    assert steps["build"][4] is None

    # A system event carrying a status sets it, whatever its name.
    post(ingest, sysev("note", status="paused"))
    assert run_row(db)["status"] == "paused"
    # An event with no step leaves current_step alone.
    assert run_row(db)["current_step"] == "build"
    post(ingest, [sysev("step_failed", step="build", duration_ms=200),
                  sysev("adw_failed", timestamp="2026-01-01T11:00:00Z")])
    r = run_row(db)
    assert r["status"] == "failed"
    assert r["event_count"] == 11
    assert (r["first_id"], r["last_id"]) == (1, 11)
    assert step_rows(db)["build"][0] == "failed"
    assert step_rows(db)["build"][4] == 200
    first_ts, last_ts = db.query("SELECT first_ts, last_ts FROM adw_runs")[0]
    assert first_ts.isoformat() == "2026-01-01T10:00:00+00:00"
    assert last_ts > first_ts

    # A later event in the same run brings it back to life only through a system event.
    post(ingest, ev())
    assert run_row(db)["status"] == "failed"
    post(ingest, sysev("adw_complete"))
    assert run_row(db)["status"] == "completed"
    # Totals match a recount from the events table.
    n, cost = db.query("SELECT count(*), sum(coalesce((doc->'payload'->>'cost_usd')::float8, 0))"
                       " FROM events WHERE adw_id = 'run1'")[0]
    r = run_row(db)
    assert r["event_count"] == n == 13
    assert r["cost_usd"] == pytest.approx(cost)


def test_run_state_in_one_batch_and_across_runs(ingest, db):
    # Everything in one transaction: the last status and step win.
    post(ingest, [sysev("adw_start", "a"), ev("b", step="s1"), sysev("step_start", "a", step="x"),
                  ev("a", step="y"), sysev("adw_complete", "a"), ev("b", step="s2"),
                  sysev("adw_start", "b", status="queued")])
    a, b = run_row(db, "a"), run_row(db, "b")
    assert (a["status"], a["current_step"], a["event_count"]) == ("completed", "y", 4)
    assert (b["status"], b["current_step"], b["event_count"]) == ("queued", "s2", 3)
    assert (a["first_id"], a["last_id"], b["first_id"], b["last_id"]) == (1, 5, 2, 7)
    assert set(step_rows(db, "a")) == {"x", "y"}
    # Over ZeroMQ the same.
    r = adwtest.zmq_submit(ingest.zmq_endpoint, [ev("a", step="z"), sysev("adw_failed", "a")])
    assert r["ok"]
    assert run_row(db, "a")["status"] == "failed"
    assert run_row(db, "a")["current_step"] == "z"


def test_totals_saturate_instead_of_overflowing(ingest, db):
    big = {"tokens": INT64_MAX, "input_tokens": INT64_MAX, "output_tokens": INT64_MAX,
           "cache_read_tokens": INT64_MAX, "cache_creation_tokens": INT64_MAX,
           "cost_usd": 1e308}
    # Twice in one batch, then again in later transactions: stored, totals pinned at the top.
    post(ingest, [ev(step="s", payload=big), ev(step="s", payload=big)])
    post(ingest, ev(step="s", payload=big))
    r = adwtest.zmq_submit(ingest.zmq_endpoint, ev(step="s", payload={"tokens": 1}))
    assert r == {"ok": True, "ids": [4]}
    r = run_row(db)
    assert r["event_count"] == 4
    for k in ("tokens", "input_tokens", "output_tokens", "cache_read_tokens",
              "cache_creation_tokens"):
        assert r[k] == INT64_MAX, k
    assert r["cost_usd"] == pytest.approx(1.7976931348623157e308)
    assert step_rows(db)["s"][3] == INT64_MAX
    # The parts of one event sum saturating too.
    post(ingest, ev("run2", payload={"input_tokens": INT64_MAX, "output_tokens": 5}))
    assert run_row(db, "run2")["tokens"] == INT64_MAX
    assert ingest.alive()


# ---------------------------------------------------------------------------------------------
# Health and metrics


def test_healthz_readyz_metrics(ingest, db):
    with ingest.http() as c:
        st, _, body = c.get("/healthz")
        assert st == 200
        st, _, body = c.get("/readyz")
        assert (st, body) == (200, {"status": "ready"})
        st, _, _ = c.request("HEAD", "/healthz")
        assert st == 200
        c.post_json("/api/events", [ev(), ev()])
        c.post_json("/api/events", ev(event_id="e1"))
        c.post_json("/api/events", ev(event_id="e1"))
        c.post_json("/api/events", ev(duration_ms=-1))
        c.post_json("/api/events", b"{")
    adwtest.zmq_submit(ingest.zmq_endpoint, ev())
    with ingest.http() as c:
        st, h, text = c.get("/metrics")
    assert st == 200
    assert h.get("Content-Type").startswith("text/plain; version=0.0.4")
    series = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            series[name] = float(value)
    assert series['adw_ingest_received_total{transport="http"}'] == 5
    assert series['adw_ingest_received_total{transport="zmq"}'] == 1
    assert series["adw_ingest_stored_total"] == 4
    assert series["adw_ingest_duplicates_total"] == 1
    assert series["adw_ingest_published_total"] == 4
    assert series['adw_ingest_rejected_total{reason="schema"}'] == 1
    assert series['adw_ingest_rejected_total{reason="bad_json"}'] == 1
    assert series["adw_ingest_batch_size_count"] >= 4
    assert series['adw_ingest_batch_size_bucket{le="+Inf"}'] == series["adw_ingest_batch_size_count"]
    assert series["adw_ingest_commit_seconds_count"] == series["adw_ingest_batches_total"]
    assert series["adw_ingest_store_state"] == 2
    assert series['adw_ingest_http_errors_total{status="400"}'] == 2
    assert "adw_ingest_heartbeats_total" in series
    for kind in ("counter", "histogram", "gauge"):
        assert f" {kind}\n" in text
    assert re.search(r"^# TYPE adw_ingest_commit_seconds histogram$", text, re.M)
    # Every series name is documented once.
    names = re.findall(r"^# HELP (\S+)", text, re.M)
    assert len(names) == len(set(names))


# ---------------------------------------------------------------------------------------------
# Schema versions


def test_newer_schema_refuses_to_start(make_ingest, db):
    ing = make_ingest()
    ing.stop()
    db.query("INSERT INTO adw_schema_migrations (version) VALUES (99)")
    late = make_ingest(start=False)
    late.start()
    code = late.wait(15)
    assert code not in (0, None)
    log = late.log_text()
    assert "schema is version 99" in log and "newer adw-ingest" in log
    # The data is left alone.
    assert db.scalar("SELECT count(*) FROM adw_schema_migrations") == 9  # 1-8 and 99


def test_schema_created_and_reused(make_ingest, db):
    ing = make_ingest()
    assert db.scalar("SELECT max(version) FROM adw_schema_migrations") == 8
    assert db.scalar("SELECT count(*) FROM adw_meta WHERE key = 'epoch'") == 1
    epoch = db.scalar("SELECT value FROM adw_meta WHERE key = 'epoch'")
    post(ing, ev())
    ing.restart()
    assert db.scalar("SELECT value FROM adw_meta WHERE key = 'epoch'") == epoch
    assert post(ing, ev()) == {"status": "broadcasted", "id": 2}
    idx = {r[0] for r in db.query("SELECT indexname FROM pg_indexes WHERE tablename = 'events'")}
    assert {"events_pkey", "events_adw_id_id", "events_search"} <= idx
    # event_id's unique index is each partition's own (a partitioned one would need the id).
    idx = {r[0] for r in db.query("SELECT indexname FROM pg_indexes WHERE tablename = 'events_p1'")}
    assert "events_p1_event_id" in idx


# ---------------------------------------------------------------------------------------------
# Command line


def run_cli(*args, env=None, timeout=20):
    e = {"PATH": "/usr/bin:/bin"}
    e.update(env or {})
    return subprocess.run([str(adwtest.binary("adw-ingest")), *args], capture_output=True,
                          text=True, timeout=timeout, env=e, stdin=subprocess.DEVNULL)


ENV_VARS = ("ADW_INGEST_HTTP", "ADW_INGEST_ZMQ", "ADW_INGEST_PUB", "DATABASE_URL",
            "ADW_INGEST_TOKEN", "ADW_INGEST_MAX_BODY", "ADW_LOG_LEVEL", "ADW_LOG_FORMAT")


def test_help_and_version():
    r = run_cli("--help")
    assert r.returncode == 0
    for var in ENV_VARS:
        assert var in r.stdout, var
    assert "0.0.0.0:8000" in r.stdout and "tcp://*:5555" in r.stdout and "tcp://*:5556" in r.stdout
    assert "--http" in r.stdout and "--max-body" in r.stdout
    r = run_cli("--version")
    assert r.returncode == 0
    assert re.fullmatch(r"adw-ingest \d+\.\d+\.\d+\n", r.stdout)


@pytest.mark.parametrize("args,env,want", [
    (["--max-body", "lots"], {}, "--max-body"),
    ([], {"ADW_INGEST_MAX_BODY": "12x"}, "ADW_INGEST_MAX_BODY"),
    ([], {"ADW_INGEST_MAX_BODY": "1"}, "out of range"),
    (["--heartbeat-ms=-5"], {}, "out of range"),
    (["--nope"], {}, "unknown option '--nope'"),
    (["stray"], {}, "unexpected argument"),
    ([], {"ADW_LOG_LEVEL": "loud"}, "ADW_LOG_LEVEL"),
    ([], {"ADW_LOG_FORMAT": "xml"}, "ADW_LOG_FORMAT"),
])
def test_bad_configuration_exits_with_one_line(args, env, want):
    r = run_cli(*args, env=env)
    assert r.returncode not in (0, None) and r.returncode > 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("adw-ingest: ")
    assert want in lines[0]
    assert r.stdout == ""


def test_unusable_addresses_exit_with_a_reason(db):
    r = run_cli(env={"DATABASE_URL": db.url, "ADW_INGEST_HTTP": "127.0.0.1"})
    assert r.returncode != 0 and "host:port" in r.stderr
    r = run_cli(env={"DATABASE_URL": db.url, "ADW_INGEST_HTTP": "127.0.0.1:0",
                     "ADW_INGEST_ZMQ": "nonsense://x", "ADW_INGEST_PUB": "tcp://127.0.0.1:0"})
    assert r.returncode != 0 and "ZeroMQ" in r.stderr


def test_json_logs(make_ingest, db):
    ing = make_ingest(ADW_LOG_FORMAT="json")
    ing.stop()
    import json
    lines = [json.loads(line) for line in ing.log_text().splitlines() if line.strip()]
    assert lines and all({"ts", "level", "program", "msg"} <= set(x) for x in lines)
    assert lines[0]["program"] == "adw-ingest"
