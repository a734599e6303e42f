/* Unit tests for gateway/frame's stored-document path: a document as PostgreSQL prints jsonb
 * becomes the same payload as decoding and re-serializing it, without the decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "frame.h"

/* Both paths for text: the compact copy and the decode + re-serialize; their payloads must be
 * the same bytes (the documents here are ASCII with integers, which both print alike). */
static void assert_same_as_decoded(const char *text)
{
    filter_event_t fields = {{"run-1", "build", NULL, "adw_event"}};
    frame_t *fast = frame_from_stored(7, text, strlen(text), &fields);
    assert_non_null(fast);
    json_t *doc = NULL;
    char why[160];
    assert_int_equal(codec_json_parse(text, strlen(text), &doc, why, sizeof why), 0);
    frame_t *slow = frame_from_event(doc, why, sizeof why);
    json_decref(doc);
    assert_non_null(slow);
    assert_int_equal(fast->len, slow->len);
    assert_memory_equal(fast->payload, slow->payload, slow->len);
    assert_int_equal(fast->wire_len, slow->wire_len);
    assert_memory_equal(fast->wire, slow->wire, slow->wire_len);
    assert_int_equal(fast->id, 7);
    assert_string_equal(fast->fields.field[0], "run-1");
    assert_string_equal(fast->fields.field[1], "build");
    assert_null(fast->fields.field[2]);
    assert_string_equal(fast->fields.field[3], "adw_event");
    frame_unref(&fast);
    frame_unref(&slow);
}

static void as_postgres_prints_it(void **state)
{
    (void)state;
    /* jsonb's order: shorter keys first, so "received_at" comes late. */
    assert_same_as_decoded("{\"id\": 7, \"ts\": \"2026-01-01T00:00:00Z\", \"type\": \"adw_event\", "
                           "\"adw_id\": \"run-1\", \"payload\": {\"a\": [1, 2, {\"b\": 3}], "
                           "\"id\": 99, \"received_at\": \"x\"}, \"received_at\": "
                           "\"2026-01-01T00:00:00.000001Z\"}");
    /* Whitespace, commas, colons and braces inside strings are kept as they are. */
    assert_same_as_decoded("{\"received_at\": \"2026-01-01T00:00:00Z\", \"text\": "
                           "\"a, b: {c} [d]  \\\"e\\\" \\\\\", \"id\": 7}");
    /* Empty containers, literals, negative numbers, nesting. */
    assert_same_as_decoded("{\"id\": 7, \"x\": {}, \"y\": [], \"z\": [true, false, null, -3], "
                           "\"received_at\": \"t\", \"w\": {\"v\": {\"u\": [[[]]]}}}");
    /* Already compact, and id/received_at already first. */
    assert_same_as_decoded("{\"id\":7,\"received_at\":\"t\",\"a\":1}");
    /* Only the two members. */
    assert_same_as_decoded("{\"received_at\": \"t\", \"id\": 7}");
}

static void refuses_what_is_not_a_stored_event(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "[1, 2]",
        "{}",
        "{\"id\": 7}",                                    /* no received_at */
        "{\"received_at\": \"t\"}",                       /* no id */
        "{\"a\": {\"id\": 7, \"received_at\": \"t\"}}",   /* only nested */
        "{\"id\": 7, \"received_at\": \"t\"",             /* cut short */
        "{\"id\": 7, \"received_at\": \"t",               /* cut inside a string */
        "{\"id\": 7 \"received_at\": \"t\"}",             /* no comma */
        "{\"id\" 7, \"received_at\": \"t\"}",             /* no colon */
        "{\"id\": 7, \"received_at\": \"t\", \"a\": [1}", /* unbalanced */
        "{\"id\": 7, \"received_at\": \"t\",}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        frame_t *f = frame_from_stored(7, bad[i], strlen(bad[i]), NULL);
        if (f)
            fail_msg("taken: %s", bad[i]);
    }
}

static void semantically_equal_for_any_text(void **state)
{
    (void)state;
    /* Reals, escapes and non-ASCII print differently in the two paths, but mean the same. */
    const char *text = "{\"id\": 7, \"r\": 1.50, \"e\": 1e3, \"s\": \"\\u00e9\\n\\t\\/\", "
                       "\"u\": \"\xc3\xa9\", \"received_at\": \"t\"}";
    frame_t *f = frame_from_stored(7, text, strlen(text), NULL);
    assert_non_null(f);
    assert_memory_equal(f->payload, "{\"id\":7,\"received_at\":\"t\",", 26);
    json_t *a = NULL, *b = NULL;
    char why[160];
    assert_int_equal(codec_json_parse((const char *)f->payload, f->len, &a, why, sizeof why), 0);
    assert_int_equal(codec_json_parse(text, strlen(text), &b, why, sizeof why), 0);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    frame_unref(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(as_postgres_prints_it),
        cmocka_unit_test(refuses_what_is_not_a_stored_event),
        cmocka_unit_test(semantically_equal_for_any_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
