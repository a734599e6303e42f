"""adw-gateway: the REST read API (runs, one run with its steps, events with paging and
filters), its errors and limits, /healthz, /readyz, /metrics and the static files."""

import adwtest
import pytest
from test_gateway_common import ev, post

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")


def sysev(adw_id, event, step=None, status=None, **kw):
    e = ev(adw_id=adw_id, step=step, event_type=event, type_="system", **kw)
    if status:
        e["status"] = status
    return e


@pytest.fixture
def runs(ingest):
    """Three runs; r2 is the most recently active, r1 finished, r3 failed."""
    ids = post(ingest, [
        sysev("r1", "adw_start"),
        sysev("r1", "step_start", step="plan"),
        ev(adw_id="r1", step="plan", payload={"cost_usd": 0.25, "tokens": 100,
                                              "input_tokens": 60, "output_tokens": 40}),
        sysev("r1", "step_complete", step="plan", status="completed", duration_ms=1500),
        sysev("r1", "step_start", step="build"),
        ev(adw_id="r1", step="build", event_type="ToolUseBlock",
           payload={"cost_usd": 0.5, "tokens": 10, "cache_read_tokens": 3,
                    "cache_creation_tokens": 4}),
        sysev("r1", "adw_complete", status="completed"),
        sysev("r3", "adw_start", timestamp="2026-01-01T10:00:00Z"),
        ev(adw_id="r3", step="review", timestamp="2026-01-01T10:00:02.5Z"),
        sysev("r3", "adw_failed", status="failed", timestamp="2026-01-01T10:00:04Z"),
        ev(adw_id="r2", step="plan"),
        ev(adw_id="r2", step="build"),
    ])
    return ids


def test_runs_list_order_status_limit(gateway, runs):
    c = gateway.http()
    st, h, body = c.get("/api/adws")
    assert st == 200 and h.get("Content-Type").startswith("application/json")
    adws = body["adws"]
    assert [r["adw_id"] for r in adws] == ["r2", "r3", "r1"]
    r1 = adws[2]
    assert r1["status"] == "completed" and r1["event_count"] == 7
    assert r1["cost_usd"] == pytest.approx(0.75) and r1["tokens"] == 110
    assert (r1["input_tokens"], r1["output_tokens"]) == (60, 40)
    assert (r1["cache_read_tokens"], r1["cache_creation_tokens"]) == (3, 4)
    assert r1["first_id"] == runs[0] and r1["last_id"] == runs[6]
    for k in ("current_step", "first_ts", "last_ts", "duration_ms", "updated_at"):
        assert k in r1
    r3 = adws[1]
    assert r3["status"] == "failed"
    assert r3["first_ts"] == "2026-01-01T10:00:00.000000Z"
    assert r3["last_ts"] == "2026-01-01T10:00:04.000000Z" and r3["duration_ms"] == 4000
    assert adws[0]["status"] == "running" and adws[0]["current_step"] == "build"
    assert [r["adw_id"] for r in c.get("/api/adws?status=running")[2]["adws"]] == ["r2"]
    assert [r["adw_id"] for r in c.get("/api/adws?status=failed,completed")[2]["adws"]] == [
        "r3", "r1"]
    assert c.get("/api/adws?status=nothing")[2] == {"adws": []}
    assert [r["adw_id"] for r in c.get("/api/adws?limit=2")[2]["adws"]] == ["r2", "r3"]
    for bad in ("0", "1001", "-1", "x", "", "1e3"):
        st, _, body = c.get(f"/api/adws?limit={bad}")
        assert st == 400 and "limit" in body["error"], bad
    assert c.get("/api/adws?limit=1000")[0] == 200
    c.close()


def test_one_run_with_steps(gateway, runs):
    c = gateway.http()
    st, _, run = c.get("/api/adws/r1")
    assert st == 200 and run["adw_id"] == "r1" and run["status"] == "completed"
    steps = run["steps"]
    assert [s["step"] for s in steps] == ["plan", "build"]  # in the order they began
    plan = steps[0]
    assert plan["status"] == "completed" and plan["duration_ms"] == 1500
    assert plan["event_count"] == 3 and plan["cost_usd"] == pytest.approx(0.25)
    assert plan["tokens"] == 100 and plan["first_id"] == runs[1] and plan["last_id"] == runs[3]
    assert {"first_ts", "last_ts"} <= set(plan)
    assert steps[1]["first_id"] == runs[4]
    st, _, r3 = c.get("/api/adws/r3")
    assert [s["step"] for s in r3["steps"]] == ["review"]
    assert r3["steps"][0]["duration_ms"] == 0
    st, _, body = c.get("/api/adws/nope")
    assert st == 404 and "nope" in body["error"]
    st, _, body = c.get("/api/adws/bad%20id")
    assert st == 404 and body["error"]
    st, _, body = c.get("/api/adws/" + "x" * 65)
    assert st == 404
    c.close()


