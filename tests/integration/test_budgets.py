"""Run budgets, through real adw-ingest, adw-gateway and PostgreSQL: a run's budget (its
adw_start's payload.budget_usd, else ADW_INGEST_RUN_BUDGET_USD), budget_warning at 80 % and
budget_exceeded at 100 % of it, once each per run (across restarts too), each with the id right
after the event that crossed it (inside a batch as well, and both in turn when one event crosses
both), the spend counted as adw_runs.cost_usd counts it (OTel's sums when the run has any),
enforcement of PreToolUse hooks with ADW_INGEST_ENFORCE_BUDGET=1 (budget_denied stored, the hook
denied), the API's budget_usd, and a refused bad setting. Costed events come in Claude Code's
shapes: stream-json `result` lines through adw-send, OTLP claude_code.api_request records on
/v1/logs, hook bodies on /api/hooks."""

import json
from pathlib import Path

import adwtest
import pytest
from test_otel_runs import api_request, logs, post_logs
from test_send_helpers import run_send

pytestmark = pytest.mark.needs_bin("adw-ingest")

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "tests" / "data" / "hooks" / "subagent_run"
SESSION = "5f0c8a1e-2b7d-4c11-9e3a-0d6f1b2c3d4e"
OTEL_SESSION = "aa11bb22-0000-4000-8000-0000000000b1"
BUDGET_EVENTS = ("budget_warning", "budget_exceeded", "budget_denied")


def sysev(event, adw_id, **kw):
    e = {"type": "system", "adw_id": adw_id, "event": event}
    e.update(kw)
    return e


def start(adw_id, budget=None):
    """An adw_start, with payload.budget_usd when budget is given."""
    payload = {"workflow": "fix-issue"}
    if budget is not None:
        payload["budget_usd"] = budget
    return sysev("adw_start", adw_id, summary="Starting fix-issue", payload=payload)


def result_line(cost, n=1):
    """A stream-json `result` line as `claude -p --output-format stream-json` ends a session."""
    return json.dumps({
        "type": "result", "subtype": "success", "is_error": False, "duration_ms": 12345,
        "duration_api_ms": 11020, "num_turns": 4, "result": f"Done {n}.", "session_id": SESSION,
        "total_cost_usd": cost,
        "usage": {"input_tokens": 22, "cache_creation_input_tokens": 3200,
                  "cache_read_input_tokens": 57200, "output_tokens": 181,
                  "server_tool_use": {"web_search_requests": 0}, "service_tier": "standard"},
        "permission_denials": [], "uuid": f"0b1c2d3e-0000-4000-8000-{n:012d}"})


def result_event(adw_id, cost, n=1, step="build"):
    """What adw-send makes of result_line(cost, n) (shared/claude/streamjson.c): a ResultMessage
    with the session's cost and tokens."""
    return {"type": "adw_event", "adw_id": adw_id, "step": step, "event_type": "ResultMessage",
            "status": "completed", "summary": f"Completed: 4 turns, 12.3 s, ${cost:.4f}",
            "payload": {"cost_usd": cost, "input_tokens": 22, "output_tokens": 181,
                        "cache_read_tokens": 57200, "cache_creation_tokens": 3200,
                        "num_turns": 4, "session_id": SESSION, "result": f"Done {n}.",
                        "subtype": "success", "is_error": False, "duration_api_ms": 11020}}


def send_results(ingest, tmp_path, adw_id, costs, step="build"):
    """Each cost as a stream-json session's result line, through adw-send over HTTP."""
    lines = "".join(result_line(c, n) + "\n" for n, c in enumerate(costs, 1))
    r = run_send(["--http", ingest.base_url, "--spool", tmp_path / "spool", "--stream-json",
                  "--adw-id", adw_id, "--step", step, "--strict"], input=lines)
    assert r.returncode == 0, r.stderr


def post(ingest, events):
    st, _, body = adwtest.post_json(ingest.base_url + "/api/events", events)
    assert st == 200, body
    return body["ids"] if "ids" in body else [body["id"]]


def hook_body(name, **changes):
    body = json.loads((HOOKS / name).read_text())
    body.update(changes)
    return body


