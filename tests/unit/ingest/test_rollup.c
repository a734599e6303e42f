/* Unit tests for ingest/rollup: the statuses events imply for their runs, steps, agents and
 * tool calls, the aggregate map, the saturating totals, the fold of a batch's events into
 * run, step, agent, tool-call and session aggregates, the spend rule (OTel's sums or the
 * others', in any order) and re-filing an event under its session's run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* The run-level ends whatever their status or step. */
    e = sys("adw_failed", "paused");
    assert_string_equal(rollup_run_status(&e), "failed");
    e.step = "build";
    assert_string_equal(rollup_run_status(&e), "failed");
    e = sys("adw_complete", "running");
    e.step = "plan";
    assert_string_equal(rollup_run_status(&e), "completed");
    /* A system event without a step carries the run's status. */
    e = sys("note", "paused");
    assert_string_equal(rollup_run_status(&e), "paused");
    e = sys("step_start", NULL);
    assert_null(rollup_run_status(&e));
    e = sys(NULL, NULL);
    assert_null(rollup_run_status(&e));
    /* A step's events set the step's status, never the run's. */
    e = sys("step_complete", "completed");
    e.step = "plan";
    assert_null(rollup_run_status(&e));
    e = sys("step_failed", "failed");
    e.step = "build";
    assert_null(rollup_run_status(&e));
    e = sys("note", "paused");
    e.step = ""; /* an empty step is a step */
    assert_null(rollup_run_status(&e));
    /* Only system events: an adw_event's status or name changes nothing. */
    e = sys("adw_complete", NULL);
    e.is_system = 0;
    e.type = "adw_event";
    assert_null(rollup_run_status(&e));
    e.status = "completed";
    assert_null(rollup_run_status(&e));
    e.event = NULL;
    e.event_type = "Stop";
    assert_null(rollup_run_status(&e));
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
    rollup_t r = {0};
    assert_int_equal(rollup_reset(&r, 8), 0);
    rollup_map_t *runs = &r.runs, *steps = &r.steps;
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
        rollup_event(&r, &ev[i]);
    assert_int_equal(runs->used, 2);
    assert_int_equal(steps->used, 2);
    assert_int_equal(r.agents.used, 0); /* no event had an agent_id */
    assert_int_equal(r.tools.used, 0);

    const rollup_agg_t *r1 = rollup_map_find(runs, "r1", NULL);
    assert_non_null(r1);
    assert_int_equal(r1->n, 5);
    assert_null(r1->status); /* no event implied one */
    assert_string_equal(r1->current_step, "build");
    assert_int_equal(r1->tokens, 5);
    assert_int_equal(r1->first_id, 1);
    assert_int_equal(r1->last_id, 5);

    const rollup_agg_t *r2 = rollup_map_find(runs, "r2", NULL);
    assert_non_null(r2);
    assert_string_equal(r2->status, "failed");
    assert_null(r2->current_step);

    const rollup_agg_t *plan = rollup_map_find(steps, "r1", "plan");
    assert_non_null(plan);
    assert_int_equal(plan->n, 3);
    assert_string_equal(plan->status, "completed");
    assert_int_equal(plan->has_duration, 1); /* step_start's duration is not the step's */
    assert_int_equal(plan->duration_ms, 1234);
    assert_int_equal(plan->first_ts, 10);
    assert_int_equal(plan->last_ts, 30);

    const rollup_agg_t *build = rollup_map_find(steps, "r1", "build");
    assert_non_null(build);
    assert_string_equal(build->status, "failed");
    assert_int_equal(build->has_duration, 0);

    /* A step_start alone, with a duration, sets status but no duration. */
    assert_int_equal(rollup_map_reset(steps, 8), 0);
    rollup_event(&r, &ev[0]);
    plan = rollup_map_find(steps, "r1", "plan");
    assert_string_equal(plan->status, "running");
    assert_int_equal(plan->has_duration, 0);
    rollup_free(&r);
    assert_null(r.runs.slots);
    assert_null(r.tools.slots);
}

/* ---- the run model over whole runs ---- */

/* An event of run r1 with id id: system when event is set, else an adw_event of event_type
 * et; payload a JSON text or NULL. Release with put(). */
static adw_event_t mk(const char *event, const char *et, const char *step, const char *status,
                      const char *payload, int64_t id)
{
    json_t *doc = json_object();
    assert_non_null(doc);
    if (payload) {
        json_error_t je;
        json_t *p = json_loads(payload, 0, &je);
        if (!p)
            fail_msg("bad payload %s: %s", payload, je.text);
        json_object_set_new(doc, "payload", p);
    }
    return (adw_event_t){.doc = doc,
                         .is_system = event != NULL,
                         .type = event ? "system" : "adw_event",
                         .adw_id = "r1",
                         .event = event,
                         .event_type = et,
                         .step = step,
                         .status = status,
                         .id = id,
                         .ts_us = id * 1000,
                         .received_us = id * 1000};
}

