/* Unit tests for ingest/rollup: the statuses events imply for their runs and steps, the
 * aggregate map, the saturating totals, and the fold of a batch's events into run and step
 * aggregates. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <stdio.h>

#include "rollup.h"

static adw_event_t sys(const char *event, const char *status)
{
    return (adw_event_t){
        .is_system = 1, .type = "system", .adw_id = "r1", .event = event, .status = status};
}

static void test_run_status(void **state)
{
    (void)state;
    adw_event_t e = sys("adw_complete", NULL);
    assert_string_equal(rollup_run_status(&e), "completed");
    e = sys("adw_failed", NULL);
    assert_string_equal(rollup_run_status(&e), "failed");
    e = sys("adw_failed", "paused"); /* an explicit status wins */
    assert_string_equal(rollup_run_status(&e), "paused");
    e = sys("step_start", NULL);
    assert_null(rollup_run_status(&e));
    e = sys(NULL, NULL);
    assert_null(rollup_run_status(&e));
    e = sys("adw_complete", NULL);
    e.is_system = 0; /* only system events imply a run status */
    assert_null(rollup_run_status(&e));
    e.status = "running";
    assert_string_equal(rollup_run_status(&e), "running");
}

static void test_step_status(void **state)
{
    (void)state;
    adw_event_t e = sys("step_start", NULL);
    assert_string_equal(rollup_step_status(&e), "running");
    e = sys("step_complete", NULL);
    assert_string_equal(rollup_step_status(&e), "completed");
    e = sys("step_failed", NULL);
    assert_string_equal(rollup_step_status(&e), "failed");
    e = sys("step_failed", "skipped");
    assert_string_equal(rollup_step_status(&e), "skipped");
    e = sys("adw_complete", NULL);
    assert_null(rollup_step_status(&e));
    e = sys(NULL, NULL);
    assert_null(rollup_step_status(&e));
}

static void test_map(void **state)
{
    (void)state;
    rollup_map_t m = {0};
    assert_null(rollup_map_find(&m, "r1", NULL)); /* never reset: empty */
    assert_int_equal(rollup_map_reset(&m, 100), 0);
    assert_true(m.cap >= 200);
    assert_int_equal(m.cap & (m.cap - 1), 0);
    char ids[100][8];
    for (int i = 0; i < 100; i++) {
        snprintf(ids[i], sizeof ids[i], "r%d", i);
        rollup_agg_t *a = rollup_map_get(&m, ids[i], i % 2 ? "build" : NULL);
        a->n = i;
    }
    assert_int_equal(m.used, 100);
    for (int i = 0; i < 100; i++) {
        const rollup_agg_t *a = rollup_map_find(&m, ids[i], i % 2 ? "build" : NULL);
        assert_non_null(a);
        assert_int_equal(a->n, i);
        /* The run row and a step row of the same run are distinct keys. */
        assert_null(rollup_map_find(&m, ids[i], i % 2 ? NULL : "build"));
        assert_ptr_equal(rollup_map_get(&m, ids[i], i % 2 ? "build" : NULL), a);
    }
    assert_int_equal(m.used, 100);
    assert_null(rollup_map_find(&m, "r1", "test"));
    size_t cap = m.cap;
    assert_int_equal(rollup_map_reset(&m, 3), 0); /* never shrinks; emptied */
    assert_int_equal(m.cap, cap);
    assert_int_equal(m.used, 0);
    assert_null(rollup_map_find(&m, "r0", NULL));
    rollup_map_free(&m);
    assert_null(m.slots);
    assert_int_equal(m.cap, 0);
}

static void test_add(void **state)
{
    (void)state;
    rollup_agg_t a = {0};
    adw_event_t e = {.adw_id = "r1",
                     .ts_us = 500,
                     .id = 7,
                     .received_us = 900,
                     .cost_usd = 0.25,
                     .tokens = 10,
                     .input_tokens = 1,
                     .output_tokens = 2,
                     .cache_read_tokens = 3,
                     .cache_creation_tokens = 4};
    rollup_add(&a, &e);
    e.ts_us = 300; /* earlier than the first */
    e.id = 8;
    e.received_us = 950;
    rollup_add(&a, &e);
    e.ts_us = 800;
    e.id = 9;
    e.received_us = 990;
    rollup_add(&a, &e);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.first_ts, 300);
    assert_int_equal(a.last_ts, 800);
    assert_int_equal(a.first_id, 7);
    assert_int_equal(a.last_id, 9);
    assert_int_equal(a.updated_us, 990);
    assert_true(a.cost == 0.75);
    assert_int_equal(a.tokens, 30);
    assert_int_equal(a.itok, 3);
    assert_int_equal(a.otok, 6);
    assert_int_equal(a.crtok, 9);
    assert_int_equal(a.cctok, 12);
}