def post_hook(ingest, adw_id, body):
    """POST /api/hooks as Claude Code's http hook does: (status, headers, answer)."""
    return adwtest.post_json(f"{ingest.base_url}/api/hooks?adw_id={adw_id}", body)


def rows(db, adw_id):
    """(id, event, event_type, step, status, doc) of the run's events, in id order."""
    return db.query("SELECT id, coalesce(event, event_type), step, status, doc FROM events"
                    " WHERE adw_id = %s ORDER BY id", (adw_id,))


def raised(db, adw_id):
    return [r for r in rows(db, adw_id) if r[1] in BUDGET_EVENTS]


def run_row(db, adw_id):
    return db.query("SELECT status, stalled, cost_usd, budget_usd, budget_warning_id,"
                    " budget_exceeded_id FROM adw_runs WHERE adw_id = %s", (adw_id,))[0]


def wait_raised(db, adw_id, n, timeout=10):
    adwtest.wait_for(lambda: len(raised(db, adw_id)) >= n, timeout, what=f"{n} budget events")
    return raised(db, adw_id)


def assert_follows(db, adw_id, kinds):
    """Each budget event of kinds, in turn, right after the event that crossed it (by id), its
    payload naming that event and the run's spend then; returns the budget events' rows."""
    got = raised(db, adw_id)
    assert [r[1] for r in got] == list(kinds)
    by_id = {r[0]: r for r in rows(db, adw_id)}
    for row in got:
        sid, event, step, status, doc = row
        p = doc["payload"]
        crossing = by_id[p["crossed_by_id"]]
        between = [by_id[i][1] for i in range(crossing[0] + 1, sid)]
        assert all(e in BUDGET_EVENTS for e in between), between  # nothing else in between
        assert sid - crossing[0] <= 2
        assert step == crossing[2] and status is None
        assert set(doc) == {"id", "received_at", "type", "event", "adw_id", "step", "summary",
                            "payload"} - ({"step"} if step is None else set())
        assert set(p) == {"budget_usd", "spend_usd", "percent", "crossed_by_id"}
        assert p["percent"] == (80 if event == "budget_warning" else 100)
        assert doc["summary"] == (f"Budget {p['percent']}% used: ${p['spend_usd']:.2f} of "
                                  f"${p['budget_usd']:.2f}")
    return got


def test_stream_results_cross_warning_then_exceeded_once_each(make_ingest, db, tmp_path):
    ingest = make_ingest()
    with ingest.sub() as sub:
        sub.wait_joined()
        post(ingest, [start("b-stream", budget=5.0), sysev("step_start", "b-stream", step="build")])
        send_results(ingest, tmp_path, "b-stream", [2.0])  # 40 %
        assert raised(db, "b-stream") == []
        send_results(ingest, tmp_path, "b-stream", [2.02])  # 80.4 %: warning
        send_results(ingest, tmp_path, "b-stream", [0.5])  # 90 %
        send_results(ingest, tmp_path, "b-stream", [0.6, 1.0, 3.0])  # 102 %, then more
        got = assert_follows(db, "b-stream", ["budget_warning", "budget_exceeded"])
        warning, exceeded = got[0][4]["payload"], got[1][4]["payload"]
        assert (warning["budget_usd"], warning["spend_usd"]) == (5.0, pytest.approx(4.02))
        assert got[0][4]["summary"] == "Budget 80% used: $4.02 of $5.00"
        assert (exceeded["budget_usd"], exceeded["spend_usd"]) == (5.0, pytest.approx(5.12))
        assert got[1][4]["summary"] == "Budget 100% used: $5.12 of $5.00"
        # The budget events leave the run's status alone, and the run keeps counting.
        status, stalled, cost, budget, wid, xid = run_row(db, "b-stream")
        assert (status, stalled, budget) == ("running", False, 5.0)
        assert cost == pytest.approx(9.12)
        assert (wid, xid) == (got[0][0], got[1][0])
        # Published like any committed event, in id order, right after the crossing event.
        last = rows(db, "b-stream")[-1][0]
        sub.wait_for(lambda m: m.topic == "b-stream" and m.body.get("id") == last, timeout=10)
        ids = [m.body["id"] for m in sub.snapshot() if m.topic == "b-stream"]
        assert ids == [r[0] for r in rows(db, "b-stream")]
        pub = {m.body["id"]: m.body for m in sub.snapshot() if m.topic == "b-stream"}
        assert pub[got[0][0]]["event"] == "budget_warning"
        assert pub[got[0][0]]["payload"]["crossed_by_id"] == got[0][0] - 1


