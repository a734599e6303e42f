/* Unit tests for gateway/fanout and gateway/frame: delivery by filter and cursor, shared
 * frames, the backlog bound and its close reason, the replay hand-over, epoch resets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "fanout.h"
#include "frame.h"

static int wakes;

static void on_wake(void *user)
{
    (void)user;
    wakes++;
}

static fanout_t *new_fanout(size_t max_queue)
{
    fanout_options_t o = {.max_queue = max_queue, .wake = on_wake};
    fanout_t *f = fanout_new(&o);
    assert_non_null(f);
    fanout_position(f, 0, 7);
    return f;
}

static frame_t *event(int64_t id, const char *adw_id, const char *step)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"type\":\"adw_event\",\"received_at\":\"2026-01-01T00:00:00.000000Z\",\"id\":%lld,"
             "\"adw_id\":\"%s\",\"step\":\"%s\",\"event_type\":\"TextBlock\"}",
             (long long)id, adw_id, step);
    json_t *doc = NULL;
    char err[128];
    assert_int_equal(codec_json_parse(json, strlen(json), &doc, err, sizeof err), 0);
    frame_t *f = frame_from_event(doc, err, sizeof err);
    json_decref(doc);
    assert_non_null(f);
    return f;
}

/* Publishes an event with this id and drops the caller's reference. */
static void publish(fanout_t *f, int64_t id, const char *adw_id, const char *step)
{
    frame_t *fr = event(id, adw_id, step);
    fanout_publish(f, fr);
    frame_unref(&fr);
}

/* Pops everything queued for c; returns the ids (0 for non-events) in buf. */
static size_t drain(fanout_client_t *c, int64_t *ids, size_t cap)
{
    size_t n = 0;
    frame_t *fr;
    while ((fr = fanout_pop(c))) {
        if (n < cap)
            ids[n] = fr->id;
        n++;
        frame_unref(&fr);
    }
    return n;
}

static void test_frame_serialization(void **state)
{
    (void)state;
    frame_t *f = event(42, "a1", "build");
    assert_int_equal(f->id, 42);
    assert_string_equal((char *)f->payload,
                        "{\"id\":42,\"received_at\":\"2026-01-01T00:00:00.000000Z\",\"type\":"
                        "\"adw_event\",\"adw_id\":\"a1\",\"step\":\"build\",\"event_type\":"
                        "\"TextBlock\"}");
    assert_int_equal(f->len, strlen((char *)f->payload));
    assert_string_equal(f->fields.field[FILTER_ADW_ID], "a1");
    assert_string_equal(f->fields.field[FILTER_STEPS], "build");
    assert_string_equal(f->fields.field[FILTER_EVENT_TYPES], "TextBlock");
    assert_string_equal(f->fields.field[FILTER_TYPES], "adw_event");
    assert_true(f->payload - f->mem >= FRAME_HEADROOM);
    frame_t *g = frame_ref(f);
    frame_unref(&f);
    assert_null(f);
    assert_int_equal(g->id, 42);
    frame_unref(&g);
    frame_unref(&g); /* NULL is fine */

    char err[128];
    json_t *bad = json_pack("{si}", "x", 1);
    assert_null(frame_from_event(bad, err, sizeof err));
    assert_non_null(strstr(err, "id"));
    json_decref(bad);
    bad = json_pack("{si}", "id", 3);
    assert_null(frame_from_event(bad, err, sizeof err));
    assert_non_null(strstr(err, "received_at"));
    json_decref(bad);
}

