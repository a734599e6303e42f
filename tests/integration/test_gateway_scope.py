"""Read tokens scoped to adw_id prefixes (ADW_GATEWAY_READ_TOKENS): a scoped client sees no
event of another run, live, in `since` replay and through the REST API, whatever filter it
asks for; naming a run outside its scope is refused; the full token still reads everything.
Out-of-scope runs are published interleaved with in-scope ones, and their count at every
scoped client must be 0."""

import os
import urllib.parse

import adwtest
import pytest
from test_gateway_common import connect, ev, hello, post, wait_type

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

FULL = "full-Secret-0123"
TOK_A = "tokA-9f8e7d=="  # ends in base64 padding: split at the last '='
TOK_B = "tokB-c1"
READ = f"{TOK_A}=team-a-,team-b-; {TOK_B}=ci-"
SCOPE = {TOK_A: ("team-a-", "team-b-"), TOK_B: ("ci-",)}
# runs: in scope of A, of B, and near misses of both
RUNS = ["team-a-1", "team-a-2", "team-b-7", "ci-1", "ci-22", "team-c-1", "team-a", "xteam-a-1",
        "TEAM-A-1", "c-1", "other"]


def in_scope(tok, adw_id):
    return tok == FULL or adw_id.startswith(SCOPE[tok])


def events(n, tag):
    """n events round-robin over RUNS (so out-of-scope ones interleave), steps and types
    varied."""
    out = []
    for i in range(n):
        run = RUNS[i % len(RUNS)]
        if i % 7 == 3:
            out.append(ev(run, step="plan", event_type="step_start", type_="system",
                          summary=f"{tag}{i}"))
        else:
            out.append(ev(run, step="build" if i % 2 else "review", summary=f"{tag}{i}"))
    return out


@pytest.fixture
def gw(make_gateway, ingest):
    return make_gateway(ingest, ADW_GATEWAY_TOKEN=FULL, ADW_GATEWAY_READ_TOKENS=READ)


def ws(gw, query=None, headers=None, timeout=10.0):
    q = urllib.parse.urlencode(query or {})
    w = adwtest.WsClient(gw.ws_url + ("?" + q if q else ""), timeout=timeout, headers=headers)
    w.hello = hello(w, timeout)
    return w


def refused(gw, query, headers=None):
    q = urllib.parse.urlencode(query)
    with pytest.raises(adwtest.WsHandshakeError) as e:
        adwtest.WsClient(gw.ws_url + "?" + q, timeout=10, headers=headers)
    return e.value.status