def test_crossing_in_the_middle_of_a_batch_and_one_event_crossing_both(make_ingest, db):
    ingest = make_ingest()
    ids = post(ingest, [start("b-batch", budget=5.0), result_event("b-batch", 1.0, 1),
                        result_event("b-batch", 3.0, 2), result_event("b-batch", 0.5, 3),
                        result_event("b-batch", 0.1, 4)])
    # The warning takes the id right after its crossing event; the batch's later events follow.
    assert ids[:3] == [ids[0], ids[0] + 1, ids[0] + 2]
    assert ids[3:] == [ids[2] + 2, ids[2] + 3]
    got = assert_follows(db, "b-batch", ["budget_warning"])
    assert got[0][0] == ids[2] + 1 and got[0][4]["payload"]["crossed_by_id"] == ids[2]

    # One event from under 80 % to over 100 %: warning, then exceeded, then the rest.
    ids = post(ingest, [start("b-both", budget=2.0), result_event("b-both", 0.2, 1),
                        result_event("b-both", 7.5, 2), result_event("b-both", 0.1, 3)])
    assert ids[3] == ids[2] + 3
    got = assert_follows(db, "b-both", ["budget_warning", "budget_exceeded"])
    assert [r[0] for r in got] == [ids[2] + 1, ids[2] + 2]
    assert all(r[4]["payload"]["crossed_by_id"] == ids[2] for r in got)
    assert [r[4]["payload"]["spend_usd"] for r in got] == [pytest.approx(7.7)] * 2

    # Two runs in one batch, each crossing in turn.
    ids = post(ingest, [start("b-x", budget=1.0), start("b-y", budget=1.0),
                        result_event("b-x", 1.5, 1), result_event("b-y", 0.9, 2),
                        result_event("b-x", 0.1, 3)])
    assert [r[0] for r in raised(db, "b-x")] == [ids[2] + 1, ids[2] + 2]
    assert [r[0] for r in raised(db, "b-y")] == [ids[3] + 1]
    assert ids[3] == ids[2] + 3 and ids[4] == ids[3] + 2


def test_crossing_inside_a_batch_that_goes_in_by_copy(make_ingest, db):
    """100 events (a batch of 64 or more goes in by COPY): $0.125 each against $10, so the 64th
    result reaches 80 % and the 80th 100 %; each budget event sits right after it."""
    ingest = make_ingest()
    events = [start("b-copy", budget=10)] + [result_event("b-copy", 0.125, n)
                                              for n in range(1, 101)]
    ids = post(ingest, events)
    w, x = ids[64], ids[80]
    assert ids[65] == w + 2 and ids[81] == x + 2 and ids[-1] == ids[0] + 102
    got = assert_follows(db, "b-copy", ["budget_warning", "budget_exceeded"])
    assert [r[0] for r in got] == [w + 1, x + 1]
    assert [r[4]["payload"]["spend_usd"] for r in got] == [8.0, 10.0]
    assert run_row(db, "b-copy")[2:] == (12.5, 10.0, w + 1, x + 1)


def test_otel_spend_wins_when_the_run_has_any(make_ingest, db):
    """Hook payloads report $3.90, then OTel's api_request records $1.00 and $3.00: the spend is
    OTel's $4.00 (warning), not the $7.90 of both, as adw_runs.cost_usd shows."""
    ingest = make_ingest()
    post(ingest, [start("b-otel", budget=5.0),
                  {"type": "adw_event", "adw_id": "b-otel", "step": "build",
                   "event_type": "Stop", "payload": {"cost_usd": 3.9}}])
    assert raised(db, "b-otel") == []
    post_logs(ingest, logs([api_request(OTEL_SESSION, 1, 1.0, 1200, 300)], adw_id="b-otel",
                           step="build"))
    assert raised(db, "b-otel") == []  # OTel's $1.00 is the spend now: 20 %
    post_logs(ingest, logs([api_request(OTEL_SESSION, 2, 3.0, 5200, 900)], adw_id="b-otel",
                           step="build"))
    got = assert_follows(db, "b-otel", ["budget_warning"])
    assert got[0][4]["payload"]["spend_usd"] == pytest.approx(4.0)
    assert run_row(db, "b-otel")[2] == pytest.approx(4.0)
    crossing = [r for r in rows(db, "b-otel") if r[0] == got[0][0] - 1][0]
    assert crossing[4]["payload"]["cost_usd"] == pytest.approx(3.0)  # the OTLP record


