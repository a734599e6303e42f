"""System call failures injected with libfiu under load: send(), write() (failed and shortened)
and malloc() fail at a few per cent in adw-ingest, adw-gateway and adw-send while real producers
(HTTP and ZeroMQ) submit events and WebSocket clients receive them.

The failures come from libfiu's POSIX preload library (/usr/lib/fiu/fiu_posix_preload.so, Debian's
libfiu0) with the policy in tests/tools/fiu_policy.c, which picks realistic errnos, counts every
failure it injects, and can restrict a point to the program's own calls (see proto/decisions.md:
libzmq asserts on a failed write to its signalling eventfd and on a failed allocation, by design).

Under the sanitizer build, libasan is preloaded first: its interceptors then call libfiu's
wrappers for send() and write(), but its malloc() never reaches libfiu's, so the malloc part runs
against the Release build (ADW_RELEASE_BUILD_DIR, default build/ beside build-asan).

What each test asserts: no process crashes (each exits 0 on SIGTERM; under ASan that includes
LeakSanitizer), no sanitizer report, every acknowledged event stored exactly once, every client
ends with every event its filter matches, in id order, once (after reconnecting with since), and
the injector really failed calls. Short by default; ADW_LONG=1 runs longer with more events.
"""

import asyncio
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import adwtest
import pytest
import websockets
import zmq

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

LONG = bool(os.environ.get("ADW_LONG"))
DURATION = 120 if LONG else 12
MAX_EVENTS = 60000 if LONG else 2500
FIU_PRELOAD = Path("/usr/lib/fiu/fiu_posix_preload.so")
POLICY_SRC = adwtest.REPO / "tests" / "tools" / "fiu_policy.c"
ADWS = ["fa", "fb", "fc"]

# Realistic errnos only: a socket that is reset or full, an interrupted call. (EBADF, EFAULT and
# the like mean a program bug, and libzmq asserts on them.)
SEND = "posix/io/net/send:{p}:EPIPE,ECONNRESET,EINTR,EAGAIN,ENOBUFS:soft=libpq"
WRITE = "posix/io/rw/write:{p}:EINTR,EAGAIN,EIO:not=libzmq"
WRITE_SHORT = "posix/io/rw/write/reduce:{p}:not=libzmq"
MALLOC = ("libc/mm/malloc:{p}:ENOMEM:own;libc/mm/calloc:{p}:ENOMEM:own;"
          "libc/mm/realloc:{p}:ENOMEM:own;libc/str/strdup:{p}:ENOMEM:own")


# ---------------------------------------------------------------------------------------------
# The injector


@pytest.fixture(scope="module")
def fiu_policy(tmp_path_factory):
    """Builds tests/tools/fiu_policy.c (no sanitizers: it is preloaded into the programs)."""
    if not FIU_PRELOAD.exists():
        pytest.skip("libfiu's preload library is not installed (Debian: libfiu0, fiu-utils)")
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("fiu") / "fiu_policy.so"
    subprocess.run([cc, "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o",
                    str(out), str(POLICY_SRC), "-l:libfiu.so.0", "-ldl"], check=True)
    return out


def is_asan(path):
    with open(path, "rb") as f:
        return b"libasan.so" in f.read()


def libasan():
    return subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True,
                          text=True).stdout.strip()


class Injector:
    """The environment that preloads libfiu with a policy into one program, the file that arms
    it, and the counts it writes."""

    def __init__(self, policy, workdir, name, spec, program):
        self.arm = Path(workdir) / f"{name}.armed"
        self.counts_path = Path(workdir) / f"{name}.counts.json"
        preload = [str(FIU_PRELOAD), str(policy)]
        asan_opts = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        if is_asan(program):
            preload.insert(0, libasan())
        self.env = {
            "LD_PRELOAD": " ".join(preload),
            "ADW_FIU": spec,
            "ADW_FIU_ARM": str(self.arm),
            "ADW_FIU_COUNTS": str(self.counts_path),
            "ADW_FIU_SEED": str(int.from_bytes(os.urandom(4), "little")),
            "ASAN_OPTIONS": asan_opts + ":verify_asan_link_order=0",
        }

    def start(self):
        self.arm.touch()

    def stop(self):
        self.arm.unlink(missing_ok=True)
        time.sleep(0.3)  # the policy checks the file every 100 ms

    def counts(self):
        try:
            return json.loads(self.counts_path.read_text())
        except (OSError, ValueError):
            return {}


