"""Integration-test harness: real servers on loopback, bounded in time.

Starts a throwaway PostgreSQL 15 cluster and the project's programs on free 127.0.0.1 ports,
and talks to them on the wire: HTTP (http.client and raw sockets), ZeroMQ (DEALER/REQ
submissions, a SUB collector), WebSocket (python3-websockets, plus a raw client for frames a
library will not send). Debian's /usr/bin/python3 with its python3-* packages only.

Everything takes a timeout and raises TimeoutError (or AssertionError with the process log)
when it runs out; nothing waits forever. Processes and clusters started here are killed and
removed at exit even when a test fails.
"""

import asyncio
import atexit
import base64
import contextlib
import ctypes
import hashlib
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import msgpack
import psycopg2
import websockets
import websockets.exceptions
import zmq

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("ADW_BUILD_DIR") or REPO / "build")
BIN_DIR = BUILD_DIR / "bin"
PG_BIN = Path(os.environ.get("ADW_PG_BIN") or "/usr/lib/postgresql/15/bin")
LOOPBACK = "127.0.0.1"
PG_PREFIX = "adw-pg-"  # temp cluster directories: /tmp/adw-pg-XXXX


# ---------------------------------------------------------------------------------------------
# Small utilities


def free_port(host=LOOPBACK):
    """Returns a TCP port on host that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(n, host=LOOPBACK):
    """Returns n distinct free ports (held open together while chosen, so no duplicates)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value, which it returns; TimeoutError after
    timeout seconds. Exceptions from pred propagate."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.1f}s")
        time.sleep(interval)


def binary(name):
    """Path of a program in the build tree (ADW_BUILD_DIR/bin/name); it may not exist."""
    return BIN_DIR / name


def have_binary(name):
    """True when the build tree holds an executable `name`."""
    p = binary(name)
    return p.is_file() and os.access(p, os.X_OK)


def _is_root():
    return os.geteuid() == 0


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------
# PostgreSQL


class PgError(RuntimeError):
    """A cluster command failed; the message carries the command's output or the log tail."""


