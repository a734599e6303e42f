"""adw-send from flags: every flag and environment variable, both transports, usage errors,
invalid events and the --strict exit codes, against a real ingest and PostgreSQL."""

import re

import adwtest
import pytest
from test_send_helpers import count, dead_port, docs, run_send

pytestmark = pytest.mark.needs_bin("adw-send", "adw-ingest")

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_help_lists_every_flag_with_its_environment_and_version():
    r = run_send(["--help"])
    assert r.returncode == 0
    out = r.stdout.decode()
    for flag in ("--adw-id", "--step", "--type", "--event-type", "--event", "--status",
                 "--summary", "--payload", "--json", "--hook", "--stream-json", "--http",
                 "--zmq", "--token", "--timeout-ms", "--spool", "--strict"):
        assert flag in out, flag
    for env in ("ADW_ID", "ADW_STEP", "ADW_INGEST_URL", "ADW_INGEST_ZMQ", "ADW_INGEST_TOKEN"):
        assert env in out, env
    r = run_send(["--version"])
    assert r.returncode == 0 and r.stdout.decode().startswith("adw-send ")


@pytest.mark.parametrize("transport", ["zmq", "http"])
def test_every_event_flag_lands_in_the_events_table(ingest, tmp_path, transport):
    where = ["--zmq", ingest.zmq_endpoint] if transport == "zmq" else ["--http", ingest.base_url]
    r = run_send([*where, "--spool", tmp_path / "spool", "--strict", "--adw-id", "run-1.a:b",
                  "--step", "build", "--type", "adw_event", "--event-type", "ToolUseBlock",
                  "--status", "running", "--summary", "Writing auth middleware",
                  "--payload", '{"tool_name":"Write","cost_usd":0.25,"input_tokens":10}',
                  "--duration-ms", "45", "--event-id", "my-key-1"])
    assert r.returncode == 0, r.stderr
    [doc] = docs(ingest.pg)
    assert doc["type"] == "adw_event" and doc["adw_id"] == "run-1.a:b"
    assert doc["step"] == "build" and doc["event_type"] == "ToolUseBlock"
    assert doc["status"] == "running" and doc["summary"] == "Writing auth middleware"
    assert doc["payload"] == {"tool_name": "Write", "cost_usd": 0.25, "input_tokens": 10}
    assert doc["duration_ms"] == 45 and doc["event_id"] == "my-key-1"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", doc["timestamp"])
    row = ingest.pg.query("SELECT cost_usd, input_tokens, event_count FROM adw_runs")
    assert row == [(0.25, 10, 1)] or float(row[0][0]) == 0.25


def test_event_flag_makes_a_system_event_and_ids_are_random_hex(ingest, tmp_path):
    for _ in range(2):
        r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--adw-id", "r1",
                      "--step", "plan", "--event", "step_complete", "--status", "completed",
                      "--duration-ms", "1200"])
        assert r.returncode == 0, r.stderr
    a, b = docs(ingest.pg)
    assert a["type"] == "system" and a["event"] == "step_complete" and "event_type" not in a
    assert HEX32.match(a["event_id"]) and HEX32.match(b["event_id"])
    assert a["event_id"] != b["event_id"]
    st = ingest.pg.query("SELECT status, duration_ms FROM adw_steps WHERE adw_id='r1'")
    assert st == [("completed", 1200)]


def test_same_event_id_twice_stores_once(ingest, tmp_path):
    args = ["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--adw-id", "r1",
            "--event-type", "TextBlock", "--event-id", "dup-1", "--strict"]
    assert run_send(args).returncode == 0
    assert run_send(args).returncode == 0
    assert count(ingest.pg) == 1


def test_environment_supplies_run_step_transport_and_token(make_ingest, tmp_path):
    ing = make_ingest(ADW_INGEST_TOKEN="s3cret")
    env = {"ADW_ID": "env-run", "ADW_STEP": "review", "ADW_INGEST_URL": ing.base_url,
           "ADW_INGEST_TOKEN": "s3cret"}
    r = run_send(["--spool", tmp_path, "--event-type", "TextBlock", "--strict"], env=env)
    assert r.returncode == 0, r.stderr
    [doc] = docs(ing.pg)
    assert (doc["adw_id"], doc["step"]) == ("env-run", "review")
    # Flags win over the environment.
    r = run_send(["--spool", tmp_path, "--adw-id", "flag-run", "--step", "fix",
                  "--event-type", "TextBlock", "--strict"], env=env)
    assert r.returncode == 0, r.stderr
    assert docs(ing.pg)[-1]["adw_id"] == "flag-run" and docs(ing.pg)[-1]["step"] == "fix"


def test_zmq_from_environment_and_a_bind_address_means_localhost(ingest, tmp_path):
    env = {"ADW_INGEST_ZMQ": f"tcp://*:{ingest.zmq_port}", "ADW_ID": "z1"}
    r = run_send(["--spool", tmp_path, "--event-type", "TextBlock", "--strict"], env=env)
    assert r.returncode == 0, r.stderr
    assert count(ingest.pg) == 1


def test_zmq_flag_wins_over_ingest_url_in_the_environment(ingest, tmp_path):
    env = {"ADW_INGEST_URL": f"http://127.0.0.1:{dead_port()}", "ADW_ID": "z1"}
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--event-type", "T",
                  "--strict"], env=env)
    assert r.returncode == 0, r.stderr
    r = run_send(["--http", ingest.base_url, "--spool", tmp_path, "--event-type", "T",
                  "--strict"], env={"ADW_INGEST_ZMQ": f"tcp://127.0.0.1:{dead_port()}",
                                    "ADW_ID": "z1"})
    assert r.returncode == 0, r.stderr
    assert count(ingest.pg) == 2