def failed(counts):
    return {k: v["failed"] for k, v in counts.items()}


def release_binary(name):
    """The Release build's program (malloc failures cannot reach libfiu under ASan)."""
    if not is_asan(adwtest.binary(name)):
        return adwtest.binary(name)
    d = Path(os.environ.get("ADW_RELEASE_BUILD_DIR") or adwtest.REPO / "build")
    p = d / "bin" / name
    if not p.exists() or is_asan(p):
        pytest.skip(f"no Release build of {name} in {d} (malloc injection needs one)")
    return p


def start_server(server, binary=None):
    if binary:
        server.argv[0] = str(binary)
    return server.start_ready(timeout=40)


def assert_clean_exit(*procs):
    for p in procs:
        rc = p.stop(timeout=30)
        log = p.log_text()
        assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, p.log_tail()
        assert "ERROR: LeakSanitizer" not in log, p.log_tail(80)
        assert rc == 0, f"{p.name} exited with {rc}\n{p.log_tail(60)}"


# ---------------------------------------------------------------------------------------------
# Load: producers that retry until acknowledged, clients that resume with since


class Acks:
    def __init__(self):
        self.lock = threading.Lock()
        self.ids = {}  # event_id -> id
        self.events = {}  # id -> adw_id
        self.retries = 0

    def add(self, evs, ids):
        with self.lock:
            for e, i in zip(evs, ids):
                self.ids[e["event_id"]] = i
                self.events[i] = e["adw_id"]

    def count(self):
        with self.lock:
            return len(self.ids)


def make_events(tag, n0, k):
    return [{"type": "adw_event", "adw_id": ADWS[(n0 + i) % len(ADWS)], "step": "build",
             "event_type": "TextBlock", "summary": f"{tag} {n0 + i}",
             "event_id": f"{tag}-{n0 + i}-{uuid.uuid4().hex[:8]}"} for i in range(k)]


