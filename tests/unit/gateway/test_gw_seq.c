/* Unit tests for gateway/seq: in-order delivery, duplicates, holes from events and heartbeats,
 * unknown starting positions, and epoch changes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "seq.h"

static void test_in_order_and_duplicates(void **state)
{
    (void)state;
    seq_t s = {0};
    seq_start(&s, 10, 7);
    assert_int_equal(seq_on_event(&s, 11), SEQ_DELIVER);
    seq_delivered(&s, 11);
    assert_int_equal(seq_on_event(&s, 11), SEQ_STALE);
    assert_int_equal(seq_on_event(&s, 3), SEQ_STALE);
    assert_int_equal(seq_on_event(&s, 12), SEQ_DELIVER);
    assert_int_equal(s.last, 11);
}

static void test_hole_from_event(void **state)
{
    (void)state;
    seq_t s = {0};
    seq_start(&s, 10, 7);
    assert_int_equal(seq_on_event(&s, 15), SEQ_GAP);
    assert_int_equal(s.last, 10);
    for (int64_t id = 11; id <= 14; id++)
        seq_delivered(&s, id);
    assert_int_equal(seq_on_event(&s, 15), SEQ_DELIVER);
}

static void test_heartbeat(void **state)
{
    (void)state;
    seq_t s = {0};
    seq_start(&s, 10, 7);
    assert_int_equal(seq_on_heartbeat(&s, 10, 7), SEQ_NONE);
    assert_int_equal(seq_on_heartbeat(&s, 9, 7), SEQ_NONE);
    assert_int_equal(seq_on_heartbeat(&s, 12, 7), SEQ_GAP);
    assert_int_equal(s.last, 10);
}

static void test_unknown_start(void **state)
{
    (void)state;
    seq_t s = {0};
    assert_int_equal(seq_on_heartbeat(&s, 50, 9), SEQ_NONE);
    assert_true(s.known);
    assert_int_equal(s.last, 50);
    assert_int_equal(s.epoch, 9);

    seq_t t = {0};
    assert_int_equal(seq_on_event(&t, 42), SEQ_DELIVER);
    assert_int_equal(t.last, 41);
    assert_int_equal(t.epoch, 0);
    assert_int_equal(seq_on_heartbeat(&t, 42, 5), SEQ_GAP);
    assert_int_equal(t.epoch, 5);
}

static void test_epoch_change(void **state)
{
    (void)state;
    seq_t s = {0};
    seq_start(&s, 1000, 7);
    assert_int_equal(seq_on_heartbeat(&s, 3, 8), SEQ_RESET);
    assert_int_equal(s.last, 0);
    assert_int_equal(s.epoch, 8);
    assert_int_equal(seq_on_heartbeat(&s, 3, 8), SEQ_GAP);
    assert_int_equal(seq_on_event(&s, 1), SEQ_DELIVER);
    /* An epoch of 0 (unknown) never resets. */
    seq_start(&s, 5, 0);
    assert_int_equal(seq_on_heartbeat(&s, 5, 3), SEQ_NONE);
    assert_int_equal(s.epoch, 3);
    assert_int_equal(seq_on_heartbeat(&s, 5, 0), SEQ_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_and_duplicates),
        cmocka_unit_test(test_hole_from_event),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_unknown_start),
        cmocka_unit_test(test_epoch_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
