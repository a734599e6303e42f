"""adw-ingest over ZeroMQ: DEALER and REQ submissions, replies in request order, the frame
limit, and the PUB stream (every committed event once, in id order, never a rejected one, and
$hb heartbeats)."""

import json
import time

import adwtest
import msgpack
import pytest
import zmq

pytestmark = pytest.mark.needs_bin("adw-ingest")


def ev(adw_id="run1", **kw):
    e = {"type": "adw_event", "adw_id": adw_id, "event_type": "TextBlock"}
    e.update(kw)
    return e


def count(db):
    return db.scalar("SELECT count(*) FROM events")


@pytest.mark.parametrize("kind", ["dealer", "req"])
def test_single_and_array(ingest, db, kind):
    with ingest.zmq(kind) as z:
        assert z.submit(ev()) == {"ok": True, "ids": [1]}
        assert z.submit([ev(), ev("run2"), ev()]) == {"ok": True, "ids": [2, 3, 4]}
        assert z.submit([ev()]) == {"ok": True, "ids": [5]}
        r = z.submit({"type": "adw_event"})
        assert r["ok"] is False and "adw_id is required" in r["error"] and "index" not in r
        r = z.submit([ev(), ev(duration_ms=-1), ev()])
        assert r == {"ok": False, "index": 1,
                     "error": "event 1: duration_ms must be a non-negative integer"}
        assert z.submit(ev(summary="after")) == {"ok": True, "ids": [6]}
    rows = db.query("SELECT id, adw_id, doc FROM events ORDER BY id")
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[2][1] == "run2"
    assert rows[5][2]["summary"] == "after"


def test_batch_limits_and_all_or_nothing(ingest, db):
    with ingest.zmq() as z:
        r = z.submit([ev(summary=str(i)) for i in range(1000)])
        assert r["ok"] and r["ids"] == list(range(1, 1001))
        r = z.submit([ev() for _ in range(1001)])
        assert r["ok"] is False and "1001" in r["error"]
        r = z.submit([])
        assert r["ok"] is False and "empty" in r["error"]
        for i in (0, 500, 999):
            batch = [ev() for _ in range(1000)]
            batch[i] = ev(timestamp="2026-02-30T00:00:00Z")
            r = z.submit(batch)
            assert r["ok"] is False and r["index"] == i and "timestamp" in r["error"]
    assert count(db) == 1000


def test_bad_frames(ingest, db):
    with ingest.zmq() as z:
        cases = [
            (b"", "empty frame"),
            (b"\xc1", "0xc1"),
            (b"\x81\xa1a", "truncated"),
            (adwtest.mp_pack(ev()) + b"\x00", "trailing bytes"),
            (b"\x82\xa4type\xa1x\xa4type\xa1y", "duplicate key"),
            (b"\x81\xa4type\xa2\xff\xfe", "invalid UTF-8"),
            (msgpack.packb({"type": "adw_event", "cost": float("nan")}), "NaN"),
            (msgpack.packb({"x": 2**64 - 1}), "integer out of range"),
            (msgpack.packb({"x": b"bin"}, use_bin_type=True), "binary"),
            (msgpack.packb("just a string"), "expected an event object"),
            (b"\x91" * 1000 + b"\xc0", "nesting deeper than 64"),
        ]
        for frame, want in cases:
            r = z.submit(frame)
            assert r["ok"] is False, frame
            assert want in r["error"], (frame, r)
        assert z.submit(ev()) == {"ok": True, "ids": [1]}
    assert count(db) == 1


def test_replies_in_request_order(ingest, db):
    """Valid and invalid requests sent back to back on one DEALER: the replies come in request
    order, though a refusal is known at once and a valid request only after its commit."""
    with ingest.zmq() as z:
        sent = []
        for i in range(60):
            kind = i % 4
            if kind == 0:
                z.send(ev(summary=str(i)))
            elif kind == 1:
                z.send(ev(duration_ms=-1))  # refused by validation
            elif kind == 2:
                z.send([ev(summary=str(i)), ev(summary=str(i))])
            else:
                z.send(b"\xc1")  # refused by the decoder
            sent.append(kind)
        replies = [z.recv(10) for _ in sent]
    next_id = 1
    for kind, r in zip(sent, replies):
        if kind == 0:
            assert r == {"ok": True, "ids": [next_id]}
            next_id += 1
        elif kind == 2:
            assert r == {"ok": True, "ids": [next_id, next_id + 1]}
            next_id += 2
        else:
            assert r["ok"] is False
            assert ("duration_ms" if kind == 1 else "0xc1") in r["error"]
    assert count(db) == next_id - 1


def test_many_dealers_in_parallel(ingest, db):
    clients = [ingest.zmq() for _ in range(8)]
    try:
        for round_ in range(20):
            for k, z in enumerate(clients):
                z.send([ev(f"c{k}", summary=f"{round_}.{j}") for j in range(5)])
        got = {k: [z.recv(10) for _ in range(20)] for k, z in enumerate(clients)}
    finally:
        for z in clients:
            z.close()
    ids = sorted(i for rs in got.values() for r in rs for i in r["ids"])
    assert ids == list(range(1, 801))
    for k, rs in got.items():
        flat = [i for r in rs for i in r["ids"]]
        assert flat == sorted(flat)  # each client's requests commit in its order
    rows = db.query("SELECT id, adw_id, doc->>'summary' FROM events ORDER BY id")
    per = {}
    for _, a, s in rows:
        per.setdefault(a, []).append(s)
    for k in range(8):
        assert per[f"c{k}"] == [f"{r}.{j}" for r in range(20) for j in range(5)]


