/* Unit tests for gateway/export's CSV writing: csv_field_append (RFC 4180 quoting) and
 * export_csv_row (a stored event as one row). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "export.h"

/* The field s[0..len) as csv_field_append writes it, NUL-terminated in out. */
static const char *field(buf_t *b, const char *s, size_t len)
{
    buf_reset(b);
    assert_int_equal(csv_field_append(b, s, len), 0);
    assert_int_equal(buf_putc(b, '\0'), 0);
    return b->data;
}

#define F(b, s) field(b, s, strlen(s))

static void test_field_quoting(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    assert_string_equal(F(&b, "plain text"), "plain text");
    assert_string_equal(F(&b, "a,b"), "\"a,b\"");
    assert_string_equal(F(&b, "say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_string_equal(F(&b, "\""), "\"\"\"\"");
    assert_string_equal(F(&b, "line1\nline2"), "\"line1\nline2\"");
    assert_string_equal(F(&b, "cr\rhere"), "\"cr\rhere\"");
    assert_string_equal(F(&b, "crlf\r\n"), "\"crlf\r\n\"");
    assert_string_equal(F(&b, ""), "");
    assert_string_equal(field(&b, NULL, 0), "");
    /* Unicode passes through untouched; quoted only for the comma. */
    assert_string_equal(F(&b, "naïve ✓ 日本"), "naïve ✓ 日本");
    assert_string_equal(F(&b, "ü,✓"), "\"ü,✓\"");
    /* Spaces, semicolons, single quotes and tabs need no quotes in RFC 4180. */
    assert_string_equal(F(&b, " x;'y'\t"), " x;'y'\t");
    /* Appends: a field after what out holds. */
    buf_reset(&b);
    assert_int_equal(buf_puts(&b, "1,"), 0);
    assert_int_equal(csv_field_append(&b, "a\"b", 3), 0);
    assert_int_equal(buf_putc(&b, '\0'), 0);
    assert_string_equal(b.data, "1,\"a\"\"b\"");
    buf_free(&b);
}

static const char *row(buf_t *b, const char *json, long long id)
{
    buf_reset(b);
    assert_int_equal(export_csv_row(b, json, strlen(json), id), 0);
    assert_int_equal(buf_putc(b, '\0'), 0);
    return b->data;
}

static void test_row(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    assert_string_equal(
        row(&b,
            "{\"id\":7,\"received_at\":\"2026-01-02T03:04:05.000006Z\",\"type\":\"adw_event\","
            "\"adw_id\":\"r1\",\"step\":\"build\",\"event_type\":\"PreToolUse\","
            "\"summary\":\"Bash: echo \\\"a,b\\\"\\r\\n\",\"cost_usd\":0.5,\"tokens\":12,"
            "\"agent_id\":null,\"payload\":{\"tool_name\":\"Bash\",\"tool_input\":{\"command\":"
            "\"ls, -l\"},\"n\":[1,null,\"ü\"]}}",
            0),
        "7,2026-01-02T03:04:05.000006Z,,adw_event,build,PreToolUse,,,,\"Bash: echo "
        "\"\"a,b\"\"\r\n\",0.5,12,\"{\"\"tool_name\"\":\"\"Bash\"\",\"\"tool_input\"\":{"
        "\"\"command\"\":\"\"ls, -l\"\"},\"\"n\"\":[1,null,\"\"ü\"\"]}\"\r\n");
    /* Everything absent or null: empty fields; a null payload is empty too. */
    assert_string_equal(row(&b, "{\"id\":1,\"payload\":null}", 0), "1,,,,,,,,,,,,\r\n");
    /* A string payload is written as is, not as JSON. */
    assert_string_equal(row(&b, "{\"id\":2,\"payload\":\"x\",\"status\":\"ok\"}", 0),
                        "2,,,,,,,ok,,,,,x\r\n");
    /* A document that does not decode: its id, then the text as the payload. */
    assert_string_equal(row(&b, "{\"id\":3,\"n\":1e999999}", 3),
                        "3,,,,,,,,,,,,\"{\"\"id\"\":3,\"\"n\"\":1e999999}\"\r\n");
    buf_free(&b);
}

static void test_header(void **state)
{
    (void)state;
    assert_string_equal(EXPORT_CSV_HEADER, "id,received_at,ts,type,step,event_type,event,status,"
                                           "agent_id,summary,cost_usd,tokens,payload\r\n");
}

static void test_match(void **state)
{
    (void)state;
    assert_int_equal(export_match("/api/adws/r1/events.ndjson"), 1);
    assert_int_equal(export_match("/api/adws/r1/events.csv"), 1);
    assert_int_equal(export_match("/api/adws//events.csv"), 0);
    assert_int_equal(export_match("/api/adws/r1/events.json"), 0);
    assert_int_equal(export_match("/api/adws/r1/events.csv/x"), 0);
    assert_int_equal(export_match("/api/adws/r1"), 0);
    assert_int_equal(export_match("/api/events"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_quoting),
        cmocka_unit_test(test_row),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
