"""The commit path's event_id lookup (proto/decisions.md, "Deduplication without a global unique
index"): while every stored event and the batch's ids lie in the lowest partition, the writer
sends no lookup and that partition's unique index finds a duplicate (the batch is then committed
again with the lookup: adw_ingest_duplicate_retries_total); once ids pass into a second
partition, the lookup is made first again and a duplicate stored in the first partition is
still answered with its first id. Either way a duplicate is never stored twice, and a batch that
mixes stored, repeated and new event_ids gets the same ids.
"""

import adwtest
from test_gateway_common import ev, post

SIZE = 1000  # ids per partition: the smallest accepted


def retries(ing):
    st, _, body = adwtest.http_get(ing.base_url + "/metrics")
    assert st == 200
    for line in body.splitlines():
        if line.startswith("adw_ingest_duplicate_retries_total "):
            return float(line.split()[-1])
    raise AssertionError("adw_ingest_duplicate_retries_total missing")


def send(ing, events):
    st, _, body = adwtest.post_json(ing.base_url + "/api/events", events)
    assert st == 200, body
    return body["ids"]


def test_duplicates_found_with_and_without_the_lookup(make_ingest, db):
    ing = make_ingest(ADW_INGEST_PARTITION_EVENTS=str(SIZE), ADW_INGEST_MAX_BATCH="100")

    # One partition holds everything: new event_ids commit at once, without a retry.
    first = send(ing, [ev("c1", event_id=f"a-{i}") for i in range(10)])
    assert first == list(range(1, 11))
    assert retries(ing) == 0

    # A stored event_id, the same one twice in the batch and a new one: the partition's index
    # refuses the first attempt, the retry with the lookup answers the stored id for both.
    ids = send(ing, [ev("c1", event_id="a-3"), ev("c1", event_id="b-0"),
                     ev("c1", event_id="a-3")])
    assert ids == [4, 11, 4]
    assert retries(ing) == 1
    with ing.zmq() as z:
        assert z.submit(ev("c1", event_id="a-7"))["ids"] == [8]
    assert retries(ing) == 2
    assert db.scalar("SELECT count(*) FROM events") == 11

    # Past the first partition: the lookup goes first again, across partitions.
    post(ing, [ev("fill", event_id=f"f-{i}") for i in range(SIZE)], batch=100)
    last = db.scalar("SELECT max(id) FROM events")
    assert last == 11 + SIZE
    before = retries(ing)
    ids = send(ing, [ev("c1", event_id="a-0"), ev("c1", event_id="f-999"),
                     ev("c1", event_id="c-0"), ev("c1", event_id="a-0")])
    assert ids == [1, 11 + SIZE, last + 1, 1]
    with ing.zmq() as z:
        assert z.submit(ev("c1", event_id="a-9"))["ids"] == [10]
    assert retries(ing) == before  # found by the lookup, not by an index
    assert db.scalar("SELECT count(*) FROM events") == last + 1
    assert db.scalar("SELECT count(DISTINCT event_id) FROM events") == last + 1
