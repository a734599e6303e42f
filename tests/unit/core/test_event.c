/* Unit tests for shared/event: every rule of the contract's event table, each accepted at its
 * limit and refused one past it with its reason, as the wire delivers events (JSON text through
 * codec_json_parse, msgpack through codec_msgpack_decode). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "adw_limits.h"
#include "buf.h"
#include "codec.h"
#include "event.h"
#include "jsonw.h"

#define RECEIVED_US 1795000000123456LL /* 2026-11-18T...: the time of receipt in these tests */

/* ---- helpers ---- */

/* Returns a string of n copies of c (caller frees). */
static char *rep(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* printf into a fresh heap string (caller frees). */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

/* Parses text as the HTTP path does; the parse must succeed. */
static json_t *parse(const char *text)
{
    json_t *v = NULL;
    char err[200];
    if (codec_json_parse(text, strlen(text), &v, err, sizeof err))
        fail_msg("cannot parse %.200s: %s", text, err);
    return v;
}

/* Validates text; expects acceptance and returns the event (caller event_clear()s it). */
static adw_event_t accept_json(const char *text)
{
    json_t *v = parse(text);
    adw_event_t ev;
    memset(&ev, 0x5a, sizeof ev);
    char err[EVENT_ERR_LEN] = "";
    int rc = event_from_json(v, RECEIVED_US, &ev, err, sizeof err);
    if (rc)
        fail_msg("refused %.300s: %s", text, err);
    assert_ptr_equal(ev.doc, v);
    assert_int_equal(ev.received_us, RECEIVED_US);
    json_decref(v); /* the event holds its own reference */
    return ev;
}

static void accept_ok(const char *text)
{
    adw_event_t ev = accept_json(text);
    event_clear(&ev);
}

/* Validates text; expects -EINVAL with want in the reason and ev untouched. */
static void reject(const char *text, const char *want)
{
    json_t *v = parse(text);
    adw_event_t ev;
    memset(&ev, 0x5a, sizeof ev);
    adw_event_t before = ev;
    char err[EVENT_ERR_LEN] = "";
    int rc = event_from_json(v, RECEIVED_US, &ev, err, sizeof err);
    json_decref(v);
    if (rc != -EINVAL || !strstr(err, want))
        fail_msg("%.300s: want -EINVAL with \"%s\", got %d \"%s\"", text, want, rc, err);
    assert_memory_equal(&ev, &before, sizeof ev);
    assert_null(memchr(err, '\n', strlen(err)));
}

/* The text must not even parse: codec_json_parse refuses it with want in the reason. */
static void parse_refused(const char *text, size_t len, const char *want)
{
    json_t *v = (json_t *)0x1;
    char err[200] = "";
    int rc = codec_json_parse(text, len, &v, err, sizeof err);
    if (rc != -EINVAL || !strstr(err, want))
        fail_msg("want the parser to refuse with \"%s\", got %d \"%s\"", want, rc, err);
    assert_null(v);
}

#define BASE "\"type\":\"adw_event\",\"adw_id\":\"a1b2c3d4\",\"event_type\":\"ToolUseBlock\""
#define SYS "\"type\":\"system\",\"adw_id\":\"a1b2c3d4\",\"event\":\"adw_start\""

/* ---- type ---- */

static void test_type(void **state)
{
    (void)state;
    adw_event_t ev = accept_json("{" BASE "}");
    assert_false(ev.is_system);
    assert_string_equal(ev.type, "adw_event");
    assert_string_equal(ev.adw_id, "a1b2c3d4");
    assert_string_equal(ev.event_type, "ToolUseBlock");
    assert_null(ev.step);
    assert_null(ev.event);
    assert_null(ev.status);
    assert_null(ev.summary);
    assert_null(ev.event_id);
    assert_int_equal(ev.has, 0);
    assert_int_equal(ev.ts_us, RECEIVED_US); /* no timestamp: the time of receipt */
    assert_int_equal(ev.id, 0);
    event_clear(&ev);
    assert_null(ev.doc);
    event_clear(&ev); /* twice is harmless */

    ev = accept_json("{" SYS "}");
    assert_true(ev.is_system);
    assert_string_equal(ev.event, "adw_start");
    assert_null(ev.event_type);
    event_clear(&ev);

    reject("{\"adw_id\":\"a\",\"event_type\":\"x\"}", "type is required");
    reject("{\"type\":null,\"adw_id\":\"a\",\"event_type\":\"x\"}", "type is required");
    reject("{\"type\":\"\",\"adw_id\":\"a\",\"event_type\":\"x\"}", "type must not be empty");
    reject("{\"type\":\"event\",\"adw_id\":\"a\",\"event_type\":\"x\"}",
           "type must be \"adw_event\" or \"system\"");
    reject("{\"type\":\"ADW_EVENT\",\"adw_id\":\"a\",\"event_type\":\"x\"}",
           "type must be \"adw_event\" or \"system\"");
    reject("{\"type\":\"adw_event_and_more_than_sixteen\",\"adw_id\":\"a\",\"event_type\":\"x\"}",
           "type");
    reject("{\"type\":1,\"adw_id\":\"a\",\"event_type\":\"x\"}", "type must be a string");
    reject("{\"type\":[\"adw_event\"],\"adw_id\":\"a\",\"event_type\":\"x\"}",
           "type must be a string");
}

static void test_not_an_object(void **state)
{
    (void)state;
    reject("[]", "an event must be a JSON object");
    reject("[{" BASE "}]", "an event must be a JSON object");
    reject("\"adw_event\"", "an event must be a JSON object");
    reject("42", "an event must be a JSON object");
    reject("null", "an event must be a JSON object");
    reject("{}", "type is required");
}

/* ---- adw_id ---- */

static void test_adw_id(void **state)
{
    (void)state;
    reject("{\"type\":\"adw_event\",\"event_type\":\"x\"}", "adw_id is required");
    reject("{\"type\":\"adw_event\",\"adw_id\":null,\"event_type\":\"x\"}", "adw_id is required");
    reject("{\"type\":\"adw_event\",\"adw_id\":\"\",\"event_type\":\"x\"}",
           "adw_id must not be empty");
    reject("{\"type\":\"adw_event\",\"adw_id\":7,\"event_type\":\"x\"}", "adw_id must be a string");

    accept_ok("{\"type\":\"adw_event\",\"adw_id\":\"a\",\"event_type\":\"x\"}"); /* length 1 */
    accept_ok("{\"type\":\"adw_event\",\"adw_id\":\"AZaz09._:-\",\"event_type\":\"x\"}");

    char *id64 = rep('z', 64), *id65 = rep('z', 65), *id2000 = rep('z', 2000);
    char *t = fmt("{\"type\":\"adw_event\",\"adw_id\":\"%s\",\"event_type\":\"x\"}", id64);
    adw_event_t ev = accept_json(t);
    assert_int_equal(strlen(ev.adw_id), 64);
    event_clear(&ev);
    free(t);
    t = fmt("{\"type\":\"adw_event\",\"adw_id\":\"%s\",\"event_type\":\"x\"}", id65);
    reject(t, "adw_id must be 1-64 characters of [A-Za-z0-9._:-]");
    free(t);
    t = fmt("{\"type\":\"adw_event\",\"adw_id\":\"%s\",\"event_type\":\"x\"}", id2000);
    reject(t, "adw_id");
    free(t);
    free(id64);
    free(id65);
    free(id2000);

    /* Every character outside the set, one at a time. */
    static const char *const bad[] = {" ",     "/", "\\\\",    "\\\"", "a b",       "a/b", "é",
                                      "a\\tb", "#", "*",       "$",    "%",         "+",   ",",
                                      ";",     "=", "\\u00e9", "日本", "a\\u007fb", "@"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = fmt("{\"type\":\"adw_event\",\"adw_id\":\"x%sx\",\"event_type\":\"x\"}", bad[i]);
        reject(t, "adw_id must be 1-64 characters");
        free(t);
    }
    assert_true(event_adw_id_valid("a", 1));
    assert_false(event_adw_id_valid("", 0));
    assert_false(event_adw_id_valid("a\0", 2));
    char *z64 = rep('-', 64);
    assert_true(event_adw_id_valid(z64, 64));
    free(z64);
    char *z65 = rep('.', 65);
    assert_false(event_adw_id_valid(z65, 65));
    free(z65);
    /* Every byte value, alone and between two allowed ones: only [A-Za-z0-9._:-] passes. */
    for (unsigned b = 0; b < 256; b++) {
        char one[1] = {(char)b}, three[3] = {'a', (char)b, 'z'};
        int want = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
                   b == '.' || b == '_' || b == ':' || b == '-';
        assert_int_equal(event_adw_id_valid(one, 1), want);
        assert_int_equal(event_adw_id_valid(three, 3), want);
    }
}

/* ---- byte limits of the string fields ---- */

/* key at exactly max bytes is accepted, max + 1 refused with "<key> is N bytes, over the limit
 * of max". The string is built of two-byte characters when possible, so the limit is seen to
 * be in bytes, not characters. */
static void limit_case(const char *prefix, const char *key, size_t max)
{
    char *ok = rep('s', max), *over = rep('s', max + 1);
    char *t = fmt("{%s,\"%s\":\"%s\"}", prefix, key, ok);
    adw_event_t ev = accept_json(t);
    json_t *v = json_object_get(ev.doc, key);
    assert_int_equal(json_string_length(v), max);
    event_clear(&ev);
    free(t);
    t = fmt("{%s,\"%s\":\"%s\"}", prefix, key, over);
    char *want = fmt("%s is %zu bytes, over the limit of %zu", key, max + 1, max);
    reject(t, want);
    free(want);
    free(t);
    free(ok);
    free(over);

    /* max bytes of "é" (2 bytes each) are accepted; one more byte ("é" x max/2 plus "s")
     * refused. */
    buf_t b;
    buf_init(&b, 0);
    for (size_t i = 0; i < max / 2; i++)
        buf_puts(&b, "\xc3\xa9");
    t = fmt("{%s,\"%s\":\"%s\"}", prefix, key, b.data);
    accept_ok(t);
    free(t);
    t = fmt("{%s,\"%s\":\"%ss\"}", prefix, key, b.data);
    want = fmt("%s is %zu bytes", key, max + 1);
    reject(t, want);
    free(want);
    free(t);
    buf_free(&b);

    t = fmt("{%s,\"%s\":17}", prefix, key);
    want = fmt("%s must be a string", key);
    reject(t, want);
    free(t);
    t = fmt("{%s,\"%s\":{\"a\":1}}", prefix, key);
    reject(t, want);
    free(t);
    t = fmt("{%s,\"%s\":true}", prefix, key);
    reject(t, want);
    free(t);
    free(want);
}

static void test_string_limits(void **state)
{
    (void)state;
    limit_case(BASE, "step", ADW_STEP_MAX);
    limit_case(BASE, "status", ADW_STATUS_MAX);
    limit_case(BASE, "summary", ADW_SUMMARY_MAX);
    limit_case(BASE, "event_id", ADW_EVENT_ID_MAX);
    limit_case("\"type\":\"adw_event\",\"adw_id\":\"a\"", "event_type", ADW_EVENT_TYPE_MAX);
    limit_case("\"type\":\"system\",\"adw_id\":\"a\"", "event", ADW_EVENT_NAME_MAX);
    /* The optional one of the pair is bounded too. */
    limit_case(SYS, "event_type", ADW_EVENT_TYPE_MAX);
    limit_case(BASE, "event", ADW_EVENT_NAME_MAX);
    assert_int_equal(ADW_STEP_MAX, 64);
    assert_int_equal(ADW_STATUS_MAX, 32);
    assert_int_equal(ADW_SUMMARY_MAX, 4096);
    assert_int_equal(ADW_EVENT_ID_MAX, 64);
}

static void test_required_by_type(void **state)
{
    (void)state;
    reject("{\"type\":\"adw_event\",\"adw_id\":\"a\"}", "event_type is required");
    reject("{\"type\":\"adw_event\",\"adw_id\":\"a\",\"event\":\"adw_start\"}",
           "event_type is required");
    reject("{\"type\":\"adw_event\",\"adw_id\":\"a\",\"event_type\":\"\"}",
           "event_type must not be empty");
    reject("{\"type\":\"system\",\"adw_id\":\"a\"}", "event is required");
    reject("{\"type\":\"system\",\"adw_id\":\"a\",\"event_type\":\"x\"}", "event is required");
    reject("{\"type\":\"system\",\"adw_id\":\"a\",\"event\":\"\"}", "event must not be empty");
    reject("{\"type\":\"system\",\"adw_id\":\"a\",\"event\":null}", "event is required");

    adw_event_t ev = accept_json("{" SYS ",\"step\":\"build\",\"status\":\"running\","
                                 "\"summary\":\"s\",\"event_id\":\"k-1\",\"event_type\":\"T\"}");
    assert_string_equal(ev.step, "build");
    assert_string_equal(ev.status, "running");
    assert_string_equal(ev.summary, "s");
    assert_string_equal(ev.event_id, "k-1");
    assert_string_equal(ev.event_type, "T");
    event_clear(&ev);

    /* Optional strings may be null: the same as absent. */
    ev = accept_json("{" BASE ",\"step\":null,\"status\":null,\"summary\":null,"
                     "\"event_id\":null,\"timestamp\":null,\"duration_ms\":null,"
                     "\"payload\":null}");
    assert_null(ev.step);
    assert_null(ev.event_id);
    assert_int_equal(ev.has, 0);
    event_clear(&ev);

    reject("{" BASE ",\"event_id\":\"\"}", "event_id must not be empty");
}

/* ---- duration_ms ---- */

static void test_duration(void **state)
{
    (void)state;
    adw_event_t ev = accept_json("{" BASE ",\"duration_ms\":0}");
    assert_true(ev.has & EVENT_HAS_DURATION);
    assert_int_equal(ev.duration_ms, 0);
    event_clear(&ev);
    ev = accept_json("{" BASE ",\"duration_ms\":9223372036854775807}");
    assert_int_equal(ev.duration_ms, INT64_MAX);
    event_clear(&ev);
    ev = accept_json("{" BASE ",\"duration_ms\":45}");
    assert_int_equal(ev.duration_ms, 45);
    event_clear(&ev);

    const char *want = "duration_ms must be a non-negative integer";
    reject("{" BASE ",\"duration_ms\":-1}", want);
    reject("{" BASE ",\"duration_ms\":-9223372036854775808}", want);
    reject("{" BASE ",\"duration_ms\":1.5}", want);
    reject("{" BASE ",\"duration_ms\":1.0}", want);
    reject("{" BASE ",\"duration_ms\":1e3}", want);
    reject("{" BASE ",\"duration_ms\":\"45\"}", want);
    reject("{" BASE ",\"duration_ms\":true}", want);
    reject("{" BASE ",\"duration_ms\":[1]}", want);
    /* Past 64 bits the parser itself refuses. */
    parse_refused("{\"duration_ms\":9223372036854775808}",
                  strlen("{\"duration_ms\":9223372036854775808}"), "too big");
}

/* ---- timestamp ---- */

static void test_timestamp(void **state)
{
    (void)state;
    static const struct {
        const char *ts;
        int64_t us;
    } good[] = {
        {"2026-01-01T14:30:00Z", 1767277800000000LL},
        {"2026-01-01T14:30:00.5Z", 1767277800500000LL},
        {"2026-01-01T14:30:00.123456Z", 1767277800123456LL},
        {"2026-01-01T14:30:00.1234569Z", 1767277800123456LL}, /* kept to the microsecond */
        {"2026-01-01t14:30:00z", 1767277800000000LL},
        {"2026-01-01 14:30:00Z", 1767277800000000LL},
        {"2026-01-01T16:30:00+02:00", 1767277800000000LL},
        {"2026-01-01T09:00:00-05:30", 1767277800000000LL},
        {"2026-01-01T14:30:00-00:00", 1767277800000000LL},
        {"2026-01-01T14:30:00+23:59", 1767277800000000LL - (23 * 60 + 59) * 60000000LL},
        {"2024-02-29T00:00:00Z", 1709164800000000LL}, /* leap year */
        {"2000-02-29T00:00:00Z", 951782400000000LL},  /* leap: divisible by 400 */
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999999Z", -1},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *t = fmt("{" BASE ",\"timestamp\":\"%s\"}", good[i].ts);
        adw_event_t ev = accept_json(t);
        if (ev.ts_us != good[i].us)
            fail_msg("%s: %lld, want %lld", good[i].ts, (long long)ev.ts_us, (long long)good[i].us);
        assert_true(ev.has & EVENT_HAS_TS);
        /* Kept as submitted in the document. */
        assert_string_equal(json_string_value(json_object_get(ev.doc, "timestamp")), good[i].ts);
        event_clear(&ev);
        free(t);
    }
    static const char *const bad[] = {
        "2026-02-30T00:00:00Z", /* February 30 */
        "2025-02-29T00:00:00Z", /* not a leap year */
        "1900-02-29T00:00:00Z", /* not a leap year: divisible by 100 */
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T23:60:00Z",
        "2026-01-01T23:59:61Z",
        "2026-01-01T14:30:00",        /* no offset */
        "2026-01-01T14:30:00+0200",   /* offset without colon */
        "2026-01-01T14:30:00+02",     /* short offset */
        "2026-01-01T14:30:00+24:00",  /* offset hour */
        "2026-01-01T14:30:00+02:60",  /* offset minute */
        "2026-01-01T14:30:00Z ",      /* trailing */
        " 2026-01-01T14:30:00Z",      /* leading */
        "2026-01-01T14:30:00.Z",      /* empty fraction */
        "2026-01-01T14:30Z",          /* no seconds */
        "2026-01-01",                 /* a date */
        "26-01-01T14:30:00Z",         /* two-digit year */
        "2026-1-01T14:30:00Z",        /* one-digit month */
        "2026/01/01T14:30:00Z",       /* wrong separators */
        "2026-01-01X14:30:00Z",       /* wrong separator */
        "2026-01-01T14:30:00ZZ",      /* trailing */
        "2026-01-01T14:30:00+02:00Z", /* two offsets */
        "1767277800",                 /* epoch seconds */
        "",
        "yesterday",
        "0000-01-01T00:00:00Z",      /* before year 1 */
        "0001-01-01T00:00:00+00:01", /* before year 1 in UTC */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = fmt("{" BASE ",\"timestamp\":\"%s\"}", bad[i]);
        reject(t, "timestamp must be an RFC 3339 date-time");
        free(t);
    }
    reject("{" BASE ",\"timestamp\":1767277800}", "timestamp must be a string");
    char *long_ts = rep('9', 65);
    char *t = fmt("{" BASE ",\"timestamp\":\"%s\"}", long_ts);
    reject(t, "timestamp");
    free(t);
    free(long_ts);
}

/* ---- payload ---- */

/* A payload {"k":"xxx..."} of exactly size bytes serialized. */
static char *payload_of_size(size_t size)
{
    /* {"k":""} is 8 bytes. */
    char *fill = rep('x', size - 8);
    char *t = fmt("{" BASE ",\"payload\":{\"k\":\"%s\"}}", fill);
    free(fill);
    return t;
}

static void test_payload(void **state)
{
    (void)state;
    adw_event_t ev = accept_json("{" BASE ",\"payload\":{}}");
    assert_int_equal(ev.has, 0);
    event_clear(&ev);
    ev =
        accept_json("{" BASE ",\"payload\":{\"tool_name\":\"Write\",\"nested\":{\"a\":[1,2,{}]}}}");
    event_clear(&ev);

    static const char *const not_objects[] = {"[]", "[1]", "\"x\"", "1", "true", "1.5"};
    for (size_t i = 0; i < sizeof not_objects / sizeof not_objects[0]; i++) {
        char *t = fmt("{" BASE ",\"payload\":%s}", not_objects[i]);
        reject(t, "payload must be a JSON object");
        free(t);
    }

    /* 64 KiB exactly is accepted; one byte more refused. */
    char *t = payload_of_size(ADW_PAYLOAD_MAX);
    ev = accept_json(t);
    /* Check the helper: the payload serializes to exactly the limit. */
    size_t size = 0;
    assert_int_equal(jsonw_size(json_object_get(ev.doc, "payload"), SIZE_MAX, &size), 0);
    assert_int_equal(size, 65536);
    event_clear(&ev);
    free(t);
    t = payload_of_size(ADW_PAYLOAD_MAX + 1);
    reject(t, "payload is over the limit of 65536 bytes serialized");
    free(t);
    /* Measured serialized, compact: whitespace in the submission does not count, escapes do. */
    char *fill = rep('x', ADW_PAYLOAD_MAX - 8);
    t = fmt("{" BASE ",\"payload\" : {   \"k\"   :   \"%s\"   }}", fill);
    accept_ok(t);
    free(t);
    free(fill);
    fill = rep('x', ADW_PAYLOAD_MAX - 9);
    t = fmt("{" BASE ",\"payload\":{\"k\":\"\\n%s\"}}", fill); /* \n is 2 bytes serialized */
    reject(t, "payload is over the limit");
    free(t);
    free(fill);
}

static void test_totals(void **state)
{
    (void)state;
    adw_event_t ev = accept_json("{" BASE ",\"payload\":{\"cost_usd\":0.25,\"tokens\":1200,"
                                 "\"input_tokens\":1000,\"output_tokens\":200}}");
    assert_true(ev.has & EVENT_HAS_COST);
    assert_true(ev.has & EVENT_HAS_TOKENS);
    assert_true(ev.cost_usd == 0.25);
    assert_int_equal(ev.tokens, 1200); /* tokens given: it wins over the parts */
    assert_int_equal(ev.input_tokens, 1000);
    assert_int_equal(ev.output_tokens, 200);
    event_clear(&ev);

    ev = accept_json("{" BASE ",\"payload\":{\"input_tokens\":1,\"output_tokens\":2,"
                     "\"cache_read_tokens\":4,\"cache_creation_tokens\":8}}");
    assert_int_equal(ev.tokens, 15); /* no tokens: the sum of the four kinds */
    assert_int_equal(ev.cache_read_tokens, 4);
    assert_int_equal(ev.cache_creation_tokens, 8);
    assert_false(ev.has & EVENT_HAS_COST);
    event_clear(&ev);

    ev = accept_json("{" BASE ",\"payload\":{\"cost_usd\":3}}"); /* an integer is a number */
    assert_true(ev.cost_usd == 3.0);
    assert_false(ev.has & EVENT_HAS_TOKENS);
    event_clear(&ev);

    /* Saturating sum: 64-bit overflow of the parts does not wrap. */
    ev = accept_json("{" BASE ",\"payload\":{\"input_tokens\":9223372036854775807,"
                     "\"output_tokens\":9223372036854775807,\"cache_read_tokens\":1}}");
    assert_int_equal(ev.tokens, INT64_MAX);
    event_clear(&ev);
    ev = accept_json("{" BASE ",\"payload\":{\"tokens\":9223372036854775807}}");
    assert_int_equal(ev.tokens, INT64_MAX);
    event_clear(&ev);

    /* Other keys of the payload are anything at all. */
    ev = accept_json("{" BASE ",\"payload\":{\"cost\":\"x\",\"token\":-1,\"tokens_x\":[]}}");
    assert_int_equal(ev.has, 0);
    event_clear(&ev);

    static const char *const bad_cost[] = {"\"0.25\"", "-0.01", "true", "[1]", "{}"};
    for (size_t i = 0; i < sizeof bad_cost / sizeof bad_cost[0]; i++) {
        char *t = fmt("{" BASE ",\"payload\":{\"cost_usd\":%s}}", bad_cost[i]);
        reject(t, "payload.cost_usd must be a non-negative number");
        free(t);
    }
    static const char *const keys[] = {"tokens", "input_tokens", "output_tokens",
                                       "cache_read_tokens", "cache_creation_tokens"};
    static const char *const bad_int[] = {"1.5", "1.0", "-1", "\"12\"", "false", "[]"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        for (size_t i = 0; i < sizeof bad_int / sizeof bad_int[0]; i++) {
            char *t = fmt("{" BASE ",\"payload\":{\"%s\":%s}}", keys[k], bad_int[i]);
            char *want = fmt("payload.%s must be a non-negative integer", keys[k]);
            reject(t, want);
            free(want);
            free(t);
        }
    /* A null total is the same as absent. */
    ev = accept_json("{" BASE ",\"payload\":{\"cost_usd\":null,\"tokens\":null}}");
    assert_int_equal(ev.has, 0);
    event_clear(&ev);
}

/* ---- what ingest assigns ---- */

static void test_assigned_keys(void **state)
{
    (void)state;
    reject("{" BASE ",\"id\":5}", "id is assigned by ingest and must not be sent");
    reject("{" BASE ",\"id\":null}", "id is assigned by ingest");
    reject("{" BASE ",\"received_at\":\"2026-01-01T00:00:00Z\"}",
           "received_at is assigned by ingest and must not be sent");
    /* Other top-level keys are kept unchanged, in order. */
    adw_event_t ev = accept_json("{\"zz\":1," BASE ",\"extra\":{\"a\":[true,null]},\"Id\":2}");
    const char *k = json_object_iter_key(json_object_iter(ev.doc));
    assert_string_equal(k, "zz");
    assert_int_equal(json_object_size(ev.doc), 6);
    assert_true(json_is_object(json_object_get(ev.doc, "extra")));
    event_clear(&ev);
}

/* ---- agent_id, agent_type: optional, 1-64 bytes of UTF-8, or null ---- */

static void test_agent_keys(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        size_t max;
    } keys[] = {{"agent_id", ADW_AGENT_ID_MAX}, {"agent_type", ADW_AGENT_TYPE_MAX}};
    assert_int_equal(ADW_AGENT_ID_MAX, 64);
    assert_int_equal(ADW_AGENT_TYPE_MAX, 64);

    /* Absent or null: none. */
    adw_event_t ev = accept_json("{" BASE "}");
    assert_null(ev.agent_id);
    assert_null(ev.agent_type);
    event_clear(&ev);
    ev = accept_json("{" BASE ",\"agent_id\":null,\"agent_type\":null}");
    assert_null(ev.agent_id);
    assert_null(ev.agent_type);
    event_clear(&ev);
    /* Both, on either type of event, kept in the doc as sent. */
    ev = accept_json("{" SYS ",\"agent_id\":\"agent-7f3a9c\",\"agent_type\":\"Explore\"}");
    assert_string_equal(ev.agent_id, "agent-7f3a9c");
    assert_string_equal(ev.agent_type, "Explore");
    assert_string_equal(json_string_value(json_object_get(ev.doc, "agent_id")), "agent-7f3a9c");
    event_clear(&ev);
    /* One without the other. */
    ev = accept_json("{" BASE ",\"agent_id\":\"toolu_01ABC\"}");
    assert_string_equal(ev.agent_id, "toolu_01ABC");
    assert_null(ev.agent_type);
    event_clear(&ev);

    for (size_t k = 0; k < 2; k++) {
        const char *key = keys[k].key;
        /* 64 bytes accepted, 65 refused; in two-byte characters too; wrong types refused. */
        limit_case(BASE, key, keys[k].max);
        /* 1 byte accepted, 0 refused. */
        char *t = fmt("{" BASE ",\"%s\":\"a\"}", key);
        ev = accept_json(t);
        assert_string_equal(k ? ev.agent_type : ev.agent_id, "a");
        event_clear(&ev);
        free(t);
        t = fmt("{" BASE ",\"%s\":\"\"}", key);
        char *want = fmt("%s must not be empty", key);
        reject(t, want);
        free(want);
        free(t);
        want = fmt("%s must be a string", key);
        t = fmt("{" BASE ",\"%s\":[\"a\"]}", key);
        reject(t, want);
        free(t);
        t = fmt("{" BASE ",\"%s\":1.5}", key);
        reject(t, want);
        free(t);
        t = fmt("{" BASE ",\"%s\":false}", key);
        reject(t, want);
        free(t);
        free(want);

        /* Invalid UTF-8: the parsers refuse it before validation (JSON text here, msgpack in
         * test_msgpack); a document built some other way is refused by validation. */
        char *bad = fmt("{" BASE ",\"%s\":\"a\xc3\x28\"}", key);
        parse_refused(bad, strlen(bad), "");
        free(bad);
        json_t *doc = parse("{" BASE "}");
        json_object_set_new(doc, key, json_stringn_nocheck("ab\xff", 3));
        char err[EVENT_ERR_LEN] = "";
        memset(&ev, 0, sizeof ev);
        assert_int_equal(event_from_json(doc, RECEIVED_US, &ev, err, sizeof err), -EINVAL);
        want = fmt("%s is not valid UTF-8", key);
        assert_string_equal(err, want);
        assert_null(ev.doc);
        free(want);
        json_decref(doc);
    }
}

/* ---- what the parsers refuse before validation ---- */

static void test_parser_refusals(void **state)
{
    (void)state;
    parse_refused("", 0, "empty body");
    parse_refused("  \r\n\t ", 6, "empty body");
    const char dup[] = "{\"type\":\"adw_event\",\"type\":\"system\"}";
    parse_refused(dup, sizeof dup - 1, "duplicate");
    const char bad_utf8[] = "{\"type\":\"adw_event\",\"adw_id\":\"a\",\"summary\":\"\xc3\x28\"}";
    parse_refused(bad_utf8, sizeof bad_utf8 - 1, "");
    const char overlong[] = "{\"summary\":\"\xc0\xaf\"}";
    parse_refused(overlong, sizeof overlong - 1, "");
    const char surrogate[] = "{\"summary\":\"\xed\xa0\x80\"}";
    parse_refused(surrogate, sizeof surrogate - 1, "");
    const char nul[] = "{\"summary\":\"a\\u0000b\"}";
    parse_refused(nul, sizeof nul - 1, "");
    const char big[] = "{\"tokens\":99999999999999999999}";
    parse_refused(big, sizeof big - 1, "too big");
    const char trailing[] = "{\"type\":\"adw_event\"} x";
    parse_refused(trailing, sizeof trailing - 1, "");
    const char truncated[] = "{\"type\":\"adw_event\"";
    parse_refused(truncated, sizeof truncated - 1, "");
    const char nan[] = "{\"cost_usd\":NaN}";
    parse_refused(nan, sizeof nan - 1, "");

    /* Nesting 1,000 deep in the payload. */
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "{" BASE ",\"payload\":{\"deep\":");
    for (int i = 0; i < 1000; i++)
        buf_putc(&b, '[');
    for (int i = 0; i < 1000; i++)
        buf_putc(&b, ']');
    buf_puts(&b, "}}");
    parse_refused(b.data, b.len, "nesting deeper than 64");
    buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        buf_puts(&b, "{\"a\":");
    buf_puts(&b, "1");
    for (int i = 0; i < 1000; i++)
        buf_putc(&b, '}');
    parse_refused(b.data, b.len, "nesting deeper than 64");
    /* At the limit: the event is depth 1, the payload 2, so 62 more levels inside fit. */
    buf_reset(&b);
    buf_puts(&b, "{" BASE ",\"payload\":{\"deep\":");
    for (int i = 0; i < ADW_JSON_DEPTH_MAX - 2; i++)
        buf_putc(&b, '[');
    for (int i = 0; i < ADW_JSON_DEPTH_MAX - 2; i++)
        buf_putc(&b, ']');
    buf_puts(&b, "}}");
    accept_ok(b.data);
    buf_free(&b);
}

