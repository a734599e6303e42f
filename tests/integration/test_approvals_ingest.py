"""Approvals at ingest: a PreToolUse hook matching a rule of ADW_INGEST_APPROVALS is stored, then
approval_requested is stored and published, and the hook's HTTP answer is held until a decision
(POST /api/approvals/{id}), the rule's timeout, the hook's connection closing, or shutdown. The
held hook gets Claude Code's PreToolUse output; every step is an event (stored, published, in
order) and a row of adw_approvals. Exactly one decision wins; an ingest killed while holding
leaves an approval that the next start expires. Hook bodies are what Claude Code sends over its
HTTP hooks (session_id, transcript_path, cwd, permission_mode, hook_event_name, tool_name,
tool_input, tool_use_id); the run's id comes in the X-ADW-Id header, as
examples/claude/settings.http.json sends it. Every wait is bounded; no assertion is about
timing."""

import json
import socket
import threading
import uuid

import adwtest
import pytest
from faultload import metric

pytestmark = pytest.mark.needs_bin("adw-ingest")

TOKEN = "ingest-secret-token-1"
RULES = [
    {"name": "destructive shell", "tool": "^Bash$", "input": "rm -rf|push --force",
     "timeout_s": 120, "on_timeout": "deny"},
    {"name": "ci only", "adw_prefix": "ci-", "tool": "^Write$", "input": "\\.env"},
    {"name": "quick deny", "tool": "^Bash$", "input": "sleep-deny", "timeout_s": 1},
    {"name": "quick allow", "tool": "^Bash$", "input": "sleep-allow", "timeout_s": 1,
     "on_timeout": "allow"},
]


def pre_tool_use(command="rm -rf build/", tool="Bash", tool_input=None, session=None):
    """A PreToolUse hook body as Claude Code POSTs it to an HTTP hook."""
    session = session or str(uuid.uuid4())
    return {
        "session_id": session,
        "transcript_path": f"/home/dev/.claude/projects/-home-dev-app/{session}.jsonl",
        "cwd": "/home/dev/app",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": tool_input if tool_input is not None else
        {"command": command, "description": "Remove the build directory"},
        "tool_use_id": "toolu_01" + uuid.uuid4().hex[:22],
    }


def outcomes(ing, outcome):
    return metric(ing, f'adw_ingest_approvals_total{{outcome="{outcome}"}}')


def start(make_ingest, rules=RULES, **env):
    env.setdefault("ADW_INGEST_TOKEN", TOKEN)
    if rules is not None:
        env["ADW_INGEST_APPROVALS"] = json.dumps(rules)
    return make_ingest(**env)


def auth(token=TOKEN, **more):
    h = {"Authorization": f"Bearer {token}"} if token else {}
    h.update(more)
    return h


class Hook:
    """A hook request on its own thread (Claude Code waits for the answer)."""

    def __init__(self, ing, body, adw_id="run-1", step="build", token=TOKEN):
        self.ing, self.body = ing, body
        self.headers = auth(token, **{"X-ADW-Id": adw_id, "X-ADW-Step": step})
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            with adwtest.HttpClient(self.ing.base_url, timeout=60) as c:
                self.result = c.post_json("/api/hooks", self.body, self.headers)
        except Exception as e:  # noqa: BLE001 - the test reads it
            self.error = e

    def answer(self, timeout=30):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the hook was not answered"
        assert self.error is None, self.error
        return self.result

    def waiting(self):
        return self.thread.is_alive()


def events(db, kinds=("approval_requested", "approval_decided", "approval_expired")):
    return db.query("SELECT id, adw_id, step, event, status, doc FROM events"
                    " WHERE event = ANY(%s) ORDER BY id", (list(kinds),))


def wait_requested(db, tool_use_id, timeout=20):
    """The approval_requested of the hook with tool_use_id, once stored."""
    def find():
        for r in events(db, ("approval_requested",)):
            if r[5]["payload"]["tool_use_id"] == tool_use_id:
                return r
        return None
    adwtest.wait_for(lambda: find() is not None, timeout, what="approval_requested")
    return find()


def row(db, approval_id):
    r = db.query("SELECT status, decision, reason, decided_by, decided_id, waited_ms, rule,"
                 " tool_name, requested_id, adw_id, step FROM adw_approvals"
                 " WHERE approval_id = %s", (approval_id,))
    return r[0] if r else None


