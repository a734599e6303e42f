/* Unit tests for ingest/sysevent: the system event ingest raises itself, its keys in the
 * contract's order, "step" only when given, the payload's reference taken whatever happens,
 * and what event_from_json refuses refused with its reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sysevent.h"

static void test_build(void **state)
{
    (void)state;
    adw_event_t ev = {0};
    char err[EVENT_ERR_LEN] = "";
    json_t *payload = json_pack("{s:i}", "n", 1);
    json_incref(payload); /* one reference for the call, one kept to see it released */
    assert_int_equal(sysevent_build("run_stalled", "run-1", "build", "No event for 3 s", payload,
                                    1700000000000000, &ev, err, sizeof err),
                     0);
    assert_int_equal(payload->refcount, 2); /* the event's doc holds it */
    char *text = json_dumps(ev.doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(text, "{\"type\":\"system\",\"event\":\"run_stalled\",\"adw_id\":\"run-1\","
                              "\"step\":\"build\",\"summary\":\"No event for 3 s\","
                              "\"payload\":{\"n\":1}}");
    free(text);
    assert_true(ev.is_system);
    assert_string_equal(ev.event, "run_stalled");
    assert_int_equal(ev.received_us, 1700000000000000);
    event_clear(&ev);
    assert_int_equal(payload->refcount, 1);

    /* No step: no "step" key. */
    json_incref(payload);
    assert_int_equal(
        sysevent_build("budget_warning", "run-1", NULL, "s", payload, 1, &ev, err, sizeof err), 0);
    assert_null(json_object_get(ev.doc, "step"));
    assert_null(ev.step);
    event_clear(&ev);

    /* Refused by the contract: -EINVAL with the reason, ev untouched, payload released. */
    json_incref(payload);
    assert_int_equal(
        sysevent_build("run_stalled", "bad id", NULL, "s", payload, 1, &ev, err, sizeof err),
        -EINVAL);
    assert_non_null(strstr(err, "adw_id"));
    assert_null(ev.doc);
    assert_int_equal(payload->refcount, 1);
    json_incref(payload);
    assert_int_equal(
        sysevent_build("run_stalled", NULL, NULL, "s", payload, 1, &ev, err, sizeof err), -EINVAL);
    assert_null(ev.doc);
    assert_int_equal(payload->refcount, 1);
    json_decref(payload);

    /* No payload (a json_pack that failed): out of memory. */
    assert_int_equal(
        sysevent_build("run_stalled", "run-1", NULL, "s", NULL, 1, &ev, err, sizeof err), -ENOMEM);
    assert_string_equal(err, "out of memory");
    assert_null(ev.doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