static void test_add_saturates(void **state)
{
    (void)state;
    rollup_agg_t a = {0};
    adw_event_t e = {
        .adw_id = "r1", .tokens = INT64_MAX - 1, .input_tokens = INT64_MAX, .cost_usd = DBL_MAX};
    rollup_add(&a, &e);
    rollup_add(&a, &e);
    assert_true(a.tokens == INT64_MAX);
    assert_true(a.itok == INT64_MAX);
    assert_true(a.cost == DBL_MAX);
    e.tokens = 0;
    rollup_add(&a, &e);
    assert_true(a.tokens == INT64_MAX);
}

static void test_event_fold(void **state)
{
    (void)state;
    rollup_map_t runs = {0}, steps = {0};
    assert_int_equal(rollup_map_reset(&runs, 8), 0);
    assert_int_equal(rollup_map_reset(&steps, 8), 0);
    adw_event_t ev[6] = {
        {.is_system = 1,
         .adw_id = "r1",
         .step = "plan",
         .event = "step_start",
         .id = 1,
         .ts_us = 10,
         .duration_ms = 99,
         .has = EVENT_HAS_DURATION},
        /* A user event's own status is stored with it but leaves run and step alone. */
        {.adw_id = "r1", .step = "plan", .status = "odd", .id = 2, .ts_us = 20, .tokens = 5},
        {.is_system = 1,
         .adw_id = "r1",
         .step = "plan",
         .event = "step_complete",
         .id = 3,
         .ts_us = 30,
         .duration_ms = 1234,
         .has = EVENT_HAS_DURATION},
        {.adw_id = "r1", .id = 4, .ts_us = 40}, /* no step: the current step stays */
        {.is_system = 1,
         .adw_id = "r1",
         .step = "build",
         .event = "step_failed",
         .id = 5,
         .ts_us = 50},
        {.is_system = 1, .adw_id = "r2", .event = "adw_failed", .id = 6, .ts_us = 60},
    };
    for (int i = 0; i < 6; i++)
        rollup_event(&runs, &steps, &ev[i]);
    assert_int_equal(runs.used, 2);
    assert_int_equal(steps.used, 2);

    const rollup_agg_t *r1 = rollup_map_find(&runs, "r1", NULL);
    assert_non_null(r1);
    assert_int_equal(r1->n, 5);
    assert_null(r1->status); /* no event implied one */
    assert_string_equal(r1->current_step, "build");
    assert_int_equal(r1->tokens, 5);
    assert_int_equal(r1->first_id, 1);
    assert_int_equal(r1->last_id, 5);

    const rollup_agg_t *r2 = rollup_map_find(&runs, "r2", NULL);
    assert_non_null(r2);
    assert_string_equal(r2->status, "failed");
    assert_null(r2->current_step);

    const rollup_agg_t *plan = rollup_map_find(&steps, "r1", "plan");
    assert_non_null(plan);
    assert_int_equal(plan->n, 3);
    assert_string_equal(plan->status, "completed");
    assert_int_equal(plan->has_duration, 1); /* step_start's duration is not the step's */
    assert_int_equal(plan->duration_ms, 1234);
    assert_int_equal(plan->first_ts, 10);
    assert_int_equal(plan->last_ts, 30);

    const rollup_agg_t *build = rollup_map_find(&steps, "r1", "build");
    assert_non_null(build);
    assert_string_equal(build->status, "failed");
    assert_int_equal(build->has_duration, 0);

    /* A step_start alone, with a duration, sets status but no duration. */
    assert_int_equal(rollup_map_reset(&steps, 8), 0);
    rollup_event(&runs, &steps, &ev[0]);
    plan = rollup_map_find(&steps, "r1", "plan");
    assert_string_equal(plan->status, "running");
    assert_int_equal(plan->has_duration, 0);
    rollup_map_free(&runs);
    rollup_map_free(&steps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_status),    cmocka_unit_test(test_step_status),
        cmocka_unit_test(test_map),           cmocka_unit_test(test_add),
        cmocka_unit_test(test_add_saturates), cmocka_unit_test(test_event_fold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