def decide(ing, approval_id, body, token=TOKEN, headers=None):
    with ing.http() as c:
        h = auth(token)
        h.update(headers or {})
        if isinstance(body, (bytes, str)):
            return c.post_json(f"/api/approvals/{approval_id}", body, h)
        return c.post_json(f"/api/approvals/{approval_id}", body, h)


def held(ing, body, adw_id="run-1"):
    """Posts a hook that must be held; returns (Hook, approval_requested row)."""
    h = Hook(ing, body, adw_id=adw_id)
    req = wait_requested(ing.pg, body["tool_use_id"])
    assert h.waiting()
    return h, req


def test_allow_and_deny(make_ingest, db):
    ing = start(make_ingest)
    with ing.sub() as sub:
        sub.wait_for(lambda m: m.topic == "$hb", 10)
        body = pre_tool_use("rm -rf build/")
        h, req = held(ing, body)
        doc = req[5]
        aid = doc["payload"]["approval_id"]
        assert len(aid) == 32 and all(ch in "0123456789abcdef" for ch in aid)
        hook_id = db.scalar("SELECT id FROM events WHERE event_type = 'PreToolUse'")
        assert (req[1], req[2], req[4]) == ("run-1", "build", None)
        assert doc["summary"] == "Bash: rm -rf build/"
        p = doc["payload"]
        assert (p["tool_name"], p["tool_input"], p["tool_use_id"], p["session_id"], p["rule"],
                p["timeout_s"], p["on_timeout"], p["hook_event_id"]) == (
            "Bash", body["tool_input"], body["tool_use_id"], body["session_id"],
            "destructive shell", 120, "deny", hook_id)
        assert p["expires_at"].endswith("Z") and len(p["expires_at"]) == 24
        assert row(db, aid)[0] == "pending"
        # What this ingest holds.
        with ing.http() as c:
            st, _, lst = c.get("/api/approvals?status=pending", auth())
            assert st == 200 and [a["approval_id"] for a in lst["approvals"]] == [aid]
            a = lst["approvals"][0]
            assert (a["status"], a["rule"], a["tool_input"], a["requested_id"]) == (
                "pending", "destructive shell", body["tool_input"], req[0])
            assert c.get("/api/approvals")[0] == 401
        assert metric(ing, "adw_ingest_approvals_pending") == 1

        st, _, ans = decide(ing, aid, {"decision": "allow"}, headers={"X-ADW-Decided-By": "alice"})
        assert st == 200, ans
        assert (ans["approval_id"], ans["decision"]) == (aid, "allow")
        st, hd, out = h.answer()
        assert st == 200 and hd["X-ADW-Event-Id"] == str(hook_id)
        assert out == {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                                              "permissionDecision": "allow",
                                              "permissionDecisionReason": "Allowed by alice"}}
        r = row(db, aid)
        assert r[:4] == ("allowed", "allow", None, "alice") and r[4] == ans["id"]
        assert r[5] == ans["waited_ms"] >= 0

        # Deny with a reason, no name given: decided_by "ingest".
        body2 = pre_tool_use("git push --force origin main")
        h2, req2 = held(ing, body2)
        aid2 = req2[5]["payload"]["approval_id"]
        st, _, ans2 = decide(ing, aid2, {"decision": "deny", "reason": "not on main, please"})
        assert st == 200 and ans2["decision"] == "deny"
        st, _, out2 = h2.answer()
        assert out2["hookSpecificOutput"]["permissionDecision"] == "deny"
        assert out2["hookSpecificOutput"]["permissionDecisionReason"] == "not on main, please"
        assert row(db, aid2)[:4] == ("denied", "deny", "not on main, please", "ingest")

        stored = events(db)
        assert [r[3] for r in stored] == ["approval_requested", "approval_decided"] * 2
        d = stored[1][5]
        assert d["summary"] == "Allowed by alice: Bash: rm -rf build/"
        assert d["payload"] == {"approval_id": aid, "decision": "allow", "reason": None,
                                "decided_by": "alice", "waited_ms": ans["waited_ms"]}
        assert stored[3][5]["summary"] == "Denied by ingest: Bash: git push --force origin main"
        assert all(r[4] is None and r[2] == "build" for r in stored)
        # Published, in id order, the PreToolUse before its approval_requested.
        want = [x[0] for x in db.query("SELECT id FROM events ORDER BY id")]
        adwtest.wait_for(lambda: len(sub.events()) >= len(want), 10, what="published events")
        got = sub.events()
        assert [e["id"] for e in got] == want
        assert [e.get("event") or e.get("event_type") for e in got] == [
            "PreToolUse", "approval_requested", "approval_decided"] * 2
    assert outcomes(ing, "allow") == 1
    assert outcomes(ing, "deny") == 1
    assert metric(ing, "adw_ingest_approvals_pending") == 0
    # The run's status and stalled flag are the hooks' alone.
    assert db.query("SELECT status, stalled FROM adw_runs WHERE adw_id = 'run-1'")[0] == (
        "running", False)