def test_live_isolation(gw, ingest):
    n = 6000 if os.environ.get("ADW_LONG") else 1100
    clients = {
        "A": (TOK_A, ws(gw, {"token": TOK_A})),
        "A-hdr": (TOK_A, ws(gw, headers={"Authorization": f"Bearer {TOK_A}"})),
        "A-types": (TOK_A, ws(gw, {"token": TOK_A, "types": "adw_event,system"})),
        "A-steps": (TOK_A, ws(gw, {"token": TOK_A, "steps": "build,plan,review"})),
        "A-run": (TOK_A, ws(gw, {"token": TOK_A, "adw_id": "team-a-1"})),
        "A-sub": (TOK_A, ws(gw, {"token": TOK_A})),
        "B": (TOK_B, ws(gw, {"token": TOK_B})),
        "B-sub": (TOK_B, ws(gw, headers={"Authorization": f"Bearer {TOK_B}"})),
        "full": (FULL, ws(gw, {"token": FULL})),
    }
    try:
        # Asking for runs outside the scope: refused at the upgrade...
        assert refused(gw, {"token": TOK_A, "adw_id": "team-c-1"}) == 403
        assert refused(gw, {"token": TOK_A, "adw_id": "team-a-1,ci-1"}) == 403
        assert refused(gw, {"token": TOK_B, "adw_id": "team-a-1"}) == 403
        assert refused(gw, {"token": "tokA-9f8e7d"}) == 401
        assert refused(gw, {"adw_id": "team-a-1"}) == 401
        # ...and in a subscribe, which answers an error and keeps the scoped filter.
        a_sub, b_sub = clients["A-sub"][1], clients["B-sub"][1]
        for bad in ({"adw_id": "team-c-1"}, {"adw_id": ["team-a-1", "other"]},
                    {"adw_id": "team-a"}):
            a_sub.send({"action": "subscribe", "filters": bad})
            err = wait_type(a_sub, "error")
            assert "outside this token's scope" in err["error"], err
        b_sub.send({"action": "subscribe", "filters": {"adw_id": None, "types": []}})
        wait_type(b_sub, "subscribed")
        a_sub.send({"action": "subscribe", "filters": {"adw_id": ["team-a-2", "team-b-7"]}})
        wait_type(a_sub, "subscribed")

        evs = events(n, "live")
        post(ingest, evs)
        # A marker in every scope, last: once it is in, everything before it was delivered.
        marks = post(ingest, [ev("team-a-1", summary="mark"), ev("team-b-7", summary="mark"),
                              ev("ci-1", summary="mark")])
        want = {}
        for name, (tok, _) in clients.items():
            wanted = [e for e in evs + [ev("team-a-1"), ev("team-b-7"), ev("ci-1")]
                      if in_scope(tok, e["adw_id"])]
            if name == "A-run":
                wanted = [e for e in wanted if e["adw_id"] == "team-a-1"]
            if name == "A-sub":
                wanted = [e for e in wanted if e["adw_id"] in ("team-a-2", "team-b-7")]
            want[name] = len(wanted)
        leaked = {}
        for name, (tok, w) in clients.items():
            got = w.events(want[name], timeout=60)
            last_mark = max(m for m, run in zip(marks, ("team-a-1", "team-b-7", "ci-1"))
                            if in_scope(tok, run))
            # nothing more than expected arrives
            extra = w.collect(timeout=0.5, pred=lambda m: isinstance(m, dict) and "id" in m)
            got += extra
            leaked[name] = sum(1 for e in got if not in_scope(tok, e["adw_id"]))
            assert len(got) == want[name], (name, len(got), want[name])
            ids = [e["id"] for e in got]
            assert ids == sorted(set(ids)), name
            if name not in ("A-run", "A-sub"):
                assert ids[-1] >= last_mark or tok == FULL, name
        assert leaked == {k: 0 for k in clients}, leaked
        assert want["full"] == n + 3
    finally:
        for _, w in clients.values():
            w.close()


