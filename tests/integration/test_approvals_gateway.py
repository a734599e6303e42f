"""Approvals through the gateway: POST /api/approvals/{id} checked at a gateway and handed to
ingest (ADW_GATEWAY_INGEST_URL), GET /api/approvals, pending_approvals, and the dashboard's
Allow / Deny in Chromium.

Real ingest holding real PreToolUse hooks (bodies as Claude Code sends them, answered only once
decided), two gateways and PostgreSQL. A hook is held by ingest; the decision goes through the
other gateway than the one the dashboard uses; the held hook gets Claude Code's PreToolUse
output. Every refusal is made by someone trying: no token, a read token, a decide token out of
its scope, a gateway with no decide tokens, a foreign Origin, a query token, a decision routed
back to a gateway, bodies that are not JSON, not a decision, or too large; a second decision;
two decisions racing through the two gateways; ingest gone. The stored events name the decider
and never hold a token.
"""

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid

import adwtest
import pytest

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

RULES = [{"name": "destructive shell", "tool": "^Bash$", "input": "rm -rf|push --force",
          "timeout_s": 300, "on_timeout": "deny"}]
FULL = "gw-full-T0ken"
READ = "gw-read-team"
ALICE = "al1ce-Decide/+="       # named alice, decides team-* runs
ANON = "anon-decide-9f8e7d"      # unnamed: decided_by is token-<sha256[:12]>
CI_ONLY = "ci-decider-77"        # named ci-bot, decides ci-* runs only
DECIDE = f"alice:{ALICE}=team-;{ANON}=*;ci-bot:{CI_ONLY}=ci-"
ANON_NAME = "token-" + hashlib.sha256(ANON.encode()).hexdigest()[:12]
SECRETS = (FULL, READ, ALICE, ANON, CI_ONLY)


def bearer(tok):
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def stack(make_ingest, make_gateway):
    ingest = make_ingest(ADW_INGEST_APPROVALS=json.dumps(RULES))
    common = dict(ADW_GATEWAY_DECIDE_TOKENS=DECIDE, ADW_GATEWAY_INGEST_URL=ingest.base_url)
    # gw1: open for reading (the dashboard's); gw2: tokens required (the one deciding).
    gw1 = make_gateway(ingest, name="gateway-1", **common)
    gw2 = make_gateway(ingest, name="gateway-2", ADW_GATEWAY_TOKEN=FULL,
                       ADW_GATEWAY_READ_TOKENS=f"{READ}=team-", **common)
    return ingest, gw1, gw2


def pretooluse(command, session="5f1c1b2e-4c7e-4a7b-9a51-0c1d2e3f4a5b"):
    """A PreToolUse hook body exactly as Claude Code sends it for a Bash call."""
    return {
        "session_id": session,
        "transcript_path": f"/home/dev/.claude/projects/-home-dev-app/{session}.jsonl",
        "cwd": "/home/dev/app",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "Clean the build output"},
        "tool_use_id": "toolu_01" + uuid.uuid4().hex[:22],
    }


class HeldHook:
    """POSTs a hook to ingest's /api/hooks on a thread of its own (ingest holds the answer)."""

    def __init__(self, ingest, adw_id, body, step="build"):
        self.result = None
        q = urllib.parse.urlencode({"adw_id": adw_id, "step": step})
        self.url = f"{ingest.base_url}/api/hooks?{q}"
        self.body = body
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.result = adwtest.post_json(self.url, self.body, timeout=120)
        except Exception as e:  # reported by answer()
            self.result = e

    def answer(self, timeout=60):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the held hook was not answered"
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def pending(gw, adw_id, headers=None, n=1, timeout=30):
    """Waits until the gateway lists n pending approvals of adw_id; returns them."""
    rows = []

    def ready():
        nonlocal rows
        st, _, body = adwtest.http_get(
            f"{gw.base_url}/api/approvals?adw_id={adw_id}&status=pending", headers=headers)
        rows = body.get("approvals", []) if st == 200 else []
        return len(rows) >= n

    adwtest.wait_for(ready, timeout, interval=0.05, what=f"{n} pending approvals of {adw_id}")
    return rows


