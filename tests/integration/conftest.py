"""Fixtures for the integration tests (see adwtest.py for the helpers themselves).

  pg            session: one PostgreSQL cluster for the whole run, removed at the end
  db            function: pg, restarted if a test left it down, with an empty database
  ingest        function: adw-ingest against db, ready (skips when not built)
  gateway       function: adw-gateway subscribed to `ingest`, ready (skips when not built)
  make_ingest   function: factory, make_ingest(**env) -> Ingest (several, custom env)
  make_gateway  function: factory, make_gateway(ingest, **env) -> Gateway
  proc          function: factory, proc(argv, env=None, name=None) -> started Proc
  adw_procs     autouse: every Proc created during the test; stopped with SIGTERM at teardown
                (so that LeakSanitizer runs at their exit), then killed if still there; the
                test errors when any of their logs holds a sanitizer report, or when a
                connection of the programs to PostgreSQL outlives them; log tails are added to
                the report of a failed test

Marker: @pytest.mark.needs_bin("adw-ingest", ...) skips a test when the build lacks a program.
"""

import signal
import time

import adwtest
import pytest

# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer write when they find
# something (the sanitizer build runs every integration test).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")


def _sigterm(signum, frame):
    # A terminated run unwinds like Ctrl-C, so finalizers and atexit remove what it started.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_bin(*names): skip unless ADW_BUILD_DIR/bin holds these programs")
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm)


def require_bin(*names):
    """Skips the current test unless every program is built."""
    missing = [n for n in names if not adwtest.have_binary(n)]
    if missing:
        pytest.skip(f"not built: {', '.join(missing)} (looked in {adwtest.BIN_DIR})")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs_bin"):
        require_bin(*mark.args)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for p in getattr(item, "_adw_procs", ()):
        if p.popen is not None:
            rep.sections.append((f"adw log: {p.name} (rc={p.returncode})", p.log_tail(60)))
    cluster = getattr(item, "funcargs", {}).get("pg") or getattr(item, "funcargs", {}).get("db")
    if isinstance(cluster, adwtest.PgCluster):
        rep.sections.append((f"adw log: postgres ({cluster.logfile})", cluster.log_tail(30)))


@pytest.fixture(autouse=True)
def adw_procs(request, tmp_path):
    """The Procs created during this test; logs go to tmp_path/logs."""
    procs = []
    request.node._adw_procs = procs
    adwtest.set_tracker(procs)
    adwtest.set_log_dir(tmp_path / "logs")
    yield procs
    adwtest.set_tracker(None)
    adwtest.set_log_dir(None)
    for p in procs:
        if p.popen is not None and p.alive():
            p.stop(timeout=15)  # a clean exit, where LeakSanitizer reports
        p.cleanup()
    problems = []
    for p in procs:
        text = p.log_text() if p.popen is not None else ""
        for marker in SANITIZER_MARKERS:
            at = text.find(marker)
            if at >= 0:
                problems.append(f"{p.name}: {text[at:at + 2000]}")
                break
    cluster = request.node.funcargs.get("db") or request.node.funcargs.get("pg")
    if procs and isinstance(cluster, adwtest.PgCluster) and cluster.is_running():
        left = _program_connections(cluster)
        if left:
            problems.append(f"connections to PostgreSQL left behind after the programs ended: "
                            f"{left}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _program_connections(cluster, timeout=10.0):
    """The project's programs' connections still open in cluster's pg_stat_activity, waiting up
    to timeout for the server to notice that their processes have gone."""
    sql = ("SELECT application_name, count(*) FROM pg_stat_activity"
           " WHERE application_name LIKE 'adw-%' GROUP BY 1")
    deadline = time.monotonic() + timeout
    while True:
        try:
            rows = cluster.query(sql, dbname="postgres")
        except Exception:  # the test left the server unreachable: nothing to check
            return []
        if not rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.fixture(scope="session")
def pg():
    cluster = adwtest.PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def db(pg):
    if not pg.is_running():
        pg.start()
    pg.reset()
    return pg


@pytest.fixture
def make_ingest(db):
    def make(**kwargs):
        require_bin("adw-ingest")
        return adwtest.Ingest(db, **kwargs)

    return make


@pytest.fixture
def ingest(make_ingest):
    return make_ingest()


@pytest.fixture
def make_gateway(db):
    def make(ingest, **kwargs):
        require_bin("adw-gateway")
        return adwtest.Gateway(db, ingest, **kwargs)

    return make


@pytest.fixture
def gateway(make_gateway, ingest):
    return make_gateway(ingest)


@pytest.fixture
def proc():
    def make(argv, env=None, name=None, cwd=None):
        return adwtest.Proc(argv, env=env, name=name, cwd=cwd).start()

    return make