class PgCluster:
    """A private PostgreSQL cluster in a fresh temp directory, listening on 127.0.0.1:port.

    As root, every server command runs as `postgres` (runuser) and the directory belongs to
    it. Trust auth for local and 127.0.0.1; database `dbname` created at first start.
    tmpfs=("data" | "wal", MiB) (root only): the data directory, or only its pg_wal (then with
    1 MiB WAL segments), is a tmpfs of that size mounted before initdb, so that a test can fill
    PostgreSQL's disk (.tmpfs_dir is the mount point). destroy() (also registered with atexit)
    stops it, unmounts and removes the directory.
    """

    def __init__(self, port=None, dbname="adw", settings=None, timeout=60.0, tmpfs=None):
        self.tmpfs = tmpfs
        self.dbname = dbname
        self.timeout = timeout
        self.settings = dict(settings or {})
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.host = LOOPBACK
        self.base = None
        self._destroyed = False
        _sweep_stale_clusters()

    # Paths, available after start().
    @property
    def datadir(self):
        return self.base / "data"

    @property
    def sockdir(self):
        return self.base / "sock"

    @property
    def tmpfs_dir(self):
        """Where the tmpfs is mounted: the data directory, or base/wal for pg_wal."""
        return self.base / ("wal" if self.tmpfs and self.tmpfs[0] == "wal" else "data")

    @property
    def logfile(self):
        return self.base / "postgres.log"

    @property
    def url(self):
        """postgresql://postgres@127.0.0.1:PORT/DBNAME"""
        return self.dsn()

    def dsn(self, dbname=None):
        """The libpq URI for dbname (default: the cluster's database)."""
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname or self.dbname}"

    def _as_pg(self, argv):
        return (["runuser", "-u", "postgres", "--"] if _is_root() else []) + [str(a) for a in argv]

    def _run(self, argv, timeout=None, check=True):
        timeout = timeout or self.timeout
        try:
            r = subprocess.run(
                self._as_pg(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=str(self.base) if self.base else "/",
                timeout=timeout + 5,
                text=True,
            )
        except subprocess.TimeoutExpired as e:
            raise PgError(f"{argv[0]} timed out after {timeout}s") from e
        if check and r.returncode != 0:
            raise PgError(f"{' '.join(map(str, argv))} exited {r.returncode}:\n{r.stdout}")
        return r

    def _init(self):
        self.base = Path(tempfile.mkdtemp(prefix=PG_PREFIX, dir="/tmp"))
        (self.base / "owner.pid").write_text(f"{os.getpid()}\n")
        self.sockdir.mkdir()
        if _is_root():
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockdir, "postgres", "postgres")
        atexit.register(self.destroy)
        extra = []
        if self.tmpfs:
            what, mb = self.tmpfs
            if not _is_root():
                raise PgError("a tmpfs data directory needs root")
            self.tmpfs_dir.mkdir()
            pw = pwd.getpwnam("postgres")
            subprocess.run(["mount", "-t", "tmpfs", "-o",
                            f"size={int(mb)}m,mode=0700,uid={pw.pw_uid},gid={pw.pw_gid}",
                            "tmpfs", str(self.tmpfs_dir)],
                           check=True, capture_output=True, timeout=30)
            if what == "wal":
                extra = ["--waldir", self.tmpfs_dir, "--wal-segsize", "1"]
        self._run(
            [PG_BIN / "initdb", "-D", self.datadir, "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-locale", "--no-sync", *extra]
        )
        hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        self._write_as_pg(self.datadir / "pg_hba.conf", hba)
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write("\ninclude_if_exists 'adw.conf'\n")

    def _write_as_pg(self, path, text):
        path.write_text(text)
        if _is_root():
            shutil.chown(path, "postgres", "postgres")

    def _write_conf(self):
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "max_connections": "200",
            "log_min_messages": "warning",
        }
        for k, v in self.settings.items():
            conf[k] = v if isinstance(v, (int, float)) or str(v).startswith("'") else f"'{v}'"
        text = "".join(f"{k} = {v}\n" for k, v in conf.items())
        self._write_as_pg(self.datadir / "adw.conf", text)

    def start(self, timeout=None):
        """Creates the cluster on first call, then starts it on self.port and creates the
        database if missing. A port taken meanwhile by someone else is replaced by another on
        the first start only (a restart keeps its port). Returns self."""
        timeout = timeout or self.timeout
        first = self.base is None
        if self._destroyed:
            raise PgError("cluster already destroyed")
        if first:
            self._init()
        for attempt in range(3):
            self._write_conf()
            r = self._run(
                [PG_BIN / "pg_ctl", "start", "-D", self.datadir, "-w", "-t", int(timeout),
                 "-l", self.logfile],
                timeout=timeout, check=False,
            )
            if r.returncode == 0:
                break
            log = self.log_tail()
            if first and not self._fixed_port and attempt < 2 and "in use" in log:
                self.port = free_port()
                continue
            raise PgError(f"pg_ctl start failed:\n{r.stdout}\n--- postgres.log ---\n{log}")
        self._ensure_db()
        return self

    def _ensure_db(self):
        conn = self.connect("postgres")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.dbname}"')
        finally:
            conn.close()

    def is_running(self):
        """True when pg_ctl status reports the server running."""
        if self.base is None or not self.datadir.exists():
            return False
        return self._run([PG_BIN / "pg_ctl", "status", "-D", self.datadir], check=False).returncode == 0

    def stop(self, mode="fast", timeout=None):
        """Stops the server (mode fast, smart or immediate) keeping the data; no-op when not
        running."""
        if not self.is_running():
            return
        timeout = timeout or self.timeout
        self._run([PG_BIN / "pg_ctl", "stop", "-D", self.datadir, "-m", mode, "-w",
                   "-t", int(timeout)], timeout=timeout)

    def crash(self):
        """Stops the server as a crash would (pg_ctl stop -m immediate): the next start
        recovers from WAL."""
        self.stop(mode="immediate")

    def restart(self, timeout=None):
        """Fast stop (if running) then start on the same port and data directory."""
        self.stop(timeout=timeout)
        return self.start(timeout=timeout)

    def destroy(self):
        """Stops the server immediately and removes its directory. Safe to call twice."""
        if self._destroyed or self.base is None:
            self._destroyed = True
            return
        self._destroyed = True
        with contextlib.suppress(Exception):
            self.stop(mode="immediate", timeout=30)
        for d in ("data", "wal"):
            _unmount(self.base / d)
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines=30):
        """The last lines of the server log ('' when none)."""
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, TypeError, AttributeError):
            return ""

    def connect(self, dbname=None, autocommit=True, timeout=5):
        """A new psycopg2 connection (autocommit by default); the caller closes it."""
        conn = psycopg2.connect(self.dsn(dbname), connect_timeout=max(1, int(timeout)))
        conn.autocommit = autocommit
        return conn

    def query(self, sql, params=None, dbname=None, timeout=30):
        """Runs one statement in autocommit on a fresh connection. Returns the rows (a list of
        tuples) when the statement yields any, else None. statement_timeout bounds it."""
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute("SET statement_timeout = %s", (int(timeout * 1000),))
                cur.execute(sql, params)
                return cur.fetchall() if cur.description is not None else None
        finally:
            conn.close()

    def scalar(self, sql, params=None, dbname=None):
        """The first column of the first row of query(), or None when no row."""
        rows = self.query(sql, params, dbname)
        return rows[0][0] if rows else None

    def reset(self, timeout=30):
        """Empties the database: ends other sessions on it, then DROP SCHEMA public CASCADE;
        CREATE SCHEMA public."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                cur.execute("SET lock_timeout = %s", (int(timeout * 1000),))
                cur.execute("DROP SCHEMA IF EXISTS public CASCADE")
                cur.execute("CREATE SCHEMA public")
        finally:
            conn.close()


def _unmount(path):
    """Unmounts path if something is mounted there (a tmpfs data directory)."""
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)


def _sweep_stale_clusters():
    """Removes /tmp/adw-pg-* clusters whose owning process is gone (a killed earlier run)."""
    for d in Path("/tmp").glob(PG_PREFIX + "*"):
        try:
            pid = int((d / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(pid):
            continue
        if (d / "data").is_dir():
            argv = [str(PG_BIN / "pg_ctl"), "stop", "-D", str(d / "data"), "-m", "immediate",
                    "-w", "-t", "20"]
            if _is_root():
                argv = ["runuser", "-u", "postgres", "--"] + argv
            with contextlib.suppress(Exception):
                subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30, cwd="/")
        with contextlib.suppress(Exception):
            for sub in ("data", "wal"):
                _unmount(d / sub)
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Processes

_LIVE_PROCS = set()  # every Proc started and not yet reaped, killed at exit
_tracker = None  # list that new Procs append themselves to (set per test by conftest)
_default_log_dir = None


def set_tracker(lst):
    """Makes every Proc created from now on append itself to lst (None: stop tracking)."""
    global _tracker
    _tracker = lst


def set_log_dir(path):
    """Where Procs created without log_dir write their logs from now on (None: a per-run
    temp directory)."""
    global _default_log_dir
    _default_log_dir = Path(path) if path else None


def default_log_dir():
    """The directory for logs of Procs created without log_dir (see set_log_dir)."""
    global _default_log_dir
    if _default_log_dir is None:
        _default_log_dir = Path(tempfile.mkdtemp(prefix="adw-logs-"))
    return _default_log_dir


def _set_pdeathsig():
    # Runs in the child before exec: die with SIGKILL if the test runner dies.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@atexit.register
def _kill_live_procs():
    for p in list(_LIVE_PROCS):
        p.kill9()
        with contextlib.suppress(Exception):
            p.wait(5)


class Proc:
    """One program run: argv with env (added to os.environ; a None value removes the
    variable), stdout and stderr into log_dir/<name>.log. In its own process group, killed
    with SIGKILL if the runner dies; kill_all()/teardown kills what is left."""

    def __init__(self, argv, env=None, name=None, log_dir=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.name = name or Path(self.argv[0]).name
        self.env = dict(os.environ)
        for k, v in (env or {}).items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = str(v)
        self.cwd = cwd
        log_dir = Path(log_dir) if log_dir else default_log_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        n = 1
        while True:  # claim a fresh file: name.log, name.2.log, ...
            self.log_path = log_dir / (f"{self.name}.log" if n == 1 else f"{self.name}.{n}.log")
            try:
                open(self.log_path, "x").close()
                break
            except FileExistsError:
                n += 1
        self.popen = None
        if _tracker is not None:
            _tracker.append(self)

    def start(self):
        """Starts the program; returns self. Raises OSError when it cannot be executed."""
        assert self.popen is None, "Proc already started"
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_set_pdeathsig,
            )
        _LIVE_PROCS.add(self)
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    @property
    def returncode(self):
        """Exit code (negative: killed by that signal), or None while running."""
        return self.popen.poll() if self.popen else None

    def alive(self):
        """True while the process runs."""
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, url, timeout=15.0, status=200):
        """Polls GET url until it answers `status`. AssertionError with the log tail when the
        process exits first or timeout passes."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(
                    f"{self.name} exited with {self.returncode} before ready\n{self.log_tail()}")
            try:
                st, _, _ = http_get(url, timeout=1.0)
                if st == status:
                    return self
                last = f"status {st}"
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not ready at {url} within {timeout}s ({last})\n"
                             f"{self.log_tail()}")

    def signal(self, sig):
        """Sends sig to the process (not its group); no-op once it has exited."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def terminate(self):
        """SIGTERM."""
        self.signal(signal.SIGTERM)

    def kill9(self):
        """SIGKILL to the whole process group (the program and anything it started)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()

    def wait(self, timeout=10.0):
        """Waits for exit and returns the exit code (negative for a signal); TimeoutError."""
        assert self.popen is not None, f"{self.name} was never started"
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired as e:
            raise TimeoutError(f"{self.name} still running after {timeout}s") from e
        _LIVE_PROCS.discard(self)
        return code

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit code of the SIGTERM
        path, or None when it had to be killed."""
        if self.popen is None:
            return None
        if not self.alive():
            return self.wait(1)
        self.terminate()
        try:
            return self.wait(timeout)
        except TimeoutError:
            self.kill9()
            self.wait(5)
            return None

    def cleanup(self):
        """Kills the process group if anything is left and reaps it (teardown)."""
        if self.popen is None:
            return
        self.kill9()
        with contextlib.suppress(TimeoutError):
            self.wait(5)

    def log_text(self):
        """The whole log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        """The last lines of the log, headed with the log's path."""
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- {self.log_path} (last {lines} lines) ---\n{tail}"

    def wait_log(self, needle, timeout=10.0):
        """Waits until the log contains needle (str); returns the log text."""
        return wait_for(lambda: needle in self.log_text() and self.log_text(), timeout,
                        what=f"{needle!r} in {self.name} log")

    def __repr__(self):
        return f"<Proc {self.name} pid={self.pid} rc={self.returncode}>"