static void put(adw_event_t *e)
{
    json_decref(e->doc);
    e->doc = NULL;
}

/* The stored run: what the batch statement keeps of each batch, as the SQL does (status:
 * the batch's, else the stored one; 'running' for a new run). */
typedef struct stored_run_t {
    const char *status;
    int stalled;
    const char *stop_failure;
    int64_t stop_failure_id;
} stored_run_t;

/* Folds events[0..n) as one batch and merges it into *run. */
static void commit(stored_run_t *run, adw_event_t *events, size_t n)
{
    rollup_t r = {0};
    assert_int_equal(rollup_reset(&r, n), 0);
    for (size_t i = 0; i < n; i++)
        rollup_event(&r, &events[i]);
    const rollup_agg_t *a = rollup_map_find(&r.runs, "r1", NULL);
    assert_non_null(a);
    run->status = a->status ? a->status : run->status ? run->status : "running";
    run->stalled = a->stalled;
    if (a->stop_failure_id) {
        run->stop_failure = a->stop_failure;
        run->stop_failure_id = a->stop_failure_id;
    }
    rollup_free(&r);
}

/* Commits e alone, then releases it. */
static void commit1(stored_run_t *run, adw_event_t e)
{
    commit(run, &e, 1);
    put(&e);
}

static void test_run_status_over_a_whole_run(void **state)
{
    (void)state;
    stored_run_t run = {0};
    commit1(&run, mk("adw_start", NULL, NULL, NULL, NULL, 1));
    assert_string_equal(run.status, "running");
    commit1(&run, mk("step_start", NULL, "plan", NULL, NULL, 2));
    assert_string_equal(run.status, "running");
    /* A step completes: the run goes on (step_complete carries status "completed"). */
    commit1(&run, mk("step_complete", NULL, "plan", "completed", NULL, 3));
    assert_string_equal(run.status, "running");
    /* A step fails: the step is failed, the run still runs. */
    commit1(&run, mk("step_start", NULL, "build", NULL, NULL, 4));
    commit1(&run, mk("step_failed", NULL, "build", "failed", NULL, 5));
    assert_string_equal(run.status, "running");
    /* An adw_event with a status changes nothing, step or no step. */
    commit1(&run, mk(NULL, "ToolResultBlock", NULL, "failed", NULL, 6));
    commit1(&run, mk(NULL, "TextBlock", "build", "completed", NULL, 7));
    assert_string_equal(run.status, "running");
    /* A step-less system event with a status sets it. */
    commit1(&run, mk("paused", NULL, NULL, "paused", NULL, 8));
    assert_string_equal(run.status, "paused");
    commit1(&run, mk("resumed", NULL, NULL, "running", NULL, 9));
    assert_string_equal(run.status, "running");
    /* One without a status leaves it. */
    commit1(&run, mk("note", NULL, NULL, NULL, NULL, 10));
    assert_string_equal(run.status, "running");
    /* The run completes. */
    commit1(&run, mk("adw_complete", NULL, NULL, NULL, NULL, 11));
    assert_string_equal(run.status, "completed");
    /* Later events of a step leave the ended run alone. */
    commit1(&run, mk("step_start", NULL, "extra", "running", NULL, 12));
    assert_string_equal(run.status, "completed");

    /* A run that fails, with its step set on the failure, in one batch. */
    stored_run_t r2 = {0};
    adw_event_t b[4] = {mk("adw_start", NULL, NULL, NULL, NULL, 1),
                        mk("step_start", NULL, "test", NULL, NULL, 2),
                        mk("step_failed", NULL, "test", "failed", NULL, 3),
                        mk("adw_failed", NULL, "test", NULL, NULL, 4)};
    commit(&r2, b, 2);
    assert_string_equal(r2.status, "running");
    commit(&r2, b + 2, 2);
    assert_string_equal(r2.status, "failed");
    for (int i = 0; i < 4; i++)
        put(&b[i]);
    /* In one batch the last run-level event wins. */
    stored_run_t r3 = {0};
    adw_event_t c[3] = {mk("adw_failed", NULL, NULL, NULL, NULL, 1),
                        mk("adw_complete", NULL, "x", NULL, NULL, 2),
                        mk("step_failed", NULL, "x", "failed", NULL, 3)};
    commit(&r3, c, 3);
    assert_string_equal(r3.status, "completed");
    for (int i = 0; i < 3; i++)
        put(&c[i]);
}

