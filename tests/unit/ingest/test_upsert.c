/* Unit tests for ingest/upsert (a map of aggregates as binary array parameters, one per column,
 * NULLs flagged) and ingest/batch_sql's parameter layout (each kind's map and columns, adding
 * up to the statement's parameters). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "batch_sql.h"
#include "pgbin.h"
#include "upsert.h"

/* The big-endian 32-bit word at p. */
static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void test_encode_columns(void **state)
{
    (void)state;
    rollup_map_t m = {0};
    assert_int_equal(rollup_map_reset(&m, 4), 0);
    rollup_agg_t *a = rollup_map_get(&m, "run-1", "build");
    a->n = 3;
    a->first_id = 7;
    a->has_duration = 0; /* duration: NULL */
    static const upsert_col_t cols[] = {UPSERT_ADW_ID,   UPSERT_KEY,      UPSERT_N,
                                        UPSERT_DURATION, UPSERT_FIRST_ID, UPSERT_END};
    buf_t A[5];
    for (int i = 0; i < 5; i++)
        buf_init(&A[i], 0);
    assert_int_equal(upsert_encode(A, &m, cols), 5);

    /* Each array: one dimension, the NULL flag, the element type, one element. */
    static const uint32_t oids[] = {PGBIN_OID_TEXT, PGBIN_OID_TEXT, PGBIN_OID_INT8, PGBIN_OID_INT8,
                                    PGBIN_OID_INT8};
    for (int c = 0; c < 5; c++) {
        assert_true(A[c].len >= 20);
        assert_int_equal(be32(A[c].data), 1);
        assert_int_equal(be32(A[c].data + 4), c == 3);
        assert_int_equal(be32(A[c].data + 8), oids[c]);
        assert_int_equal(be32(A[c].data + 12), 1);
        assert_int_equal(upsert_col_oid(cols[c]), oids[c]);
    }
    assert_int_equal(be32(A[0].data + 20), 5);
    assert_memory_equal(A[0].data + 24, "run-1", 5);
    assert_int_equal(be32(A[1].data + 20), 5);
    assert_memory_equal(A[1].data + 24, "build", 5);
    assert_int_equal(be32(A[2].data + 20), 8);
    assert_int_equal(be32(A[2].data + 28), 3);
    assert_int_equal(be32(A[3].data + 20), 0xffffffffu); /* NULL */
    assert_int_equal(be32(A[4].data + 28), 7);

    for (int i = 0; i < 5; i++)
        buf_free(&A[i]);
    rollup_map_free(&m);
}

static void test_encode_empty_map(void **state)
{
    (void)state;
    rollup_map_t m = {0};
    assert_int_equal(rollup_map_reset(&m, 1), 0);
    static const upsert_col_t cols[] = {UPSERT_ADW_ID, UPSERT_COST, UPSERT_END};
    buf_t A[2];
    buf_init(&A[0], 0);
    buf_init(&A[1], 0);
    assert_int_equal(upsert_encode(A, &m, cols), 2);
    assert_int_equal(be32(A[1].data + 8), PGBIN_OID_FLOAT8);
    buf_free(&A[0]);
    buf_free(&A[1]);
    rollup_map_free(&m);
}

static void test_layout_adds_up(void **state)
{
    (void)state;
    rollup_t agg = {0};
    int n = BATCH_EVENT_COLS;
    for (int k = 0; k < BATCH_NKINDS; k++) {
        const upsert_col_t *cols = NULL;
        const rollup_map_t *m = batch_sql_kind(&agg, k, &cols);
        assert_non_null(m);
        assert_non_null(cols);
        int c = 0;
        while (cols[c] != UPSERT_END)
            c++;
        assert_true(c <= UPSERT_MAX_COLS);
        n += c;
    }
    assert_int_equal(n, BATCH_NPARAMS);
    const upsert_col_t *cols = NULL;
    assert_ptr_equal(batch_sql_kind(&agg, 0, &cols), &agg.runs);
    assert_ptr_equal(batch_sql_kind(&agg, 3, &cols), &agg.tools);
    assert_ptr_equal(batch_sql_kind(&agg, 7, &cols), &agg.sessions);
    assert_int_equal(cols[1], UPSERT_SESSION_RUN);
}

/* The lean statement writes the runs and steps (and their sums of spend), never an agent, a
 * tool call or a session: a batch with one of those must take the whole statement. */
static void test_lean_kinds(void **state)
{
    (void)state;
    rollup_t agg = {0};
    for (int k = 0; k < BATCH_NKINDS; k++) {
        const upsert_col_t *cols = NULL;
        const rollup_map_t *m = batch_sql_kind(&agg, k, &cols);
        assert_int_equal(batch_sql_lean_kind(k), m == &agg.runs || m == &agg.steps);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_columns),
        cmocka_unit_test(test_encode_empty_map),
        cmocka_unit_test(test_layout_adds_up),
        cmocka_unit_test(test_lean_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