def kill_all():
    """Kills every Proc still running (what an atexit or a finalizer calls)."""
    _kill_live_procs()


class Server(Proc):
    """A project program that listens on free loopback ports and answers GET /readyz.

    Keyword arguments in UPPER case are environment variables for it (a None value removes
    one); reserved lower-case ones: log_dir, args (extra argv), name, timeout (readiness,
    default 20 s), start (default True: start and wait for /readyz). Subclasses say which
    ports to take (_choose_ports) and which environment follows from them (_base_env).
    """

    PROGRAM = None
    RESERVED = {"log_dir", "args", "start", "timeout", "name"}

    def __init__(self, pg, **kwargs):
        opts = {k: kwargs.pop(k) for k in list(kwargs) if k in self.RESERVED}
        self.pg = pg
        self.timeout = opts.get("timeout", 20.0)
        self.user_env = kwargs
        self._choose_ports()
        super().__init__([binary(self.PROGRAM), *opts.get("args", ())], env=self._env(),
                         name=opts.get("name", self.PROGRAM.replace("adw-", "")),
                         log_dir=opts.get("log_dir"))
        if opts.get("start", True):
            self.start_ready()

    @property
    def database_url(self):
        return self.pg if isinstance(self.pg, str) else self.pg.url

    def _env(self):
        env = {"DATABASE_URL": self.database_url, "ADW_LOG_LEVEL": "info"}
        env.update(self._base_env())
        env.update(self.user_env)
        return env

    @property
    def base_url(self):
        """http://127.0.0.1:PORT of its HTTP listener."""
        return f"http://{LOOPBACK}:{self.http_port}"

    def _reset_process(self):
        _LIVE_PROCS.discard(self)
        self.popen = None

    def start_ready(self, timeout=None):
        """Starts and waits for /readyz. When the program died on a port taken meanwhile
        ('in use' in its log), retries twice on fresh ports. Returns self."""
        for attempt in range(3):
            self.start()
            try:
                return self.wait_ready(self.base_url + "/readyz", timeout or self.timeout)
            except AssertionError:
                if self.alive() or attempt == 2 or "in use" not in self.log_text().lower():
                    raise
                self.wait(5)
                self._reset_process()
                self._choose_ports()
                for k, v in self._env().items():
                    if v is None:
                        self.env.pop(k, None)
                    else:
                        self.env[k] = str(v)
        return self

    def restart(self, timeout=None):
        """Stops (SIGTERM, then SIGKILL after 10 s) and starts again on the same ports and
        environment; waits for /readyz. Returns self."""
        self.stop()
        self._reset_process()
        self.start()
        return self.wait_ready(self.base_url + "/readyz", timeout or self.timeout)

    def start_again(self):
        """After the process exited (crash, kill9, stop): starts it again on the same ports
        without waiting. Returns self."""
        if self.alive():
            raise AssertionError(f"{self.name} is still running")
        if self.popen is not None:
            self.wait(5)
        self._reset_process()
        return self.start()

    def http(self, timeout=10.0):
        """A new keep-alive HttpClient to base_url."""
        return HttpClient(self.base_url, timeout=timeout)