def test_frame_over_the_limit_is_refused_by_the_socket(make_ingest, db):
    ing = make_ingest(ADW_INGEST_MAX_BODY="4096")
    big = adwtest.mp_pack(ev(summary="s" * 4096, payload={"k": "x" * 100}))
    assert len(big) > 4096
    with ing.zmq() as z:
        z.send(big)
        with pytest.raises(TimeoutError):
            z.recv(1.5)
    # The server keeps serving, on new sockets and on one that kept going.
    with ing.zmq() as z:
        assert z.submit(ev(summary="s" * 3000)) == {"ok": True, "ids": [1]}
    with ing.zmq("req") as z:
        assert z.submit(ev()) == {"ok": True, "ids": [2]}
    assert ing.alive()
    assert count(db) == 2
    assert db.scalar("SELECT count(*) FROM events WHERE length(doc->>'summary') = 4096") == 0


def test_multipart_request_refused(ingest, db):
    """A DEALER request of several frames: the last frame is the body; the rest is treated as
    envelope and echoed back."""
    with ingest.zmq() as z:
        z.sock.send_multipart([b"", adwtest.mp_pack(ev())])
        frames = z.sock.recv_multipart() if z.sock.poll(5000) else None
        assert frames is not None and frames[0] == b""
        assert adwtest.mp_unpack(frames[-1]) == {"ok": True, "ids": [1]}
        assert z.submit(ev()) == {"ok": True, "ids": [2]}


# ---------------------------------------------------------------------------------------------
# PUB


def test_pub_delivers_every_committed_event_once_in_order(ingest, db):
    with ingest.sub() as sub:
        sub.wait_joined()
        with ingest.http() as c, ingest.zmq() as z:
            expected = []
            for i in range(30):
                if i % 3 == 0:
                    st, _, body = c.post_json("/api/events", [ev(summary=f"h{i}"),
                                                              ev("run2", summary=f"h{i}b")])
                    assert st == 200
                    expected += [(body["ids"][0], "run1"), (body["ids"][1], "run2")]
                elif i % 3 == 1:
                    r = z.submit(ev(summary=f"z{i}", event_id=f"k{i}"))
                    assert r["ok"]
                    expected.append((r["ids"][0], "run1"))
                    # A retry of it is answered with its id and not published again.
                    assert z.submit(ev(summary=f"z{i}", event_id=f"k{i}")) == r
                else:
                    # Rejected submissions are never published.
                    assert c.post_json("/api/events", [ev(), ev(payload=[])])[0] == 400
                    assert z.submit(ev(type="nope"))["ok"] is False
        msgs = sub.wait_count(len(expected), timeout=10)
        time.sleep(0.5)  # anything extra would have arrived by now
        msgs = [m for m in sub.snapshot() if m.topic != "$hb"]
    assert [(m.body["id"], m.topic) for m in msgs] == expected
    assert [m.body["id"] for m in msgs] == list(range(1, len(expected) + 1))
    stored = {r[0]: r[1] for r in db.query("SELECT id, doc FROM events")}
    for m in msgs:
        body = m.body
        # The stored event as delivered: id and received_at first, then the submitted keys.
        assert list(body)[:2] == ["id", "received_at"]
        order = ("type", "adw_id", "event_type", "summary", "event_id")
        assert list(body)[2:] == [k for k in order if k in body]
        assert body == stored[body["id"]]
        assert m.topic == body["adw_id"]
    assert not sub.errors


def test_pub_topic_filter_and_heartbeat(make_ingest, db):
    ing = make_ingest(ADW_INGEST_HEARTBEAT_MS="200")
    epoch = int(db.scalar("SELECT value FROM adw_meta WHERE key = 'epoch'"))
    with ing.sub(topics=("run-a",)) as only_a, ing.sub(topics=("$hb",)) as hb:
        hb.wait_joined()
        first = hb.wait_for(lambda m: m.topic == "$hb")
        assert first.body == {"last_id": 0, "epoch": epoch}
        with ing.http() as c:
            c.post_json("/api/events", [ev("run-a"), ev("run-b"), ev("run-a", summary="2")])
        msgs = only_a.wait_count(2, timeout=5)
        assert [m.body["id"] for m in msgs] == [1, 3]
        assert all(m.topic == "run-a" for m in msgs)
        beat = hb.wait_for(lambda m: m.body["last_id"] == 3, timeout=5)
        assert beat.body == {"last_id": 3, "epoch": epoch}
        n = len(hb.snapshot())
        time.sleep(1.2)
        assert len(hb.snapshot()) >= n + 2  # every ~200 ms
    assert set(hb.snapshot()[-1].body) == {"last_id", "epoch"}


def test_pub_after_restart_continues_ids(ingest, db):
    with ingest.http() as c:
        c.post_json("/api/events", [ev(), ev()])
    ingest.restart()
    with ingest.sub() as sub:
        beat = sub.wait_for(lambda m: m.topic == "$hb", timeout=5)
        assert beat.body["last_id"] == 2
        assert adwtest.zmq_submit(ingest.zmq_endpoint, ev()) == {"ok": True, "ids": [3]}
        m = sub.wait_for(lambda m: m.topic == "run1")
        assert m.body["id"] == 3