def test_bad_decisions(make_ingest, db):
    ing = start(make_ingest)
    body = pre_tool_use("rm -rf /tmp/x")
    h, req = held(ing, body)
    aid = req[5]["payload"]["approval_id"]
    # 401 without ingest's token, or with another.
    assert decide(ing, aid, {"decision": "allow"}, token=None)[0] == 401
    assert decide(ing, aid, {"decision": "allow"}, token="wrong")[0] == 401
    # 400: not JSON, not an object, no or a bad decision, a bad or oversized reason, a bad name.
    for bad, why in ((b"{nope", ""), (b"[1]", "object"), ({}, "decision"),
                     ({"decision": "maybe"}, "decision"), ({"decision": "ALLOW"}, "decision"),
                     ({"decision": "allow", "reason": 5}, "reason"),
                     ({"decision": "allow", "reason": "x" * 1001}, "reason")):
        st, _, b = decide(ing, aid, bad)
        assert st == 400 and why in b["error"], (bad, st, b)
    st, _, b = decide(ing, aid, {"decision": "allow"}, headers={"X-ADW-Decided-By": "bob smith"})
    assert st == 400 and "X-ADW-Decided-By" in b["error"]
    st, _, b = decide(ing, aid, {"decision": "allow"}, headers={"X-ADW-Decided-By": "b" * 65})
    assert st == 400
    # 404: unknown, or not an approval id at all.
    st, _, b = decide(ing, "0" * 32, {"decision": "allow"})
    assert (st, b) == (404, {"error": "no approval " + "0" * 32})
    assert decide(ing, "../../etc", {"decision": "allow"})[0] == 404
    # The list: a status it does not know is refused; ended ones are adw_approvals' (empty).
    with ing.http() as c:
        st, _, b = c.get("/api/approvals?status=bogus", auth())
        assert st == 400 and "status" in b["error"]
        assert c.get("/api/approvals?status=denied", auth())[2] == {"approvals": []}
        assert len(c.get("/api/approvals?status=all", auth())[2]["approvals"]) == 1
        assert c.post_json("/api/approvals", {}, auth())[0] == 405
        assert c.get(f"/api/approvals/{aid}", auth())[0] == 405
    # Nothing of that changed the approval; a reason of exactly 1000 bytes is taken, and a
    # name of 64 characters.
    assert h.waiting() and row(db, aid)[0] == "pending"
    name = "carol@example.com:" + "c" * 46
    st, _, ans = decide(ing, aid, {"decision": "deny", "reason": "é" * 500},
                        headers={"X-ADW-Decided-By": name})
    assert st == 200, ans
    assert row(db, aid)[3] == name
    assert h.answer()[2]["hookSpecificOutput"]["permissionDecisionReason"] == "é" * 500
    # 409: a second decision, whatever it says.
    st, _, b = decide(ing, aid, {"decision": "allow"})
    assert (st, b) == (409, {"error": f"approval {aid} is already denied"})
    assert len(events(db, ("approval_decided",))) == 1


def test_racing_decisions(make_ingest, db):
    ing = start(make_ingest)
    for round_ in range(3):
        h, req = held(ing, pre_tool_use(f"rm -rf build{round_}/"))
        aid = req[5]["payload"]["approval_id"]
        results = []
        barrier = threading.Barrier(2)

        def one(decision):
            with ing.http() as c:
                barrier.wait(5)
                results.append(c.post_json(f"/api/approvals/{aid}", {"decision": decision},
                                           auth())[0])

        ts = [threading.Thread(target=one, args=(d,)) for d in ("allow", "deny")]
        for t in ts:
            t.start()
        for t in ts:
            t.join(20)
        assert sorted(results) == [200, 409]
        assert h.answer()[0] == 200
        n = db.scalar("SELECT count(*) FROM events WHERE event = 'approval_decided'"
                      " AND doc->'payload'->>'approval_id' = %s", (aid,))
        assert n == 1