class Ingest(Server):
    """adw-ingest on three free loopback ports against pg (a PgCluster or a DATABASE_URL).
    Attributes: http_port, zmq_port, pub_port, base_url, zmq_endpoint, pub_endpoint."""

    PROGRAM = "adw-ingest"

    def _choose_ports(self):
        self.http_port, self.zmq_port, self.pub_port = free_ports(3)

    def _base_env(self):
        return {
            "ADW_INGEST_HTTP": f"{LOOPBACK}:{self.http_port}",
            "ADW_INGEST_ZMQ": self.zmq_endpoint,
            "ADW_INGEST_PUB": self.pub_endpoint,
        }

    @property
    def zmq_endpoint(self):
        return f"tcp://{LOOPBACK}:{self.zmq_port}"

    @property
    def pub_endpoint(self):
        return f"tcp://{LOOPBACK}:{self.pub_port}"

    def zmq(self, kind="dealer", timeout=5.0):
        """A new ZmqClient on the submission endpoint."""
        return ZmqClient(self.zmq_endpoint, kind, timeout)

    def sub(self, topics=("",)):
        """A started SubCollector on the PUB endpoint (stop() it, or use `with`)."""
        return SubCollector(self.pub_endpoint, topics).start()


class Gateway(Server):
    """adw-gateway on a free loopback port, subscribed to ingest's PUB (an Ingest, an endpoint
    string, or a list of either: joined with commas), reading pg.
    Attributes: http_port, base_url, ws_url (ws://127.0.0.1:PORT/ws/events)."""

    PROGRAM = "adw-gateway"

    def __init__(self, pg, ingest, **kwargs):
        subs = ingest if isinstance(ingest, (list, tuple)) else [ingest]
        self.sub_endpoints = ",".join(s if isinstance(s, str) else s.pub_endpoint for s in subs)
        super().__init__(pg, **kwargs)

    def _choose_ports(self):
        self.http_port = free_port()

    def _base_env(self):
        return {
            "ADW_GATEWAY_HTTP": f"{LOOPBACK}:{self.http_port}",
            "ADW_GATEWAY_SUB": self.sub_endpoints,
        }

    @property
    def ws_url(self):
        return f"ws://{LOOPBACK}:{self.http_port}/ws/events"

    def ws(self, query="", **kwargs):
        """A connected WsClient to /ws/events (query: 'adw_id=a&since=3' or a dict);
        kwargs go to WsClient."""
        if isinstance(query, dict):
            query = urllib.parse.urlencode(query)
        return WsClient(self.ws_url + ("?" + query if query else ""), **kwargs)