/* ---- the same rules over msgpack ---- */

static json_t *mp_decode(const msgpack_sbuffer *sb, char *err, size_t errlen, int *rc)
{
    json_t *v = NULL;
    *rc = codec_msgpack_decode(sb->data, sb->size, &v, err, errlen);
    return v;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void pack_base(msgpack_packer *pk, size_t extra)
{
    msgpack_pack_map(pk, 3 + extra);
    pack_str(pk, "type");
    pack_str(pk, "adw_event");
    pack_str(pk, "adw_id");
    pack_str(pk, "m1");
    pack_str(pk, "event_type");
    pack_str(pk, "TextBlock");
}

static void test_msgpack(void **state)
{
    (void)state;
    char err[200];
    int rc;
    msgpack_sbuffer sb;
    msgpack_packer pk;

    /* An ordinary event over msgpack validates as over JSON. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_base(&pk, 2);
    pack_str(&pk, "duration_ms");
    msgpack_pack_uint64(&pk, 45);
    pack_str(&pk, "payload");
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "cost_usd");
    msgpack_pack_float(&pk, 0.5f);
    json_t *v = mp_decode(&sb, err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    adw_event_t ev;
    assert_int_equal(event_from_json(v, RECEIVED_US, &ev, err, sizeof err), 0);
    assert_int_equal(ev.duration_ms, 45);
    assert_true(ev.cost_usd == 0.5);
    event_clear(&ev);
    json_decref(v);
    msgpack_sbuffer_destroy(&sb);

    /* NaN and infinity are refused by the decoder. */
    double nonfinite[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_base(&pk, 1);
        pack_str(&pk, "payload");
        msgpack_pack_map(&pk, 1);
        pack_str(&pk, "cost_usd");
        msgpack_pack_double(&pk, nonfinite[i]);
        v = mp_decode(&sb, err, sizeof err, &rc);
        assert_int_equal(rc, -EINVAL);
        assert_null(v);
        assert_non_null(strstr(err, "NaN or infinite real"));
        msgpack_sbuffer_destroy(&sb);
    }

    /* A uint64 past INT64_MAX is out of range. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_base(&pk, 1);
    pack_str(&pk, "duration_ms");
    msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX + 1);
    v = mp_decode(&sb, err, sizeof err, &rc);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, "integer out of range"));
    msgpack_sbuffer_destroy(&sb);

    /* A negative duration arrives as a negative integer and is refused by validation. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_base(&pk, 1);
    pack_str(&pk, "duration_ms");
    msgpack_pack_int64(&pk, -3);
    v = mp_decode(&sb, err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(event_from_json(v, RECEIVED_US, &ev, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "duration_ms must be a non-negative integer"));
    json_decref(v);
    msgpack_sbuffer_destroy(&sb);

    /* Duplicate keys. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_base(&pk, 1);
    pack_str(&pk, "adw_id");
    pack_str(&pk, "m2");
    v = mp_decode(&sb, err, sizeof err, &rc);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, "duplicate key \"adw_id\""));
    msgpack_sbuffer_destroy(&sb);

    /* Invalid UTF-8 in a value. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_base(&pk, 1);
    pack_str(&pk, "summary");
    msgpack_pack_str_with_body(&pk, "\xff\xfe", 2);
    v = mp_decode(&sb, err, sizeof err, &rc);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, "invalid UTF-8"));
    msgpack_sbuffer_destroy(&sb);

    /* agent_id and agent_type over msgpack: validated as over JSON. */
    char *a64 = rep('a', ADW_AGENT_ID_MAX), *a65 = rep('a', ADW_AGENT_ID_MAX + 1);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_base(&pk, 2);
    pack_str(&pk, "agent_id");
    pack_str(&pk, a64);
    pack_str(&pk, "agent_type");
    pack_str(&pk, "Explore");
    v = mp_decode(&sb, err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(event_from_json(v, RECEIVED_US, &ev, err, sizeof err), 0);
    assert_string_equal(ev.agent_id, a64);
    assert_string_equal(ev.agent_type, "Explore");
    event_clear(&ev);
    json_decref(v);
    msgpack_sbuffer_destroy(&sb);
    static const char *const agent_keys[] = {"agent_id", "agent_type"};
    for (int k = 0; k < 2; k++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_base(&pk, 1);
        pack_str(&pk, agent_keys[k]);
        pack_str(&pk, a65);
        v = mp_decode(&sb, err, sizeof err, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(event_from_json(v, RECEIVED_US, &ev, err, sizeof err), -EINVAL);
        char *want = fmt("%s is 65 bytes, over the limit of 64", agent_keys[k]);
        assert_string_equal(err, want);
        free(want);
        json_decref(v);
        msgpack_sbuffer_destroy(&sb);
        /* nil is none; an integer is refused; invalid UTF-8 never gets past the decoder. */
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_base(&pk, 1);
        pack_str(&pk, agent_keys[k]);
        msgpack_pack_nil(&pk);
        v = mp_decode(&sb, err, sizeof err, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(event_from_json(v, RECEIVED_US, &ev, err, sizeof err), 0);
        assert_null(ev.agent_id);
        assert_null(ev.agent_type);
        event_clear(&ev);
        json_decref(v);
        msgpack_sbuffer_destroy(&sb);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_base(&pk, 1);
        pack_str(&pk, agent_keys[k]);
        msgpack_pack_int(&pk, 7);
        v = mp_decode(&sb, err, sizeof err, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(event_from_json(v, RECEIVED_US, &ev, err, sizeof err), -EINVAL);
        want = fmt("%s must be a string", agent_keys[k]);
        assert_string_equal(err, want);
        free(want);
        json_decref(v);
        msgpack_sbuffer_destroy(&sb);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_base(&pk, 1);
        pack_str(&pk, agent_keys[k]);
        msgpack_pack_str_with_body(&pk, "ag\xc0\xaf", 4);
        v = mp_decode(&sb, err, sizeof err, &rc);
        assert_int_equal(rc, -EINVAL);
        assert_non_null(strstr(err, "invalid UTF-8"));
        msgpack_sbuffer_destroy(&sb);
    }
    free(a64);
    free(a65);

    /* An empty frame. */
    v = (json_t *)0x1;
    assert_int_equal(codec_msgpack_decode("", 0, &v, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "empty frame"));

    /* Nesting 1,000 deep. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_base(&pk, 1);
    pack_str(&pk, "payload");
    for (int i = 0; i < 1000; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    v = mp_decode(&sb, err, sizeof err, &rc);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, "nesting deeper than 64"));
    msgpack_sbuffer_destroy(&sb);
}

/* The error buffer is always NUL-terminated and never overrun, whatever its size. */
static void test_error_buffer(void **state)
{
    (void)state;
    json_t *v = parse("{\"type\":\"adw_event\",\"adw_id\":\"a\"}");
    adw_event_t ev;
    char small[8];
    memset(small, 'x', sizeof small);
    assert_int_equal(event_from_json(v, 0, &ev, small, 5), -EINVAL);
    assert_int_equal(strlen(small), 4);
    assert_int_equal(small[5], 'x');
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_adw_id),
        cmocka_unit_test(test_string_limits),
        cmocka_unit_test(test_required_by_type),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_timestamp),
        cmocka_unit_test(test_payload),
        cmocka_unit_test(test_totals),
        cmocka_unit_test(test_assigned_keys),
        cmocka_unit_test(test_agent_keys),
        cmocka_unit_test(test_parser_refusals),
        cmocka_unit_test(test_msgpack),
        cmocka_unit_test(test_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