def http_producer(ing, tag, acks, stop, budget):
    n = 0
    conn = None
    while not stop.is_set() and n < budget:
        evs = make_events(tag, n, 1 + n % 4)
        body = json.dumps(evs[0] if len(evs) == 1 else evs).encode()
        while True:  # until acknowledged: the same event_ids, so a retry never stores twice
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(adwtest.LOOPBACK, ing.http_port, timeout=10)
                conn.request("POST", "/api/events", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.status == 200:
                    doc = json.loads(data)
                    acks.add(evs, [doc["id"]] if "id" in doc else doc["ids"])
                    break
            except (OSError, http.client.HTTPException, ValueError):
                pass
            if conn is not None:
                conn.close()
                conn = None
            with acks.lock:
                acks.retries += 1
            time.sleep(0.05)
        n += len(evs)
    if conn is not None:
        conn.close()


def zmq_producer(ing, tag, acks, stop, budget):
    ctx = adwtest.zmq_context()
    n = 0
    sock = None
    while not stop.is_set() and n < budget:
        evs = make_events(tag, n, 1 + n % 3)
        msg = adwtest.mp_pack(evs[0] if len(evs) == 1 else evs)
        while True:
            if sock is None:
                sock = ctx.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(ing.zmq_endpoint)
            sock.send(msg)
            if sock.poll(5000):
                rep = adwtest.mp_unpack(sock.recv())
                if rep.get("ok"):
                    acks.add(evs, rep["ids"])
                    break
            # No answer (or a refusal): a fresh socket so a late answer is never taken for
            # the next request's.
            sock.close()
            sock = None
            with acks.lock:
                acks.retries += 1
            time.sleep(0.05)
        n += len(evs)
    if sock is not None:
        sock.close()


class Client:
    """One WebSocket subscriber with a filter; reconnects with since = the last id it holds."""

    def __init__(self, gw, adw_id=None):
        self.gw = gw
        self.adw_id = adw_id
        self.ids = []
        self.violations = []  # an id not above the one before (duplicate or out of order)
        self.connects = 0
        self.closes = {}

    def url(self):
        q = {"since": self.ids[-1] if self.ids else 0}
        if self.adw_id:
            q["adw_id"] = self.adw_id
        return self.gw.ws_url + "?" + urllib.parse.urlencode(q)

    async def run(self, stop):
        while not stop.is_set():
            try:
                async with websockets.connect(self.url(), max_size=None, ping_interval=None,
                                              open_timeout=10, close_timeout=2) as ws:
                    self.connects += 1
                    while not stop.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 0.5)
                        except asyncio.TimeoutError:
                            continue
                        m = json.loads(raw)
                        if "id" in m and m.get("type") in ("adw_event", "system"):
                            if self.ids and m["id"] <= self.ids[-1]:
                                self.violations.append((self.ids[-1], m["id"]))
                                continue
                            self.ids.append(m["id"])
            except websockets.exceptions.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else 1006
                self.closes[code] = self.closes.get(code, 0) + 1
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException,
                    ValueError):
                self.closes["connect"] = self.closes.get("connect", 0) + 1
            await asyncio.sleep(0.2)


class Clients:
    def __init__(self, gw, filters):
        self.clients = [Client(gw, f) for f in filters]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):
        async def all_():
            ev = asyncio.Event()

            async def watch():
                while not self.stop.is_set():
                    await asyncio.sleep(0.1)
                ev.set()

            await asyncio.gather(watch(), *(c.run(self.stop) for c in self.clients))

        asyncio.run(all_())

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.stop.set()
        self.thread.join(20)