static void test_wire_headers(void **state)
{
    (void)state;
    static const struct {
        size_t len, hlen;
        unsigned char h[10];
    } cases[] = {
        {0, 2, {0x81, 0}},
        {125, 2, {0x81, 125}},
        {126, 4, {0x81, 126, 0, 126}},
        {65535, 4, {0x81, 126, 0xff, 0xff}},
        {65536, 10, {0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
        {70000, 10, {0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}},
    };
    static char text[70000];
    memset(text, 'x', sizeof text);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        frame_t *f = frame_new_text(text, cases[i].len);
        assert_non_null(f);
        assert_int_equal(f->wire_len, cases[i].len + cases[i].hlen);
        assert_ptr_equal(f->wire + cases[i].hlen, f->payload);
        assert_memory_equal(f->wire, cases[i].h, cases[i].hlen);
        frame_unref(&f);
    }
}

static void test_filtered_delivery_shares_frames(void **state)
{
    (void)state;
    fanout_t *f = new_fanout(1 << 20);
    fanout_client_t a, b;
    fanout_add(f, &a, NULL);
    fanout_add(f, &b, NULL);
    char err[64];
    assert_int_equal(filter_set_csv(&b.filter, FILTER_STEPS, "plan", 4, err, sizeof err), 0);
    frame_t *e1 = event(1, "r", "build");
    fanout_publish(f, e1);
    assert_int_equal(atomic_load(&e1->refs), 2); /* the caller's and a's: shared, not copied */
    frame_unref(&e1);
    publish(f, 2, "r", "plan");
    assert_int_equal(fanout_last_id(f), 2);
    int64_t ids[8];
    assert_int_equal(drain(&a, ids, 8), 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(a.last_sent, 2);
    assert_null(fanout_peek(&a));
    assert_non_null(fanout_peek(&b));
    assert_int_equal(fanout_peek(&b)->id, 2);
    assert_int_equal(drain(&b, ids, 8), 1);
    assert_int_equal(ids[0], 2);
    assert_int_equal(fanout_count(f), 2);
    fanout_remove(f, &a);
    fanout_remove(f, &b);
    assert_int_equal(fanout_count(f), 0);
    fanout_destroy(&f);
    assert_null(f);
}

static void test_new_client_starts_at_position(void **state)
{
    (void)state;
    fanout_t *f = new_fanout(1 << 20);
    publish(f, 1, "r", "s");
    fanout_client_t c;
    fanout_add(f, &c, NULL);
    assert_int_equal(c.cursor, 1);
    publish(f, 2, "r", "s");
    int64_t ids[4];
    assert_int_equal(drain(&c, ids, 4), 1);
    assert_int_equal(ids[0], 2);
    fanout_remove(f, &c);
    fanout_destroy(&f);
}

static void test_bound_culls_with_last_id(void **state)
{
    (void)state;
    frame_t *probe = event(1, "r", "s");
    size_t one = probe->len;
    frame_unref(&probe);
    fanout_t *f = new_fanout(one * 3 + one / 2); /* room for three events */
    fanout_client_t slow, fast;
    fanout_add(f, &slow, NULL);
    fanout_add(f, &fast, NULL);
    int64_t ids[16];
    publish(f, 1, "r", "s");
    assert_int_equal(drain(&slow, ids, 16), 1); /* slow took one */
    for (int64_t id = 2; id <= 5; id++) {
        publish(f, id, "r", "s");
        drain(&fast, ids, 16); /* fast keeps up */
    }
    assert_int_equal(slow.close_code, FANOUT_CLOSE_SLOW);
    assert_string_equal(slow.close_reason, "slow consumer; last_id=1");
    assert_int_equal(slow.count, 0); /* backlog dropped */
    assert_int_equal(slow.bytes, 0);
    assert_int_equal(fast.close_code, 0);
    publish(f, 6, "r", "s"); /* nothing more queued for a closing client */
    assert_int_equal(slow.count, 0);
    assert_int_equal(drain(&fast, ids, 16), 1);
    /* A second close keeps the first code. */
    fanout_close(f, &slow, 4000, "other");
    assert_int_equal(slow.close_code, FANOUT_CLOSE_SLOW);
    fanout_remove(f, &slow);
    fanout_remove(f, &fast);
    fanout_destroy(&f);
}

static void test_replay_handover(void **state)
{
    (void)state;
    fanout_t *f = new_fanout(1 << 20);
    for (int64_t id = 1; id <= 10; id++)
        publish(f, id, "r", "s");
    fanout_client_t c;
    fanout_add(f, &c, NULL);
    int64_t upto = fanout_replay_begin(f, &c, 4);
    assert_int_equal(upto, 10);
    /* Live events during the replay are held. */
    publish(f, 11, "r", "s");
    publish(f, 12, "r", "s");
    assert_int_equal(c.count, 0);
    assert_int_equal(c.npend, 2);
    for (int64_t id = 5; id <= 10; id++)
        fanout_replay_add(f, &c, event(id, "r", "s"));
    fanout_send(f, &c, frame_new_text("{\"type\":\"pong\"}", 15)); /* interleaves, in order */
    fanout_replay_end(f, &c, frame_new_text("{\"type\":\"replayed\"}", 19));
    publish(f, 13, "r", "s");
    int64_t ids[32];
    size_t n = drain(&c, ids, 32);
    int64_t want[] = {5, 6, 7, 8, 9, 10, 0, 0, 11, 12, 13};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
    /* since ahead of the position: nothing to replay, later live events only. */
    upto = fanout_replay_begin(f, &c, 20);
    assert_int_equal(upto, 20);
    fanout_replay_end(f, &c, frame_new_text("{}", 2));
    publish(f, 14, "r", "s");
    assert_int_equal(drain(&c, ids, 32), 1); /* just the marker: 14 <= since */
    fanout_remove(f, &c);
    fanout_destroy(&f);
}

static void test_replay_restarted_drops_held(void **state)
{
    (void)state;
    fanout_t *f = new_fanout(1 << 20);
    fanout_client_t c;
    fanout_add(f, &c, NULL);
    fanout_replay_begin(f, &c, 0);
    publish(f, 1, "r", "s");
    assert_int_equal(c.npend, 1);
    assert_true(c.bytes > 0);
    assert_int_equal(fanout_replay_begin(f, &c, 0), 1); /* the new range covers it */
    assert_int_equal(c.npend, 0);
    assert_int_equal(c.bytes, 0);
    fanout_remove(f, &c);
    fanout_destroy(&f);
}

static void test_held_events_count_toward_bound(void **state)
{
    (void)state;
    frame_t *probe = event(1, "r", "s");
    size_t one = probe->len;
    frame_unref(&probe);
    fanout_t *f = new_fanout(one * 2 + 1);
    fanout_client_t c;
    fanout_add(f, &c, NULL);
    fanout_replay_begin(f, &c, 0);
    publish(f, 1, "r", "s");
    publish(f, 2, "r", "s");
    assert_int_equal(c.close_code, 0);
    publish(f, 3, "r", "s");
    assert_int_equal(c.close_code, FANOUT_CLOSE_SLOW);
    assert_int_equal(c.npend, 0);
    fanout_replay_end(f, &c, frame_new_text("{}", 2)); /* after a cull: released, not queued */
    assert_int_equal(c.count, 0);
    fanout_remove(f, &c);
    fanout_destroy(&f);
}

static void test_reset_and_position(void **state)
{
    (void)state;
    fanout_options_t o = {.max_queue = 1 << 20};
    fanout_t *f = fanout_new(&o);
    assert_false(fanout_initialized(f));
    fanout_client_t c;
    fanout_add(f, &c, NULL);
    fanout_position(f, 100, 5);
    assert_true(fanout_initialized(f));
    assert_int_equal(fanout_last_id(f), 100);
    assert_int_equal(c.cursor, 100);
    fanout_position(f, 50, 6); /* a position is set once; the epoch is updated */
    assert_int_equal(fanout_last_id(f), 100);
    assert_int_equal(fanout_epoch(f), 6);
    fanout_reset(f, 9);
    assert_int_equal(fanout_last_id(f), 0);
    assert_int_equal(fanout_epoch(f), 9);
    assert_int_equal(c.cursor, 0);
    publish(f, 1, "r", "s");
    int64_t ids[4];
    assert_int_equal(drain(&c, ids, 4), 1);
    assert_int_equal(ids[0], 1);
    assert_ptr_equal(fanout_clients(f), &c);
    fanout_remove(f, &c);
    assert_null(fanout_clients(f));
    fanout_destroy(&f);
}

static void test_ring_grows_in_order(void **state)
{
    (void)state;
    fanout_t *f = new_fanout(1 << 24);
    fanout_client_t c;
    fanout_add(f, &c, NULL);
    int64_t ids[1000];
    int64_t next = 1, expect = 1;
    for (int round = 0; round < 20; round++) { /* wrap the ring at several sizes */
        for (int i = 0; i < round * 3 + 1; i++)
            publish(f, next++, "r", "s");
        for (int i = 0; i < round; i++) {
            frame_t *fr = fanout_pop(&c);
            assert_non_null(fr);
            assert_int_equal(fr->id, expect++);
            frame_unref(&fr);
        }
    }
    size_t n = drain(&c, ids, 1000);
    assert_true(n <= 1000);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], expect++);
    assert_int_equal(expect, next);
    assert_int_equal(c.bytes, 0);
    fanout_remove(f, &c);
    fanout_destroy(&f);
}

