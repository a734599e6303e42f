"""The spool: ingest down or silent -> events spooled within the timeout; ingest back -> the
spool goes first, in order, nothing stored twice; concurrent processes share one spool."""

import json
import os
import subprocess
import time

import adwtest
import pytest
from test_send_helpers import (Blackhole, count, dead_port, docs, run_send, send_env, spool_docs,
                               spooled)

pytestmark = pytest.mark.needs_bin("adw-send", "adw-ingest")


def one(where, spool, summary, *extra):
    return run_send([*where, "--spool", spool, "--adw-id", "sp", "--event-type", "TextBlock",
                     "--summary", summary, *extra])


@pytest.mark.parametrize("transport", ["zmq", "http"])
def test_ingest_down_spools_at_once_and_up_again_sends_spool_first(ingest, tmp_path, transport):
    spool = tmp_path / "spool"
    where = ["--zmq", ingest.zmq_endpoint] if transport == "zmq" else ["--http", ingest.base_url]
    assert one(where, spool, "before").returncode == 0
    ingest.stop()
    for i in range(5):
        r = one(where, spool, f"down {i}", "--timeout-ms", "3000")
        assert r.returncode == 0 and "spooled" in r.stderr, r.stderr
        assert r.elapsed < 3.0  # refused: no waiting for the timeout
    assert r.returncode == 0
    assert [d["summary"] for d in spool_docs(spool)] == [f"down {i}" for i in range(5)]
    assert one(where, spool, "still down", "--strict").returncode == 75
    ingest.start_again()
    ingest.wait_ready(ingest.base_url + "/readyz")
    r = one(where, spool, "after", "--strict")
    assert r.returncode == 0, r.stderr
    assert [d["summary"] for d in docs(ingest.pg)] == \
        ["before"] + [f"down {i}" for i in range(5)] + ["still down", "after"]
    assert spooled(spool) == []
    ids = [d["event_id"] for d in docs(ingest.pg)]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("transport", ["zmq", "http"])
def test_a_silent_ingest_never_holds_the_agent_past_the_timeout(tmp_path, transport):
    spool = tmp_path / "spool"
    with Blackhole() as bh:
        where = (["--zmq", f"tcp://127.0.0.1:{bh.port}"] if transport == "zmq"
                 else ["--http", f"http://127.0.0.1:{bh.port}"])
        r = one(where, spool, "silent", "--timeout-ms", "700")
        assert r.returncode == 0 and "spooled" in r.stderr, r.stderr
        assert r.elapsed < 0.7 + 1.5  # process start and ASan slack; never the default 2 s
        r = one(where, spool, "silent again", "--timeout-ms", "700", "--strict")
        assert r.returncode == 75
    assert [d["summary"] for d in spool_docs(spool)] == ["silent", "silent again"]


def test_database_down_answers_503_and_events_wait_in_the_spool(ingest, tmp_path):
    spool = tmp_path / "spool"
    where = ["--http", ingest.base_url]
    ingest.pg.stop()
    try:
        r = one(where, spool, "db down", "--timeout-ms", "3000", "--strict")
        assert r.returncode == 75 and "503" in r.stderr, r.stderr
    finally:
        ingest.pg.start()
    adwtest.wait_for(lambda: adwtest.http_get(ingest.base_url + "/readyz")[0] == 200, 30,
                     what="ingest ready again")
    r = one(where, spool, "db up", "--strict")
    assert r.returncode == 0, r.stderr
    assert [d["summary"] for d in docs(ingest.pg)] == ["db down", "db up"]


def test_an_event_already_stored_is_not_stored_twice_from_the_spool(ingest, tmp_path):
    """A send that timed out after ingest committed: the spooled copy carries the same
    event_id, so delivering it again stores nothing."""
    spool = tmp_path / "spool"
    where = ["--zmq", ingest.zmq_endpoint]
    assert one(where, spool, "stored", "--event-id", "k-1").returncode == 0
    spool.mkdir(exist_ok=True)
    [doc] = docs(ingest.pg)
    copy = {k: v for k, v in doc.items() if k not in ("id", "received_at")}
    (spool / "e-0000000000000000001-0000000001-00000000.json").write_text(json.dumps(copy))
    r = one(where, spool, "new", "--strict")
    assert r.returncode == 0, r.stderr
    assert [d["summary"] for d in docs(ingest.pg)] == ["stored", "new"]
    assert spooled(spool) == []


def test_bad_files_in_the_spool_move_to_rejected_and_do_not_block(ingest, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "e-0000000000000000001-0000000001-00000000.json").write_text("{broken")
    (spool / "e-0000000000000000002-0000000001-00000000.json").write_text(
        json.dumps({"type": "adw_event", "adw_id": "sp", "event_type": "TextBlock",
                    "summary": "good old", "event_id": "old-1"}))
    (spool / "e-0000000000000000003-0000000001-00000000.json").write_text(
        json.dumps({"type": "nonsense", "adw_id": "sp"}))
    (spool / "e-0000000000000000004-0000000001-00000000.json").mkdir()  # unreadable
    (spool / ".tmp-123-0-0").write_text("half written")
    r = one(["--zmq", ingest.zmq_endpoint], spool, "new", "--strict")
    assert r.returncode == 0, r.stderr
    assert [d["summary"] for d in docs(ingest.pg)] == ["good old", "new"]
    assert spooled(spool) == []
    assert sorted(os.listdir(spool / "rejected")) == [
        "e-0000000000000000001-0000000001-00000000.json",
        "e-0000000000000000003-0000000001-00000000.json",
        "e-0000000000000000004-0000000001-00000000.json"]
    assert (spool / ".tmp-123-0-0").exists()  # fresh: maybe another writer's, left alone