@pytest.mark.parametrize("cmd,decision,outcome", [("sleep-deny", "deny", "timeout_deny"),
                                                   ("sleep-allow", "allow", "timeout_allow")])
def test_timeout(make_ingest, db, cmd, decision, outcome):
    ing = start(make_ingest)
    body = pre_tool_use(cmd)
    h, req = held(ing, body)
    aid = req[5]["payload"]["approval_id"]
    st, hd, out = h.answer()
    rule = "quick deny" if decision == "deny" else "quick allow"
    word = "Denied" if decision == "deny" else "Allowed"
    assert st == 200 and out["hookSpecificOutput"] == {
        "hookEventName": "PreToolUse", "permissionDecision": decision,
        "permissionDecisionReason": f"{word} by timeout after 1 s (rule {rule})"}
    r = row(db, aid)
    assert r[:4] == ("allowed" if decision == "allow" else "denied", decision,
                     f"{word} by timeout after 1 s (rule {rule})", "timeout")
    assert r[5] >= 1000
    d = events(db, ("approval_decided",))[0][5]
    assert d["payload"]["decided_by"] == "timeout"
    assert d["summary"] == f"{word} by timeout: Bash: {cmd}"
    assert outcomes(ing, outcome) == 1
    st, _, b = decide(ing, aid, {"decision": "allow"})
    assert st == 409 and "already" in b["error"]


def test_hook_connection_closed(make_ingest, db):
    ing = start(make_ingest)
    body = pre_tool_use("rm -rf dist/")
    raw = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", ing.http_port), timeout=10)
    s.sendall(b"POST /api/hooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + TOKEN.encode() + b"\r\nX-ADW-Id: run-c\r\n"
              b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)
    req = wait_requested(db, body["tool_use_id"])
    aid = req[5]["payload"]["approval_id"]
    s.close()  # Claude Code gave up (its hook timeout) or was stopped
    adwtest.wait_for(lambda: row(db, aid)[0] == "expired", 20, what="expired")
    ex = events(db, ("approval_expired",))
    assert len(ex) == 1 and ex[0][5]["payload"]["reason"] == "hook connection closed"
    assert ex[0][5]["payload"]["approval_id"] == aid and ex[0][1] == "run-c"
    assert row(db, aid)[2] == "hook connection closed"
    st, _, b = decide(ing, aid, {"decision": "allow"})
    assert (st, b) == (409, {"error": f"approval {aid} is already expired"})
    assert outcomes(ing, "expired") == 1


def test_killed_while_holding(make_ingest, db):
    ing = start(make_ingest)
    h0, req0 = held(ing, pre_tool_use("rm -rf /var/old"))
    old = req0[5]["payload"]["approval_id"]
    assert decide(ing, old, {"decision": "allow"})[0] == 200
    assert h0.answer()[0] == 200
    body = pre_tool_use("rm -rf /var/data")
    h, req = held(ing, body)
    aid = req[5]["payload"]["approval_id"]
    ing.kill9()
    # The connection dropped, unanswered: Claude Code goes on with its own permission flow.
    h.thread.join(20)
    assert not h.waiting() and h.result is None and h.error is not None
    assert row(db, aid)[0] == "pending"
    ing.start_again()
    ing.wait_ready(ing.base_url + "/readyz", 20)
    adwtest.wait_for(lambda: row(db, aid)[0] == "expired", 20, what="expired at start")
    ex = events(db, ("approval_expired",))
    assert len(ex) == 1
    p = ex[0][5]["payload"]
    assert (p["approval_id"], p["reason"]) == (aid, "ingest restarted") and p["waited_ms"] >= 0
    assert ex[0][5]["summary"] == "Approval expired (ingest restarted): Bash: rm -rf /var/data"
    assert (ex[0][1], ex[0][2]) == ("run-1", "build")
    st, _, b = decide(ing, aid, {"decision": "allow"})
    assert (st, b) == (409, {"error": f"approval {aid} is already expired"})
    # What ended before the restart is known too (read back from adw_approvals).
    st, _, b = decide(ing, old, {"decision": "deny"})
    assert (st, b) == (409, {"error": f"approval {old} is already allowed"})
    # A second restart expires nothing more.
    ing.restart()
    with ing.http() as c:  # a committed round trip after the start-up scan
        assert c.post_json("/api/events", {"type": "system", "adw_id": "z", "event": "x"},
                           auth())[0] == 200
    assert len(events(db, ("approval_expired",))) == 1


