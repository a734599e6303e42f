/* Unit tests for ingest/approval_event and ingest/approval_rollup: the three approval events as
 * built (keys, summaries, no status, validated; a huge tool_input shortened to the payload
 * limit), approval ids and times, and what a batch's approval events write to adw_approvals
 * (only requests ingest raised, only the first end of an approval, text[] literals escaped);
 * and that these events leave a run's stalled flag alone (rollup). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "approval_event.h"
#include "approval_rollup.h"
#include "rollup.h"

#define AID "0123456789abcdef0123456789abcdef"

static void test_ids_and_time(void **state)
{
    (void)state;
    assert_true(approval_event_id_valid(AID, 32));
    assert_false(approval_event_id_valid(AID, 31));
    assert_false(approval_event_id_valid("0123456789ABCDEF0123456789abcdef", 32));
    assert_false(approval_event_id_valid("0123456789abcdef0123456789abcdeg", 32));
    assert_false(approval_event_id_valid(NULL, 0));
    char t[32];
    approval_event_time(1765130520123456LL, t);
    assert_string_equal(t, "2025-12-07T18:02:00.123Z");
}

static void test_requested(void **state)
{
    (void)state;
    json_t *input = json_pack("{s:s}", "command", "rm -rf build/");
    approval_request_info_t info = {.approval_id = AID,
                                    .adw_id = "a1b2c3d4",
                                    .step = "build",
                                    .tool_name = "Bash",
                                    .tool_use_id = "toolu_01",
                                    .session_id = "sess",
                                    .tool_input = input,
                                    .summary = "Bash: rm -rf build/",
                                    .rule = "destructive shell",
                                    .timeout_s = 120,
                                    .expires_us = 1765130520123456LL,
                                    .hook_event_id = 41};
    adw_event_t ev;
    char err[EVENT_ERR_LEN];
    assert_int_equal(approval_event_requested(&info, 1, &ev, err, sizeof err), 0);
    char *text = json_dumps(ev.doc, JSON_COMPACT);
    assert_string_equal(
        text, "{\"type\":\"system\",\"event\":\"approval_requested\",\"adw_id\":\"a1b2c3d4\","
              "\"step\":\"build\",\"summary\":\"Bash: rm -rf build/\",\"payload\":{\"approval_id\":"
              "\"" AID "\",\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"rm -rf build/\"},"
              "\"tool_use_id\":\"toolu_01\",\"session_id\":\"sess\",\"rule\":\"destructive "
              "shell\",\"timeout_s\":120,\"on_timeout\":\"deny\",\"expires_at\":"
              "\"2025-12-07T18:02:00.123Z\",\"hook_event_id\":41}}");
    free(text);
    assert_null(ev.status);
    assert_true(ev.is_system);
    assert_true(rollup_run_keeps_stalled(&ev));
    assert_null(rollup_run_status(&ev));
    event_clear(&ev);

    /* A tool_input over the payload limit is shortened, marked, and still an event. */
    size_t bigsize = (size_t)ADW_PAYLOAD_MAX * 2;
    char *big = malloc(bigsize);
    memset(big, 'x', bigsize - 1);
    big[bigsize - 1] = '\0';
    json_decref(input);
    input = json_pack("{s:s}", "content", big);
    info.tool_input = input;
    info.step = NULL;
    assert_int_equal(approval_event_requested(&info, 1, &ev, err, sizeof err), 0);
    assert_true(json_is_true(json_object_get(json_object_get(ev.doc, "payload"), "adw_truncated")));
    assert_null(ev.step);
    event_clear(&ev);
    free(big);
    json_decref(input);
}