def test_http_url_with_a_path_prefix_or_the_full_path(ingest, tmp_path):
    for url in (ingest.base_url + "/", ingest.base_url + "/api/events",
                ingest.base_url + "/api/events/broadcast"):
        r = run_send(["--http", url, "--spool", tmp_path, "--adw-id", "p", "--event-type", "T",
                      "--strict"])
        assert r.returncode == 0, (url, r.stderr)
    assert count(ingest.pg) == 3


def test_wrong_or_missing_token_spools_and_strict_says_so(make_ingest, tmp_path):
    ing = make_ingest(ADW_INGEST_TOKEN="right")
    spool = tmp_path / "spool"
    base = ["--http", ing.base_url, "--spool", spool, "--adw-id", "t", "--event-type", "T"]
    r = run_send([*base, "--token", "wrong"])
    assert r.returncode == 0 and "401" in r.stderr
    r = run_send([*base, "--strict"])
    assert r.returncode == 75 and "401" in r.stderr
    assert count(ing.pg) == 0
    r = run_send([*base, "--token", "right", "--strict"])
    assert r.returncode == 0, r.stderr
    assert count(ing.pg) == 3  # the two spooled ones first, then the new one


@pytest.mark.parametrize("args, why", [
    (["--bogus"], "unknown option"),
    (["--json", "--hook"], "exclude"),
    (["--hook", "--stream-json"], "exclude"),
    (["--http", "http://127.0.0.1:1", "--zmq", "tcp://127.0.0.1:1"], "not both"),
    (["--json", "--summary", "x"], "no effect"),
    (["--hook", "--event-type", "x"], "no effect"),
    (["--tee"], "--stream-json"),
    (["--http", "https://example.org", "--ca-file", "/nonexistent/ca.pem"], "ca.pem"),
    (["--http", "ftp://example.org"], "https://"),
    (["--http", "http://[::1"], "unclosed"),
    (["--zmq", "udp://127.0.0.1:5555"], "tcp://"),
    (["--zmq", "tcp://127.0.0.1"], "tcp://"),
    (["--timeout-ms", "-1"], "out of range"),
    (["--timeout-ms", "soon"], "expected"),
])
def test_usage_errors_exit_64_with_a_reason(tmp_path, args, why):
    r = run_send([*args, "--spool", tmp_path, "--adw-id", "u", "--event-type", "T"])
    assert r.returncode == 64, r.stderr
    assert why in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, why", [
    (["--event-type", "T"], "no adw_id"),
    (["--adw-id", "bad id!", "--event-type", "T"], "adw_id"),
    (["--adw-id", "a"], "event_type"),
    (["--adw-id", "a", "--type", "system"], "event"),
    (["--adw-id", "a", "--type", "weird", "--event-type", "T"], "type"),
    (["--adw-id", "a", "--event-type", "T", "--payload", "[1,2]"], "--payload"),
    (["--adw-id", "a", "--event-type", "T", "--payload", "{nope"], "--payload"),
    (["--adw-id", "a", "--event-type", "T", "--status", "x" * 33], "status"),
    (["--adw-id", "a", "--event-type", "T", "--summary", "y" * 5000], "summary"),
])
def test_invalid_events_are_not_sent_exit_0_or_65_with_strict(ingest, tmp_path, args, why):
    base = ["--zmq", ingest.zmq_endpoint, "--spool", tmp_path / "spool"]
    r = run_send([*base, *args])
    assert r.returncode == 0, r.stderr
    assert why in r.stderr and "not sent" in r.stderr
    r = run_send([*base, *args, "--strict"])
    assert r.returncode == 65, r.stderr
    assert count(ingest.pg) == 0
    assert not (tmp_path / "spool").exists() or not any((tmp_path / "spool").glob("e-*"))


def test_quiet_by_default_on_success(ingest, tmp_path):
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", tmp_path, "--adw-id", "q",
                  "--event-type", "T"], env={"ADW_LOG_LEVEL": None})
    assert r.returncode == 0 and r.stderr == "" and r.stdout == b""


def test_strict_exit_codes_for_spooled_and_lost(tmp_path):
    dead = f"tcp://127.0.0.1:{dead_port()}"
    base = ["--zmq", dead, "--adw-id", "s", "--event-type", "T", "--strict"]
    assert run_send([*base, "--spool", tmp_path]).returncode == 75
    r = run_send([*base, "--spool", "off"])
    assert r.returncode == 74 and "lost" in r.stderr
    assert run_send(base[:-1] + ["--spool", "off"]).returncode == 0


def test_default_spool_is_under_xdg_state_home_else_home(tmp_path):
    dead = f"tcp://127.0.0.1:{dead_port()}"
    base = ["--zmq", dead, "--adw-id", "s", "--event-type", "T"]
    assert run_send(base, env={"XDG_STATE_HOME": tmp_path / "state"}).returncode == 0
    assert len(list((tmp_path / "state/adw/spool").glob("e-*.json"))) == 1
    assert run_send(base, home=tmp_path / "home").returncode == 0
    assert len(list((tmp_path / "home/.local/state/adw/spool").glob("e-*.json"))) == 1
    assert run_send(base, env={"ADW_SPOOL_DIR": tmp_path / "env"}).returncode == 0
    assert len(list((tmp_path / "env").glob("e-*.json"))) == 1


def test_ipc_endpoint_is_refused_cleanly_when_nothing_listens(tmp_path):
    r = run_send(["--zmq", f"ipc://{tmp_path}/nothing.sock", "--spool", tmp_path / "s",
                  "--adw-id", "i", "--event-type", "T", "--strict"])
    assert r.returncode == 75 and "spooled" in r.stderr