# ---------------------------------------------------------------------------------------------
# HTTP


def _decode_body(headers, raw):
    ctype = (headers.get("Content-Type") or "").lower()
    if "json" in ctype and "ndjson" not in ctype:
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    if ctype.startswith("text/"):
        return raw.decode("utf-8", "replace")
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class HttpClient:
    """One keep-alive HTTP/1.1 connection (http.client) to base_url, e.g.
    http://127.0.0.1:8000. Each call returns (status, headers, body) where headers is an
    http.client.HTTPMessage (case-insensitive get) and body the parsed JSON, text for text/*,
    else bytes. The connection reopens by itself after the server closes it."""

    def __init__(self, base_url, timeout=10.0):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port or 80
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        """Sends one request (body: bytes, str, or None) and reads the whole answer."""
        if isinstance(body, str):
            body = body.encode()
        self.conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.will_close:
            self.conn.close()
        return resp.status, resp.headers, _decode_body(resp.headers, raw)

    def get(self, path, headers=None):
        """GET path."""
        return self.request("GET", path, headers=headers)

    def post_json(self, path, obj, headers=None, content_type="application/json"):
        """POSTs obj serialized as JSON (or, for a list with content_type
        application/x-ndjson, one line per element); a bytes/str obj is sent as is."""
        if isinstance(obj, (bytes, str)):
            body = obj
        elif "ndjson" in content_type:
            body = "".join(json.dumps(o) + "\n" for o in obj)
        else:
            body = json.dumps(obj)
        h = {"Content-Type": content_type}
        h.update(headers or {})
        return self.request("POST", path, body=body, headers=h)

    def reconnect(self):
        """Closes the connection; the next request opens a new one."""
        self.conn.close()

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _one_shot(method, url, body=None, headers=None, timeout=10.0):
    u = urllib.parse.urlsplit(url)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    with HttpClient(f"http://{u.hostname}:{u.port or 80}", timeout) as c:
        return c.request(method, path, body, headers)


def http_get(url, headers=None, timeout=10.0):
    """One GET on a fresh connection: (status, headers, body)."""
    return _one_shot("GET", url, headers=headers, timeout=timeout)


def post_json(url, obj, headers=None, timeout=10.0, content_type="application/json"):
    """One JSON POST on a fresh connection: (status, headers, parsed body)."""
    u = urllib.parse.urlsplit(url)
    with HttpClient(f"http://{u.hostname}:{u.port or 80}", timeout) as c:
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        return c.post_json(path, obj, headers, content_type)


