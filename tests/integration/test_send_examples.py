"""The examples: Claude Code settings files and examples/adw_example.sh, run with a stand-in
for claude against a real ingest."""

import json
import os
import re
import subprocess

import adwtest
import pytest
from test_send_helpers import HOOKS, STREAMS, docs, send_env

REPO = adwtest.REPO
EXAMPLES = REPO / "examples"

pytestmark = pytest.mark.needs_bin("adw-send", "adw-ingest")

HOOK_EVENTS = {json.loads(p.read_text())["hook_event_name"] for p in HOOKS.glob("*.json")} - \
    {"SomethingNew"}


def load(name):
    return json.loads((EXAMPLES / "claude" / name).read_text())


def test_settings_hooks_runs_adw_send_for_every_hook_event():
    s = load("settings.hooks.json")
    assert HOOK_EVENTS <= set(s["hooks"])
    for event, groups in s["hooks"].items():
        for g in groups:
            for h in g["hooks"]:
                assert h["type"] == "command" and h["command"].startswith("adw-send --hook")
                assert 0 < h["timeout"] <= 10


def test_settings_http_posts_every_hook_to_ingest_and_ingest_takes_it(make_ingest):
    ing = make_ingest(ADW_INGEST_TOKEN="tok")
    s = load("settings.http.json")
    assert HOOK_EVENTS <= set(s["hooks"])
    env = {"ADW_INGEST_TOKEN": "tok", "ADW_ID": "httphk", "ADW_STEP": "build"}
    sent = 0
    for path in sorted(HOOKS.glob("*.json")):
        hook = json.loads(path.read_text())
        groups = s["hooks"].get(hook["hook_event_name"])
        if not groups:
            continue
        h = groups[0]["hooks"][0]
        if h["type"] == "command":
            assert h["command"].startswith("adw-send --hook")
            continue
        assert h["type"] == "http" and h["url"].endswith("/api/hooks")
        # What Claude Code does: $VAR in headers from allowedEnvVars, the hook JSON as body.
        headers = {k: re.sub(r"\$\{?(\w+)\}?",
                             lambda m: env.get(m.group(1), "") if m.group(1) in
                             h["allowedEnvVars"] else "", v) for k, v in h["headers"].items()}
        url = h["url"].replace("127.0.0.1:8000", f"127.0.0.1:{ing.http_port}")
        st, _, body = adwtest.post_json(url, hook, headers=headers)
        assert st == 200, (path.name, body)
        sent += 1
    d = docs(ing.pg)
    assert len(d) == sent >= 10
    assert {x["adw_id"] for x in d} == {"httphk"} and {x["step"] for x in d} == {"build"}


def fake_claude(tmp_path, fail_step=None):
    """A stand-in for `claude -p ... --output-format stream-json --verbose`: prints a recorded
    session (or a failed one for fail_step) and exits like claude would."""
    script = tmp_path / "claude"
    script.write_text(f"""#!/bin/sh
if [ "$ADW_STEP" = "{fail_step or '-'}" ]; then
    cat "{STREAMS / 'failed.jsonl'}"; exit 1
fi
cat "{STREAMS / 'session.jsonl'}"
""")
    script.chmod(0o755)
    return script


def run_example(ingest, tmp_path, fail_step=None):
    env = send_env({"ADW_ID": "exrun", "ADW_INGEST_ZMQ": ingest.zmq_endpoint,
                    "ADW_SEND": adwtest.binary("adw-send"),
                    "ADW_CLAUDE": fake_claude(tmp_path, fail_step),
                    "ADW_SPOOL_DIR": tmp_path / "spool", "ADW_LOG_LEVEL": "warn"})
    return subprocess.run(["bash", str(EXAMPLES / "adw_example.sh"), 'Add "JWT" auth'],
                          env=env, capture_output=True, timeout=120)


def test_adw_example_frames_each_step_and_streams_its_events(ingest, tmp_path):
    r = run_example(ingest, tmp_path)
    assert r.returncode == 0, r.stderr
    d = docs(ingest.pg)
    sys_events = [(x.get("step"), x["event"], x.get("status")) for x in d
                  if x["type"] == "system"]
    expect = [(None, "adw_start", "running")]
    for s in ("plan", "build", "review", "document"):
        expect += [(s, "step_start", "running"), (s, "step_complete", "completed")]
    expect.append((None, "adw_complete", "completed"))
    assert sys_events == expect
    assert d[0]["payload"] == {"task": 'Add "JWT" auth', "workflow": "adw_example"}
    for s in ("plan", "build", "review", "document"):
        mine = [x for x in d if x.get("step") == s and x["type"] == "adw_event"]
        assert mine[0]["event_type"] == "SystemInit" and mine[-1]["event_type"] == \
            "ResultMessage"
    steps = ingest.pg.query("SELECT step, status, duration_ms FROM adw_steps "
                            "WHERE adw_id='exrun' ORDER BY first_id")
    assert [(s, st) for s, st, _ in steps] == [("plan", "completed"), ("build", "completed"),
                                               ("review", "completed"),
                                               ("document", "completed")]
    assert all(ms is not None and ms >= 0 for _, _, ms in steps)
    assert ingest.pg.scalar("SELECT status FROM adw_runs WHERE adw_id='exrun'") == "completed"


def test_adw_example_stops_at_a_failed_step(ingest, tmp_path):
    r = run_example(ingest, tmp_path, fail_step="build")
    assert r.returncode == 1
    d = docs(ingest.pg)
    assert d[-1]["event"] == "adw_failed" and d[-1]["step"] == "build"
    assert ("build", "failed") in [(x.get("step"), x.get("status")) for x in d
                                   if x.get("event") == "step_complete"]
    assert not any(x.get("step") == "review" for x in d)
    assert ingest.pg.scalar("SELECT status FROM adw_runs WHERE adw_id='exrun'") == "failed"


def test_adw_example_with_ingest_down_does_not_stop_the_workflow(tmp_path):
    env = send_env({"ADW_ID": "offline", "ADW_INGEST_ZMQ":
                    f"tcp://127.0.0.1:{adwtest.free_port()}",
                    "ADW_SEND": adwtest.binary("adw-send"), "ADW_CLAUDE": fake_claude(tmp_path),
                    "ADW_SPOOL_DIR": tmp_path / "spool", "ADW_STEPS": "plan",
                    "ADW_LOG_LEVEL": "error"})
    r = subprocess.run(["bash", str(EXAMPLES / "adw_example.sh"), "offline"], env=env,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(os.listdir(tmp_path / "spool")) > 5