/* A batch delivers what one-by-one publishing would (filters, cursors, the bound, held events
 * during a replay) and wakes each client once. */
static void test_publish_batch(void **state)
{
    (void)state;
    frame_t *probe = event(1, "r", "build");
    size_t one = probe->len;
    frame_unref(&probe);
    fanout_t *f = new_fanout(one * 3 + one / 2);       /* room for three events */
    fanout_client_t all, plan, small, late, replaying; /* small: never drained */
    fanout_add(f, &all, NULL);
    fanout_add(f, &plan, NULL);
    fanout_add(f, &small, NULL);
    fanout_add(f, &replaying, NULL);
    char err[64];
    assert_int_equal(filter_set_csv(&plan.filter, FILTER_STEPS, "plan", 4, err, sizeof err), 0);
    assert_int_equal(fanout_replay_begin(f, &replaying, 0), 0);
    frame_t *b1[2] = {event(1, "r", "build"), event(2, "r", "plan")};
    wakes = 0;
    fanout_publish_batch(f, b1, 2);
    assert_int_equal(wakes, 3); /* all, plan and small once each; replaying holds them */
    assert_int_equal(fanout_last_id(f), 2);
    assert_int_equal(replaying.npend, 2);
    int64_t ids[8];
    assert_int_equal(drain(&all, ids, 8), 2);
    fanout_add(f, &late, NULL); /* starts after 2 */
    frame_t *b2[3] = {event(3, "r", "build"), event(4, "r", "plan"), event(5, "r", "build")};
    fanout_publish_batch(f, b2, 3);
    for (int i = 0; i < 2; i++)
        frame_unref(&b1[i]);
    for (int i = 0; i < 3; i++)
        frame_unref(&b2[i]);
    assert_int_equal(drain(&plan, ids, 8), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 4);
    assert_int_equal(drain(&late, ids, 8), 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[2], 5);
    assert_int_equal(small.close_code, FANOUT_CLOSE_SLOW); /* 5 queued, room for 3 */
    assert_int_equal(small.count, 0);
    assert_int_equal(all.close_code, 0); /* drained in between: 3 fit */
    assert_int_equal(drain(&all, ids, 8), 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(replaying.close_code, FANOUT_CLOSE_SLOW); /* held ones count too */
    fanout_publish_batch(f, NULL, 0);                          /* nothing: no change */
    assert_int_equal(fanout_last_id(f), 5);
    fanout_remove(f, &all);
    fanout_remove(f, &plan);
    fanout_remove(f, &small);
    fanout_remove(f, &late);
    fanout_remove(f, &replaying);
    fanout_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_serialization),
        cmocka_unit_test(test_wire_headers),
        cmocka_unit_test(test_filtered_delivery_shares_frames),
        cmocka_unit_test(test_new_client_starts_at_position),
        cmocka_unit_test(test_bound_culls_with_last_id),
        cmocka_unit_test(test_replay_handover),
        cmocka_unit_test(test_replay_restarted_drops_held),
        cmocka_unit_test(test_held_events_count_toward_bound),
        cmocka_unit_test(test_reset_and_position),
        cmocka_unit_test(test_ring_grows_in_order),
        cmocka_unit_test(test_publish_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