static void test_stalled(void **state)
{
    (void)state;
    adw_event_t e = mk("run_stalled", NULL, "build", NULL, "{\"idle_s\":600,\"last_id\":4}", 5);
    assert_true(rollup_run_stalled(&e));
    /* The stall names the step for display: it sets neither the step's status nor the run's. */
    assert_null(rollup_step_status(&e));
    assert_null(rollup_run_status(&e));
    put(&e);
    e = mk(NULL, "run_stalled", NULL, NULL, NULL, 1); /* an adw_event of that name is not one */
    assert_false(rollup_run_stalled(&e));
    put(&e);

    stored_run_t run = {0};
    commit1(&run, mk("adw_start", NULL, NULL, NULL, NULL, 1));
    assert_false(run.stalled);
    commit1(&run, mk("run_stalled", NULL, NULL, NULL, NULL, 2));
    assert_true(run.stalled);
    assert_string_equal(run.status, "running");
    /* The run's next event clears it. */
    commit1(&run, mk(NULL, "TextBlock", NULL, NULL, NULL, 3));
    assert_false(run.stalled);
    /* In one batch the last event of the run decides. */
    adw_event_t b[3] = {mk("run_stalled", NULL, NULL, NULL, NULL, 4),
                        mk(NULL, "TextBlock", NULL, NULL, NULL, 5),
                        mk("run_stalled", NULL, NULL, NULL, NULL, 6)};
    commit(&run, b, 2);
    assert_false(run.stalled);
    commit(&run, b, 3);
    assert_true(run.stalled);
    for (int i = 0; i < 3; i++)
        put(&b[i]);
    /* Another run's event in the same batch does not clear this run's stall. */
    rollup_t r = {0};
    assert_int_equal(rollup_reset(&r, 2), 0);
    adw_event_t s1 = mk("run_stalled", NULL, NULL, NULL, NULL, 7);
    adw_event_t o = mk(NULL, "TextBlock", NULL, NULL, NULL, 8);
    o.adw_id = "r2";
    rollup_event(&r, &s1);
    rollup_event(&r, &o);
    assert_true(rollup_map_find(&r.runs, "r1", NULL)->stalled);
    assert_false(rollup_map_find(&r.runs, "r2", NULL)->stalled);
    rollup_free(&r);
    put(&s1);
    put(&o);
}

static void test_stop_failure(void **state)
{
    (void)state;
    adw_event_t e = mk(NULL, "StopFailure", NULL, NULL,
                       "{\"hook_event_name\":\"StopFailure\",\"error\":\"rate_limit\"}", 3);
    e.summary = "Stop failure: rate_limit";
    assert_string_equal(rollup_stop_failure(&e), "rate_limit");
    put(&e);
    /* No usable error: the summary, else the event's name. */
    e = mk(NULL, "StopFailure", NULL, NULL, "{\"error\":\"\"}", 3);
    e.summary = "Stop failure";
    assert_string_equal(rollup_stop_failure(&e), "Stop failure");
    put(&e);
    e = mk(NULL, "StopFailure", NULL, NULL, "{\"error\":{\"type\":\"overloaded\"}}", 3);
    assert_string_equal(rollup_stop_failure(&e), "StopFailure");
    put(&e);
    e = mk(NULL, "StopFailure", NULL, NULL, NULL, 3);
    e.summary = "";
    assert_string_equal(rollup_stop_failure(&e), "StopFailure");
    put(&e);
    /* Other events are not stop failures. */
    e = mk(NULL, "Stop", NULL, NULL, "{\"error\":\"x\"}", 3);
    assert_null(rollup_stop_failure(&e));
    put(&e);
    e = mk("StopFailure", "StopFailure", NULL, NULL, "{\"error\":\"x\"}", 3);
    assert_null(rollup_stop_failure(&e)); /* a system event */
    put(&e);

    /* Set, the latest one wins, never cleared; the run goes on running. */
    stored_run_t run = {0};
    commit1(&run, mk("adw_start", NULL, NULL, NULL, NULL, 1));
    assert_null(run.stop_failure);
    adw_event_t b[3] = {
        mk(NULL, "StopFailure", NULL, NULL, "{\"error\":\"rate_limit\"}", 2),
        mk(NULL, "StopFailure", NULL, NULL, "{\"error\":\"overloaded\"}", 3),
        mk(NULL, "TextBlock", NULL, NULL, NULL, 4),
    };
    commit(&run, b, 1);
    assert_string_equal(run.stop_failure, "rate_limit");
    assert_int_equal(run.stop_failure_id, 2);
    commit(&run, b + 1, 2);
    assert_string_equal(run.stop_failure, "overloaded");
    assert_int_equal(run.stop_failure_id, 3);
    commit(&run, b + 2, 1);
    assert_string_equal(run.stop_failure, "overloaded");
    assert_int_equal(run.stop_failure_id, 3);
    assert_string_equal(run.status, "running");
    for (int i = 0; i < 3; i++)
        put(&b[i]);
}

