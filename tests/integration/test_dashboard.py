"""The swimlane dashboard in headless Chromium against the real stack.

Starts PostgreSQL, adw-ingest and adw-gateway (serving gateway/web/ from this tree), then runs
tests/browser/dashboard.test.mjs (node:test, playwright-core driving Debian's /usr/bin/chromium)
with ADW_GATEWAY_URL, ADW_INGEST_URL and ADW_CONTROL_URL, and asserts that it passes. The
control URL is a small HTTP server here that kills and restarts the gateway on its port, for
the reconnect test. A second gateway requires a token (ADW_TOKEN_GATEWAY_URL,
ADW_GATEWAY_TOKEN): the page passes the one in its own URL on. Screenshots land in
tests/browser/artifacts/ (gitignored).

Needs node and npm (playwright-core is installed with `npm ci` in tests/browser when missing;
no browser is ever downloaded) and chromium (deploy/install-deps.sh --test installs both).
ADW_SKIP_BROWSER=1 skips this test; ADW_BROWSER_TESTS=<pattern> runs only the browser tests
whose name matches (node --test-name-pattern).
"""

import http.server
import json
import os
import queue
import shutil
import subprocess
import threading
import time

import adwtest
import pytest

BROWSER_DIR = adwtest.REPO / "tests" / "browser"
WEB_DIR = adwtest.REPO / "gateway" / "web"
CHROMIUM = os.environ.get("ADW_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_S = 900
TOKEN = "dash-t0ken/+="  # characters that need escaping in a query string


def _playwright_installed():
    """True when node_modules holds the playwright-core version package-lock.json names."""
    try:
        lock = json.loads((BROWSER_DIR / "package-lock.json").read_text())
        want = lock["packages"]["node_modules/playwright-core"]["version"]
        have = json.loads(
            (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").read_text())
        return have.get("version") == want
    except (OSError, KeyError, ValueError):
        return False


def _npm_ci():
    if _playwright_installed():
        return
    npm = shutil.which("npm")
    if not npm:
        pytest.fail("npm is missing: deploy/install-deps.sh --test installs it")
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1", npm_config_audit="false",
               npm_config_fund="false", npm_config_update_notifier="false")
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, env=env,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not _playwright_installed():
        pytest.fail(f"npm ci in tests/browser failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")


class _Control(http.server.ThreadingHTTPServer):
    """POST /gateway/kill (SIGKILL, waits for the exit) and POST /gateway/start (the same
    port and environment, waits for /readyz): what the browser's reconnect test drives.

    The handlers only queue the request: the test's own thread carries it out (serve()), since
    the harness ties each program's life to the thread that started it (PR_SET_PDEATHSIG)."""

    daemon_threads = True

    def __init__(self):
        self.requests = queue.Queue()
        super().__init__((adwtest.LOOPBACK, 0), _ControlHandler)

    @property
    def url(self):
        return f"http://{adwtest.LOOPBACK}:{self.server_address[1]}"

    def serve(self, gateway, timeout):
        """Carries out queued requests on this thread for up to `timeout` seconds."""
        try:
            item = self.requests.get(timeout=timeout)
        except queue.Empty:
            return
        try:
            if item["path"] == "/gateway/kill":
                gateway.kill9()
                gateway.wait(10)
            else:
                gateway.start_again()
                gateway.wait_ready(gateway.base_url + "/readyz", timeout=60)
            item["result"] = (200, {"ok": True})
        except Exception as e:  # reported to the browser test, which fails with it
            item["result"] = (500, {"error": repr(e)})
        item["done"].set()


class _ControlHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path not in ("/gateway/kill", "/gateway/start"):
            self._answer(404, {"error": "unknown path"})
            return
        item = {"path": self.path, "done": threading.Event(), "result": None}
        self.server.requests.put(item)
        if not item["done"].wait(120):
            self._answer(504, {"error": "not carried out within 120 s"})
            return
        self._answer(*item["result"])

    def _answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.needs_bin("adw-ingest", "adw-gateway")
def test_dashboard_in_chromium(ingest, make_gateway, tmp_path):
    if os.environ.get("ADW_SKIP_BROWSER") == "1":
        pytest.skip("ADW_SKIP_BROWSER=1")
    node = shutil.which("node")
    if not node:
        pytest.fail("node is missing: deploy/install-deps.sh --test installs it")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium "
                    "(deploy/install-deps.sh --test)")
    _npm_ci()

    gw = make_gateway(ingest, ADW_GATEWAY_WEB_DIR=str(WEB_DIR))
    gw_token = make_gateway(ingest, ADW_GATEWAY_WEB_DIR=str(WEB_DIR), ADW_GATEWAY_TOKEN=TOKEN,
                            name="gateway-token")
    control = _Control()
    thread = threading.Thread(target=control.serve_forever, name="dashboard-control", daemon=True)
    thread.start()
    env = dict(os.environ,
               ADW_GATEWAY_URL=gw.base_url,
               ADW_INGEST_URL=ingest.base_url,
               ADW_CONTROL_URL=control.url,
               ADW_TOKEN_GATEWAY_URL=gw_token.base_url,
               ADW_GATEWAY_TOKEN=TOKEN,
               ADW_CHROMIUM=CHROMIUM,
               ADW_BROWSER_ARTIFACTS=str(BROWSER_DIR / "artifacts"))
    env.pop("NODE_OPTIONS", None)
    tap = tmp_path / "browser.tap"
    deadline = time.monotonic() + TIMEOUT_S
    try:
        with open(tap, "w") as out:
            pattern = os.environ.get("ADW_BROWSER_TESTS")  # a test name pattern, to iterate
            args = [f"--test-name-pattern={pattern}"] if pattern else []
            node_proc = subprocess.Popen([node, *args, str(BROWSER_DIR / "dashboard.test.mjs")],
                                         cwd=adwtest.REPO, env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
            try:
                while node_proc.poll() is None and time.monotonic() < deadline:
                    control.serve(gw, 0.2)
            finally:
                if node_proc.poll() is None:
                    node_proc.kill()
                    node_proc.wait(10)
                    pytest.fail(f"the browser tests did not finish within {TIMEOUT_S} s:\n"
                                f"{tap.read_text()[-8000:]}")
    finally:
        control.shutdown()
        control.server_close()
    report = tap.read_text()
    print(report[-6000:])
    assert node_proc.returncode == 0, (f"browser tests failed (exit {node_proc.returncode}):\n"
                                       f"{_failures(report)}")


def _failures(tap):
    """The 'not ok' blocks of a TAP report (the whole report's tail when there are none)."""
    lines = tap.splitlines()
    out, keep = [], False
    for line in lines:
        if line.startswith("not ok"):
            keep = True
        elif line.startswith("ok ") or line.startswith("# Subtest"):
            keep = False
        if keep:
            out.append(line)
    return "\n".join(out)[-12000:] if out else "\n".join(lines[-80:])