def test_events_paging_filters_and_limits(ingest, gateway):
    ids = post(ingest, [ev(adw_id="p1" if i % 3 else "p2", step="build" if i % 2 else "plan",
                           summary=str(i)) for i in range(250)])
    c = gateway.http()
    st, _, body = c.get("/api/events")
    assert st == 200 and [e["id"] for e in body["events"]] == ids[:100]
    assert body["next_since"] == ids[99]
    # Page through everything with next_since.
    seen, since = [], 0
    for _ in range(10):
        page = c.get(f"/api/events?since={since}&limit=70")[2]
        seen += [e["id"] for e in page["events"]]
        if not page["events"]:
            assert page["next_since"] == since
            break
        since = page["next_since"]
    assert seen == ids
    # Events as delivered: id and received_at first, then the event's own keys.
    e = c.get(f"/api/events?since={ids[4]}&limit=1")[2]["events"][0]
    assert list(e)[:2] == ["id", "received_at"] and e["summary"] == "5"
    # Filters, as on the WebSocket.
    p2 = [i for n, i in enumerate(ids) if n % 3 == 0]
    got = c.get("/api/events?adw_id=p2&limit=1000")[2]["events"]
    assert [x["id"] for x in got] == p2
    got = c.get("/api/events?adw_id=p2&steps=build&limit=1000")[2]["events"]
    assert [x["id"] for x in got] == [i for n, i in enumerate(ids) if n % 3 == 0 and n % 2]
    got = c.get("/api/events?adw_id=p1,p2&types=system")[2]
    assert got == {"events": [], "next_since": 0, "complete": True}
    got = c.get("/api/events?event_types=TextBlock&limit=5")[2]["events"]
    assert len(got) == 5
    for bad in ("limit=0", "limit=1001", "limit=abc", "since=-1", "since=x",
                "steps=" + "y" * 65):
        st, _, body = c.get("/api/events?" + bad)
        assert st == 400 and body["error"], bad
    assert len(c.get("/api/events?limit=1000")[2]["events"]) == 250
    c.close()


def test_other_paths_and_methods(gateway):
    c = gateway.http()
    assert c.get("/api/nothing")[0] == 404
    assert c.get("/api")[0] == 404
    st, h, body = c.request("POST", "/api/adws", body="{}")
    assert st == 405 and h.get("Allow") == "GET"
    c.close()
    st, _, body = adwtest.http_get(gateway.base_url + "/healthz")
    assert st == 200 and body == {"status": "ok"}
    st, _, body = adwtest.http_get(gateway.base_url + "/readyz")
    assert st == 200 and body["status"] == "ready"
    st, h, text = adwtest.http_get(gateway.base_url + "/metrics")
    assert st == 200 and h.get("Content-Type").startswith("text/plain")
    for name in ("adw_gateway_clients", "adw_gateway_deliveries_total",
                 'adw_gateway_drops_total{reason="slow_consumer"}',
                 "adw_gateway_replays_total", "adw_gateway_hole_fills_total"):
        assert name in text, name


def test_static_files(gateway):
    c = gateway.http()
    st, h, body = c.get("/")
    assert st == 200 and h.get("Content-Type").startswith("text/html")
    assert "<html" in body
    st2, _, body2 = c.get("/index.html")
    assert st2 == 200 and body2 == body
    for path in ("/missing.js", "/../CMakeLists.txt", "/%2e%2e/CMakeLists.txt",
                 "/..%2fCMakeLists.txt", "/.git", "/index.html/x", "//etc/passwd"):
        with adwtest.RawConn(port=gateway.http_port) as raw:
            raw.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            st, _, body = raw.read_response()
            assert st in (403, 404), (path, st)
            assert b"adw-gateway" not in body or st == 404
    c.close()


def test_api_when_database_is_down(db, ingest, gateway):
    post(ingest, [ev()])
    db.stop()
    try:
        st, h, body = adwtest.http_get(gateway.base_url + "/api/adws", timeout=30)
        assert st == 503 and body["error"]
    finally:
        db.start()
    adwtest.wait_for(lambda: adwtest.http_get(gateway.base_url + "/api/adws")[0] == 200, 30)
