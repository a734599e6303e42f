"""Load and bookkeeping for the fault tests (imported by test_faults.py and
test_ingest_faults.py; holds no tests itself).

Every event a producer makes carries a sequence number (payload.seq, and in its event_id) and
its event_id; producers retry until acknowledged with the same event_id and record what was
acknowledged, when, and under which id. The checks then compare with what PostgreSQL holds:
"lost" is acknowledged but not stored (or stored under another id), "duplicated" is an
event_id stored twice, and a producer's sequence must be complete up to where it stopped.

LONG (ADW_LONG=1) scales durations and counts up for the on-demand long run.
"""

import http.client
import json
import os
import random
import threading
import time
from pathlib import Path

import adwtest
import zmq

LONG = bool(os.environ.get("ADW_LONG"))


def ev(adw_id="run1", **kw):
    e = {"type": "adw_event", "adw_id": adw_id, "event_type": "ToolUseBlock"}
    e.update(kw)
    return e


def rng(name):
    """A seeded Random, the seed printed so a failing run can be replayed (ADW_SEED)."""
    seed = int(os.environ.get("ADW_SEED") or random.randrange(1 << 30))
    print(f"{name}: seed {seed} (ADW_SEED={seed} to replay)")
    return random.Random(seed)


class Load:
    """Client threads posting batches (HTTP keep-alive, or ZeroMQ DEALER) until stopped or
    `limit` batches each, retrying a batch with the same event_ids on 503, on a refused or
    dropped connection, or on a missing reply. Producer `name` makes events adw_id=name,
    event_id name-k-j, payload.seq k*batch+j (batch k, event j). Records every acknowledged
    event_id -> id and the monotonic time of its acknowledgement."""

    def __init__(self, ingest, http_threads=3, zmq_threads=1, batch=5, limit=100000,
                 deadline=60.0, http_base=None, zmq_endpoint=None):
        self.ingest = ingest
        self.http_base = http_base or ingest.base_url
        self.zmq_endpoint = zmq_endpoint or ingest.zmq_endpoint
        self.batch = batch
        self.limit = limit
        self.deadline = time.monotonic() + deadline
        self.acked = {}  # event_id -> id
        self.ack_t = {}  # event_id -> monotonic time of the first acknowledgement
        self.status = {}  # answers seen: status -> count
        self.errors = []  # anything unexpected
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.names = [f"h{i}" for i in range(http_threads)] + [f"z{i}" for i in range(zmq_threads)]
        self.threads = [threading.Thread(target=self._http, args=(f"h{i}",), daemon=True)
                        for i in range(http_threads)]
        self.threads += [threading.Thread(target=self._zmq, args=(f"z{i}",), daemon=True)
                         for i in range(zmq_threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "load threads did not stop"
        assert not self.errors, self.errors[:5]

    def running(self):
        return not self.stop_flag.is_set() and time.monotonic() < self.deadline

    def _note(self, what, events=None, ids=None):
        now = time.monotonic()
        with self.lock:
            self.status[what] = self.status.get(what, 0) + 1
            if ids is not None:
                for e, i in zip(events, ids):
                    old = self.acked.setdefault(e["event_id"], i)
                    self.ack_t.setdefault(e["event_id"], now)
                    if old != i:
                        self.errors.append(f"{e['event_id']} acknowledged as {old} then {i}")

    def count(self, what):
        with self.lock:
            return self.status.get(what, 0)

    def acks_between(self, t0, t1):
        """The event_ids first acknowledged in [t0, t1) (monotonic times)."""
        with self.lock:
            return [k for k, t in self.ack_t.items() if t0 <= t < t1]

    def wait_acked(self, n, timeout=20.0):
        adwtest.wait_for(lambda: len(self.acked) >= n, timeout, what=f"{n} acknowledged events")

    def _batches(self, name):
        for k in range(self.limit):
            yield [ev(f"{name}", event_id=f"{name}-{k}-{j}", summary=f"{k}.{j}",
                      payload={"seq": k * self.batch + j})
                   for j in range(self.batch)]

    def _http(self, name):
        conn = None
        host_port = self.http_base.split("//", 1)[1]
        host, port = host_port.rsplit(":", 1)
        for events in self._batches(name):
            while self.running():
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, int(port), timeout=10)
                    conn.request("POST", "/api/events", json.dumps(events),
                                 {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    body = json.loads(resp.read())
                    if resp.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException, ValueError):
                    self._note("conn_error")
                    if conn is not None:
                        conn.close()
                    conn = None
                    time.sleep(0.05)
                    continue
                if resp.status == 200:
                    self._note(200, events, body["ids"])
                    break
                self._note(resp.status)
                if resp.status != 503:
                    self.errors.append(f"HTTP {resp.status}: {body}")
                    return
                if resp.getheader("Retry-After") != "1":
                    self.errors.append("503 without Retry-After: 1")
                time.sleep(0.05)
            if not self.running():
                break
        if conn is not None:
            conn.close()

    def _zmq(self, name):
        sock = None
        for events in self._batches(name):
            while self.running():
                if sock is None:
                    sock = adwtest.zmq_context().socket(zmq.DEALER)
                    sock.setsockopt(zmq.LINGER, 0)
                    sock.connect(self.zmq_endpoint)
                sock.send(adwtest.mp_pack(events))
                if not sock.poll(3000):
                    # Ingest gone or restarting: a fresh socket, so a late reply cannot be
                    # taken for the next request's.
                    self._note("zmq_timeout")
                    sock.close(0)
                    sock = None
                    continue
                r = adwtest.mp_unpack(sock.recv_multipart()[-1])
                if r.get("ok"):
                    self._note("zmq_ok", events, r["ids"])
                    break
                self._note("zmq_refused")
                if not r.get("retry"):
                    self.errors.append(f"ZMQ refusal without retry: {r}")
                    if sock is not None:
                        sock.close(0)
                    return
                time.sleep(0.05)
            if not self.running():
                break
        if sock is not None:
            sock.close(0)


def check_stored(db, load):
    """Every acknowledged event is stored under its id, once; ids are 1..max without a hole;
    each producer's batches are stored whole and complete from its first to its last, which is
    the one it was sending when stopped or the one before. Returns the number of rows."""
    rows = db.query("SELECT id, event_id FROM events ORDER BY id")
    ids = [r[0] for r in rows]
    assert ids == list(range(1, len(ids) + 1)), "ids are not contiguous from 1"
    by_event = {r[1]: r[0] for r in rows}
    assert len(by_event) == len(rows), "an event_id stored twice"
    missing = {k: v for k, v in load.acked.items() if by_event.get(k) != v}
    assert not missing, f"{len(missing)} acknowledged events not stored as acknowledged: " \
        f"{sorted(missing.items())[:5]}"
    # Sequences: per producer, batches 0..K stored whole, acknowledged 0..K-1 at least.
    for name in load.names:
        stored = {}
        for eid in by_event:
            p, _, rest = eid.partition("-")
            if p == name:
                k, j = map(int, rest.split("-"))
                stored.setdefault(k, set()).add(j)
        acked = {int(eid.split("-")[1]) for eid in load.acked if eid.split("-")[0] == name}
        if not stored:
            assert not acked
            continue
        ks = sorted(stored)
        assert ks == list(range(len(ks))), f"{name}: batches missing from what is stored"
        assert all(v == set(range(load.batch)) for v in stored.values()), \
            f"{name}: a batch stored in part"
        assert acked <= set(ks) and len(ks) - len(acked) <= 1, \
            f"{name}: {len(ks)} batches stored, {len(acked)} acknowledged"
    # Run state agrees with the rows.
    runs = dict(db.query("SELECT adw_id, event_count FROM adw_runs"))
    counts = dict(db.query("SELECT adw_id, count(*) FROM events GROUP BY adw_id"))
    assert runs == counts
    return len(ids)


def metric(server, series):
    """The value of one series of GET /metrics (None when absent)."""
    _, _, text = adwtest.http_get(server.base_url + "/metrics", timeout=5)
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return None


def wait_status(server, path, status, timeout=15.0):
    def probe():
        try:
            st, h, body = adwtest.http_get(server.base_url + path, timeout=2)
        except (OSError, http.client.HTTPException):
            return None
        return (st, h, body) if st == status else None

    return adwtest.wait_for(probe, timeout, what=f"{path} answering {status}")


def rss_kb(pid):
    """The resident set of a process in KiB (VmRSS), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """Samples a Proc's VmRSS every interval; .samples holds (monotonic time, KiB)."""

    def __init__(self, proc, interval=0.1):
        super().__init__(daemon=True)
        self.proc, self.interval = proc, interval
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            pid = self.proc.pid
            kb = rss_kb(pid) if pid else None
            if kb is not None:
                self.samples.append((time.monotonic(), kb))
            self.halt.wait(self.interval)

    def peak(self, t0=0.0, t1=float("inf")):
        return max((kb for t, kb in self.samples if t0 <= t < t1), default=0)

    def stop(self):
        self.halt.set()
        self.join(5)


class SendWorker(threading.Thread):
    """Runs adw-send again and again, one event per process (--json on stdin, --strict, its own
    spool directory), as an agent's hooks would: event name-n with payload.seq n. Exit 0 means
    delivered, 75 spooled (to go first next time); anything else is an error. drain() then
    sends until the spool is empty, as the next hook would."""

    def __init__(self, name, where, spool, timeout_ms=1500):
        super().__init__(daemon=True)
        self.name, self.where, self.spool = name, list(where), Path(spool)
        self.timeout_ms = timeout_ms
        self.handed = []  # event_ids handed to adw-send, in order
        self.codes = {}
        self.errors = []
        self.halt = threading.Event()

    def _one(self, n):
        from test_send_helpers import run_send
        eid = f"{self.name}-{n}"
        e = ev(self.name, event_id=eid, summary=str(n), payload={"seq": n})
        r = run_send([*self.where, "--spool", self.spool, "--json", "--strict", "--timeout-ms",
                      self.timeout_ms], input=json.dumps(e), timeout=60)
        self.handed.append(eid)
        self.codes[r.returncode] = self.codes.get(r.returncode, 0) + 1
        if r.returncode not in (0, 75):
            self.errors.append(f"adw-send {eid} exited {r.returncode}: {r.stderr[-500:]}")
        return r.returncode

    def run(self):
        n = 0
        while not self.halt.is_set() and n < 100000:
            self._one(n)
            n += 1

    def stop(self):
        self.halt.set()
        self.join(90)
        assert not self.is_alive(), f"{self.name} still sending"

    def drain(self, timeout=60.0):
        """Sends one more event at a time until one is delivered with an empty spool."""
        from test_send_helpers import spooled
        deadline = time.monotonic() + timeout
        n = len(self.handed)
        while time.monotonic() < deadline:
            rc = self._one(n)
            n += 1
            if rc == 0 and not spooled(self.spool):
                return
            time.sleep(1.0)  # the client's backoff after a failure
        raise TimeoutError(f"{self.name}: spool not drained: {spooled(self.spool)[:5]}")

    def check(self, db):
        """Every event handed over is stored once, and in the order it was made."""
        assert not self.errors, self.errors[:3]
        rows = db.query("SELECT event_id, id FROM events WHERE adw_id = %s ORDER BY id",
                        (self.name,))
        stored = [r[0] for r in rows]
        assert len(set(stored)) == len(stored), f"{self.name}: an event stored twice"
        lost = set(self.handed) - set(stored)
        assert not lost, f"{self.name}: {len(lost)} events handed to adw-send not stored"
        assert stored == self.handed, f"{self.name}: stored out of the order they were made"
        return len(stored)