def test_once_only_across_restarts_with_the_default_budget(make_ingest, db, tmp_path):
    ingest = make_ingest(ADW_INGEST_RUN_BUDGET_USD="1.50")
    post(ingest, [start("b-rs"), result_event("b-rs", 1.3)])
    assert [r[1] for r in raised(db, "b-rs")] == ["budget_warning"]
    assert run_row(db, "b-rs")[3] == 1.5
    ingest.restart()
    post(ingest, [result_event("b-rs", 0.01, 2)])  # still over 80 %: nothing again
    assert [r[1] for r in raised(db, "b-rs")] == ["budget_warning"]
    send_results(ingest, tmp_path, "b-rs", [0.5])
    assert_follows(db, "b-rs", ["budget_warning", "budget_exceeded"])
    ingest.restart()
    send_results(ingest, tmp_path, "b-rs", [0.5, 2.0])
    post(ingest, [start("b-rs")])  # a later adw_start without a budget changes nothing
    assert [r[1] for r in raised(db, "b-rs")] == ["budget_warning", "budget_exceeded"]
    assert run_row(db, "b-rs")[3] == 1.5


def test_budget_from_adw_start_else_the_default(make_ingest, db):
    ingest = make_ingest(ADW_INGEST_RUN_BUDGET_USD="10")
    post(ingest, [start("b-own", budget=2), start("b-def"), start("b-bad", budget=-1),
                  start("b-str", budget="3"), start("b-zero", budget=0)])
    assert run_row(db, "b-own")[3] == 2.0
    for adw_id in ("b-def", "b-bad", "b-str", "b-zero"):
        assert run_row(db, adw_id)[3] == 10.0, adw_id
    # The latest adw_start that gives one wins.
    post(ingest, [start("b-own", budget=4), start("b-def", budget=0.5)])
    assert (run_row(db, "b-own")[3], run_row(db, "b-def")[3]) == (4.0, 0.5)
    post(ingest, [result_event("b-own", 2.5), result_event("b-def", 2.5)])
    assert [r[1] for r in raised(db, "b-own")] == []  # 62.5 % of $4
    assert [r[1] for r in raised(db, "b-def")] == ["budget_warning", "budget_exceeded"]

    # Without a default, a run whose adw_start gives none has none and raises nothing.
    ingest.stop()
    plain = make_ingest()
    post(plain, [start("b-none"), result_event("b-none", 100.0)])
    assert run_row(db, "b-none")[3] is None
    assert raised(db, "b-none") == []
    # A budget given later counts the spend so far: crossing both at once.
    ids = post(plain, [start("b-none", budget=50)])
    assert [r[0] for r in raised(db, "b-none")] == [ids[0] + 1, ids[0] + 2]


def test_a_late_result_of_a_finished_run_keeps_its_status(make_ingest, db):
    ingest = make_ingest()
    post(ingest, [start("b-done", budget=1), sysev("adw_complete", "b-done", status="completed"),
                  result_event("b-done", 5.0)])
    assert [r[1] for r in raised(db, "b-done")] == ["budget_warning", "budget_exceeded"]
    assert run_row(db, "b-done")[:2] == ("completed", False)


@pytest.mark.parametrize("value", ["abc", "-5", "0", "0.0", "inf", "nan", "1e3", " 5", "5$",
                                   "1.2.3"])
def test_bad_default_budget_refused_at_start(db, value):
    ing = adwtest.Ingest(db, start=False, ADW_INGEST_RUN_BUDGET_USD=value)
    ing.start()
    assert ing.wait(15) == 2
    assert "ADW_INGEST_RUN_BUDGET_USD" in ing.log_text()
    assert "is not a budget: give a positive number of US dollars" in ing.log_text()


