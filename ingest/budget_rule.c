#include "budget_rule.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sysevent.h"

int budget_parse_usd(const char *s, double *usd, char *err, size_t errlen)
{
    if (!s)
        s = "";
    size_t digits = 0, dots = 0, other = 0, n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else if (s[i] == '.')
            dots++;
        else
            other++; /* signs, exponents, hex, "inf", spaces: not a budget */
    }
    double v = digits && !other && dots <= 1 ? strtod(s, NULL) : -1;
    if (!(v > 0) || !isfinite(v)) {
        set_err(err, errlen,
                "'%.40s' is not a budget: give a positive number of US dollars, e.g. 5 or 2.50", s);
        return -EINVAL;
    }
    *usd = v;
    return 0;
}

int budget_of_start(const adw_event_t *e, double *usd)
{
    if (!e->is_system || !e->event || strcmp(e->event, "adw_start"))
        return 0;
    const json_t *v = json_object_get(json_object_get(e->doc, "payload"), "budget_usd");
    if (!json_is_number(v))
        return 0;
    double b = json_number_value(v);
    if (!(b > 0) || !isfinite(b))
        return 0;
    *usd = b;
    return 1;
}

double budget_spend(const budget_run_t *r)
{
    return r->otel_cost > 0 || r->otel_tokens > 0 ? r->otel_cost : r->rep_cost;
}

/* Sums saturate at the top of their type, as rollup.c's do. Both operands are non-negative. */
static double sat_addf(double a, double b)
{
    return b > DBL_MAX - a ? DBL_MAX : a + b;
}

void budget_add(budget_run_t *r, const adw_event_t *e)
{
    if (e->otel) {
        r->otel_cost = sat_addf(r->otel_cost, e->cost_usd);
        r->otel_tokens =
            e->tokens > INT64_MAX - r->otel_tokens ? INT64_MAX : r->otel_tokens + e->tokens;
    } else {
        r->rep_cost = sat_addf(r->rep_cost, e->cost_usd);
    }
    double b;
    if (budget_of_start(e, &b))
        r->budget_usd = b;
}

unsigned budget_crossed(const budget_run_t *r)
{
    if (!(r->budget_usd > 0))
        return 0;
    double spend = budget_spend(r);
    unsigned k = 0;
    if (!r->warning_id && spend >= r->budget_usd * 0.8)
        k |= BUDGET_WARNING;
    if (!r->exceeded_id && spend >= r->budget_usd)
        k |= BUDGET_EXCEEDED;
    return k;
}

int budget_over(const budget_run_t *r)
{
    return r->budget_usd > 0 && budget_spend(r) >= r->budget_usd;
}

int budget_money(double usd, char *out, size_t outlen)
{
    return snprintf(out, outlen, "$%.2f", usd);
}

int budget_event_build(unsigned kind, const char *adw_id, const char *step, const budget_run_t *r,
                       int64_t crossed_by_id, int64_t received_us, adw_event_t *ev, char *err,
                       size_t errlen)
{
    int percent = kind == BUDGET_EXCEEDED ? 100 : 80;
    double spend = budget_spend(r);
    char summary[96], s[32], b[32];
    budget_money(spend, s, sizeof s);
    budget_money(r->budget_usd, b, sizeof b);
    snprintf(summary, sizeof summary, "Budget %d%% used: %s of %s", percent, s, b);
    json_t *payload =
        json_pack("{s:f, s:f, s:i, s:I}", "budget_usd", r->budget_usd, "spend_usd", spend,
                  "percent", percent, "crossed_by_id", (json_int_t)crossed_by_id);
    return sysevent_build(kind == BUDGET_EXCEEDED ? "budget_exceeded" : "budget_warning", adw_id,
                          step, summary, payload, received_us, ev, err, errlen);
}

int budget_is_pre_tool_use(const adw_event_t *e)
{
    return !e->is_system && e->event_type && !strcmp(e->event_type, "PreToolUse");
}

/* payload.key of e when a string, else JSON null; a new reference, or NULL (out of memory). */
static json_t *payload_string(const adw_event_t *e, const char *key)
{
    const json_t *v = json_object_get(json_object_get(e->doc, "payload"), key);
    return json_is_string(v) ? json_string(json_string_value(v)) : json_null();
}

int budget_denied_build(const adw_event_t *hook, const budget_run_t *r, int64_t received_us,
                        adw_event_t *ev, char *err, size_t errlen)
{
    double spend = budget_spend(r);
    char summary[200], s[32], b[32];
    budget_money(spend, s, sizeof s);
    budget_money(r->budget_usd, b, sizeof b);
    const json_t *tool = json_object_get(json_object_get(hook->doc, "payload"), "tool_name");
    snprintf(summary, sizeof summary, "Denied %.64s: over budget (%s of %s)",
             json_is_string(tool) ? json_string_value(tool) : "tool call", s, b);
    json_t *payload =
        json_pack("{s:o, s:o, s:f, s:f, s:I}", "tool_name", payload_string(hook, "tool_name"),
                  "tool_use_id", payload_string(hook, "tool_use_id"), "budget_usd", r->budget_usd,
                  "spend_usd", spend, "hook_event_id", (json_int_t)hook->id);
    return sysevent_build("budget_denied", hook->adw_id, hook->step, summary, payload, received_us,
                          ev, err, errlen);
}

int budget_deny_reason(const char *adw_id, double budget_usd, double spend_usd, char *out,
                       size_t outlen)
{
    char s[32], b[32];
    budget_money(spend_usd, s, sizeof s);
    budget_money(budget_usd, b, sizeof b);
    return snprintf(out, outlen, "Run %s is over its budget: %s spent of %s", adw_id, s, b);
}

int budget_denied_reason(const adw_event_t *denied, char *out, size_t outlen)
{
    const json_t *p = json_object_get(denied->doc, "payload");
    return budget_deny_reason(denied->adw_id, json_number_value(json_object_get(p, "budget_usd")),
                              json_number_value(json_object_get(p, "spend_usd")), out, outlen);
}
