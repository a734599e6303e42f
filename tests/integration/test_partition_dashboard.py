"""The dashboard across the retention's cut, in headless Chromium: a run view whose resume comes
back incomplete reloads from what is kept (tests/browser/partition.test.mjs). Needs what
test_dashboard.py needs (node, playwright-core from tests/browser, chromium); ADW_SKIP_BROWSER=1
skips it.
"""

import os
import shutil
import subprocess
import threading
import time

import pytest

from test_dashboard import BROWSER_DIR, CHROMIUM, WEB_DIR, _Control, _failures, _npm_ci

TIMEOUT_S = 300


@pytest.mark.needs_bin("adw-ingest", "adw-gateway")
def test_dashboard_reloads_across_the_cut(make_ingest, make_gateway, tmp_path):
    if os.environ.get("ADW_SKIP_BROWSER") == "1":
        pytest.skip("ADW_SKIP_BROWSER=1")
    node = shutil.which("node")
    if not node:
        pytest.fail("node is missing: deploy/install-deps.sh --test installs it")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing (deploy/install-deps.sh --test)")
    _npm_ci()

    ing = make_ingest(ADW_INGEST_PARTITION_EVENTS="1000", ADW_INGEST_MAX_BATCH="100",
                      ADW_INGEST_RETENTION="2s", ADW_INGEST_RETENTION_CHECK_MS="200")
    gw = make_gateway(ing, ADW_GATEWAY_WEB_DIR=str(WEB_DIR))
    control = _Control()
    thread = threading.Thread(target=control.serve_forever, daemon=True)
    thread.start()
    env = dict(os.environ, ADW_GATEWAY_URL=gw.base_url, ADW_INGEST_URL=ing.base_url,
               ADW_CONTROL_URL=control.url, ADW_CHROMIUM=CHROMIUM)
    env.pop("NODE_OPTIONS", None)
    tap = tmp_path / "browser.tap"
    deadline = time.monotonic() + TIMEOUT_S
    try:
        with open(tap, "w") as out:
            proc = subprocess.Popen([node, str(BROWSER_DIR / "partition.test.mjs")],
                                    cwd=BROWSER_DIR, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
            try:
                while proc.poll() is None and time.monotonic() < deadline:
                    control.serve(gw, 0.2)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
                    pytest.fail(f"the browser test did not finish within {TIMEOUT_S} s:\n"
                                f"{tap.read_text()[-8000:]}")
    finally:
        control.shutdown()
        control.server_close()
    report = tap.read_text()
    print(report[-4000:])
    assert proc.returncode == 0, f"browser test failed:\n{_failures(report)}"
