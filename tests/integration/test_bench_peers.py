"""The peer comparison harness (tests/bench/peers) works: in its tiny mode (a few clients, a
few events, one run per workload) against the three servers, every client on every side
receives every event exactly once, every publish is acknowledged, and the project's side stored
every event it acknowledged, with PostgreSQL's fsync and synchronous_commit on.

Needs node, `npm ci` in tests/bench/peers (ws, nats, mqtt: installed here when missing) and
Debian's nats-server and mosquitto (deploy/install-deps.sh --test and --bench install them).
"""

import json
import os
import shutil
import subprocess
import sys

import adwtest
import pytest

PEERS = adwtest.REPO / "tests" / "bench" / "peers"
pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")


def _installed():
    try:
        lock = json.loads((PEERS / "package-lock.json").read_text())
        for m in ("ws", "nats", "mqtt"):
            want = lock["packages"][f"node_modules/{m}"]["version"]
            have = json.loads((PEERS / "node_modules" / m / "package.json").read_text())
            if have.get("version") != want:
                return False
        return True
    except (OSError, KeyError, ValueError):
        return False


def _npm_ci():
    if _installed():
        return
    npm = shutil.which("npm")
    if not npm:
        pytest.fail("npm is missing: deploy/install-deps.sh --test installs it")
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PEERS, capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0 or not _installed():
        pytest.fail(f"npm ci in tests/bench/peers failed ({r.returncode}):\n{r.stderr}")


def test_tiny_mode_delivers_every_event_once_on_every_side(tmp_path):
    _npm_ci()
    out = tmp_path / "runs.jsonl"
    r = subprocess.run([sys.executable, str(PEERS / "peers.py"), "--tiny", "--timeout", "60",
                        "--json-out", str(out)],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, ADW_BUILD_DIR=str(adwtest.BUILD_DIR)))
    assert r.returncode == 0, f"peers.py exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    seen = {(x["workload"], x["backend"]) for x in runs}
    assert seen == {(w, b) for w in ("latency", "throughput", "fanout")
                    for b in ("adw", "nats", "mqtt")}, seen
    for x in runs:
        what = f"{x['workload']} on {x['backend']}"
        assert x["acked"] == x["events"] and x["refused"] == 0, what
        assert x["clients_complete"] == x["clients"], what
        assert x["deliveries"] == x["clients"] * x["events"], what
        assert x["missing"] == 0 and x["duplicated"] == 0 and x["foreign"] == 0, what
        assert x["latency_samples"] > 0 and x["deliveries_per_s"] > 0, what
        if x["backend"] == "adw":
            assert x["stored"] == x["events"], what
            assert x["postgres"]["fsync"] == "on", what
            assert x["postgres"]["synchronous_commit"] == "on", what
    assert "| workload | project | NATS | Mosquitto |" in r.stdout
    assert "| 1,000 clients x 300 events: deliveries/s |" in r.stdout
    assert '"fsync": "on"' in r.stdout and '"synchronous_commit": "on"' in r.stdout
