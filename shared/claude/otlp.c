#include "otlp.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "err.h"
#include "event.h"
#include "fit.h"
#include "hook.h"
#include "summary.h"
#include "timefmt.h"

#define NAME_PREFIX "claude_code."

/* ---- AnyValue -> JSON ---- */

/* Whether s is a plain decimal number: [-+]digits[.digits][e[-+]digits], nothing else. */
static int decimal_text(const char *s, int *integral)
{
    const char *p = s;
    int digits = 0;
    *integral = 1;
    if (*p == '-' || *p == '+')
        p++;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        *integral = 0;
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (!digits)
        return 0;
    if (*p == 'e' || *p == 'E') {
        *integral = 0;
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

/* A decimal string as a JSON number (integer when integral and in range), else NULL. */
static json_t *number_of_text(const char *s)
{
    int integral;
    if (!decimal_text(s, &integral))
        return NULL;
    if (integral) {
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (!errno && *end == '\0')
            return json_integer((json_int_t)v);
    }
    errno = 0;
    double d = strtod(s, NULL);
    if (errno || !isfinite(d))
        return NULL;
    return json_real(d);
}

/* intValue: a string of a 64-bit integer, or a JSON number. Out of range stays a string. */
static json_t *int_value(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer(json_integer_value(v));
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9.2e18)
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    int integral;
    if (decimal_text(s, &integral) && integral) {
        errno = 0;
        char *end;
        long long n = strtoll(s, &end, 10);
        if (!errno && *end == '\0')
            return json_integer((json_int_t)n);
    }
    return json_stringn(s, json_string_length(v)); /* kept as sent */
}

/* doubleValue: a JSON number, or a string ("NaN", "Infinity" or a number). */
static json_t *double_value(const json_t *v)
{
    if (json_is_number(v))
        return json_real(json_number_value(v));
    if (!json_is_string(v))
        return NULL;
    json_t *n = number_of_text(json_string_value(v));
    if (n) {
        if (json_is_integer(n)) {
            double d = (double)json_integer_value(n);
            json_decref(n);
            return json_real(d);
        }
        return n;
    }
    return json_stringn(json_string_value(v), json_string_length(v));
}

static json_t *value_to_json(const json_t *v, int depth);

/* kvlist_to_json and value_to_json recurse through nested AnyValues, at most
 * ADW_JSON_DEPTH_MAX levels (each call checks depth first). */
// NOLINTNEXTLINE(misc-no-recursion): bounded by ADW_JSON_DEPTH_MAX, see above
static json_t *kvlist_to_json(const json_t *kvlist, int numbers, int depth)
{
    static const char *const numeric[] = {OTLP_NUMERIC_KEYS};
    json_t *obj = json_object();
    if (!obj || depth > ADW_JSON_DEPTH_MAX)
        return obj;
    size_t i;
    const json_t *kv;
    json_array_foreach(kvlist, i, kv)
    {
        const char *key = json_string_value(json_object_get(kv, "key"));
        if (!key)
            continue;
        json_t *val = value_to_json(json_object_get(kv, "value"), depth + 1);
        if (!val)
            continue;
        if (numbers && json_is_string(val)) {
            for (size_t k = 0; k < sizeof numeric / sizeof numeric[0]; k++) {
                if (strcmp(key, numeric[k]))
                    continue;
                json_t *n = number_of_text(json_string_value(val));
                if (n) {
                    json_decref(val);
                    val = n;
                }
                break;
            }
        }
        if (json_object_set_new(obj, key, val)) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by ADW_JSON_DEPTH_MAX, see kvlist_to_json
static json_t *value_to_json(const json_t *v, int depth)
{
    if (!json_is_object(v) || depth > ADW_JSON_DEPTH_MAX)
        return NULL;
    const json_t *x;
    if ((x = json_object_get(v, "stringValue")))
        return json_is_string(x) ? json_stringn(json_string_value(x), json_string_length(x)) : NULL;
    if ((x = json_object_get(v, "boolValue")))
        return json_is_boolean(x) ? json_boolean(json_is_true(x)) : NULL;
    if ((x = json_object_get(v, "intValue")))
        return int_value(x);
    if ((x = json_object_get(v, "doubleValue")))
        return double_value(x);
    if ((x = json_object_get(v, "bytesValue")))
        return json_is_string(x) ? json_stringn(json_string_value(x), json_string_length(x)) : NULL;
    if ((x = json_object_get(v, "arrayValue"))) {
        if (!json_is_object(x))
            return NULL;
        json_t *arr = json_array();
        if (!arr)
            return NULL;
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(x, "values"), i, e)
        {
            json_t *j = value_to_json(e, depth + 1);
            if (json_array_append_new(arr, j ? j : json_null())) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    if ((x = json_object_get(v, "kvlistValue")))
        return json_is_object(x) ? kvlist_to_json(json_object_get(x, "values"), 0, depth + 1)
                                 : NULL;
    return json_object_size(v) == 0 ? json_null() : NULL; /* an empty AnyValue: no value */
}

json_t *otlp_value_to_json(const json_t *v)
{
    return value_to_json(v, 0);
}

json_t *otlp_attributes_to_json(const json_t *kvlist, int numbers)
{
    return kvlist_to_json(kvlist, numbers, 0);
}

/* ---- the record's parts ---- */

/* A fixed64 of nanoseconds (a decimal string, or a JSON integer): 0 with *ns, 0 with *ns = 0
 * when absent, -EINVAL when it is something else. */
static int unix_nanos(const json_t *v, uint64_t *ns)
{
    *ns = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -EINVAL;
        *ns = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -EINVAL;
    const char *s = json_string_value(v);
    if (!*s || json_string_length(v) > 20)
        return -EINVAL;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -EINVAL;
    errno = 0;
    unsigned long long n = strtoull(s, NULL, 10);
    if (errno)
        return -EINVAL;
    *ns = n;
    return 0;
}

/* The record's event name without the prefix, or NULL. */
static const char *event_name(const json_t *record, const json_t *attrs)
{
    const char *n = json_string_value(json_object_get(record, "eventName"));
    if (!n || !*n)
        n = json_string_value(json_object_get(attrs, "event.name"));
    if (!n || !*n)
        n = json_string_value(json_object_get(json_object_get(record, "body"), "stringValue"));
    if (!n || !*n)
        return NULL;
    if (!strncmp(n, NAME_PREFIX, sizeof NAME_PREFIX - 1) && n[sizeof NAME_PREFIX - 1])
        n += sizeof NAME_PREFIX - 1;
    return n;
}

/* Appends the number at key as text (integers plainly, reals with up to 4 decimals). */
static int add_number(hook_line_t *l, const json_t *attrs, const char *key, const char *pre,
                      const char *post)
{
    const json_t *v = json_object_get(attrs, key);
    char t[64];
    if (json_is_integer(v))
        snprintf(t, sizeof t, "%s%" JSON_INTEGER_FORMAT "%s", pre, json_integer_value(v), post);
    else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(t, sizeof t, "%s%.0f%s", pre, d, post);
        else
            snprintf(t, sizeof t, "%s%.4g%s", pre, d, post);
    } else if (json_is_string(v) && json_string_length(v) && json_string_length(v) < 32)
        snprintf(t, sizeof t, "%s%s%s", pre, json_string_value(v), post);
    else
        return 0;
    hook_line_puts(l, t);
    return 1;
}

static void add_cost(hook_line_t *l, const json_t *attrs)
{
    const json_t *v = json_object_get(attrs, "cost_usd");
    if (json_is_number(v)) {
        char t[64];
        snprintf(t, sizeof t, " $%.4f", json_number_value(v));
        hook_line_puts(l, t);
    } else {
        add_number(l, attrs, "cost_usd", " $", "");
    }
}

/* The success attribute: a boolean, or "true"/"false". -1 when unknown. */
static int success_of(const json_t *attrs)
{
    const json_t *v = json_object_get(attrs, "success");
    if (json_is_boolean(v))
        return json_is_true(v);
    const char *s = json_string_value(v);
    if (s && !strcmp(s, "true"))
        return 1;
    if (s && !strcmp(s, "false"))
        return 0;
    return -1;
}

static void describe(hook_line_t *l, const char *name, const json_t *attrs)
{
    if (!strcmp(name, "api_request")) {
        hook_line_add_json(l, json_object_get(attrs, "model"));
        add_cost(l, attrs);
        if (add_number(l, attrs, "input_tokens", " ", "/"))
            add_number(l, attrs, "output_tokens", "", " tok");
        else
            add_number(l, attrs, "output_tokens", " ", " tok out");
        add_number(l, attrs, "duration_ms", " ", " ms");
    } else if (!strcmp(name, "tool_result")) {
        hook_line_add_json(l, json_object_get(attrs, "tool_name"));
        int ok = success_of(attrs);
        if (ok >= 0)
            hook_line_puts(l, ok ? " ok" : " failed");
        add_number(l, attrs, "duration_ms", " (", " ms)");
    } else if (!strcmp(name, "user_prompt")) {
        hook_line_puts(l, "Prompt");
        add_number(l, attrs, "prompt_length", " (", " chars)");
    } else if (!strcmp(name, "tool_decision")) {
        hook_line_add_json(l, json_object_get(attrs, "tool_name"));
        hook_line_add_key(l, attrs, "decision", ": ");
    } else if (!strcmp(name, "api_error")) {
        hook_line_add_json(l, json_object_get(attrs, "model"));
        hook_line_puts(l, " error");
        add_number(l, attrs, "status_code", " ", "");
        hook_line_add_key(l, attrs, "error", ": ");
    }
    hook_line_fallback(l, name);
}

/* ---- event_id: FNV-1a, 128 bits ---- */

__extension__ typedef unsigned __int128 u128_t;

static void fnv_add(u128_t *h, const char *s, size_t n)
{
    const u128_t prime = ((u128_t)1 << 88) | 0x13b;
    for (size_t i = 0; i < n; i++) {
        *h ^= (unsigned char)s[i];
        *h *= prime;
    }
}

/* A field: its tag, a 0x1e, the text (or "\x00" when absent), a 0x1f. */
static void fnv_field(u128_t *h, const char *tag, const json_t *v)
{
    fnv_add(h, tag, strlen(tag));
    fnv_add(h, "\x1e", 1);
    if (json_is_string(v)) {
        fnv_add(h, json_string_value(v), json_string_length(v));
    } else if (v) {
        char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (t)
            fnv_add(h, t, strlen(t));
        free(t);
    } else {
        fnv_add(h, "", 1);
    }
    fnv_add(h, "\x1f", 1);
}

static void event_id(char out[5 + 32 + 1], const char *name, uint64_t ns, const json_t *attrs)
{
    u128_t h = ((u128_t)0x6c62272e07bb0142ULL << 64) | 0x62b821756295c58dULL;
    const json_t *seq = json_object_get(attrs, "event.sequence");
    fnv_field(&h, "session.id", json_object_get(attrs, "session.id"));
    fnv_field(&h, "prompt.id", json_object_get(attrs, "prompt.id"));
    fnv_field(&h, "event.sequence", seq);
    fnv_add(&h, name, strlen(name));
    fnv_add(&h, "\x1f", 1);
    char t[24];
    snprintf(t, sizeof t, "%" PRIu64, ns);
    fnv_add(&h, t, strlen(t));
    fnv_add(&h, "\x1f", 1);
    if (!seq)
        fnv_field(&h, "attributes", attrs);
    snprintf(out, 5 + 32 + 1, "otel-%016" PRIx64 "%016" PRIx64, (uint64_t)(h >> 64), (uint64_t)h);
}

/* ---- one record ---- */

/* A non-empty string at key of a (borrowed), or NULL. */
static const char *text_at(const json_t *a, const char *key)
{
    const char *s = json_string_value(json_object_get(a, key));
    return s && *s ? s : NULL;
}

json_t *otlp_record_to_event(const json_t *resource, const json_t *record, char **session,
                             char *err, size_t errlen)
{
    json_t *res = NULL, *attrs = NULL, *ev = NULL;
    *session = NULL;
    if (!json_is_object(record)) {
        set_err(err, errlen, "a log record must be an object");
        return NULL;
    }
    const json_t *ra = json_object_get(record, "attributes");
    if (ra && !json_is_array(ra) && !json_is_null(ra)) {
        set_err(err, errlen, "a log record's attributes must be an array");
        return NULL;
    }
    res = otlp_attributes_to_json(json_object_get(resource, "attributes"), 0);
    attrs = otlp_attributes_to_json(ra, 1);
    if (!res || !attrs) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    const char *name = event_name(record, attrs);
    if (!name) {
        set_err(err, errlen, "a log record has no event name (eventName, event.name or body)");
        goto fail;
    }
    if (strlen(name) > ADW_EVENT_TYPE_MAX) {
        set_err(err, errlen, "event name is over %d bytes", ADW_EVENT_TYPE_MAX);
        goto fail;
    }
    uint64_t ns;
    if (unix_nanos(json_object_get(record, "timeUnixNano"), &ns)) {
        set_err(err, errlen, "timeUnixNano must be a decimal string of nanoseconds");
        goto fail;
    }
    uint64_t ts = ns;
    if (!ts && unix_nanos(json_object_get(record, "observedTimeUnixNano"), &ts)) {
        set_err(err, errlen, "observedTimeUnixNano must be a decimal string of nanoseconds");
        goto fail;
    }
    if (ts / 1000 > (uint64_t)TIMEFMT_MAX_US) {
        set_err(err, errlen, "timeUnixNano is past the year 9999");
        goto fail;
    }

    /* Which run. */
    const char *adw_id = text_at(res, "adw.id");
    const json_t *id_v = json_object_get(res, "adw.id");
    if (!adw_id && !(id_v && !json_is_string(id_v))) {
        adw_id = text_at(attrs, "adw.id");
        id_v = json_object_get(attrs, "adw.id");
    }
    if ((id_v && !json_is_string(id_v)) ||
        (adw_id && !event_adw_id_valid(adw_id, strlen(adw_id)))) {
        set_err(err, errlen, "adw.id must be 1-64 characters of [A-Za-z0-9._:-]");
        goto fail;
    }
    const char *step = text_at(res, "adw.step");
    if (!step)
        step = text_at(attrs, "adw.step");
    char fallback[HOOK_SESSION_ID_PREFIX + 1];
    if (!adw_id) {
        const char *sid = text_at(attrs, "session.id");
        if (!sid)
            sid = text_at(res, "session.id");
        if (!sid) {
            set_err(err, errlen,
                    "no run: set adw.id in OTEL_RESOURCE_ATTRIBUTES, or send session.id");
            goto fail;
        }
        size_t n = strnlen(sid, HOOK_SESSION_ID_PREFIX);
        memcpy(fallback, sid, n);
        fallback[n] = '\0';
        if (!event_adw_id_valid(fallback, n)) {
            set_err(err, errlen, "session.id must start with characters of [A-Za-z0-9._:-]");
            goto fail;
        }
        adw_id = fallback;
        *session = strdup(sid);
        if (!*session) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
    }

    char id[5 + 32 + 1];
    event_id(id, name, ns, attrs);
    hook_line_t *line = malloc(sizeof *line);
    if (!line) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    hook_line_init(line);
    describe(line, name, attrs);
    const char *summary = hook_line_finish(line, NULL);

    ev = json_object();
    int bad = !ev;
    bad = bad || json_object_set_new(ev, "type", json_string("adw_event"));
    bad = bad || json_object_set_new(ev, "adw_id", json_string(adw_id));
    if (step)
        bad = bad || json_object_set_new(ev, "step", json_string(step));
    bad = bad || json_object_set_new(ev, "event_type", json_string(name));
    bad = bad || json_object_set_new(ev, "event_id", json_string(id));
    if (ts) {
        char t[TIMEFMT_LEN];
        timefmt_format((int64_t)(ts / 1000), t);
        bad = bad || json_object_set_new(ev, "timestamp", json_string(t));
    }
    bad = bad || json_object_set_new(ev, "summary", json_string(summary));
    free(line);
    if (bad) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    int rc = hook_payload_fit(attrs, ADW_PAYLOAD_MAX);
    if (rc) {
        set_err(err, errlen, rc == -ENOMEM ? "out of memory" : "attributes nested too deep");
        goto fail;
    }
    if (json_object_set_new(ev, "payload", attrs)) {
        attrs = NULL;
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    json_decref(res);
    return ev;
fail:
    json_decref(ev);
    json_decref(res);
    json_decref(attrs);
    free(*session);
    *session = NULL;
    return NULL;
}

/* ---- a request ---- */

void otlp_logs_clear(otlp_logs_t *l)
{
    if (!l)
        return;
    size_t n = json_array_size(l->events);
    for (size_t i = 0; l->sessions && i < n; i++)
        free(l->sessions[i]);
    free(l->sessions);
    free(l->at);
    json_decref(l->events);
    memset(l, 0, sizeof *l);
}

static void refuse(otlp_logs_t *out, size_t at, const char *why)
{
    if (!out->rejected++) {
        out->first_at = at;
        set_err(out->first_error, sizeof out->first_error, "log record %zu: %s", at, why);
    }
}

int otlp_logs_map(const json_t *request, size_t max_events, otlp_logs_t *out, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(request)) {
        set_err(err, errlen, "not OTLP: the body must be a JSON object (ExportLogsServiceRequest)");
        return -EINVAL;
    }
    const json_t *rl = json_object_get(request, "resourceLogs");
    if (!json_is_array(rl)) {
        set_err(err, errlen, "not OTLP logs: \"resourceLogs\" must be an array");
        return -EINVAL;
    }
    /* The shape first, so that a bad body changes nothing. */
    size_t total = 0, i, j;
    const json_t *r, *s;
    json_array_foreach(rl, i, r)
    {
        const json_t *sl = json_object_get(r, "scopeLogs");
        if (!json_is_object(r) || (sl && !json_is_array(sl) && !json_is_null(sl))) {
            set_err(err, errlen,
                    "not OTLP logs: resourceLogs[%zu] must be an object with an "
                    "array \"scopeLogs\"",
                    i);
            return -EINVAL;
        }
        json_array_foreach(sl, j, s)
        {
            const json_t *lr = json_object_get(s, "logRecords");
            if (!json_is_object(s) || (lr && !json_is_array(lr) && !json_is_null(lr))) {
                set_err(err, errlen,
                        "not OTLP logs: scopeLogs[%zu] must be an object with an "
                        "array \"logRecords\"",
                        j);
                return -EINVAL;
            }
            total += json_array_size(lr);
        }
    }
    out->events = json_array();
    size_t cap = total < max_events ? total : max_events;
    out->sessions = calloc(cap ? cap : 1, sizeof *out->sessions);
    out->at = calloc(cap ? cap : 1, sizeof *out->at);
    if (!out->events || !out->sessions || !out->at) {
        otlp_logs_clear(out);
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    json_array_foreach(rl, i, r)
    {
        const json_t *resource = json_object_get(r, "resource");
        json_array_foreach(json_object_get(r, "scopeLogs"), j, s)
        {
            size_t k;
            const json_t *rec;
            json_array_foreach(json_object_get(s, "logRecords"), k, rec)
            {
                size_t at = out->records++;
                if (json_array_size(out->events) >= max_events) {
                    char why[64];
                    snprintf(why, sizeof why, "more than %zu records in one request", max_events);
                    refuse(out, at, why);
                    continue;
                }
                char why[OTLP_ERR_LEN];
                char *session = NULL;
                json_t *ev = otlp_record_to_event(resource, rec, &session, why, sizeof why);
                if (!ev) {
                    refuse(out, at, why);
                    continue;
                }
                out->sessions[json_array_size(out->events)] = session;
                out->at[json_array_size(out->events)] = at;
                if (json_array_append_new(out->events, ev)) {
                    free(session);
                    out->sessions[json_array_size(out->events)] = NULL;
                    otlp_logs_clear(out);
                    set_err(err, errlen, "out of memory");
                    return -ENOMEM;
                }
            }
        }
    }
    return 0;
}
