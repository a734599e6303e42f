"""The commit path's event_id lookup (proto/decisions.md, "Deduplication without a global unique
index"): while the batch's ids lie in one partition the writer sends no lookup of its own. That
partition's unique index finds a duplicate stored in it, and a check sent first in the batch's
pipeline one stored in a partition below; either makes the writer commit the batch again after
the lookup (adw_ingest_duplicate_retries_total). A batch whose ids may straddle two partitions
is looked up first (adw_ingest_event_id_lookups_total counts those round trips). Either way a
duplicate is never stored twice, and a batch that mixes stored, repeated and new event_ids gets
the same ids.
"""

import adwtest
from test_gateway_common import ev, post

SIZE = 1000  # ids per partition: the smallest accepted


def counter(ing, name):
    st, _, body = adwtest.http_get(ing.base_url + "/metrics")
    assert st == 200
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} missing")


def retries(ing):
    return counter(ing, "adw_ingest_duplicate_retries_total")


def lookups(ing):
    return counter(ing, "adw_ingest_event_id_lookups_total")


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
    assert lookups(ing) == 1  # the retry's
    with ing.zmq() as z:
        assert z.submit(ev("c1", event_id="a-7"))["ids"] == [8]
    assert retries(ing) == 2
    assert db.scalar("SELECT count(*) FROM events") == 11

    # Past the first partition: new event_ids commit without a lookup of their own (the check of
    # the partition below rides in the batch's pipeline). The ids now go to the second
    # partition, ids SIZE+1 to 2*SIZE.
    post(ing, [ev("fill", event_id=f"f-{i}") for i in range(SIZE)], batch=100)
    last = db.scalar("SELECT max(id) FROM events")
    assert last == 11 + SIZE
    r0, l0 = retries(ing), lookups(ing)
    ids = send(ing, [ev("c1", event_id=f"n-{i}") for i in range(5)])
    assert ids == list(range(last + 1, last + 6))
    with ing.zmq() as z:
        assert z.submit(ev("c1", event_id="n-5"))["ids"] == [last + 6]
    assert (retries(ing), lookups(ing)) == (r0, l0)
    last += 6

    # A duplicate stored in the first partition, one in the second and one in the batch: the
    # check finds the first, and the retry after the lookup answers every stored id.
    ids = send(ing, [ev("c1", event_id="a-0"), ev("c1", event_id="f-999"),
                     ev("c1", event_id="c-0"), ev("c1", event_id="a-0")])
    assert ids == [1, 11 + SIZE, last + 1, 1]
    assert (retries(ing), lookups(ing)) == (r0 + 1, l0 + 1)
    # Stored in the second partition, the one the ids go to: its own index finds it.
    ids = send(ing, [ev("c1", event_id="n-2"), ev("c1", event_id="d-0")])
    assert ids == [last - 3, last + 2]
    assert (retries(ing), lookups(ing)) == (r0 + 2, l0 + 2)
    with ing.zmq() as z:
        assert z.submit(ev("c1", event_id="a-9"))["ids"] == [10]
    assert (retries(ing), lookups(ing)) == (r0 + 3, l0 + 3)
    assert db.scalar("SELECT count(*) FROM events") == last + 2
    assert db.scalar("SELECT count(DISTINCT event_id) FROM events") == last + 2

    # Batches large enough to go in by COPY: the check rides in their pipeline too.
    last += 2
    ids = send(ing, [ev("c1", event_id=f"g-{i}") for i in range(70)])
    assert ids == list(range(last + 1, last + 71))
    assert (retries(ing), lookups(ing)) == (r0 + 3, l0 + 3)
    ids = send(ing, [ev("c1", event_id="a-5")] + [ev("c1", event_id=f"h-{i}") for i in range(70)])
    assert ids == [6] + list(range(last + 71, last + 141))
    assert (retries(ing), lookups(ing)) == (r0 + 4, l0 + 4)
    last += 140
    assert db.scalar("SELECT count(*) FROM events") == last
    assert db.scalar("SELECT count(DISTINCT event_id) FROM events") == last

    # Ids that may straddle the end of the second partition (each event may raise up to 3 more
    # about budgets): the lookup goes first.
    post(ing, [ev("fill2") for _ in range(2 * SIZE - last - 20)], batch=100)
    last = db.scalar("SELECT max(id) FROM events")
    assert last == 2 * SIZE - 20
    r1, l1 = retries(ing), lookups(ing)
    ids = send(ing, [ev("c1", event_id="a-1")] + [ev("c1", event_id=f"s-{i}") for i in range(5)])
    assert ids == [2] + list(range(last + 1, last + 6))
    assert (retries(ing), lookups(ing)) == (r1, l1 + 1)  # found by the lookup, no retry


def test_the_check_takes_event_ids_of_any_text(make_ingest, db):
    """The check of the partitions below sends the batch's event_ids as one text[] literal:
    quotes, backslashes, braces, commas, spaces, the word NULL and non-ASCII must each stay
    the one string it is, neither matching another stored id nor missing its own."""
    ing = make_ingest(ADW_INGEST_PARTITION_EVENTS=str(SIZE), ADW_INGEST_MAX_BATCH="100")
    odd = ['q"uote', "back\\slash", "{brace,comma}", "NULL", " spaced ", "é-ü", '\\"{},']
    stored = send(ing, [ev("odd", event_id=e) for e in odd])
    assert stored == list(range(1, len(odd) + 1))
    post(ing, [ev("fill") for _ in range(SIZE)], batch=100)
    last = db.scalar("SELECT max(id) FROM events")
    assert last > SIZE  # the ids now go to the second partition
    r0, l0 = retries(ing), lookups(ing)

    # Near misses of the stored ids are new: no retry, no lookup.
    near = ['q"uote ', "back\\\\slash", "{brace}", "null", "spaced", "é-u", '"{},']
    ids = send(ing, [ev("odd", event_id=e) for e in near])
    assert ids == list(range(last + 1, last + 1 + len(near)))
    assert (retries(ing), lookups(ing)) == (r0, l0)

    # The stored ones, sent again past the first partition: each answered with its first id.
    ids = send(ing, [ev("odd", event_id=e) for e in reversed(odd)])
    assert ids == list(reversed(stored))
    assert (retries(ing), lookups(ing)) == (r0 + 1, l0 + 1)
    assert db.scalar("SELECT count(*) FROM events WHERE adw_id = 'odd'") == len(odd) + len(near)
