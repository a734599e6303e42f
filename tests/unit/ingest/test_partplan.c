/* Unit tests for ingest/partplan: the retention setting (units, bounds, refusals), the next
 * partition the writer creates (one whole partition beyond the next batch, from 1 on an empty
 * table, contiguous after the highest), PostgreSQL's bound text, and which partitions the
 * retention may drop (never one the next id may fall in). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "partplan.h"

static int64_t retention(const char *s)
{
    int64_t v = -1;
    char err[160];
    assert_int_equal(partplan_parse_retention(s, &v, err, sizeof err), 0);
    return v;
}

static void refused(const char *s)
{
    int64_t v = 42;
    char err[160] = "";
    assert_int_equal(partplan_parse_retention(s, &v, err, sizeof err), -EINVAL);
    assert_int_equal(v, 42);
    assert_true(strlen(err) > 0);
}

static void test_retention(void **state)
{
    (void)state;
    assert_int_equal(retention(NULL), 0);
    assert_int_equal(retention(""), 0);
    assert_int_equal(retention("0"), 0);
    assert_int_equal(retention("0d"), 0);
    assert_int_equal(retention("30d"), 30 * 86400);
    assert_int_equal(retention("12h"), 12 * 3600);
    assert_int_equal(retention("90m"), 90 * 60);
    assert_int_equal(retention("3600s"), 3600);
    assert_int_equal(retention("3"), 3);
    assert_int_equal(retention("3660d"), 3660LL * 86400); /* ten years */
    refused("3661d");
    refused("99999999999999999999999");
    refused("-1");
    refused("1w");
    refused("30 d");
    refused(" 30d");
    refused("30dd");
    refused("d");
    refused("1.5h");
    refused("12H");
}

static void test_next(void **state)
{
    (void)state;
    int64_t from = 0, to = 0;
    /* An empty table: the first partition starts at 1. */
    assert_int_equal(partplan_next(0, 0, 2000, 1000, &from, &to), 1);
    assert_int_equal(from, 1);
    assert_int_equal(to, 1001);
    /* Needed up to last_id + 1 + batch_max + size = 3001: three of 1000. */
    assert_int_equal(partplan_next(1001, 0, 2000, 1000, &from, &to), 1);
    assert_int_equal(from, 1001);
    assert_int_equal(to, 2001);
    assert_int_equal(partplan_next(2001, 0, 2000, 1000, &from, &to), 1);
    assert_int_equal(partplan_next(3001, 0, 2000, 1000, &from, &to), 0);
    /* One more id: one more partition. */
    assert_int_equal(partplan_next(3001, 1, 2000, 1000, &from, &to), 1);
    assert_int_equal(from, 3001);
    assert_int_equal(to, 4001);
    /* After a migrated first partition [1, 290): contiguous from its end. */
    assert_int_equal(partplan_next(290, 289, 10, 4000000, &from, &to), 1);
    assert_int_equal(from, 290);
    assert_int_equal(to, 4000290);
    /* The next batch (ids 290 to 299) falls in that one: one more beyond it. */
    assert_int_equal(partplan_next(4000290, 289, 10, 4000000, &from, &to), 1);
    assert_int_equal(from, 4000290);
    assert_int_equal(partplan_next(8000290, 289, 10, 4000000, &from, &to), 0);
    /* Near the end of bigint: nothing (never an overflow). */
    assert_int_equal(partplan_next(INT64_MAX - 10, INT64_MAX - 100, 2000, 1000, &from, &to), 0);
    assert_int_equal(partplan_next(0, 0, 0, 0, &from, &to), 0);
}

static void test_bound(void **state)
{
    (void)state;
    int64_t from = 0, to = 0;
    assert_int_equal(partplan_parse_bound("FOR VALUES FROM ('1') TO ('4000001')", &from, &to), 0);
    assert_int_equal(from, 1);
    assert_int_equal(to, 4000001);
    assert_int_equal(partplan_parse_bound("FOR VALUES FROM (290) TO (1290)", &from, &to), 0);
    assert_int_equal(from, 290);
    assert_int_equal(to, 1290);
    assert_int_equal(partplan_parse_bound("DEFAULT", &from, &to), -EINVAL);
    assert_int_equal(partplan_parse_bound("FOR VALUES FROM (MINVALUE) TO ('5')", &from, &to),
                     -EINVAL);
    assert_int_equal(partplan_parse_bound("FOR VALUES FROM ('5') TO (MAXVALUE)", &from, &to),
                     -EINVAL);
    assert_int_equal(partplan_parse_bound("FOR VALUES FROM ('5') TO ('5')", &from, &to), -EINVAL);
    assert_int_equal(partplan_parse_bound("FOR VALUES FROM ('5) TO ('6')", &from, &to), -EINVAL);
    assert_int_equal(partplan_parse_bound("FOR VALUES FROM ('5') TO ('6') ", &from, &to), -EINVAL);
    assert_int_equal(partplan_parse_bound("FOR VALUES IN ('5')", &from, &to), -EINVAL);
    assert_int_equal(partplan_parse_bound(NULL, &from, &to), -EINVAL);
}

static void test_droppable(void **state)
{
    (void)state;
    const int64_t now = 1000000000LL * 1000000, s = 1000000;
    /* [1, 1001) with ids up to 1500 committed, newest event 10 s old, retention 5 s. */
    assert_int_equal(partplan_droppable(1001, 1500, now - 10 * s, now, 5), 1);
    /* Newest event younger than the retention, or exactly at it: kept. */
    assert_int_equal(partplan_droppable(1001, 1500, now - 4 * s, now, 5), 0);
    assert_int_equal(partplan_droppable(1001, 1500, now - 5 * s, now, 5), 0);
    /* The partition of the last id (and so of the next one) is kept however old: with last_id
     * 1000 the next id is the next partition's, yet [1, 1001) holds id 1000, which must stay
     * for max(id) to be the last id; from last_id 1001 on it may go. */
    assert_int_equal(partplan_droppable(1001, 999, now - 10 * s, now, 5), 0);
    assert_int_equal(partplan_droppable(1001, 1000, now - 10 * s, now, 5), 0);
    assert_int_equal(partplan_droppable(1001, 1001, now - 10 * s, now, 5), 1);
    /* Empty and wholly below the last id: nothing to keep. Above it: kept. */
    assert_int_equal(partplan_droppable(1001, 1500, 0, now, 5), 1);
    assert_int_equal(partplan_droppable(2001, 1500, 0, now, 5), 0);
    assert_int_equal(partplan_droppable(1001, 0, 0, now, 5), 0); /* nothing stored yet */
    /* No retention: nothing is ever dropped. */
    assert_int_equal(partplan_droppable(1001, 1500, now - 10 * s, now, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_droppable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