static void test_decided_expired(void **state)
{
    (void)state;
    adw_event_t ev;
    char err[EVENT_ERR_LEN];
    assert_int_equal(approval_event_decided(AID, "r1", "build", 1, NULL, "alice", 5312,
                                            "Bash: rm -rf build/", 1, &ev, err, sizeof err),
                     0);
    char *text = json_dumps(ev.doc, JSON_COMPACT);
    assert_string_equal(text,
                        "{\"type\":\"system\",\"event\":\"approval_decided\",\"adw_id\":\"r1\","
                        "\"step\":\"build\",\"summary\":\"Allowed by alice: Bash: rm -rf build/\","
                        "\"payload\":{\"approval_id\":\"" AID "\",\"decision\":\"allow\","
                        "\"reason\":null,\"decided_by\":\"alice\",\"waited_ms\":5312}}");
    free(text);
    assert_null(ev.status);
    event_clear(&ev);
    assert_int_equal(approval_event_decided(AID, "r1", NULL, 0, "no", "timeout", 1, "Bash: x", 1,
                                            &ev, err, sizeof err),
                     0);
    assert_string_equal(ev.summary, "Denied by timeout: Bash: x");
    event_clear(&ev);
    assert_int_equal(approval_event_expired(AID, "r1", "s", "ingest restarted", 7, "Bash: x", 1,
                                            &ev, err, sizeof err),
                     0);
    assert_string_equal(ev.summary, "Approval expired (ingest restarted): Bash: x");
    text = json_dumps(json_object_get(ev.doc, "payload"), JSON_COMPACT);
    assert_string_equal(text, "{\"approval_id\":\"" AID
                              "\",\"reason\":\"ingest restarted\",\"waited_ms\":7}");
    free(text);
    event_clear(&ev);
    /* A summary over the limit is cut, never refused. */
    char longer[ADW_SUMMARY_MAX * 2];
    memset(longer, 'y', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(approval_event_expired(AID, "r1", NULL, "hook connection closed", 7, longer, 1,
                                            &ev, err, sizeof err),
                     0);
    assert_true(strlen(ev.summary) <= ADW_SUMMARY_MAX);
    event_clear(&ev);
    /* What the contract refuses is refused. */
    assert_int_not_equal(
        approval_event_expired(AID, "bad id", NULL, "x", 1, "y", 1, &ev, err, sizeof err), 0);
}

/* A request of n events built by the builders, ids from first_id, all fresh. */
static store_req_t *req_of(adw_event_t *evs, size_t n, int64_t first_id, int raised)
{
    store_req_t *r = store_req_new(n);
    for (size_t i = 0; i < n; i++) {
        r->events[i] = evs[i];
        r->events[i].id = first_id + (int64_t)i;
        r->ids[i] = first_id + (int64_t)i;
        r->fresh[i] = 1;
    }
    r->approvals = raised;
    return r;
}

static void test_rollup_encode(void **state)
{
    (void)state;
    char err[EVENT_ERR_LEN];
    json_t *input = json_pack("{s:s}", "command", "echo \"a\\b\"");
    approval_request_info_t info = {.approval_id = AID,
                                    .adw_id = "r1",
                                    .tool_name = "Bash",
                                    .tool_input = input,
                                    .summary = "Bash: echo",
                                    .rule = "r",
                                    .timeout_s = 1,
                                    .expires_us = 1765130520123456LL,
                                    .hook_event_id = 1};
    adw_event_t evs[3];
    assert_int_equal(approval_event_requested(&info, 1765130520000000LL, &evs[0], err, sizeof err),
                     0);
    assert_int_equal(approval_event_decided(AID, "r1", NULL, 0, "no \"way\"", "bob", 3, "Bash: e",
                                            1765130521000000LL, &evs[1], err, sizeof err),
                     0);
    /* A second end in the same batch changes nothing: the first one wins. */
    assert_int_equal(approval_event_expired(AID, "r1", NULL, "hook connection closed", 4, "Bash: e",
                                            1, &evs[2], err, sizeof err),
                     0);
    store_req_t *r = req_of(evs, 3, 10, 1);
    /* The same events sent by a client: not ingest's, no rows. */
    adw_event_t forged[1];
    assert_int_equal(approval_event_decided(AID, "r1", NULL, 1, NULL, "mallory", 3, "x", 1,
                                            &forged[0], err, sizeof err),
                     0);
    store_req_t *client = req_of(forged, 1, 13, 0);
    store_req_t *reqs[2] = {r, client};
    approval_rollup_t a;
    memset(&a, 0, sizeof a);
    assert_int_equal(approval_rollup_encode(&a, reqs, 2), 0);
    assert_int_equal(a.nins, 1);
    assert_int_equal(a.nupd, 1);
    assert_string_equal(a.ins[0].data, "{\"" AID "\"}");
    assert_string_equal(a.ins[2].data, "{NULL}"); /* no step */
    assert_string_equal(a.ins[6].data,
                        "{\"{\\\"command\\\":\\\"echo \\\\\\\"a\\\\\\\\b\\\\\\\"\\\"}\"}");
    assert_string_equal(a.ins[8].data, "{\"10\"}");
    assert_string_equal(a.ins[10].data, "{\"2025-12-07T18:02:00.123Z\"}");
    assert_string_equal(a.upd[1].data, "{\"denied\"}");
    assert_string_equal(a.upd[2].data, "{\"11\"}");
    assert_string_equal(a.upd[5].data, "{\"no \\\"way\\\"\"}");
    assert_string_equal(a.upd[6].data, "{\"bob\"}");
    assert_string_equal(a.upd[7].data, "{\"3\"}");
    /* Nothing of ingest's: nothing to send. */
    store_req_t *only_client[1] = {client};
    assert_int_equal(approval_rollup_encode(&a, only_client, 1), 0);
    assert_int_equal(a.nins + a.nupd, 0);
    approval_rollup_free(&a);
    store_req_destroy(&r);
    store_req_destroy(&client);
    json_decref(input);
}

/* Approval events leave the run's stalled flag as the batch's other events (or the stored row)
 * have it; any other event decides it. */
static void test_stalled_kept(void **state)
{
    (void)state;
    char err[EVENT_ERR_LEN];
    adw_event_t ev;
    assert_int_equal(approval_event_expired(AID, "r1", NULL, "x", 1, "y", 1, &ev, err, sizeof err),
                     0);
    ev.id = 5;
    rollup_t agg;
    memset(&agg, 0, sizeof agg);
    assert_int_equal(rollup_reset(&agg, 4), 0);
    rollup_event(&agg, &ev);
    rollup_agg_t *run = rollup_map_find(&agg.runs, "r1", NULL);
    assert_non_null(run);
    assert_false(run->stalled_set);
    assert_int_equal(run->n, 1);
    rollup_free(&agg);
    event_clear(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_and_time),    cmocka_unit_test(test_requested),
        cmocka_unit_test(test_decided_expired), cmocka_unit_test(test_rollup_encode),
        cmocka_unit_test(test_stalled_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