static void test_tool_status(void **state)
{
    (void)state;
    static const struct {
        const char *et, *payload, *status, *id, *name;
    } cases[] = {
        {"PreToolUse", "{\"tool_name\":\"Bash\",\"tool_use_id\":\"toolu_1\"}", "running", "toolu_1",
         "Bash"},
        {"PermissionRequest", "{\"tool_name\":\"Bash\",\"tool_use_id\":\"toolu_1\"}", "running",
         "toolu_1", "Bash"},
        {"ToolUseBlock", "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"Read\"}", "running",
         "toolu_2", "Read"},
        {"PostToolUse", "{\"tool_name\":\"Bash\",\"tool_use_id\":\"toolu_1\"}", "completed",
         "toolu_1", "Bash"},
        {"PostToolUseFailure", "{\"tool_name\":\"Bash\",\"tool_use_id\":\"toolu_1\"}", "failed",
         "toolu_1", "Bash"},
        {"ToolResultBlock", "{\"tool_use_id\":\"toolu_2\",\"tool_name\":\"Read\"}", "completed",
         "toolu_2", "Read"},
        {"ToolResultBlock", "{\"tool_use_id\":\"toolu_2\",\"is_error\":false}", "completed",
         "toolu_2", NULL},
        {"ToolResultBlock", "{\"tool_use_id\":\"toolu_2\",\"is_error\":true}", "failed", "toolu_2",
         NULL},
        /* Not part of a tool call: no id, an empty or non-string one, the wrong key, another
         * event type. */
        {"PreToolUse", "{\"tool_name\":\"Bash\"}", NULL, NULL, NULL},
        {"PreToolUse", "{\"tool_use_id\":\"\"}", NULL, NULL, NULL},
        {"PostToolUse", "{\"tool_use_id\":17}", NULL, NULL, NULL},
        {"ToolUseBlock", "{\"tool_use_id\":\"toolu_3\"}", NULL, NULL, NULL},
        {"PreToolUse", NULL, NULL, NULL, NULL},
        {"Notification", "{\"tool_use_id\":\"toolu_1\"}", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        adw_event_t e = mk(NULL, cases[i].et, NULL, NULL, cases[i].payload, 1);
        const char *id = "x", *name = "x";
        const char *st = rollup_tool_status(&e, &id, &name);
        if (cases[i].status) {
            assert_non_null(st);
            assert_string_equal(st, cases[i].status);
            assert_string_equal(id, cases[i].id);
            if (cases[i].name)
                assert_string_equal(name, cases[i].name);
            else
                assert_null(name);
        } else {
            assert_null(st);
            assert_null(id);
            assert_null(name);
        }
        put(&e);
    }
    /* A system event of those names is not a tool call. */
    adw_event_t e = mk("PreToolUse", "PreToolUse", NULL, NULL, "{\"tool_use_id\":\"t\"}", 1);
    const char *id, *name;
    assert_null(rollup_tool_status(&e, &id, &name));
    put(&e);

    /* Transitions: running never downgrades a finished call; finished ones replace. */
    assert_string_equal(rollup_tool_merge(NULL, "running"), "running");
    assert_string_equal(rollup_tool_merge("running", "running"), "running");
    assert_string_equal(rollup_tool_merge("running", "completed"), "completed");
    assert_string_equal(rollup_tool_merge("running", "failed"), "failed");
    assert_string_equal(rollup_tool_merge("completed", "running"), "completed");
    assert_string_equal(rollup_tool_merge("failed", "running"), "failed");
    assert_string_equal(rollup_tool_merge("completed", "failed"), "failed");
    assert_string_equal(rollup_tool_merge(NULL, "failed"), "failed");
}

static void test_tool_call_fold(void **state)
{
    (void)state;
    rollup_t r = {0};
    assert_int_equal(rollup_reset(&r, 8), 0);
    adw_event_t ev[6] = {
        mk(NULL, "PreToolUse", "build", NULL,
           "{\"tool_name\":\"Bash\",\"tool_use_id\":\"toolu_A\"}", 1),
        mk(NULL, "ToolUseBlock", "build", NULL,
           "{\"type\":\"tool_use\",\"id\":\"toolu_A\",\"name\":\"Bash\"}", 2),
        mk(NULL, "PostToolUseFailure", "build", NULL,
           "{\"tool_name\":\"Bash\",\"tool_use_id\":\"toolu_A\",\"error\":\"exit 1\"}", 3),
        /* A late PreToolUse (out of order) does not bring the failed call back to running. */
        mk(NULL, "PreToolUse", "build", NULL, "{\"tool_use_id\":\"toolu_A\"}", 4),
        mk(NULL, "PreToolUse", NULL, NULL, "{\"tool_name\":\"Read\",\"tool_use_id\":\"toolu_B\"}",
           5),
        mk(NULL, "TextBlock", NULL, NULL, "{\"text\":\"hi\"}", 6),
    };
    ev[4].agent_id = "agent-1";
    for (int i = 0; i < 6; i++)
        rollup_event(&r, &ev[i]);
    assert_int_equal(r.tools.used, 2);
    const rollup_agg_t *a = rollup_map_find(&r.tools, "r1", "toolu_A");
    assert_non_null(a);
    assert_string_equal(a->status, "failed");
    assert_string_equal(a->tool_name, "Bash"); /* the last one given */
    assert_null(a->agent_id);
    assert_int_equal(a->n, 4);
    assert_int_equal(a->first_id, 1);
    assert_int_equal(a->last_id, 4);
    assert_int_equal(a->first_ts, 1000);
    assert_int_equal(a->last_ts, 4000);
    const rollup_agg_t *b = rollup_map_find(&r.tools, "r1", "toolu_B");
    assert_non_null(b);
    assert_string_equal(b->status, "running");
    assert_string_equal(b->tool_name, "Read");
    assert_string_equal(b->agent_id, "agent-1");
    /* The same tool_use_id in another run is another call. */
    adw_event_t other = mk(NULL, "PostToolUse", NULL, NULL, "{\"tool_use_id\":\"toolu_A\"}", 7);
    other.adw_id = "r2";
    rollup_event(&r, &other);
    assert_string_equal(rollup_map_find(&r.tools, "r2", "toolu_A")->status, "completed");
    assert_string_equal(rollup_map_find(&r.tools, "r1", "toolu_A")->status, "failed");
    put(&other);
    for (int i = 0; i < 6; i++)
        put(&ev[i]);
    rollup_free(&r);
}

static void test_agent_fold(void **state)
{
    (void)state;
    rollup_t r = {0};
    assert_int_equal(rollup_reset(&r, 8), 0);
    adw_event_t ev[6] = {
        mk(NULL, "SubagentStart", NULL, NULL, "{\"agent_id\":\"agent-1\"}", 1),
        mk(NULL, "PreToolUse", NULL, NULL, "{\"tool_use_id\":\"toolu_1\"}", 2),
        mk(NULL, "AssistantMessage", NULL, NULL, "{\"cost_usd\":0.25,\"tokens\":100}", 3),
        mk(NULL, "TextBlock", NULL, NULL, NULL, 4), /* the main agent's */
        mk(NULL, "AssistantMessage", NULL, NULL, NULL, 5),
        mk(NULL, "SubagentStop", NULL, NULL, "{\"agent_id\":\"agent-1\"}", 6),
    };
    int agent_of[6] = {1, 1, 1, 0, 2, 1};
    for (int i = 0; i < 6; i++) {
        if (agent_of[i])
            ev[i].agent_id = agent_of[i] == 1 ? "agent-1" : "agent-2";
        if (i == 0)
            ev[i].agent_type = "Explore";
    }
    ev[2].cost_usd = 0.25;
    ev[2].tokens = 100;
    ev[4].cost_usd = 0.5;
    ev[4].agent_type = "Plan";
    for (int i = 0; i < 6; i++)
        rollup_event(&r, &ev[i]);
    assert_int_equal(r.agents.used, 2);
    const rollup_agg_t *a1 = rollup_map_find(&r.agents, "r1", "agent-1");
    assert_non_null(a1);
    assert_string_equal(a1->status, "completed");   /* its SubagentStop */
    assert_string_equal(a1->agent_type, "Explore"); /* later events without one keep it */
    assert_int_equal(a1->n, 4);
    assert_true(a1->cost == 0.25);
    assert_int_equal(a1->tokens, 100);
    assert_int_equal(a1->first_id, 1);
    assert_int_equal(a1->last_id, 6);
    const rollup_agg_t *a2 = rollup_map_find(&r.agents, "r1", "agent-2");
    assert_non_null(a2);
    assert_null(a2->status); /* stored as running */
    assert_string_equal(a2->agent_type, "Plan");
    assert_int_equal(a2->n, 1);
    assert_true(a2->cost == 0.5);
    /* The run counts every event, its agents' included. */
    const rollup_agg_t *run = rollup_map_find(&r.runs, "r1", NULL);
    assert_int_equal(run->n, 6);
    assert_true(run->cost == 0.75);
    /* A SubagentStop of another agent does not end this one. */
    assert_int_equal(rollup_reset(&r, 8), 0);
    adw_event_t stop = mk(NULL, "SubagentStop", NULL, NULL, NULL, 7);
    stop.agent_id = "agent-2";
    rollup_event(&r, &stop);
    rollup_event(&r, &ev[1]);
    assert_string_equal(rollup_map_find(&r.agents, "r1", "agent-2")->status, "completed");
    assert_null(rollup_map_find(&r.agents, "r1", "agent-1")->status);
    put(&stop);
    for (int i = 0; i < 6; i++)
        put(&ev[i]);
    rollup_free(&r);
}

/* Whether two sums of costs are the same up to rounding. */
static int near(double a, double b)
{
    double d = a - b;
    return d < 1e-9 && d > -1e-9;
}

/* The spend of the rule's tests: OTel api_request records and reported figures (a stream-json
 * result, a hook payload) of one run, step "build", subagent "agent-1". */
static adw_event_t spend(int otel, double cost, int64_t in, int64_t out, int64_t cr, int64_t cc,
                         int64_t id)
{
    adw_event_t e = mk(NULL, otel ? "api_request" : "ResultMessage", "build", NULL, NULL, id);
    e.otel = otel;
    e.agent_id = "agent-1";
    e.cost_usd = cost;
    e.input_tokens = in;
    e.output_tokens = out;
    e.cache_read_tokens = cr;
    e.cache_creation_tokens = cc;
    e.tokens = in + out + cr + cc;
    return e;
}

/* Folds ev[order[0..n)] as one batch into r (reset) and checks that the run, the step and the
 * agent show cost and tokens, and (the run) the four kinds. */
static void fold_order(rollup_t *r, adw_event_t *ev, const int *order, size_t n, double cost,
                       int64_t tokens, const int64_t kinds[4])
{
    assert_int_equal(rollup_reset(r, n), 0);
    for (size_t i = 0; i < n; i++)
        rollup_event(r, &ev[order[i]]);
    const rollup_agg_t *rows[3] = {rollup_map_find(&r->runs, "r1", NULL),
                                   rollup_map_find(&r->steps, "r1", "build"),
                                   rollup_map_find(&r->agents, "r1", "agent-1")};
    for (int k = 0; k < 3; k++) {
        assert_non_null(rows[k]);
        assert_int_equal(rows[k]->n, (int64_t)n);
        assert_true(near(rows[k]->cost, cost));
        assert_int_equal(rows[k]->tokens, tokens);
        assert_int_equal(rows[k]->itok, kinds[0]);
        assert_int_equal(rows[k]->otok, kinds[1]);
        assert_int_equal(rows[k]->crtok, kinds[2]);
        assert_int_equal(rows[k]->cctok, kinds[3]);
    }
}

/* Every order of n <= 4 events: the permutations of 0..n-1, as indices into perms[][4]. */
static size_t permutations(size_t n, int perms[24][4])
{
    size_t count = 0;
    int a[4] = {0, 1, 2, 3};
    /* Heap's algorithm, iterative. */
    int c[4] = {0};
    memcpy(perms[count++], a, sizeof a);
    for (size_t i = 1; i < n;) {
        if (c[i] < (int)i) {
            int j = i % 2 ? c[i] : 0, tmp = a[j];
            a[j] = a[i];
            a[i] = tmp;
            memcpy(perms[count++], a, sizeof a);
            c[i]++;
            i = 1;
        } else {
            c[i++] = 0;
        }
    }
    return count;
}

static void test_spend_rule(void **state)
{
    (void)state;
    rollup_t r = {0};
    int perms[24][4];
    /* Two OTel api_request records and what the run reported (its stream-json result, a hook
     * payload): the same spend twice. OTel's sum is shown, whatever the order. */
    adw_event_t ev[4] = {
        spend(1, 0.10, 100, 20, 1000, 50, 1),
        spend(0, 0.50, 300, 90, 2000, 70, 2),
        spend(1, 0.25, 200, 40, 3000, 0, 3),
        spend(0, 0.01, 0, 0, 0, 0, 4),
    };
    size_t np = permutations(4, perms);
    assert_int_equal(np, 24);
    const int64_t otel_kinds[4] = {300, 60, 4000, 50};
    for (size_t p = 0; p < np; p++) {
        fold_order(&r, ev, perms[p], 4, 0.35, 4410, otel_kinds);
        const rollup_agg_t *run = rollup_map_find(&r.runs, "r1", NULL);
        /* Both sums are kept, each of its own events. */
        assert_true(near(run->otel.cost, 0.35));
        assert_int_equal(run->otel.tokens, 4410);
        assert_true(near(run->rep.cost, 0.51));
        assert_int_equal(run->rep.tokens, 2460);
        assert_int_equal(run->rep.itok, 300);
        assert_int_equal(run->rep.crtok, 2000);
        assert_ptr_equal(rollup_spend_shown(run), &run->otel);
    }
    /* Only reported spend: the reported sums. */
    adw_event_t rep[2] = {ev[1], ev[3]};
    const int64_t rep_kinds[4] = {300, 90, 2000, 70};
    np = permutations(2, perms);
    for (size_t p = 0; p < np; p++)
        fold_order(&r, rep, perms[p], 2, 0.51, 2460, rep_kinds);
    /* Only OTel: OTel's. */
    adw_event_t otel[2] = {ev[0], ev[2]};
    for (size_t p = 0; p < np; p++)
        fold_order(&r, otel, perms[p], 2, 0.35, 4410, otel_kinds);
    /* An OTel record without spend (a user_prompt, a tool_result) does not displace the
     * reported figures; one with tokens only (cost 0) does. */
    adw_event_t quiet[3] = {ev[1], spend(1, 0, 0, 0, 0, 0, 5), ev[3]};
    np = permutations(3, perms);
    for (size_t p = 0; p < np; p++)
        fold_order(&r, quiet, perms[p], 3, 0.51, 2460, rep_kinds);
    adw_event_t toks[3] = {ev[1], spend(1, 0, 7, 3, 0, 0, 6), ev[3]};
    const int64_t tok_kinds[4] = {7, 3, 0, 0};
    for (size_t p = 0; p < np; p++)
        fold_order(&r, toks, perms[p], 3, 0, 10, tok_kinds);
    /* OTel cost without tokens: OTel's (cost), zero tokens, not the reported tokens. */
    adw_event_t cost_only[2] = {ev[1], spend(1, 0.2, 0, 0, 0, 0, 7)};
    const int64_t none[4] = {0, 0, 0, 0};
    np = permutations(2, perms);
    for (size_t p = 0; p < np; p++)
        fold_order(&r, cost_only, perms[p], 2, 0.2, 0, none);
    for (int i = 0; i < 4; i++)
        put(&ev[i]);
    put(&quiet[1]);
    put(&toks[1]);
    put(&cost_only[1]);
    rollup_free(&r);
}

static void test_spend_rule_rows(void **state)
{
    (void)state;
    /* The step and agent rows decide on their own spend: a step with only reported spend
     * shows it although the run has OTel spend elsewhere. */
    rollup_t r = {0};
    assert_int_equal(rollup_reset(&r, 4), 0);
    adw_event_t a = spend(1, 0.4, 10, 10, 0, 0, 1), b = spend(0, 0.9, 50, 50, 0, 0, 2),
                c = spend(0, 0.3, 5, 5, 0, 0, 3);
    a.step = "plan";
    a.agent_id = NULL;
    rollup_event(&r, &a);
    rollup_event(&r, &b);
    rollup_event(&r, &c);
    const rollup_agg_t *run = rollup_map_find(&r.runs, "r1", NULL);
    assert_true(near(run->cost, 0.4));
    assert_int_equal(run->tokens, 20);
    const rollup_agg_t *plan = rollup_map_find(&r.steps, "r1", "plan");
    assert_true(near(plan->cost, 0.4));
    const rollup_agg_t *build = rollup_map_find(&r.steps, "r1", "build");
    assert_true(near(build->cost, 1.2));
    assert_int_equal(build->tokens, 110);
    const rollup_agg_t *agent = rollup_map_find(&r.agents, "r1", "agent-1");
    assert_true(near(agent->cost, 1.2));
    assert_int_equal(agent->otel.tokens, 0);
    assert_int_equal(agent->rep.tokens, 110);
    /* Saturation holds in each sum. */
    rollup_agg_t sat = {0};
    adw_event_t big = spend(1, DBL_MAX, INT64_MAX, 0, 0, 0, 4);
    big.tokens = INT64_MAX;
    rollup_add(&sat, &big);
    rollup_add(&sat, &big);
    assert_true(sat.otel.cost == DBL_MAX && sat.cost == DBL_MAX);
    assert_true(sat.otel.tokens == INT64_MAX && sat.tokens == INT64_MAX);
    assert_true(sat.otel.itok == INT64_MAX && sat.itok == INT64_MAX);
    assert_int_equal(rollup_spend_any(&sat.rep), 0);
    put(&a);
    put(&b);
    put(&c);
    put(&big);
    rollup_free(&r);
}

static void test_session_fold(void **state)
{
    (void)state;
    rollup_t r = {0};
    assert_int_equal(rollup_reset(&r, 8), 0);
    adw_event_t ev[6] = {
        mk(NULL, "SessionStart", NULL, NULL, "{\"session_id\":\"sess-A\"}", 1),
        mk(NULL, "PreToolUse", NULL, NULL, "{\"session_id\":\"sess-B\"}", 2),
        mk(NULL, "Stop", NULL, NULL, "{\"session_id\":\"sess-A\"}", 3), /* another run */
        mk(NULL, "api_request", NULL, NULL, "{\"session_id\":\"sess-C\"}", 4),
        mk(NULL, "TextBlock", NULL, NULL, "{\"session_id\":\"\"}", 5),
        mk(NULL, "TextBlock", NULL, NULL, "{\"session_id\":42}", 6),
    };
    ev[2].adw_id = "r2";
    ev[3].attr_session = "sess-C"; /* waiting to be re-filed: it files nothing */
    assert_string_equal(rollup_session_id(&ev[0]), "sess-A");
    assert_null(rollup_session_id(&ev[3]));
    assert_null(rollup_session_id(&ev[4])); /* empty */
    assert_null(rollup_session_id(&ev[5])); /* not a string */
    for (int i = 0; i < 6; i++)
        rollup_event(&r, &ev[i]);
    assert_int_equal(r.sessions.used, 2);
    const rollup_agg_t *a = rollup_map_find(&r.sessions, "sess-A", NULL);
    assert_non_null(a);
    assert_string_equal(a->session_run, "r2"); /* the latest filing wins */
    assert_int_equal(a->last_id, 3);
    const rollup_agg_t *b = rollup_map_find(&r.sessions, "sess-B", NULL);
    assert_string_equal(b->session_run, "r1");
    assert_int_equal(b->last_id, 2);
    assert_null(rollup_map_find(&r.sessions, "sess-C", NULL));
    ev[3].attr_session = NULL;
    for (int i = 0; i < 6; i++)
        put(&ev[i]);
    rollup_free(&r);
}

static void test_refile(void **state)
{
    (void)state;
    json_error_t je;
    json_t *doc = json_loads("{\"type\":\"adw_event\",\"adw_id\":\"sess-abc\",\"event_type\":"
                             "\"api_request\",\"payload\":{\"cost_usd\":0.5}}",
                             JSON_PRESERVE_ORDER, &je);
    assert_non_null(doc);
    adw_event_t e = {.doc = doc, .adw_id = json_string_value(json_object_get(doc, "adw_id"))};
    assert_int_equal(rollup_refile(&e, "run-42"), 0);
    assert_string_equal(e.adw_id, "run-42");
    assert_ptr_equal(e.adw_id, json_string_value(json_object_get(doc, "adw_id")));
    char *text = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT);
    /* The key keeps its place; the rest is untouched. */
    assert_string_equal(text, "{\"type\":\"adw_event\",\"adw_id\":\"run-42\",\"event_type\":"
                              "\"api_request\",\"payload\":{\"cost_usd\":0.5}}");
    free(text);
    /* Re-filed from a string that dies with another document: e keeps its own copy. */
    json_t *other = json_string("run-7");
    assert_int_equal(rollup_refile(&e, json_string_value(other)), 0);
    json_decref(other);
    assert_string_equal(e.adw_id, "run-7");
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_status),
        cmocka_unit_test(test_step_status),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_add_saturates),
        cmocka_unit_test(test_event_fold),
        cmocka_unit_test(test_run_status_over_a_whole_run),
        cmocka_unit_test(test_stalled),
        cmocka_unit_test(test_stop_failure),
        cmocka_unit_test(test_tool_status),
        cmocka_unit_test(test_tool_call_fold),
        cmocka_unit_test(test_agent_fold),
        cmocka_unit_test(test_spend_rule),
        cmocka_unit_test(test_spend_rule_rows),
        cmocka_unit_test(test_session_fold),
        cmocka_unit_test(test_refile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