def test_spool_max_refuses_more_and_strict_says_lost(tmp_path):
    spool = tmp_path / "spool"
    where = ["--zmq", f"tcp://127.0.0.1:{dead_port()}"]
    for i in range(3):
        assert one(where, spool, str(i), "--spool-max", "3").returncode == 0
    r = one(where, spool, "over", "--spool-max", "3", "--strict")
    assert r.returncode == 74 and "full" in r.stderr
    assert len(spooled(spool)) == 3


def run_many(argv_list, inputs=None, env=None):
    procs = [subprocess.Popen([str(adwtest.binary("adw-send")), *map(str, a)],
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=send_env(env)) for a in argv_list]
    outs = []
    for i, p in enumerate(procs):
        _, err = p.communicate((inputs[i] if inputs else b""), timeout=120)
        outs.append((p.returncode, err.decode(errors="replace")))
    return outs


def batch(proc_no, n):
    return "\n".join(json.dumps({"type": "adw_event", "adw_id": f"c{proc_no}",
                                 "event_type": "TextBlock", "summary": f"{proc_no}:{i}"})
                     for i in range(n)).encode()


def check_per_process_order(ds, nprocs, n):
    for k in range(nprocs):
        mine = [int(d["summary"].split(":")[1]) for d in ds if d["adw_id"] == f"c{k}"]
        assert mine == list(range(n)), (k, mine)


def test_concurrent_processes_share_one_spool(ingest, tmp_path):
    spool = tmp_path / "spool"
    nprocs, n = 8, 25
    dead = ["--zmq", f"tcp://127.0.0.1:{dead_port()}"]
    outs = run_many([[*dead, "--spool", spool, "--json", "--strict"]] * nprocs,
                    [batch(k, n) for k in range(nprocs)])
    assert all(rc == 75 for rc, _ in outs), outs
    assert len(spooled(spool)) == nprocs * n
    # Back up: eight processes at once, each with one new event; the spool drains once.
    up = ["--zmq", ingest.zmq_endpoint, "--spool", spool, "--timeout-ms", "20000", "--strict"]
    outs = run_many([[*up, "--adw-id", "new", "--event-type", "TextBlock", "--summary", str(k)]
                     for k in range(nprocs)])
    assert all(rc == 0 for rc, _ in outs), outs
    ds = docs(ingest.pg)
    assert len(ds) == nprocs * n + nprocs
    assert len({d["event_id"] for d in ds}) == len(ds)
    assert spooled(spool) == []
    check_per_process_order(ds, nprocs, n)
    first_new = min(i for i, d in enumerate(ds) if d["adw_id"] == "new")
    assert first_new >= nprocs * n - 0  # every spooled event before any new one


def test_concurrent_senders_while_ingest_flaps_lose_and_duplicate_nothing(ingest, tmp_path):
    spool = tmp_path / "spool"
    nprocs, n = 6, 20
    args = ["--zmq", ingest.zmq_endpoint, "--spool", spool, "--json", "--timeout-ms", "2000"]
    procs = []
    for k in range(nprocs):
        p = subprocess.Popen([str(adwtest.binary("adw-send")), *map(str, args)],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=send_env())
        procs.append(p)
        if k == nprocs // 2:
            ingest.stop()
        p.stdin.write(batch(k, n))
        p.stdin.close()
    for p in procs:
        assert p.wait(60) == 0
    ingest.start_again()
    ingest.wait_ready(ingest.base_url + "/readyz")
    r = run_send(["--zmq", ingest.zmq_endpoint, "--spool", spool, "--adw-id", "last",
                  "--event-type", "TextBlock", "--strict", "--timeout-ms", "20000"])
    assert r.returncode == 0, r.stderr
    ds = docs(ingest.pg)
    assert len(ds) == nprocs * n + 1
    assert len({d["event_id"] for d in ds}) == len(ds)
    check_per_process_order(ds, nprocs, n)


def test_a_locked_spool_does_not_hold_the_agent(tmp_path):
    """Another process holds the drain lock (stuck): new events are spooled within the
    timeout instead of waiting for it."""
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "e-0000000000000000001-0000000001-00000000.json").write_text(
        json.dumps({"type": "adw_event", "adw_id": "sp", "event_type": "T"}))
    holder = subprocess.Popen(["flock", str(spool / ".lock"), "sleep", "30"])
    try:
        time.sleep(0.3)
        with Blackhole() as bh:
            r = one(["--zmq", f"tcp://127.0.0.1:{bh.port}"], spool, "x", "--timeout-ms", "500",
                    "--strict")
        assert r.returncode == 75 and "locked" in r.stderr, r.stderr
        assert r.elapsed < 0.5 + 1.5
        assert len(spooled(spool)) == 2
    finally:
        holder.kill()
        holder.wait()