def over_budget_run(ingest, adw_id):
    post(ingest, [start(adw_id, budget=5.0), sysev("step_start", adw_id, step="build"),
                  result_event(adw_id, 5.12)])


def test_enforced_budget_denies_a_pre_tool_use_hook(make_ingest, db):
    ingest = make_ingest(ADW_INGEST_ENFORCE_BUDGET="1")
    # Under budget: the hook goes through as any other.
    post(ingest, [start("b-ok", budget=5.0)])
    st, _, body = post_hook(ingest, "b-ok", hook_body("07_pre_tool_use_bash.json"))
    assert st == 200 and "hookSpecificOutput" not in body
    over_budget_run(ingest, "b-enf")
    st, headers, body = post_hook(ingest, "b-enf", hook_body("07_pre_tool_use_bash.json"))
    assert st == 200
    assert body == {"hookSpecificOutput": {
        "hookEventName": "PreToolUse", "permissionDecision": "deny",
        "permissionDecisionReason": "Run b-enf is over its budget: $5.12 spent of $5.00"}}
    hook_id = int(headers["X-ADW-Event-Id"])
    hook, denied = [r for r in rows(db, "b-enf") if r[0] >= hook_id]
    assert (hook[0], hook[1]) == (hook_id, "PreToolUse")  # the hook is stored, then the refusal
    assert (denied[0], denied[1], denied[3]) == (hook_id + 1, "budget_denied", None)
    assert denied[4]["summary"] == "Denied Bash: over budget ($5.12 of $5.00)"
    assert denied[4]["payload"] == {"tool_name": "Bash",
                                    "tool_use_id": "toolu_01BashR8m3Tj6Qp1Yd4Fh9Ks",
                                    "budget_usd": 5.0, "spend_usd": pytest.approx(5.12),
                                    "hook_event_id": hook_id}
    assert run_row(db, "b-enf")[0] == "running"
    # Every PreToolUse is denied while over budget; other hooks are not decisions.
    st, _, body = post_hook(ingest, "b-enf", hook_body("05_pre_tool_use_grep.json"))
    assert body["hookSpecificOutput"]["permissionDecision"] == "deny"
    st, _, body = post_hook(ingest, "b-enf", hook_body("06_post_tool_use_grep.json"))
    assert st == 200 and "hookSpecificOutput" not in body
    # A PreToolUse posted as an event (not a hook waiting for an answer) is only stored.
    event = {"type": "adw_event", "adw_id": "b-enf", "event_type": "PreToolUse",
             "payload": {"tool_name": "Bash", "tool_use_id": "toolu_x"}}
    post(ingest, [event])
    assert [r[1] for r in raised(db, "b-enf")].count("budget_denied") == 2
    # A restart keeps it over budget (the state comes from adw_runs).
    ingest.restart()
    st, _, body = post_hook(ingest, "b-enf", hook_body("07_pre_tool_use_bash.json"))
    assert body["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert [r[1] for r in raised(db, "b-enf")].count("budget_denied") == 3


def test_no_enforcement_when_off(make_ingest, db):
    ingest = make_ingest()
    over_budget_run(ingest, "b-off")
    st, headers, body = post_hook(ingest, "b-off", hook_body("07_pre_tool_use_bash.json"))
    assert st == 200 and "hookSpecificOutput" not in body
    assert [r[1] for r in raised(db, "b-off")] == ["budget_warning", "budget_exceeded"]


@pytest.mark.needs_bin("adw-gateway")
def test_api_shows_budget_usd(make_ingest, make_gateway, db):
    ingest = make_ingest(ADW_INGEST_RUN_BUDGET_USD="7.5")
    post(ingest, [start("b-api", budget=5), result_event("b-api", 4.5), start("b-dflt")])
    gw = make_gateway(ingest)
    st, _, run = adwtest.http_get(gw.base_url + "/api/adws/b-api")
    assert st == 200 and run["budget_usd"] == 5.0 and run["cost_usd"] == pytest.approx(4.5)
    st, _, run = adwtest.http_get(gw.base_url + "/api/adws/b-dflt")
    assert run["budget_usd"] == 7.5
    ingest.stop()
    plain = make_ingest()
    post(plain, [start("b-nobudget")])
    st, _, listing = adwtest.http_get(gw.base_url + "/api/adws")
    by_id = {r["adw_id"]: r for r in listing["adws"]}
    assert by_id["b-api"]["budget_usd"] == 5.0
    assert by_id["b-nobudget"]["budget_usd"] is None


def test_adw_example_gives_its_run_a_budget(ingest, db, tmp_path):
    """examples/adw_example.sh with ADW_BUDGET_USD: each step's stand-in claude session costs
    $0.0456 (its stream-json result), so a $0.10 budget is 80 % used in the second step and
    exceeded in the third."""
    import subprocess
    from test_send_examples import EXAMPLES, fake_claude
    from test_send_helpers import send_env
    env = send_env({"ADW_ID": "b-example", "ADW_INGEST_ZMQ": ingest.zmq_endpoint,
                    "ADW_SEND": adwtest.binary("adw-send"), "ADW_CLAUDE": fake_claude(tmp_path),
                    "ADW_SPOOL_DIR": tmp_path / "spool", "ADW_LOG_LEVEL": "warn",
                    "ADW_BUDGET_USD": "0.10"})
    r = subprocess.run(["bash", str(EXAMPLES / "adw_example.sh"), "Add auth"], env=env,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert rows(db, "b-example")[0][4]["payload"]["budget_usd"] == 0.1
    got = assert_follows(db, "b-example", ["budget_warning", "budget_exceeded"])
    assert [r[2] for r in got] == ["build", "review"]
    assert run_row(db, "b-example")[:4] == ("completed", False, pytest.approx(4 * 0.0456), 0.1)


@pytest.mark.needs_bin("adw-gateway")
def test_status_panel_shows_spend_against_budget_in_chromium(ingest, make_gateway, tmp_path):
    """tests/browser/budget.test.mjs in headless Chromium (playwright-core, Debian's chromium):
    `$4.02 / $5.00` with a bar in the warning colour, then `$5.12 / $5.00` exceeded, live; no
    budget line for a run without one. Screenshots in tests/browser/artifacts/."""
    import os
    import shutil
    import subprocess
    from test_dashboard import BROWSER_DIR, CHROMIUM, WEB_DIR, _npm_ci
    if os.environ.get("ADW_SKIP_BROWSER") == "1":
        pytest.skip("ADW_SKIP_BROWSER=1")
    node = shutil.which("node")
    assert node and os.access(CHROMIUM, os.X_OK), "node and chromium: install-deps.sh --test"
    _npm_ci()
    gw = make_gateway(ingest, ADW_GATEWAY_WEB_DIR=str(WEB_DIR))
    env = dict(os.environ, ADW_GATEWAY_URL=gw.base_url, ADW_INGEST_URL=ingest.base_url,
               ADW_CHROMIUM=CHROMIUM, ADW_BROWSER_ARTIFACTS=str(BROWSER_DIR / "artifacts"))
    env.pop("NODE_OPTIONS", None)
    r = subprocess.run([node, str(BROWSER_DIR / "budget.test.mjs")], cwd=adwtest.REPO, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-8000:]


def test_the_budget_is_checked_before_approval_rules(make_ingest, db, tmp_path):
    """An over-budget run's PreToolUse that an approval rule matches is denied at once: no
    approval is requested, nobody is asked."""
    rules = [{"name": "any shell", "tool": "^Bash$", "timeout_s": 60, "on_timeout": "allow"}]
    ingest = make_ingest(ADW_INGEST_ENFORCE_BUDGET="1", ADW_INGEST_APPROVALS=json.dumps(rules))
    over_budget_run(ingest, "b-appr")
    st, headers, body = post_hook(ingest, "b-appr", hook_body("07_pre_tool_use_bash.json"))
    assert st == 200
    assert body["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert body["hookSpecificOutput"]["permissionDecisionReason"] == (
        "Run b-appr is over its budget: $5.12 spent of $5.00")
    names = [r[1] for r in rows(db, "b-appr")]
    assert names[-2:] == ["PreToolUse", "budget_denied"]
    assert not any(n.startswith("approval_") for n in names)
    assert db.scalar("SELECT count(*) FROM adw_approvals") == 0