class RawConn:
    """A plain TCP connection for bytes no HTTP library would send (malformed requests,
    partial writes, pipelining). All reads are bounded by timeout."""

    def __init__(self, host=LOOPBACK, port=80, timeout=5.0):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        """Sends all of data (bytes or str)."""
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def recv_some(self, timeout=None):
        """Returns the next bytes received, b'' when the peer closed; TimeoutError."""
        self.sock.settimeout(timeout or self.timeout)
        try:
            return self.sock.recv(65536)
        except socket.timeout as e:
            raise TimeoutError("no data") from e
        except ConnectionResetError:
            return b""

    def read_response(self, timeout=None):
        """Reads one HTTP response (Content-Length or close-delimited; chunked is returned
        undecoded up to the terminating chunk). Returns (status, headers dict lower-cased,
        body bytes). TimeoutError when incomplete after timeout; ConnectionError when closed
        before a status line."""
        deadline = time.monotonic() + (timeout or self.timeout)

        def fill():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("incomplete HTTP response")
            chunk = self.recv_some(left)
            self.buf += chunk
            return chunk

        while b"\r\n\r\n" not in self.buf:
            if not fill():
                raise ConnectionError(f"closed before a full response head: {self.buf!r}")
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            self.buf = rest
            while len(self.buf) < n:
                if not fill():
                    break
            body, self.buf = self.buf[:n], self.buf[n:]
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self.buf = rest
            while b"\r\n0\r\n\r\n" not in b"\r\n" + self.buf:
                if not fill():
                    break
            end = (b"\r\n" + self.buf).find(b"\r\n0\r\n\r\n") + 5
            body, self.buf = self.buf[:end], self.buf[end:]
        else:
            self.buf = rest
            while fill():
                pass
            body, self.buf = self.buf, b""
        return status, headers, body

    def wait_closed(self, timeout=None):
        """True when the peer closes within timeout (data read meanwhile is discarded)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            try:
                if not self.recv_some(max(0.01, deadline - time.monotonic())):
                    return True
            except TimeoutError:
                return False
        return False

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_http(port, data, host=LOOPBACK, timeout=5.0):
    """Sends data on a new connection and returns (status, headers, body) of the first
    response."""
    with RawConn(host, port, timeout) as c:
        c.send(data)
        return c.read_response()


# ---------------------------------------------------------------------------------------------
# ZeroMQ

_zctx = None
_zctx_lock = threading.Lock()


def zmq_context():
    """The process-wide zmq.Context (thread-safe; sockets are not)."""
    global _zctx
    with _zctx_lock:
        if _zctx is None:
            _zctx = zmq.Context()
        return _zctx


def mp_pack(obj):
    """msgpack encoding as the contract uses it (str as str, bytes as bin)."""
    return msgpack.packb(obj, use_bin_type=True)


def mp_unpack(data):
    """msgpack decoding to Python objects (str keys and values)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class ZmqClient:
    """A DEALER (default) or REQ socket connected to ingest's submission endpoint. A request is
    one frame; with REQ the empty delimiter is added by zmq. Linger 0; close() when done."""

    def __init__(self, endpoint, kind="dealer", timeout=5.0):
        self.kind = kind
        self.timeout = timeout
        self.sock = zmq_context().socket(zmq.DEALER if kind == "dealer" else zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send(self, obj):
        """Sends one request: obj msgpack-encoded, or bytes as they are."""
        self.sock.send(obj if isinstance(obj, bytes) else mp_pack(obj))

    def recv(self, timeout=None, raw=False):
        """Waits for one reply and returns it decoded (raw: the last frame's bytes);
        TimeoutError."""
        if not self.sock.poll(int((timeout or self.timeout) * 1000), zmq.POLLIN):
            raise TimeoutError("no ZMQ reply")
        frames = self.sock.recv_multipart()
        return frames[-1] if raw else mp_unpack(frames[-1])

    def submit(self, obj, timeout=None, raw=False):
        """send() then recv(): the decoded reply, e.g. {'ok': True, 'ids': [7]}."""
        self.send(obj)
        return self.recv(timeout, raw)

    def close(self):
        self.sock.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def zmq_submit(endpoint, obj, timeout=5.0, kind="dealer", raw=False):
    """Submits one request on a new socket and returns the decoded reply; TimeoutError."""
    with ZmqClient(endpoint, kind, timeout) as c:
        return c.submit(obj, timeout, raw)


class SubMessage(tuple):
    """(topic str, decoded msgpack map) plus .t, the monotonic time of receipt."""

    def __new__(cls, topic, body, t):
        self = super().__new__(cls, (topic, body))
        self.t = t
        return self

    @property
    def topic(self):
        return self[0]

    @property
    def body(self):
        return self[1]


class SubCollector:
    """A SUB socket on its own thread recording every (topic, map) published (two frames:
    topic, msgpack map). Use as a context manager or call start()/stop()."""

    def __init__(self, endpoint, topics=("",)):
        self.endpoint = endpoint if isinstance(endpoint, str) else endpoint.pub_endpoint
        self.topics = topics
        self.messages = []
        self.errors = []  # frames that did not decode, as (frames, exception)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="adw-sub", daemon=True)

    def start(self):
        """Starts the thread (once: a second call does nothing); returns self."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        return self

    def _run(self):
        s = zmq_context().socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        for t in self.topics:
            s.setsockopt(zmq.SUBSCRIBE, t.encode())
        s.connect(self.endpoint)
        try:
            while not self._stop.is_set():
                if not s.poll(50, zmq.POLLIN):
                    continue
                frames = s.recv_multipart()
                try:
                    msg = SubMessage(frames[0].decode(), mp_unpack(frames[1]), time.monotonic())
                except Exception as e:  # noqa: BLE001 - recorded for the test to inspect
                    self.errors.append((frames, e))
                    continue
                with self._cond:
                    self.messages.append(msg)
                    self._cond.notify_all()
        finally:
            s.close(0)

    def stop(self):
        """Stops and joins the thread (bounded)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def snapshot(self):
        """A copy of the messages so far."""
        with self._cond:
            return list(self.messages)

    def events(self):
        """The bodies of messages other than heartbeats ($hb), in arrival order."""
        return [m.body for m in self.snapshot() if m.topic != "$hb"]

    def wait_for(self, pred, timeout=5.0):
        """Returns the first message m (from the start) with pred(m) true; TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching SUB message")
                self._cond.wait(left)

    def wait_count(self, n, pred=lambda m: m.topic != "$hb", timeout=5.0):
        """Waits until n messages match pred (default: non-heartbeats); returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [m for m in self.messages if pred(m)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(got)} of {n} SUB messages")
                self._cond.wait(left)

    def wait_joined(self, timeout=5.0):
        """Waits for any message (a $hb comes about once a second), proving the subscription
        is live; returns it."""
        return self.wait_for(lambda m: True, timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------
# WebSocket (python3-websockets 10.x: asyncio client driven from a private loop thread)

_loop = None
_loop_lock = threading.Lock()


def _ws_loop():
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="adw-ws-loop", daemon=True).start()
        return _loop


def _run(coro, timeout):
    fut = asyncio.run_coroutine_threadsafe(coro, _ws_loop())
    try:
        return fut.result(timeout + 2)
    except TimeoutError:
        fut.cancel()
        raise


class WsHandshakeError(Exception):
    """The server refused the upgrade; .status is the HTTP status (or None)."""

    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status


class WsClosed(Exception):
    """The connection is closed; .code and .reason are what the server sent (1006: none)."""

    def __init__(self, code, reason):
        super().__init__(f"closed {code} {reason!r}")
        self.code = code
        self.reason = reason


class ResumingFleet:
    """WebSocket clients in one asyncio loop (a thread). Client i has filters[i] (query
    parameters) and starts on gateway i mod n (gws: Gateway objects or ws:// URLs, such as a
    load balancer's); when its connection ends it moves to the next one with since = the last
    id it holds, as the dashboard does. Records every event's id in .ids, the moves in .moves,
    and how long each move took (connection lost -> the replayed marker on the next one) in
    .resume_s."""

    def __init__(self, gws, filters, open_timeout=5, retry_s=0.1):
        self.gws, self.filters = gws, filters
        self.open_timeout, self.retry_s = open_timeout, retry_s
        self.ids = [[] for _ in filters]
        self.moves = [0] * len(filters)
        self.resume_s = []
        self.stop_flag = False
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(
            asyncio.gather(*(self._client(i) for i in range(len(self.filters)))))

    async def _client(self, i):
        import websockets
        g, lost_at = i % len(self.gws), None
        while not self.stop_flag:
            q = dict(self.filters[i], since=self.ids[i][-1] if self.ids[i] else 0)
            gw = self.gws[g]
            url = (gw if isinstance(gw, str) else gw.ws_url) + "?" + urllib.parse.urlencode(q)
            try:
                async with websockets.connect(url, open_timeout=self.open_timeout,
                                              ping_interval=None, compression=None,
                                              max_size=2**22) as ws:
                    while not self.stop_flag:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 0.5)
                        except asyncio.TimeoutError:
                            continue
                        m = json.loads(raw)
                        if "id" in m and "received_at" in m:
                            self.ids[i].append(m["id"])
                        elif m.get("type") == "replayed" and lost_at is not None:
                            self.resume_s.append(time.monotonic() - lost_at)
                            lost_at = None
                        elif m.get("type") == "ping":
                            await ws.send('{"action":"pong"}')
            except Exception:  # noqa: BLE001 - refused, reset, closed: move on
                pass
            if not self.stop_flag:
                if lost_at is None:
                    lost_at = time.monotonic()
                self.moves[i] += 1
                g = (g + 1) % len(self.gws)
                await asyncio.sleep(self.retry_s)

    def close(self):
        self.stop_flag = True
        self.thread.join(30)