def test_replay_and_rest_isolation(gw, ingest):
    n = 5000 if os.environ.get("ADW_LONG") else 1100
    evs = events(n, "old")
    ids = post(ingest, evs)

    def position():
        w = ws(gw, {"token": FULL})
        w.close()
        return w.hello["last_id"]

    # Once the gateway holds every id, a replay from 0 covers them all (nothing comes live).
    adwtest.wait_for(lambda: position() >= ids[-1], 30, interval=0.1, what="gateway position")
    # replay with since in the query and in a subscribe, with and without a filter
    for tok in (TOK_A, TOK_B):
        expect = [i for i, e in zip(ids, evs) if in_scope(tok, e["adw_id"])]
        for how in ("query", "subscribe", "subscribe-steps"):
            if how == "query":
                w = ws(gw, {"token": tok, "since": 0})
            else:
                w = ws(gw, headers={"Authorization": f"Bearer {tok}"})
                filters = {"steps": ["build", "review", "plan"]} if how.endswith("steps") else {}
                w.send({"action": "subscribe", "filters": filters, "since": 0})
            try:
                msgs = w.collect(until=lambda m: isinstance(m, dict) and m.get("type") ==
                                 "replayed", timeout=60)
                got = [m for m in msgs if isinstance(m, dict) and "id" in m]
                done = msgs[-1]
                assert done.get("type") == "replayed", (tok, how, done)
                assert [e["id"] for e in got] == expect, (tok, how)
                assert done["count"] == len(expect), (tok, how, done)
                assert sum(1 for e in got if not in_scope(tok, e["adw_id"])) == 0
            finally:
                w.close()
        # a subscribe naming a run outside the scope, with since: refused, nothing replayed
        w = ws(gw, {"token": tok})
        try:
            w.send({"action": "subscribe", "filters": {"adw_id": "team-c-1"}, "since": 0})
            assert "outside" in wait_type(w, "error")["error"]
            assert not w.collect(timeout=1.0, pred=lambda m: isinstance(m, dict) and "id" in m)
        finally:
            w.close()

    c = gw.http()
    try:
        def get(path, tok):
            return c.get(path, headers={"Authorization": f"Bearer {tok}"} if tok else None)

        for tok in (TOK_A, TOK_B, FULL):
            st, _, body = get("/api/adws?limit=1000", tok)
            assert st == 200
            runs = sorted(r["adw_id"] for r in body["adws"])
            assert runs == sorted(r for r in RUNS if in_scope(tok, r)), (tok, runs)
            for run in RUNS:
                st, _, body = get(f"/api/adws/{run}", tok)
                assert st == (200 if in_scope(tok, run) else 404), (tok, run, st)
                if st == 404:
                    assert body == {"error": f"no run with adw_id {run}"}
            # every event page, no filter and a steps filter
            for extra in ("", "&steps=build,review,plan"):
                seen, since = [], 0
                while True:
                    st, _, body = get(f"/api/events?limit=1000&since={since}{extra}", tok)
                    assert st == 200, body
                    seen += body["events"]
                    if not body["events"]:
                        break
                    since = body["next_since"]
                assert [e["id"] for e in seen] == [
                    i for i, e in zip(ids, evs) if in_scope(tok, e["adw_id"])], (tok, extra)
            # events of a named run outside the scope: 403 with the reason
            if tok != FULL:
                st, _, body = get("/api/events?adw_id=team-c-1", tok)
                assert st == 403 and "outside this token's scope" in body["error"], body
                st, _, body = c.get(f"/api/events?adw_id=team-c-1&token={tok}")
                assert st == 403
        # no token or a wrong one: 401
        assert get("/api/adws", None)[0] == 401
        assert get("/api/adws", "tokB-c2")[0] == 401
        assert c.get("/api/events?token=tokA-9f8e7d")[0] == 401
    finally:
        c.close()


@pytest.mark.parametrize("spec,why", [
    ("tok=", "needs at least one adw_id prefix"),
    ("tok", "want token=prefix"),
    ("tok=team a", "must be 1 to 64 characters"),
    ("tok=a-;tok=b-", "the same token twice"),
    (f"{FULL}=a-", "equals ADW_GATEWAY_TOKEN"),
    ("@/nonexistent/tokens", "No such file"),
    (" ; ", "names no token"),
])
def test_bad_read_tokens_refused_at_start(make_gateway, ingest, spec, why):
    g = make_gateway(ingest, start=False, ADW_GATEWAY_TOKEN=FULL, ADW_GATEWAY_READ_TOKENS=spec)
    g.start()
    adwtest.wait_for(lambda: not g.alive(), 15, what="gateway to exit")
    assert g.returncode not in (0, None)
    assert why in g.log_text(), g.log_text()
    assert FULL not in g.log_text()


def test_read_tokens_from_file_without_full_token(make_gateway, ingest, tmp_path):
    f = tmp_path / "tokens"
    f.write_text("# team tokens\nfile-tok-1 = team-a-\n\nfile-tok-2=ci-,team-b-\n")
    g = make_gateway(ingest, ADW_GATEWAY_READ_TOKENS=f"@{f}")
    ids = post(ingest, [ev(r) for r in RUNS])
    w = ws(g, {"token": "file-tok-2", "since": 0})
    try:
        got = w.events(3, timeout=20)
        assert sorted(e["adw_id"] for e in got) == ["ci-1", "ci-22", "team-b-7"]
        assert not w.collect(timeout=0.5, pred=lambda m: isinstance(m, dict) and "id" in m)
    finally:
        w.close()
    # read tokens alone make a token required: none, or an unknown one, is refused
    assert refused(g, {"since": 0}) == 401
    assert refused(g, {"token": "file-tok-3"}) == 401
    st, _, body = adwtest.http_get(g.base_url + "/api/adws?token=file-tok-1")
    assert st == 200 and [r["adw_id"] for r in body["adws"]] == ["team-a-2", "team-a-1"]
    assert len(ids) == len(RUNS)
