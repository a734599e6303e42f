/* budget_rule: a run's budget and the events ingest raises about it (proto/http.md, "Events
 * ingest raises"): which adw_start gives a run its budget, the run's spend (the spend rule of
 * rollup.h), when that spend crosses 80 % and 100 % of the budget, the budget_warning,
 * budget_exceeded and budget_denied events, and the reason a denied hook is given.
 * Pure: no I/O, no clock (the caller passes the times).
 */
#ifndef ADW_BUDGET_RULE_H
#define ADW_BUDGET_RULE_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* The thresholds a run's spend crosses, once each per run (bits of budget_crossed). */
enum {
    BUDGET_WARNING = 1 << 0,  /* spend >= 80 % of the budget: budget_warning */
    BUDGET_EXCEEDED = 1 << 1, /* spend >= 100 %: budget_exceeded */
};

/* One of these per run: what the writer knows of its budget and spend. Plain data. */
typedef struct budget_run_t {
    double budget_usd;   /* 0: the run has no budget */
    double otel_cost;    /* the spend of events with `otel` (OTel log records) */
    int64_t otel_tokens; /* their tokens: any makes OTel's spend the one shown */
    double rep_cost;     /* the spend of the others (stream-json results, hooks, ...) */
    int64_t warning_id;  /* id of the run's budget_warning; 0: not raised */
    int64_t exceeded_id; /* id of the run's budget_exceeded; 0: not raised */
} budget_run_t;

/* Parses a budget in US dollars, as ADW_INGEST_RUN_BUDGET_USD gives it: a positive finite
 * decimal number ("5", "2.50"), nothing else around it. Returns 0 with *usd set, or -EINVAL
 * with the reason in err. */
int budget_parse_usd(const char *s, double *usd, char *err, size_t errlen);

/* When e is the system event adw_start and its payload's budget_usd is a positive finite
 * number: returns 1 with *usd set to it; else 0 (*usd untouched). */
int budget_of_start(const adw_event_t *e, double *usd);

/* The run's spend, as adw_runs.cost_usd shows it: OTel's cost when the run has any OTel spend
 * (cost or tokens), else the others'. */
double budget_spend(const budget_run_t *r);

/* Folds e into r: its cost and tokens to OTel's sums (e->otel) or the others', and the budget
 * an adw_start gives (budget_of_start; the latest that gives one wins). */
void budget_add(budget_run_t *r, const adw_event_t *e);

/* The thresholds r's spend has reached that were not raised yet: BUDGET_WARNING when spend >=
 * 80 % of the budget and warning_id is 0, BUDGET_EXCEEDED when spend >= the budget and
 * exceeded_id is 0 (both when one event crosses both); 0 when the run has no budget. */
unsigned budget_crossed(const budget_run_t *r);

/* Whether the run is over its budget: it has one, and its spend is at or above it. */
int budget_over(const budget_run_t *r);

/* Writes "$4.02" (usd rounded to cents) into out. Returns the length needed, as snprintf. */
int budget_money(double usd, char *out, size_t outlen);

/* Builds the event run adw_id (borrowed) raises for threshold kind (BUDGET_WARNING or
 * BUDGET_EXCEEDED) after its event crossed_by_id, whose step is step (borrowed; NULL: none):
 *   {"type":"system","event":"budget_warning"|"budget_exceeded","adw_id":A,"step":S,
 *    "summary":"Budget 80% used: $4.02 of $5.00",
 *    "payload":{"budget_usd":B,"spend_usd":X,"percent":80|100,"crossed_by_id":N}}
 * received at received_us, validated by event_from_json (no status, no spend of its own).
 * Returns 0 with ev filled (the caller releases it with event_clear), or -EINVAL (ev untouched,
 * the reason in err) or -ENOMEM. */
int budget_event_build(unsigned kind, const char *adw_id, const char *step, const budget_run_t *r,
                       int64_t crossed_by_id, int64_t received_us, adw_event_t *ev, char *err,
                       size_t errlen);

/* Whether e is a hook's PreToolUse (an adw_event whose event_type is PreToolUse). */
int budget_is_pre_tool_use(const adw_event_t *e);

/* Builds the budget_denied event of the PreToolUse hook event hook (borrowed, its id assigned)
 * of a run over its budget r:
 *   {"type":"system","event":"budget_denied","adw_id":A,"step":S,
 *    "summary":"Denied Bash: over budget ($5.12 of $5.00)",
 *    "payload":{"tool_name","tool_use_id","budget_usd","spend_usd","hook_event_id"}}
 * (tool_name and tool_use_id from the hook's payload, null when absent). Same returns as
 * budget_event_build. */
int budget_denied_build(const adw_event_t *hook, const budget_run_t *r, int64_t received_us,
                        adw_event_t *ev, char *err, size_t errlen);

/* Writes the reason a denied hook is given into out: "Run <adw_id> is over its budget: $5.12
 * spent of $5.00". Returns the length needed, as snprintf. */
int budget_deny_reason(const char *adw_id, double budget_usd, double spend_usd, char *out,
                       size_t outlen);

/* Writes the reason a hook denied by the budget_denied event denied (borrowed) is given, from
 * its adw_id and payload, into out (budget_deny_reason's text). Returns the length needed. */
int budget_denied_reason(const adw_event_t *denied, char *out, size_t outlen);

#endif