class WsClient:
    """A WebSocket client that reads as a synchronous API. Text frames are decoded as JSON
    (left as str if not JSON), binary frames returned as bytes. Every message received is
    also appended to .seen. Protocol pings are answered by the library; the client sends
    none of its own unless ping_interval is given. Connects in the constructor."""

    def __init__(self, url, timeout=10.0, headers=None, origin=None, max_size=None,
                 max_queue=32, ping_interval=None, compression="deflate", connect=True):
        self.url = url
        self.timeout = timeout
        self.kw = dict(extra_headers=headers or {}, origin=origin, max_size=max_size,
                       max_queue=max_queue, ping_interval=ping_interval,
                       compression=compression, open_timeout=timeout, close_timeout=timeout)
        self.ws = None
        self.seen = []
        if connect:
            self.connect()

    def connect(self):
        """Opens the connection; WsHandshakeError when refused, TimeoutError."""

        async def go():
            try:
                return await websockets.connect(self.url, **self.kw)
            except websockets.exceptions.InvalidStatusCode as e:
                raise WsHandshakeError(e.status_code, str(e)) from None
            except websockets.exceptions.InvalidHandshake as e:
                raise WsHandshakeError(None, str(e)) from None

        self.ws = _run(go(), self.timeout)
        return self

    @property
    def close_code(self):
        """The close code received (None while open, 1006 when closed without one)."""
        return self.ws.close_code if self.ws else None

    @property
    def close_reason(self):
        return self.ws.close_reason if self.ws else None

    def send(self, msg):
        """Sends a dict/list as a JSON text frame, a str as text, bytes as binary."""
        data = json.dumps(msg) if isinstance(msg, (dict, list)) else msg
        _run(self.ws.send(data), self.timeout)

    def recv(self, timeout=None):
        """The next message; TimeoutError, or WsClosed(code, reason) once closed."""
        timeout = self.timeout if timeout is None else timeout

        async def go():
            try:
                return await asyncio.wait_for(self.ws.recv(), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no WebSocket message within {timeout}s") from None
            except websockets.exceptions.ConnectionClosed:
                raise WsClosed(self.ws.close_code, self.ws.close_reason) from None

        raw = _run(go(), timeout)
        msg = raw
        if isinstance(raw, str):
            try:
                msg = json.loads(raw)
            except ValueError:
                pass
        self.seen.append(msg)
        return msg

    def collect(self, until=None, timeout=5.0, count=None, pred=None):
        """Receives messages for up to timeout seconds and returns those with pred(m) true
        (all when pred is None). Stops early after the first message with until(m) true
        (included) or when count messages are kept, or when the connection closes. Never
        raises TimeoutError: the caller checks what came."""
        kept = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return kept
            try:
                m = self.recv(left)
            except (TimeoutError, WsClosed):
                return kept
            if pred is None or pred(m):
                kept.append(m)
            if (until is not None and until(m)) or (count is not None and len(kept) >= count):
                return kept

    def wait_for(self, pred, timeout=5.0):
        """Returns the first message received from now on with pred(m) true (others stay in
        .seen); TimeoutError or WsClosed."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching WebSocket message")
            m = self.recv(left)
            if pred(m):
                return m

    def events(self, n, timeout=5.0):
        """Waits for n event messages (those with an 'id'); returns them, TimeoutError."""
        got = self.collect(count=n, timeout=timeout, pred=lambda m: isinstance(m, dict) and "id" in m)
        if len(got) < n:
            raise TimeoutError(f"{len(got)} of {n} events")
        return got

    def wait_closed(self, timeout=None):
        """Reads (keeping messages in .seen) until the server closes; returns (code, reason);
        TimeoutError."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("WebSocket still open")
            try:
                self.recv(left)
            except WsClosed as e:
                return e.code, e.reason

    def close(self, code=1000, reason=""):
        """Closes (waiting for the server's close, bounded); safe to call twice."""
        if self.ws is not None:
            with contextlib.suppress(Exception):
                _run(self.ws.close(code, reason), self.timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawWs:
    """A WebSocket over a plain socket for what a library will not do: stay silent (no pong),
    send oversized, unmasked or malformed frames, read every control frame. Does the
    handshake in the constructor; .status and .headers hold the server's answer (101 on
    success; otherwise the connection is left as it is and frames cannot be used)."""

    OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10

    def __init__(self, url, headers=None, timeout=5.0, early=b"", conn=None):
        """early: bytes sent in the same write as the upgrade request (frames a client sends
        before the 101); conn: a RawConn to upgrade (e.g. after a keep-alive request)."""
        u = urllib.parse.urlsplit(url)
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        self.conn = conn or RawConn(u.hostname, u.port or 80, timeout)
        self.timeout = timeout
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n")
        for k, v in (headers or {}).items():
            req += f"{k}: {v}\r\n"
        self.conn.send((req + "\r\n").encode() + early)
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.conn.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no handshake answer")
            chunk = self.conn.recv_some(left)
            if not chunk:
                raise ConnectionError("closed during handshake")
            self.conn.buf += chunk
        head, _, self.conn.buf = self.conn.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.status == 101:
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            if self.headers.get("sec-websocket-accept") != accept:
                raise ConnectionError("bad Sec-WebSocket-Accept")

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        """Sends one frame as given (masked with a random key unless mask=False)."""
        self.conn.send(self.frame(opcode, payload, fin, mask, rsv))

    @staticmethod
    def frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
        """The bytes of one client frame (see send_frame)."""
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            k = os.urandom(4)
            payload = bytes(c ^ k[i % 4] for i, c in enumerate(payload))
            head += k
        return head + payload

    def send_text(self, text):
        """One text frame (a dict/list is sent as JSON)."""
        if isinstance(text, (dict, list)):
            text = json.dumps(text)
        self.send_frame(self.OP_TEXT, text)

    def _need(self, n, deadline):
        while len(self.conn.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("incomplete WebSocket frame")
            chunk = self.conn.recv_some(left)
            if not chunk:
                raise ConnectionError("connection closed")
            self.conn.buf += chunk

    def recv_frame(self, timeout=None):
        """The next frame as (opcode, payload bytes, fin); TimeoutError, ConnectionError when
        the TCP connection ends."""
        deadline = time.monotonic() + (timeout or self.timeout)
        self._need(2, deadline)
        b0, b1 = self.conn.buf[0], self.conn.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n, off = struct.unpack("!H", self.conn.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline)
            n, off = struct.unpack("!Q", self.conn.buf[2:10])[0], 10
        key = None
        if b1 & 0x80:  # a server must not mask; undone if it does
            self._need(off + 4, deadline)
            key, off = self.conn.buf[off:off + 4], off + 4
        self._need(off + n, deadline)
        payload = self.conn.buf[off:off + n]
        if key:
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        self.conn.buf = self.conn.buf[off + n:]
        return b0 & 0x0F, payload, bool(b0 & 0x80)

    def recv_until_close(self, timeout=None):
        """Reads frames (answering nothing) until a close frame; returns (code, reason) and
        the data frames before it as a list of (opcode, payload). TimeoutError."""
        deadline = time.monotonic() + (timeout or self.timeout)
        frames = []
        while True:
            op, payload, _ = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == self.OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return (code, payload[2:].decode("utf-8", "replace")), frames
            frames.append((op, payload))

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