def test_shutdown_expires(make_ingest, db):
    ing = start(make_ingest)
    body = pre_tool_use("rm -rf node_modules")
    h, req = held(ing, body)
    aid = req[5]["payload"]["approval_id"]
    ing.stop()
    st, _, b = h.answer()
    assert st == 503 and "ingest stopping" in b["error"]
    assert row(db, aid)[:3] == ("expired", None, "ingest stopping")


def test_no_match_and_no_rules(make_ingest, db):
    ing = start(make_ingest)
    with ing.http() as c:
        for body, adw_id in ((pre_tool_use("ls -la"), "run-1"),  # input does not match
                             (pre_tool_use(tool="Read", tool_input={"file_path": "/a"}), "run-1"),
                             # adw_prefix: the .env write of a run that is not ci-
                             (pre_tool_use(tool="Write", tool_input={"file_path": "/app/.env",
                                                                     "content": "K=1"}),
                              "dev-7")):
            st, hd, out = c.post_json("/api/hooks", body, auth(**{"X-ADW-Id": adw_id}))
            assert (st, out) == (200, {}) and int(hd["X-ADW-Event-Id"]) > 0
        # A PostToolUse of a matching tool is no PreToolUse: not held.
        post = dict(pre_tool_use("rm -rf build/"), hook_event_name="PostToolUse",
                    tool_response={"stdout": ""})
        assert c.post_json("/api/hooks", post, auth())[:3:2] == (200, {})
    # The adw_prefix rule holds the ci- run's .env write.
    body = pre_tool_use(tool="Write", tool_input={"file_path": "/app/.env", "content": "K=1"})
    h, req = held(ing, body, adw_id="ci-42")
    assert req[5]["payload"]["rule"] == "ci only" and req[5]["payload"]["timeout_s"] == 120
    assert decide(ing, req[5]["payload"]["approval_id"], {"decision": "deny"})[0] == 200
    assert h.answer()[2]["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert len(events(db)) == 2
    ing.stop()

    # No rules: nothing is held, nothing but the hooks is stored.
    ing = start(make_ingest, rules=None)
    with ing.http() as c:
        st, hd, out = c.post_json("/api/hooks", pre_tool_use("rm -rf /"), auth())
        assert (st, out) == (200, {})
        assert c.get("/api/approvals", auth())[2] == {"approvals": []}
        assert decide(ing, "a" * 32, {"decision": "allow"})[0] == 404
    assert len(events(db)) == 2 and db.scalar("SELECT count(*) FROM adw_approvals") == 1


def test_forged_events_change_no_approval(make_ingest, db):
    """A client may store events named approval_* (they are events like any), but only the
    ones ingest raises are approvals: no row, no decision, no released hook."""
    ing = start(make_ingest)
    h, req = held(ing, pre_tool_use("rm -rf src/"))
    aid = req[5]["payload"]["approval_id"]
    with ing.http() as c:
        for e in ({"type": "system", "event": "approval_decided", "adw_id": "run-1",
                   "payload": {"approval_id": aid, "decision": "allow", "decided_by": "mallory"}},
                  {"type": "system", "event": "approval_requested", "adw_id": "run-1",
                   "payload": {"approval_id": "b" * 32, "expires_at": "2030-01-01T00:00:00Z"}}):
            assert c.post_json("/api/events", e, auth())[0] == 200
    assert row(db, aid)[0] == "pending" and row(db, "b" * 32) is None
    assert h.waiting()
    assert decide(ing, aid, {"decision": "deny"})[0] == 200
    assert h.answer()[2]["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_too_many_held(make_ingest, db):
    ing = start(make_ingest, ADW_INGEST_APPROVALS_MAX="1")
    h, req = held(ing, pre_tool_use("rm -rf a/"))
    st, _, b = adwtest.post_json(ing.base_url + "/api/hooks", pre_tool_use("rm -rf b/"),
                                 headers=auth(**{"X-ADW-Id": "run-1"}))
    assert st == 503 and "ADW_INGEST_APPROVALS_MAX" in b["error"]
    assert decide(ing, req[5]["payload"]["approval_id"], {"decision": "allow"})[0] == 200
    assert h.answer()[0] == 200
    # Room again.
    h2, _ = held(ing, pre_tool_use("rm -rf c/"))
    ing.stop()


@pytest.mark.parametrize("rules,want", [
    ("[{\"name\":\"a\",\"tool\":\"^Bash$\"", "ADW_INGEST_APPROVALS: not JSON"),
    ('[{"name":"broken","tool":"(Bash"}]',
     'ADW_INGEST_APPROVALS: rule "broken": "tool" does not compile'),
    ('[{"name":"x","tool":"Bash","input":"a{1"}]', 'rule "x": "input" does not compile'),
    ('[{"name":"y","tool":"Bash","timeout":5}]', 'rule "y": unknown key "timeout"'),
    ('[{"name":"z","tool":"Bash","on_timeout":"ask"}]', '"on_timeout" must be'),
    ("@/nonexistent/rules.json", "cannot read /nonexistent/rules.json"),
])
def test_bad_rules_refuse_start(db, rules, want):
    p = adwtest.Ingest(db, ADW_INGEST_APPROVALS=rules, start=False)
    p.start()
    assert p.wait(20) == 2
    assert want in p.log_text()


def test_rules_file_over_its_limit_refuses_start(db, tmp_path):
    f = tmp_path / "rules.json"
    rules = json.dumps(RULES)
    f.write_text(rules + " " * ((1 << 20) + 1 - len(rules)))  # valid JSON, one byte too long
    p = adwtest.Ingest(db, ADW_INGEST_APPROVALS=f"@{f}", start=False)
    p.start()
    assert p.wait(20) == 2
    assert f"ADW_INGEST_APPROVALS: {f}: over 1048576 bytes" in p.log_text()


def test_rules_from_file(make_ingest, db, tmp_path):
    f = tmp_path / "rules.json"
    f.write_text(json.dumps(RULES))
    ing = make_ingest(ADW_INGEST_APPROVALS=f"@{f}")
    h = Hook(ing, pre_tool_use("rm -rf build/"), token=None)
    req = wait_requested(db, h.body["tool_use_id"])
    assert decide(ing, req[5]["payload"]["approval_id"], {"decision": "allow"}, token=None)[0] \
        == 200
    assert h.answer()[2]["hookSpecificOutput"]["permissionDecision"] == "allow"


def test_database_down_keeps_it_pending(make_ingest, db):
    """A decision that cannot be committed is answered 503 and the approval stays pending (the
    hook still held); once PostgreSQL is back the next decision wins, and the expire scan that
    runs when the store is ready again leaves alone what this ingest holds."""
    ing = start(make_ingest)
    body = pre_tool_use("rm -rf cache/")
    h, req = held(ing, body)
    aid = req[5]["payload"]["approval_id"]
    db.stop()
    try:
        adwtest.wait_for(lambda: adwtest.http_get(ing.base_url + "/readyz")[0] == 503, 20,
                         what="ingest unavailable")
        st, _, b = decide(ing, aid, {"decision": "allow"})
        assert st == 503, b
        assert h.waiting()
    finally:
        db.start()
    adwtest.wait_for(lambda: adwtest.http_get(ing.base_url + "/readyz")[0] == 200, 30,
                     what="ingest ready again")
    with ing.http() as c:  # a committed round trip: the scan went before it
        assert c.post_json("/api/events", {"type": "system", "adw_id": "z", "event": "x"},
                           auth())[0] == 200
    assert row(db, aid)[0] == "pending" and h.waiting()
    st, _, ans = decide(ing, aid, {"decision": "allow"})
    assert st == 200, ans
    assert h.answer()[2]["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert [r[3] for r in events(db)] == ["approval_requested", "approval_decided"]


def test_standby_taking_over_expires(make_ingest, db):
    ing = start(make_ingest)
    standby = adwtest.Ingest(db, ADW_INGEST_TOKEN=TOKEN, ADW_INGEST_APPROVALS=json.dumps(RULES),
                             start=False)
    standby.start()
    standby.wait_log("standby", 20)
    h, req = held(ing, pre_tool_use("rm -rf target/"))
    aid = req[5]["payload"]["approval_id"]
    ing.kill9()
    adwtest.wait_for(lambda: row(db, aid)[0] == "expired", 30, what="expired by the standby")
    ex = events(db, ("approval_expired",))
    assert [e[5]["payload"]["reason"] for e in ex] == ["ingest restarted"]
    st, _, b = decide(standby, aid, {"decision": "deny"})
    assert (st, b) == (409, {"error": f"approval {aid} is already expired"})


def test_approval_events_leave_stalled_alone(make_ingest, db):
    """A run waiting for a decision may stall (no event for ADW_INGEST_STALL_S); the approval's
    own events neither clear nor set the flag; the run's next event clears it."""
    ing = start(make_ingest, ADW_INGEST_STALL_S="1")
    body = pre_tool_use("rm -rf logs/")
    h, req = held(ing, body)
    adwtest.wait_for(lambda: db.scalar("SELECT stalled FROM adw_runs WHERE adw_id = 'run-1'"),
                     20, what="run_stalled while waiting")
    assert decide(ing, req[5]["payload"]["approval_id"], {"decision": "allow"})[0] == 200
    assert h.answer()[0] == 200
    assert db.query("SELECT status, stalled FROM adw_runs WHERE adw_id = 'run-1'")[0] == (
        "running", True)
    post = dict(body, hook_event_name="PostToolUse", tool_response={"stdout": ""})
    st, hd, _ = adwtest.post_json(ing.base_url + "/api/hooks", post,
                                  headers=auth(**{"X-ADW-Id": "run-1"}))
    assert st == 200
    # Cleared by it (unless a new idle spell has begun since: then a later run_stalled).
    later = db.scalar("SELECT coalesce(max(id), 0) FROM events WHERE event = 'run_stalled'")
    assert db.scalar("SELECT stalled FROM adw_runs WHERE adw_id = 'run-1'") is False or \
        later > int(hd["X-ADW-Event-Id"])


def test_remembers_the_latest_ten_thousand_ended(make_ingest, db):
    """At start ingest reads back the latest 10,000 ended approvals (proto/http.md): a decision
    on one of them is a 409 naming its outcome; one ended before those is no longer known (404),
    and nothing else changes for either."""
    ing = start(make_ingest)
    ing.stop()
    total = 10_003  # three more than ingest remembers

    def aid(i):
        return f"{i:032x}"

    db.query("INSERT INTO adw_approvals (approval_id, adw_id, step, tool_name, status,"
             " requested_id, requested_at, expires_at, decided_id, decided_at, decision,"
             " decided_by)"
             " SELECT lpad(to_hex(i), 32, '0'), 'run-' || (i %% 50), 'build', 'Bash',"
             " CASE WHEN i %% 3 = 0 THEN 'expired' WHEN i %% 2 = 0 THEN 'denied' ELSE 'allowed'"
             " END, 10 * i, now() - interval '1 hour', now(), 10 * i + 1, now(),"
             " CASE WHEN i %% 3 = 0 THEN NULL WHEN i %% 2 = 0 THEN 'deny' ELSE 'allow' END,"
             " 'ops' FROM generate_series(1, %s) AS i", (total,))
    ing = start(make_ingest)
    # The expire scan runs on ingest's first tick after the start and reads them back.
    adwtest.wait_for(lambda: decide(ing, aid(total), {"decision": "deny"})[0] == 409, 20,
                     what="the ended approvals read back")
    def status(i):  # as the rows were written
        return "expired" if i % 3 == 0 else "denied" if i % 2 == 0 else "allowed"

    # The newest and the 10,000th newest are remembered.
    for i in (total, total - 9_999):
        st, _, b = decide(ing, aid(i), {"decision": "deny"})
        assert (st, b) == (409, {"error": f"approval {aid(i)} is already {status(i)}"}), i
    # The three ended before those are not.
    for i in (1, 2, 3):
        st, _, b = decide(ing, aid(i), {"decision": "allow"})
        assert (st, b) == (404, {"error": f"no approval {aid(i)}"}), i
    for i in (1, 2, 3, total - 9_999, total):
        assert row(db, aid(i))[:2] == (status(i), {"expired": None, "denied": "deny",
                                                   "allowed": "allow"}[status(i)]), i
    assert db.scalar("SELECT count(*) FROM adw_approvals WHERE status = 'pending'") == 0
    assert db.scalar("SELECT count(*) FROM events WHERE event LIKE 'approval_%'") == 0