def run_load(ing, gw, injectors, duration, budget, http_n=2, zmq_n=2):
    """Clients connect, the injectors arm, producers run for duration (or until budget events
    each), the injectors disarm, then everything must converge. Returns the figures."""
    clients = Clients(gw, [None, None, "fa", "fb"]).start()
    adwtest.wait_for(lambda: all(c.connects for c in clients.clients), 30, what="clients up")
    acks = Acks()
    stop = threading.Event()
    for inj in injectors:
        inj.start()
    threads = [threading.Thread(target=http_producer, args=(ing, f"h{i}", acks, stop, budget),
                                daemon=True)
               for i in range(http_n)]
    threads += [threading.Thread(target=zmq_producer, args=(ing, f"z{i}", acks, stop, budget),
                                 daemon=True)
                for i in range(zmq_n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while time.monotonic() - t0 < duration and any(t.is_alive() for t in threads):
        assert ing.alive(), ing.log_tail(60)
        assert gw.alive(), gw.log_tail(60)
        time.sleep(0.2)
    for inj in injectors:
        inj.stop()
    stop.set()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a producer could not get its last event acknowledged"
    elapsed = time.monotonic() - t0
    assert ing.alive() and gw.alive()

    # Every acknowledged event stored exactly once, with the id it was acknowledged with.
    rows = ing.pg.query("SELECT event_id, id FROM events")
    stored = {}
    for eid, i in rows:
        assert eid not in stored, f"event {eid} stored twice"
        stored[eid] = i
    assert stored == acks.ids, "stored events differ from the acknowledged ones"

    # Every client ends with every event its filter matches, once and in order.
    want_all = sorted(acks.events)

    def want(c):
        return [i for i in want_all if c.adw_id is None or acks.events[i] == c.adw_id]

    def converged():
        return all(c.ids == want(c) for c in clients.clients)

    try:
        adwtest.wait_for(converged, 90, interval=0.5, what="clients hold every event")
    except TimeoutError:
        detail = []
        for c in clients.clients:
            w = want(c)
            missing = sorted(set(w) - set(c.ids))
            detail.append(f"client {c.adw_id}: {len(c.ids)}/{len(w)} events, missing "
                          f"{missing[:10]}{'...' if len(missing) > 10 else ''}, last "
                          f"{c.ids[-1] if c.ids else None}, connects {c.connects}, "
                          f"closes {c.closes}")
        raise AssertionError("clients did not converge:\n" + "\n".join(detail))
    finally:
        clients.close()
    for c in clients.clients:
        assert not c.violations, f"client {c.adw_id}: duplicates/out of order {c.violations[:5]}"
    return {
        "events": len(acks.ids),
        "retries": acks.retries,
        "seconds": round(elapsed, 1),
        "reconnects": sum(c.connects - 1 for c in clients.clients),
        "closes": [c.closes for c in clients.clients],
        "delivered": sum(len(c.ids) for c in clients.clients),
    }


def metric(server, name):
    """A counter from the server's /metrics (0 when absent)."""
    status, _, body = adwtest.http_get(server.base_url + "/metrics")
    text = body if isinstance(body, str) else body.decode() if isinstance(body, bytes) else ""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return 0


def gateway_figures(gw):
    return {k: metric(gw, f"adw_gateway_{k}_total")
            for k in ("sub_silences", "hole_fills", "hole_filled_events", "replays")}


def report(name, figures, injectors):
    """Prints the figures and what libfiu injected (read after the programs exited, when the
    policy has written its final counts)."""
    counts = {n: inj.counts() for n, inj in injectors.items()}
    print(f"\n[fiu] {name}: {json.dumps(figures)}")
    for n, c in counts.items():
        print(f"[fiu] {name} {n}: {json.dumps(c)}")
    return counts


# ---------------------------------------------------------------------------------------------
# Tests


def test_send_and_write_failures_ingest_and_gateway(db, fiu_policy, tmp_path, make_ingest,
                                                    make_gateway):
    p = 0.03
    spec = ";".join([SEND.format(p=p), WRITE.format(p=p), WRITE_SHORT.format(p=p)])
    inj = {
        "ingest": Injector(fiu_policy, tmp_path, "ingest", spec, adwtest.binary("adw-ingest")),
        "gateway": Injector(fiu_policy, tmp_path, "gateway", spec, adwtest.binary("adw-gateway")),
    }
    ing = make_ingest(**inj["ingest"].env, timeout=40)
    gw = make_gateway(ing, **inj["gateway"].env, timeout=40)
    figures = run_load(ing, gw, inj.values(), DURATION, MAX_EVENTS)
    figures.update(gateway_figures(gw))
    assert_clean_exit(gw, ing)
    counts = report("send+write", figures, inj)
    for n in ("ingest", "gateway"):
        f = failed(counts[n])
        assert f.get("posix/io/net/send", 0) > 0, f"{n}: no send() failed: {counts[n]}"
    # The gateway's own code writes only log lines, so its write() failures are few.
    assert failed(counts["ingest"]).get("posix/io/rw/write", 0) > 0, counts["ingest"]
    assert figures["events"] > 100


def test_malloc_failures_in_own_code_ingest_and_gateway(db, fiu_policy, tmp_path, make_ingest,
                                                        make_gateway):
    ing_bin, gw_bin = release_binary("adw-ingest"), release_binary("adw-gateway")
    spec = MALLOC.format(p=0.02)
    inj = {
        "ingest": Injector(fiu_policy, tmp_path, "ingest", spec, ing_bin),
        "gateway": Injector(fiu_policy, tmp_path, "gateway", spec, gw_bin),
    }
    ing = start_server(make_ingest(**inj["ingest"].env, start=False), ing_bin)
    gw = start_server(make_gateway(ing, **inj["gateway"].env, start=False), gw_bin)
    figures = run_load(ing, gw, inj.values(), DURATION, MAX_EVENTS)
    figures.update(gateway_figures(gw))
    assert_clean_exit(gw, ing)
    counts = report("malloc", figures, inj)
    for n in ("ingest", "gateway"):
        assert sum(failed(counts[n]).values()) > 0, f"{n}: no allocation failed: {counts[n]}"


@pytest.mark.needs_bin("adw-send")
@pytest.mark.parametrize("kind", ["send_write", "malloc"])
def test_adw_send_failures_spool_then_deliver(db, fiu_policy, tmp_path, make_ingest, kind):
    """adw-send with its sends, spool writes (or its own allocations) failing: an event it
    could not deliver goes to the spool; a later run without failures delivers the spool, and
    each event is stored exactly once."""
    if kind == "malloc":
        send_bin = release_binary("adw-send")
        spec = MALLOC.format(p=0.05)
    else:
        send_bin = adwtest.binary("adw-send")
        spec = ";".join([SEND.format(p=0.2), WRITE.format(p=0.1), WRITE_SHORT.format(p=0.1)])
    ing = make_ingest()
    spool = tmp_path / "spool"
    inj = Injector(fiu_policy, tmp_path, "send", spec, send_bin)
    inj.start()
    runs = 200 if LONG else 40
    codes = {}
    sent_ids = []
    for i in range(runs):
        eid = f"s-{i}-{uuid.uuid4().hex[:8]}"
        sent_ids.append(eid)
        transport = ["--zmq", ing.zmq_endpoint] if i % 2 else ["--http", ing.base_url]
        env = dict(os.environ, **inj.env)
        r = subprocess.run([str(send_bin), *transport, "--adw-id", "fs", "--event-type",
                            "TextBlock", "--summary", f"n{i}", "--payload",
                            json.dumps({"event_id_hint": eid}), "--spool", str(spool),
                            "--strict", "--timeout-ms", "3000"],
                           env=dict(env, ADW_FIU_COUNTS=str(tmp_path / f"send{i}.json")),
                           capture_output=True, text=True, timeout=60)
        # 64 (usage) only when memory ran out while reading the configuration, before any
        # event exists; it says so.
        oom_at_start = r.returncode == 64 and "out of memory" in r.stderr
        assert r.returncode in (0, 75, 74) or oom_at_start, \
            f"adw-send exited {r.returncode}: {r.stderr}"
        assert "AddressSanitizer" not in r.stderr and "runtime error:" not in r.stderr, r.stderr
        code = 74 if oom_at_start else r.returncode
        codes[code] = codes.get(code, 0) + 1
    inj.stop()
    # A clean run delivers whatever was spooled, then its own event.
    r = subprocess.run([str(send_bin), "--http", ing.base_url, "--adw-id", "fs", "--event-type",
                        "TextBlock", "--summary", "last", "--spool", str(spool), "--strict"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    injected = {}
    for f in tmp_path.glob("send*.json"):
        for k, v in json.loads(f.read_text() or "{}").items():
            injected[k] = injected.get(k, 0) + v["failed"]
    print(f"\n[fiu] adw-send {kind}: exit codes {codes}, injected {injected}")
    hints = ing.pg.query("SELECT doc->'payload'->>'event_id_hint', count(*) FROM events "
                         "WHERE doc->>'summary' <> 'last' GROUP BY 1")
    per = dict(hints)
    lost = [e for e in sent_ids if e not in per]
    dup = {e: n for e, n in per.items() if n != 1}
    # Exit 74 means the event was neither delivered nor spooled (said so on stderr); anything
    # else must be stored exactly once.
    assert len(lost) <= codes.get(74, 0), f"lost {len(lost)} events, only {codes.get(74, 0)} said so"
    assert not dup, f"stored more than once: {dup}"
    assert sum(injected.values()) > 0
