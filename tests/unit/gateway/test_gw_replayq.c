/* Unit tests for gateway/replayq: the bound on replays reading at once (never exceeded, a slot
 * freed goes to the oldest waiter), FIFO order, a replay that comes back for its next page
 * queueing behind those already waiting, unget to the head, removal in every state, and the
 * high-water marks the metrics show. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "replayq.h"

static void test_bound_is_never_exceeded_and_fifo_order_kept(void **state)
{
    (void)state;
    replayq_t q;
    replayq_init(&q, 2);
    replayq_item_t it[6];
    memset(it, 0, sizeof it);
    assert_int_equal(replayq_acquire(&q, &it[0], 10), 1);
    assert_int_equal(replayq_acquire(&q, &it[1], 11), 1);
    for (int i = 2; i < 6; i++) /* past the bound: each waits, none refused */
        assert_int_equal(replayq_acquire(&q, &it[i], 10 + i), 0);
    assert_int_equal(q.active, 2);
    assert_int_equal(q.waiting, 4);
    assert_null(replayq_next(&q)); /* no slot free */
    assert_int_equal(it[2].since_us, 12);

    replayq_release(&q, &it[0]);
    assert_int_equal(it[0].state, REPLAYQ_IDLE);
    assert_ptr_equal(replayq_next(&q), &it[2]);
    assert_null(replayq_next(&q));
    replayq_release(&q, &it[1]);
    replayq_release(&q, &it[2]);
    assert_ptr_equal(replayq_next(&q), &it[3]);
    assert_ptr_equal(replayq_next(&q), &it[4]);
    assert_null(replayq_next(&q));
    assert_int_equal(q.active, 2);
    assert_int_equal(q.active_max, 2);
    assert_int_equal(q.waiting_max, 4);
    assert_int_equal(it[5].state, REPLAYQ_WAITING);
}

static void test_a_returning_replay_queues_behind_the_waiting(void **state)
{
    (void)state;
    replayq_t q;
    replayq_init(&q, 1);
    replayq_item_t a = {0}, b = {0};
    assert_int_equal(replayq_acquire(&q, &a, 0), 1);
    assert_int_equal(replayq_acquire(&q, &b, 0), 0);
    replayq_release(&q, &a);
    /* a's next page: a slot is free but b waits, so a goes behind b. */
    assert_int_equal(replayq_acquire(&q, &a, 1), 0);
    assert_ptr_equal(replayq_next(&q), &b);
    replayq_release(&q, &b);
    assert_ptr_equal(replayq_next(&q), &a);
    replayq_release(&q, &a);
    /* Nobody waits: the next page goes at once. */
    assert_int_equal(replayq_acquire(&q, &a, 2), 1);
    assert_int_equal(q.waiting, 0);
}

static void test_unget_returns_to_the_head(void **state)
{
    (void)state;
    replayq_t q;
    replayq_init(&q, 1);
    replayq_item_t a = {0}, b = {0}, c = {0};
    assert_int_equal(replayq_acquire(&q, &a, 0), 1);
    assert_int_equal(replayq_acquire(&q, &b, 5), 0);
    assert_int_equal(replayq_acquire(&q, &c, 6), 0);
    replayq_release(&q, &a);
    assert_ptr_equal(replayq_next(&q), &b);
    replayq_unget(&q, &b); /* could not be used: b keeps its place and its stamp */
    assert_int_equal(q.active, 0);
    assert_int_equal(b.since_us, 5);
    assert_ptr_equal(replayq_next(&q), &b);
    /* unget of an item that acquired directly works the same */
    replayq_release(&q, &b);
    assert_ptr_equal(replayq_next(&q), &c);
    replayq_unget(&q, &c);
    assert_ptr_equal(q.head, &c);
}

static void test_remove_in_every_state(void **state)
{
    (void)state;
    replayq_t q;
    replayq_init(&q, 1);
    replayq_item_t a = {0}, b = {0}, c = {0}, d = {0}, idle = {0};
    assert_int_equal(replayq_acquire(&q, &a, 0), 1);
    assert_int_equal(replayq_acquire(&q, &b, 0), 0);
    assert_int_equal(replayq_acquire(&q, &c, 0), 0);
    assert_int_equal(replayq_acquire(&q, &d, 0), 0);
    replayq_remove(&q, &c); /* from the middle */
    replayq_remove(&q, &d); /* the tail */
    replayq_remove(&q, &idle);
    assert_int_equal(q.waiting, 1);
    assert_ptr_equal(q.tail, &b);
    replayq_remove(&q, &a); /* active: its slot returns */
    assert_int_equal(q.active, 0);
    assert_ptr_equal(replayq_next(&q), &b);
    replayq_remove(&q, &b);
    assert_int_equal(q.active, 0);
    assert_int_equal(q.waiting, 0);
    assert_null(q.head);
    assert_null(q.tail);
    /* Removed items are idle and can start again. */
    assert_int_equal(replayq_acquire(&q, &c, 0), 1);
}

static void test_zero_bound_counts_as_one(void **state)
{
    (void)state;
    replayq_t q;
    replayq_init(&q, 0);
    replayq_item_t a = {0}, b = {0};
    assert_int_equal(replayq_acquire(&q, &a, 0), 1);
    assert_int_equal(replayq_acquire(&q, &b, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_is_never_exceeded_and_fifo_order_kept),
        cmocka_unit_test(test_a_returning_replay_queues_behind_the_waiting),
        cmocka_unit_test(test_unget_returns_to_the_head),
        cmocka_unit_test(test_remove_in_every_state),
        cmocka_unit_test(test_zero_bound_counts_as_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
