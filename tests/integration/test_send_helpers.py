"""Helpers for the adw-send tests (imported by test_send_*.py; holds no tests itself)."""

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import adwtest

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
HOOKS = DATA / "hooks"
STREAMS = DATA / "streamjson"

# Variables a developer's shell might hold that would change what adw-send does.
CLEAN = ("ADW_ID", "ADW_STEP", "ADW_INGEST_URL", "ADW_INGEST_ZMQ", "ADW_INGEST_TOKEN",
         "ADW_SPOOL_DIR", "ADW_SPOOL_MAX", "ADW_SEND_TIMEOUT_MS", "ADW_SEND_MAX_INPUT",
         "XDG_STATE_HOME", "ADW_LOG_FORMAT")


def send_env(env=None, home=None):
    e = dict(os.environ)
    for k in CLEAN:
        e.pop(k, None)
    e["ADW_LOG_LEVEL"] = "info"
    if home is not None:
        e["HOME"] = str(home)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    return e


def run_send(args, input=None, env=None, timeout=60, home=None):
    """Runs adw-send to completion: CompletedProcess with text stderr and .elapsed seconds."""
    if isinstance(input, str):
        input = input.encode()
    t = time.monotonic()
    r = subprocess.run([str(adwtest.binary("adw-send")), *map(str, args)], input=input,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       capture_output=True, env=send_env(env, home), timeout=timeout)
    r.elapsed = time.monotonic() - t
    r.stderr = r.stderr.decode(errors="replace")
    return r


def docs(db, where="", params=None):
    """The stored events' documents, in id order."""
    return [r[0] for r in db.query(f"SELECT doc FROM events {where} ORDER BY id", params)]


def count(db):
    return db.scalar("SELECT count(*) FROM events")


def spooled(spool):
    """The event files in a spool directory, in name order."""
    p = Path(spool)
    if not p.is_dir():
        return []
    return sorted(f.name for f in p.iterdir() if f.name.startswith("e-"))


def spool_docs(spool):
    return [json.loads((Path(spool) / n).read_text()) for n in spooled(spool)]


class Blackhole:
    """A TCP listener that accepts connections and never answers (with `with`)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((adwtest.LOOPBACK, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


def dead_port():
    """A loopback port nothing listens on."""
    return adwtest.free_port()
