"""Claude Code's OpenTelemetry logs into real adw-ingest and PostgreSQL: POST /v1/logs with the
OTLP/HTTP JSON bodies Claude Code's exporter sends (tests/data/otlp), plain and gzip; an
exporter's retry stores nothing twice; bodies that are not OTLP, truncated gzip, a gzip bomb
refused at the body limit after inflating (ingest alive), protobuf refused with the variable to
set, the token, partialSuccess, /v1/metrics, 503 with Retry-After while PostgreSQL is down, and
two of the three attribution rules (adw.id from the resource; the session's first 8 characters;
the re-filing under the hooks' run is the writer's, tested with it)."""

import copy
import gzip
import json
import zlib
from pathlib import Path

import adwtest
import pytest
from faultload import wait_status

pytestmark = pytest.mark.needs_bin("adw-ingest")

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "otlp"
JSON = {"Content-Type": "application/json"}


def body(name):
    return (DATA / name).read_text()


def post(ing, path, data, headers=None):
    h = dict(JSON)
    h.update(headers or {})
    with ing.http() as c:
        return c.request("POST", path, body=data, headers=h)


def events(db, adw_id=None):
    sql = "SELECT adw_id, event_type, step, event_id, doc FROM events"
    if adw_id:
        return db.query(sql + " WHERE adw_id = %s ORDER BY id", (adw_id,))
    return db.query(sql + " ORDER BY id")


def test_api_request_batch_stored(ingest, db):
    st, h, ans = post(ingest, "/v1/logs", body("api_request.json"))
    assert (st, ans) == (200, {}), ans
    assert h.get("Content-Type") == "application/json"
    rows = events(db, "run-otel-1")
    assert [r[1] for r in rows] == ["api_request", "api_request"]
    assert all(r[2] == "build" for r in rows)
    assert all(r[3].startswith("otel-") and len(r[3]) == 37 for r in rows)
    doc = rows[0][4]
    assert doc["type"] == "adw_event"
    assert doc["timestamp"] == "2026-12-07T15:04:05.123000Z"
    assert doc["summary"] == "claude-sonnet-4-5-20250929 $0.0133 12/318 tok 2417 ms"
    p = doc["payload"]
    assert p["cost_usd"] == 0.0132915 and p["input_tokens"] == 12 and p["output_tokens"] == 318
    assert p["cache_read_tokens"] == 14567 and p["cache_creation_tokens"] == 1021
    assert p["session.id"] == "4f9c2a1e-7b3d-4c8e-9a51-2d6e8f0b1c37"
    # the event time is the record's
    ts = db.scalar("SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM events"
                   " WHERE event_id = %s", (rows[0][3],))
    assert ts == "2026-12-07 15:04:05.123000"
    # the run totals count the cost and the tokens
    cost, tokens, inp = db.query("SELECT cost_usd, tokens, input_tokens FROM adw_runs"
                                 " WHERE adw_id = 'run-otel-1'")[0]
    assert abs(cost - (0.0132915 + 0.021468)) < 1e-9
    assert inp == 20 and tokens == 12 + 318 + 14567 + 1021 + 8 + 702 + 15588 + 2210


def test_mixed_batch_and_unknown_names(ingest, db):
    st, _, ans = post(ingest, "/v1/logs", body("mixed.json"))
    assert (st, ans) == (200, {})
    rows = events(db, "run-otel-2")
    assert [(r[1], r[4]["summary"]) for r in rows] == [
        ("user_prompt", "Prompt (42 chars)"),
        ("tool_decision", "Bash: accept"),
        ("tool_result", "Bash ok (873 ms)"),
        ("tool_result", "Edit failed (12 ms)"),
        ("api_error", "claude-sonnet-4-5-20250929 error 529: Overloaded"),
        ("mcp_server_connection", "mcp_server_connection"),
    ]
    assert rows[4][4]["payload"]["status_code"] == 529
    assert rows[2][4]["payload"]["tool_result_size_bytes"] == 2048


def test_typed_values_and_64_bit_strings(ingest, db):
    assert post(ingest, "/v1/logs", body("typed.json"))[0] == 200
    (row,) = events(db, "run-otel-3")
    p = row[4]["payload"]
    assert p["event.sequence"] == 9007199254740993  # above 2^53, exact
    assert p["offset"] == -42
    assert p["tags"] == ["a", 2, True] and p["ctx"] == {"k": "v", "n": 1.5}
    assert row[2] == "plan"