def hold(ingest, gw, adw_id, command="rm -rf build/", headers=None):
    hook = HeldHook(ingest, adw_id, pretooluse(command))
    rows = pending(gw, adw_id, headers=headers)
    assert len(rows) == 1, rows
    return hook, rows[0]


def decide(gw, approval_id, decision="allow", token=ALICE, headers=None, body=None, query=""):
    h = bearer(token) if token else {}
    h.update(headers or {})
    payload = body if body is not None else {"decision": decision, "reason": "looks fine"}
    return adwtest.post_json(f"{gw.base_url}/api/approvals/{approval_id}{query}", payload,
                             headers=h)


def stored(db, adw_id, name):
    return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in db.query(
        "SELECT doc FROM events WHERE adw_id = %s AND event = %s ORDER BY id", (adw_id, name))]


def no_secret_stored(db):
    for s in SECRETS:
        n = db.scalar("SELECT count(*) FROM events WHERE strpos(doc::text, %s) > 0", (s,))
        assert n == 0, f"a token is stored in {n} events"
        n = db.scalar("SELECT count(*) FROM adw_approvals WHERE strpos(row_to_json(adw_approvals)"
                      "::text, %s) > 0", (s,))
        assert n == 0, "a token is stored in adw_approvals"


def hook_decision(result):
    st, headers, body = result
    assert st == 200, (st, body)
    out = body["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse"
    return out["permissionDecision"], out.get("permissionDecisionReason", "")


def test_allow_and_deny_through_the_other_gateway(stack, db):
    ingest, gw1, gw2 = stack
    # held, seen at gw1, decided at gw2 by alice (named)
    hook, a = hold(ingest, gw1, "team-a-1")
    assert a["tool_name"] == "Bash" and a["tool_input"]["command"] == "rm -rf build/"
    assert a["rule"] == "destructive shell" and a["status"] == "pending"
    st, _, run = adwtest.http_get(f"{gw1.base_url}/api/adws/team-a-1")
    assert st == 200 and run["pending_approvals"] == 1
    st, _, runs = adwtest.http_get(f"{gw1.base_url}/api/adws")
    assert [r["pending_approvals"] for r in runs["adws"] if r["adw_id"] == "team-a-1"] == [1]
    st, _, body = decide(gw2, a["approval_id"], "allow")
    assert st == 200, body
    assert body["approval_id"] == a["approval_id"] and body["decision"] == "allow"
    assert hook_decision(hook.answer())[0] == "allow"

    # denied by an unnamed decide token: decided_by is its short hash
    hook, b = hold(ingest, gw2, "team-a-2", headers=bearer(FULL))
    st, _, body = decide(gw1, b["approval_id"], "deny", token=ANON)
    assert st == 200, body
    decision, reason = hook_decision(hook.answer())
    assert decision == "deny"

    # the audit trail: the stored events name the decider, never a token
    adwtest.wait_for(lambda: len(stored(db, "team-a-2", "approval_decided")) == 1, 10,
                     what="approval_decided stored")
    d1 = stored(db, "team-a-1", "approval_decided")
    d2 = stored(db, "team-a-2", "approval_decided")
    assert [d["payload"]["decided_by"] for d in d1] == ["alice"]
    assert [d["payload"]["decided_by"] for d in d2] == [ANON_NAME]
    assert d1[0]["payload"]["decision"] == "allow" and d2[0]["payload"]["decision"] == "deny"
    no_secret_stored(db)
    rows = db.query("SELECT approval_id, status, decided_by FROM adw_approvals ORDER BY 1")
    assert sorted(rows) == sorted([(a["approval_id"], "allowed", "alice"),
                                   (b["approval_id"], "denied", ANON_NAME)])
    # GET /api/approvals: statuses, newest first, the read scope
    st, _, body = adwtest.http_get(f"{gw1.base_url}/api/approvals?status=all")
    assert [x["approval_id"] for x in body["approvals"]] == [b["approval_id"], a["approval_id"]]
    assert body["approvals"][1]["decided_by"] == "alice"
    st, _, body = adwtest.http_get(f"{gw1.base_url}/api/approvals")
    assert body["approvals"] == []
    st, _, body = adwtest.http_get(f"{gw1.base_url}/api/approvals?status=denied")
    assert [x["approval_id"] for x in body["approvals"]] == [b["approval_id"]]
    st, _, body = adwtest.http_get(f"{gw1.base_url}/api/approvals?status=maybe")
    assert st == 400
    st, _, body = adwtest.http_get(f"{gw1.base_url}/api/approvals?limit=0")
    assert st == 400
    st, _, body = adwtest.http_get(f"{gw2.base_url}/api/approvals?status=all")
    assert st == 401
    st, _, body = adwtest.http_get(f"{gw2.base_url}/api/approvals?status=all&adw_id=ci-1",
                                   headers=bearer(READ))
    assert st == 403
    # a decide token reads its scope
    st, _, body = adwtest.http_get(f"{gw2.base_url}/api/approvals?status=all",
                                   headers=bearer(CI_ONLY))
    assert st == 200 and body["approvals"] == []
    st, _, run = adwtest.http_get(f"{gw1.base_url}/api/adws/team-a-1")
    assert run["pending_approvals"] == 0
    for gw in (gw1, gw2):
        assert "al1ce" not in gw.log_text() and ANON not in gw.log_text()
    assert f"approval {a['approval_id']}: decided_by alice, allow -> 200" in gw2.log_text()
    assert f"approval {b['approval_id']}: decided_by {ANON_NAME}, deny -> 200" in gw1.log_text()


def test_refusals(stack, db, make_gateway):
    ingest, gw1, gw2 = stack
    hook, a = hold(ingest, gw1, "team-r-1")
    aid = a["approval_id"]
    # no token; a query token (not for a POST); a wrong one
    st, h, body = decide(gw2, aid, token=None)
    assert st == 401 and h.get("www-authenticate") == "Bearer", body
    st, _, _ = decide(gw2, aid, token=None, query="?" + urllib.parse.urlencode({"token": ALICE}))
    assert st == 401
    st, _, _ = decide(gw2, aid, token=ALICE[:-1])
    assert st == 401
    st, _, _ = decide(gw2, aid, headers={"Cookie": f"token={ALICE}"}, token=None)
    assert st == 401
    # a read token, the full token, a decide token outside its scope
    for tok in (READ, FULL):
        st, _, body = decide(gw2, aid, token=tok)
        assert st == 403 and "may read but not decide" in body["error"], body
    st, _, body = decide(gw2, aid, token=CI_ONLY)
    assert st == 403 and "scope" in body["error"], body
    # a browser page of a foreign origin; the same origin passes the check
    st, _, body = decide(gw2, aid, headers={"Origin": "https://evil.example"})
    assert st == 403 and body["error"] == "origin not allowed"
    # unknown approval; not an approval id
    st, _, body = decide(gw2, "0123456789abcdef0123456789abcdef")
    assert st == 404 and body["error"] == "no approval 0123456789abcdef0123456789abcdef"
    st, _, _ = decide(gw2, "g" * 32)
    assert st == 404
    st, _, _ = decide(gw2, "../../api/events")  # resolved to /api/events: read-only
    assert st == 405
    st, _, _ = decide(gw2, aid.upper())
    assert st == 404
    # bad bodies
    for bad in ("not json", "[1,2]", "{\"decision\":\"maybe\"}", "{\"decision\":true}",
                "{}", "{\"decision\":\"allow\",\"reason\":7}",
                json.dumps({"decision": "allow", "reason": "r" * 1001})):
        st, _, body = decide(gw2, aid, body=bad)
        assert st == 400, (bad, st, body)
    st, _, body = decide(gw2, aid, body="{\"decision\":\"allow\",\"pad\":\"" + "x" * 4100 + "\"}")
    assert st == 413, body
    # a decision a gateway already forwarded (a front door routing it back to a gateway)
    st, _, body = decide(gw2, aid, headers={"X-ADW-Forwarded": "1"})
    assert st == 508, body
    # a gateway without decide tokens
    gw3 = make_gateway(ingest, name="gateway-3", ADW_GATEWAY_INGEST_URL=ingest.base_url)
    st, _, body = decide(gw3, aid)
    assert st == 403 and "ADW_GATEWAY_DECIDE_TOKENS" in body["error"], body
    # none of that decided anything: the hook is still held
    assert hook.thread.is_alive()
    assert pending(gw1, "team-r-1")[0]["approval_id"] == aid
    assert stored(db, "team-r-1", "approval_decided") == []
    # the gateway still serves; the decision goes through; a second one is 409 at both
    st, _, body = decide(gw2, aid, "deny", headers={"Origin": gw2.base_url})
    assert st == 200, body
    assert hook_decision(hook.answer())[0] == "deny"
    for gw in (gw1, gw2):
        st, _, body = decide(gw, aid, "allow")
        assert st == 409 and body["error"] == f"approval {aid} is already denied", body
    assert len(stored(db, "team-r-1", "approval_decided")) == 1
    no_secret_stored(db)


def test_decisions_racing_through_two_gateways(stack, db):
    ingest, gw1, gw2 = stack
    for round_ in range(3):
        adw = f"team-race-{round_}"
        hook, a = hold(ingest, gw1, adw)
        results = {}
        go = threading.Barrier(2)

        def post(name, gw, decision):
            go.wait()
            results[name] = decide(gw, a["approval_id"], decision)

        threads = [threading.Thread(target=post, args=("gw1", gw1, "allow")),
                   threading.Thread(target=post, args=("gw2", gw2, "deny"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = sorted(r[0] for r in results.values())
        assert statuses == [200, 409], results
        winner = "allow" if results["gw1"][0] == 200 else "deny"
        assert hook_decision(hook.answer())[0] == winner
        adwtest.wait_for(lambda: len(stored(db, adw, "approval_decided")) >= 1, 10,
                         what="approval_decided stored")
        decided = stored(db, adw, "approval_decided")
        assert len(decided) == 1 and decided[0]["payload"]["decision"] == winner


def test_ingest_unreachable(stack, db):
    ingest, gw1, gw2 = stack
    hook, a = hold(ingest, gw1, "team-gone-1")
    ingest.kill9()
    ingest.wait(10)
    # the row is still pending (nobody expired it): the gateway hands it on and gets nothing
    st, _, body = decide(gw2, a["approval_id"])
    assert st == 502 and "ingest is unreachable" in body["error"], body
    assert ALICE not in body["error"]
    st, _, _ = adwtest.http_get(f"{gw2.base_url}/healthz")
    assert st == 200
    assert f"approval {a['approval_id']}: decided_by alice, allow -> 502" in gw2.log_text()


# ---- the dashboard in Chromium ------------------------------------------------------------------

BROWSER_DIR = adwtest.REPO / "tests" / "browser"
CHROMIUM = os.environ.get("ADW_CHROMIUM", "/usr/bin/chromium")


def test_dashboard_allow_in_chromium(stack, db):
    if os.environ.get("ADW_SKIP_BROWSER") == "1":
        pytest.skip("ADW_SKIP_BROWSER=1")
    from test_dashboard import _npm_ci
    node = shutil.which("node")
    if not node:
        pytest.fail("node is missing: deploy/install-deps.sh --test installs it")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing (deploy/install-deps.sh --test)")
    _npm_ci()
    ingest, gw1, gw2 = stack
    env = dict(os.environ, ADW_GATEWAY_URL=gw1.base_url, ADW_INGEST_URL=ingest.base_url,
               ADW_DECIDE_TOKEN=ALICE, ADW_CHROMIUM=CHROMIUM,
               ADW_BROWSER_ARTIFACTS=str(BROWSER_DIR / "artifacts"))
    env.pop("NODE_OPTIONS", None)
    r = subprocess.run([node, str(BROWSER_DIR / "approvals.test.mjs")], cwd=adwtest.REPO, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    print(r.stdout[-6000:])
    assert r.returncode == 0, f"browser tests failed ({r.returncode}):\n{r.stdout[-12000:]}\n" \
                              f"{r.stderr[-4000:]}"
    decided = stored(db, "team-ui-1", "approval_decided")
    assert [d["payload"]["decided_by"] for d in decided] == ["alice"]
    assert [d["payload"]["decision"] for d in decided] == ["allow"]
    no_secret_stored(db)


def test_forwarding_queue_bound(stack, make_gateway):
    """An ingest that takes decisions and never answers: past FORWARD_QUEUE_MAX (64) decisions
    in the gateway at once, the next ones are refused with 503 at once; the gateway serves on."""
    import select
    import socket
    ingest, gw1, _ = stack
    hook, a = hold(ingest, gw1, "team-q-1")
    hole = socket.socket()
    hole.bind((adwtest.LOOPBACK, 0))
    hole.listen(1024)
    held = []
    stop = threading.Event()

    def swallow():  # accepts and reads, never answers
        while not stop.is_set():
            r, _, _ = select.select([hole] + held, [], [], 0.1)
            for s in r:
                if s is hole:
                    held.append(hole.accept()[0])
                elif not s.recv(65536):
                    held.remove(s)
                    s.close()

    t = threading.Thread(target=swallow, daemon=True)
    t.start()
    gw = make_gateway(ingest, name="gateway-q", ADW_GATEWAY_DECIDE_TOKENS=DECIDE,
                      ADW_GATEWAY_INGEST_URL=f"http://{adwtest.LOOPBACK}:{hole.getsockname()[1]}")
    n, bound = 100, 64
    body = json.dumps({"decision": "allow"}).encode()
    req = (f"POST /api/approvals/{a['approval_id']} HTTP/1.1\r\nHost: x\r\n"
           f"Authorization: Bearer {ALICE}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection((adwtest.LOOPBACK, gw.http_port))
            s.sendall(req)
            socks.append(s)
        answers = {}

        def read_some():
            r, _, _ = select.select([s for s in socks if s not in answers], [], [], 0.2)
            for s in r:
                data = s.recv(65536)
                answers[s] = data.split(b" ", 2)[1].decode() if data else "closed"
            refused = sum(1 for v in answers.values() if v == "503")
            failed = sum(1 for v in answers.values() if v != "503")
            # a slot frees only when a forwarded decision ends (502 after its timeout)
            return refused >= n - bound - failed

        adwtest.wait_for(read_some, 120, interval=0, what="the decisions past the bound refused")
        assert set(answers.values()) <= {"503", "502"}, answers.values()
        assert sum(1 for v in answers.values() if v == "503") <= n - bound + \
            sum(1 for v in answers.values() if v == "502")
        st, _, _ = adwtest.http_get(f"{gw.base_url}/healthz")
        assert st == 200
        assert "503: too busy" in gw.log_text()
    finally:
        for s in socks:
            s.close()
        gw.stop()
        stop.set()
        t.join(5)
        for s in held:
            s.close()
        hole.close()
    # the real decision still works through another gateway
    st, _, body = decide(gw1, a["approval_id"], "deny")
    assert st == 200, body
    assert hook_decision(hook.answer())[0] == "deny"


@pytest.mark.parametrize("env,reason", [
    ({"ADW_GATEWAY_DECIDE_TOKENS": "alice:S3cr-t=team-;S3cr-t=*"}, "entry 2: the same token twice"),
    ({"ADW_GATEWAY_DECIDE_TOKENS": "S3cr-t=team a"}, "entry 1: prefix"),
    ({"ADW_GATEWAY_DECIDE_TOKENS": "S3cr-t=*", "ADW_GATEWAY_TOKEN": "S3cr-t"},
     "a decide token equals ADW_GATEWAY_TOKEN"),
    ({"ADW_GATEWAY_INGEST_URL": "ftp://127.0.0.1:8000"}, "ADW_GATEWAY_INGEST_URL must be"),
])
def test_bad_settings_refuse_to_start(db, proc, env, reason):
    p = proc([str(adwtest.binary("adw-gateway"))],
             env={"DATABASE_URL": db.url, "ADW_GATEWAY_HTTP": f"127.0.0.1:{adwtest.free_port()}",
                  **env}, name="gateway-bad")
    assert p.wait(20) == 2
    text = p.log_text()
    assert reason in text, text
    assert "S3cr-t" not in text