def test_gzip_and_retry_store_nothing_twice(ingest, db):
    raw = body("api_request.json").encode()
    st, _, ans = post(ingest, "/v1/logs", gzip.compress(raw), {"Content-Encoding": "gzip"})
    assert (st, ans) == (200, {})
    n = db.scalar("SELECT count(*) FROM events")
    assert n == 2
    # the exporter retries: plain, gzip, and both records again with a third new one
    assert post(ingest, "/v1/logs", raw)[0] == 200
    assert post(ingest, "/v1/logs", gzip.compress(raw), {"Content-Encoding": "gzip"})[0] == 200
    req = json.loads(raw)
    recs = req["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    extra = copy.deepcopy(recs[1])
    extra["timeUnixNano"] = str(int(extra["timeUnixNano"]) + 5_000_000_000)
    for a in extra["attributes"]:
        if a["key"] == "event.sequence":
            a["value"] = {"intValue": "3"}
    recs.append(extra)
    assert post(ingest, "/v1/logs", json.dumps(req))[0] == 200
    assert db.scalar("SELECT count(*) FROM events") == 3
    assert db.scalar("SELECT count(DISTINCT event_id) FROM events") == 3
    # the run's totals count each record once
    assert db.scalar("SELECT input_tokens FROM adw_runs WHERE adw_id = 'run-otel-1'") == 28


def test_content_encodings_and_types(ingest, db):
    raw = body("session_only.json").encode()
    # identity is plain; the media type may carry parameters
    st, _, _ = post(ingest, "/v1/logs", raw, {"Content-Encoding": "identity",
                                              "Content-Type": "application/json; charset=utf-8"})
    assert st == 200
    st, _, ans = post(ingest, "/v1/logs", zlib.compress(raw), {"Content-Encoding": "deflate"})
    assert st == 415 and "Content-Encoding" in ans["error"]
    st, _, ans = post(ingest, "/v1/logs", b"\x0a\x00", {"Content-Type": "application/x-protobuf"})
    assert st == 415
    assert ans == {"error": "OTLP protobuf is not supported; set "
                            "OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}
    st, _, ans = post(ingest, "/v1/logs", raw, {"Content-Type": "text/plain"})
    assert st == 415 and "application/json" in ans["error"]
    assert db.scalar("SELECT count(*) FROM events") == 1


@pytest.mark.parametrize("data,why", [
    (b"not json", None),
    (b"[]", "not OTLP"),
    (b'{"resourceSpans":[]}', "resourceLogs"),
    (b'{"resourceLogs":{}}', "resourceLogs"),
    (b'{"resourceLogs":[{"scopeLogs":[{"logRecords":7}]}]}', "logRecords"),
    (b"", "empty body"),
])
def test_not_otlp_is_400(ingest, db, data, why):
    st, _, ans = post(ingest, "/v1/logs", data)
    assert st == 400, ans
    if why:
        assert why in ans["error"]
    assert db.scalar("SELECT count(*) FROM events") == 0


def test_truncated_and_corrupt_gzip_are_400(ingest, db):
    gz = gzip.compress(body("mixed.json").encode())
    for data, why in ((gz[:len(gz) // 2], "truncated"), (gz[:-4], "truncated"),
                      (b"\x1f\x8b\x08\x00garbage-garbage", "corrupt"),
                      (b"plain text", "corrupt")):
        st, _, ans = post(ingest, "/v1/logs", data, {"Content-Encoding": "gzip"})
        assert st == 400 and why in ans["error"], (why, ans)
    assert db.scalar("SELECT count(*) FROM events") == 0


def test_gzip_bomb_is_413_and_ingest_serves_on(make_ingest, db):
    ing = make_ingest(ADW_INGEST_MAX_BODY="1M")
    bomb = gzip.compress(b"\0" * (100 << 20), 9)  # 100 MiB of zeros
    assert len(bomb) < 200_000
    st, _, ans = post(ing, "/v1/logs", bomb, {"Content-Encoding": "gzip"})
    assert st == 413 and "ADW_INGEST_MAX_BODY" in ans["error"]
    # just past the limit after inflating, just under it before
    over = json.dumps({"resourceLogs": [], "pad": "x" * (1 << 20)}).encode()
    st, _, _ = post(ing, "/v1/logs", gzip.compress(over), {"Content-Encoding": "gzip"})
    assert st == 413
    under = json.dumps({"resourceLogs": [], "pad": "x" * ((1 << 20) - 100)}).encode()
    assert len(under) <= 1 << 20
    st, _, ans = post(ing, "/v1/logs", gzip.compress(under), {"Content-Encoding": "gzip"})
    assert (st, ans) == (200, {})
    assert ing.alive()
    assert adwtest.http_get(ing.base_url + "/healthz")[0] == 200
    st, _, ans = post(ing, "/v1/logs", gzip.compress(body("api_request.json").encode()),
                      {"Content-Encoding": "gzip"})
    assert (st, ans) == (200, {})
    with ing.http() as c:
        text = c.get("/metrics")[2]
    assert 'adw_ingest_rejected_total{reason="too_large"} 2' in text


def test_token_required(make_ingest, db):
    ing = make_ingest(ADW_INGEST_TOKEN="otel-s3cret")
    for h in ({}, {"Authorization": "Bearer wrong"}):
        st, _, ans = post(ing, "/v1/logs", body("api_request.json"), h)
        assert st == 401 and ans == {"error": "missing or wrong bearer token"}
        assert post(ing, "/v1/metrics", '{"resourceMetrics":[]}', h)[0] == 401
    # what OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20otel-s3cret" sends
    st, _, ans = post(ing, "/v1/logs", body("api_request.json"),
                      {"Authorization": "Bearer otel-s3cret"})
    assert (st, ans) == (200, {})
    assert db.scalar("SELECT count(*) FROM events") == 2


def test_partial_success(ingest, db):
    req = json.loads(body("mixed.json"))
    recs = req["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    recs.insert(0, {"timeUnixNano": "1796655845123000000", "attributes": []})  # no name
    recs.append("not a record")
    # a second resource with neither adw.id nor session.id
    req["resourceLogs"].append({"resource": {"attributes": []}, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1796655845123000000", "body": {"stringValue": "claude_code.x"}}]}]})
    # a record the event model refuses (a negative token count)
    bad = copy.deepcopy(recs[1])
    bad["attributes"].append({"key": "input_tokens", "value": {"intValue": "-1"}})
    recs.append(bad)
    st, _, ans = post(ingest, "/v1/logs", json.dumps(req))
    assert st == 200
    ps = ans["partialSuccess"]
    assert ps["rejectedLogRecords"] == "4"
    assert ps["errorMessage"].startswith("log record 0: ") and "no event name" in ps["errorMessage"]
    assert db.scalar("SELECT count(*) FROM events") == 6
    # every record refused: 200 with partialSuccess, nothing stored
    st, _, ans = post(ingest, "/v1/logs", json.dumps({"resourceLogs": req["resourceLogs"][1:]}))
    assert st == 200 and ans["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "adw.id" in ans["partialSuccess"]["errorMessage"]
    # the event model's refusal of an earlier record is the one named
    req2 = json.loads(body("mixed.json"))
    recs2 = req2["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    recs2[1]["attributes"].append({"key": "cost_usd", "value": {"stringValue": "-0.5"}})
    recs2[3]["attributes"] = []
    recs2[3]["body"] = {}
    st, _, ans = post(ingest, "/v1/logs", json.dumps(req2))
    assert st == 200 and ans["partialSuccess"]["rejectedLogRecords"] == "2"
    assert ans["partialSuccess"]["errorMessage"].startswith("log record 1: payload.cost_usd")
    # nothing at all: {}
    assert post(ingest, "/v1/logs", '{"resourceLogs":[]}')[2] == {}
    with ingest.http() as c:
        text = c.get("/metrics")[2]
    assert 'adw_ingest_rejected_total{reason="schema"} 7' in text


def test_metrics_accepted_nothing_kept(ingest, db):
    m = {"resourceMetrics": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeMetrics": [{"scope": {"name": "com.anthropic.claude_code"}, "metrics": [
            {"name": "claude_code.cost.usage", "unit": "USD", "sum": {
                "aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
                    {"asDouble": 0.0132915, "timeUnixNano": "1796655845123000000",
                     "attributes": [{"key": "model", "value": {
                         "stringValue": "claude-sonnet-4-5-20250929"}}]}]}}]}]}]}
    st, _, ans = post(ingest, "/v1/metrics", json.dumps(m))
    assert (st, ans) == (200, {})
    st, _, ans = post(ingest, "/v1/metrics", gzip.compress(json.dumps(m).encode()),
                      {"Content-Encoding": "gzip"})
    assert (st, ans) == (200, {})
    assert post(ingest, "/v1/metrics", "nope")[0] == 400
    assert post(ingest, "/v1/metrics", "\x0a", {"Content-Type": "application/x-protobuf"})[0] == 415
    assert db.scalar("SELECT count(*) FROM events") == 0
    with ingest.http() as c:
        assert c.get("/v1/logs")[0] == 405


def test_503_with_retry_after_while_postgres_is_down(ingest, db):
    db.stop()
    wait_status(ingest, "/readyz", 503)
    st, h, ans = post(ingest, "/v1/logs", body("api_request.json"))
    assert st == 503 and h.get("Retry-After") == "1", ans
    db.start()
    wait_status(ingest, "/readyz", 200, timeout=20)
    assert post(ingest, "/v1/logs", body("api_request.json"))[0] == 200
    assert db.scalar("SELECT count(*) FROM events") == 2


def test_attribution_resource_and_session_fallback(ingest, db):
    assert post(ingest, "/v1/logs", body("session_only.json"))[0] == 200
    (row,) = events(db)
    assert row[0] == "a1b2c3d4"  # the session id's first 8 characters
    assert row[4]["adw_id"] == "a1b2c3d4"
    assert db.scalar("SELECT count(*) FROM adw_runs WHERE adw_id = 'a1b2c3d4'") == 1
    # adw.id in the resource wins over session.id
    assert post(ingest, "/v1/logs", body("api_request.json"))[0] == 200
    assert {r[0] for r in events(db)} == {"a1b2c3d4", "run-otel-1"}
    # an invalid adw.id is refused
    req = json.loads(body("api_request.json"))
    for a in req["resourceLogs"][0]["resource"]["attributes"]:
        if a["key"] == "adw.id":
            a["value"]["stringValue"] = "no spaces allowed"
    st, _, ans = post(ingest, "/v1/logs", json.dumps(req))
    assert st == 200 and ans["partialSuccess"]["rejectedLogRecords"] == "2"
    assert "adw.id must be" in ans["partialSuccess"]["errorMessage"]


def test_example_environment_exports_to_ingest(make_ingest, db):
    """examples/claude/otel.env, read as the shell and the OTel exporter read it: the endpoint
    gets /v1/logs appended, the headers are URL-decoded, OTEL_RESOURCE_ATTRIBUTES become the
    resource's attributes; what that exporter sends is filed under ADW_ID and ADW_STEP."""
    import os
    import re
    import urllib.parse

    ex = Path(__file__).resolve().parents[2] / "examples" / "claude"
    ing = make_ingest(ADW_INGEST_TOKEN="tok-123")
    env = {"ADW_ID": "run-env-1", "ADW_STEP": "review", "ADW_INGEST_TOKEN": "tok-123"}
    for line in (ex / "otel.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), v)
    assert env["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1" and env["OTEL_LOGS_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/json"
    settings = json.loads((ex / "settings.otel.json").read_text())["env"]
    for k in ("CLAUDE_CODE_ENABLE_TELEMETRY", "OTEL_LOGS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
              "OTEL_EXPORTER_OTLP_ENDPOINT"):
        assert settings[k] == env[k], k
    headers = dict(urllib.parse.unquote(kv).split("=", 1)
                   for kv in env["OTEL_EXPORTER_OTLP_HEADERS"].split(","))
    assert headers == {"Authorization": "Bearer tok-123"}
    url = urllib.parse.urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"] + "/v1/logs")
    assert url.port == 8000 and url.path == "/v1/logs"
    res = [{"key": k, "value": {"stringValue": v}} for k, v in
           (kv.split("=", 1) for kv in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))]
    req = json.loads(body("session_only.json"))
    req["resourceLogs"][0]["resource"]["attributes"] += res
    st, _, ans = post(ing, url.path, json.dumps(req), headers)
    assert (st, ans) == (200, {})
    assert db.query("SELECT adw_id, step FROM events") == [("run-env-1", "review")]
    assert os.path.exists(ex / "README.md")


def test_429_with_retry_after_when_overloaded(make_ingest, db):
    from faultload import metric

    ing = make_ingest(ADW_INGEST_MAX_PENDING="1000")
    assert post(ing, "/v1/logs", body("session_only.json"))[0] == 200  # the schema is there
    blocker = db.connect(autocommit=False)
    blocker.cursor().execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    try:
        with ing.zmq() as z:
            z.send([{"type": "adw_event", "adw_id": "load", "event_type": "x"}] * 1000)
            adwtest.wait_for(lambda: metric(ing, "adw_ingest_pending_events") == 1000, 10,
                             what="1000 events waiting for their commit")
            st, h, ans = post(ing, "/v1/logs", body("api_request.json"))
            assert st == 429 and h.get("Retry-After") == "1", ans
            assert "overloaded" in ans["error"]
            blocker.commit()
            assert z.recv(10)["ok"] is True
    finally:
        blocker.close()
    assert post(ing, "/v1/logs", body("api_request.json"))[0] == 200
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'run-otel-1'") == 2


def test_over_tls_with_the_token(make_ingest, db, tmp_path):
    """The same TLS as ingest's other endpoints: an https:// OTLP endpoint, gzip and token."""
    import tls_common as T

    cert, key = T.make_cert(tmp_path)
    ing = make_ingest(start=False, ADW_INGEST_TLS_CERT=cert, ADW_INGEST_TLS_KEY=key,
                      ADW_INGEST_TOKEN="tls-tok")
    ing.start()
    ctx = T.client_ctx(cert)
    T.wait_https_ready(ing, ing.http_port, ctx)
    data = gzip.compress(body("mixed.json").encode())
    h = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    st, _, _ = T.https(ing.http_port, ctx, "POST", "/v1/logs", data, h)
    assert st == 401
    st, _, ans = T.https(ing.http_port, ctx, "POST", "/v1/logs", data,
                         {**h, "Authorization": "Bearer tls-tok"})
    assert (st, ans) == (200, {})
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'run-otel-2'") == 6
