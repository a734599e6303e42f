/* rollup: what a batch of events adds to its runs (adw_runs), steps (adw_steps), subagents
 * (adw_agents), tool calls (adw_tool_calls) and sessions (adw_sessions), and the state an event
 * implies for them. Pure: no I/O, no locks. The writer folds each fresh event of a batch into
 * five maps (one aggregate per run, per run and step, per run and agent_id, per run and
 * tool_use_id, per session id), then sends the aggregates along with the events; the SQL adds
 * them to the stored rows, so each row is written once per batch.
 *
 * The spend rule (proto/decisions.md, "One spend is counted once"): a run, step and agent keep
 * two sums, OTel's (events with `otel`) and the others' (reported: stream-json results, hook
 * payloads, any event with cost or token keys); the totals shown are OTel's when the row has
 * any OTel spend, else the others'. Whatever order the events come in, the same totals.
 */
#ifndef ADW_ROLLUP_H
#define ADW_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* One sum of spend: cost and tokens. Plain data. */
typedef struct rollup_spend_t {
    double cost;
    int64_t tokens, itok, otok, crtok, cctok; /* all, input, output, cache read, cache creation */
} rollup_spend_t;

/* One of these per run (key NULL), or per (run, step), (run, agent_id) or (run, tool_use_id)
 * touched by a batch, or per session id (adw_id holds the session id, key NULL): the batch's
 * contribution. The strings are borrowed from the batch's events. */
typedef struct rollup_agg_t {
    const char *adw_id;       /* NULL: a free slot; a session: the session id */
    const char *key;          /* step, agent_id or tool_use_id; NULL for the run row */
    const char *status;       /* last status the batch's events imply, or NULL */
    const char *current_step; /* run: step of the last event that had one */
    const char *agent_type;   /* agent: the last one given, or NULL */
    const char *tool_name;    /* tool call: the last one given, or NULL */
    const char *agent_id;     /* tool call: agent_id of the last event that had one, or NULL */
    const char *stop_failure; /* run: reason of the batch's last StopFailure, or NULL */
    int64_t stop_failure_id;  /* run: that event's id; 0 when none */
    const char *session_run;  /* session: adw_id its latest event was filed under */
    int stalled;              /* run: the batch's last event of the run that decides it (every
                                 event but approval and budget ones) is a run_stalled */
    int stalled_set;          /* run: some event of the batch decided stalled (else NULL is
                                 sent, and the stored flag stays) */
    int64_t n, tokens, itok, otok, crtok, cctok; /* the totals shown: otel's or rep's */
    double cost;
    rollup_spend_t otel; /* the spend of events with `otel` */
    rollup_spend_t rep;  /* the spend of the others */
    int64_t first_ts, last_ts, first_id, last_id, updated_us;
    int64_t duration_ms;
    int has_duration;
} rollup_agg_t;

/* An open-addressing map of aggregates keyed by (adw_id, key). Zero-initialise it; free it
 * with rollup_map_free. Iterate over slots[0..cap), skipping those with adw_id NULL. */
typedef struct rollup_map_t {
    rollup_agg_t *slots; /* owned */
    size_t cap;          /* power of two */
    size_t used;
} rollup_map_t;

/* Empties m and makes room for expect keys (the map never grows: size it for every event of
 * the batch). Returns 0 or -ENOMEM (m is then unchanged). */
int rollup_map_reset(rollup_map_t *m, size_t expect);

/* Frees m's slots and zeroes it. */
void rollup_map_free(rollup_map_t *m);

/* Finds or adds the aggregate of (adw_id, key) (both borrowed; key NULL for a run). The map
 * must have been reset for at least as many keys as are added. Never NULL. */
rollup_agg_t *rollup_map_get(rollup_map_t *m, const char *adw_id, const char *key);

/* Finds the aggregate of (adw_id, key) without adding it; NULL when absent. */
rollup_agg_t *rollup_map_find(const rollup_map_t *m, const char *adw_id, const char *key);

/* The five maps one batch folds into. Zero-initialise; free with rollup_free. */
typedef struct rollup_t {
    rollup_map_t runs;     /* key NULL */
    rollup_map_t steps;    /* key: the step */
    rollup_map_t agents;   /* key: the agent_id */
    rollup_map_t tools;    /* key: the tool_use_id */
    rollup_map_t sessions; /* adw_id: the session id; key NULL */
} rollup_t;

/* Empties the five maps, each sized for expect events. Returns 0 or -ENOMEM. */
int rollup_reset(rollup_t *r, size_t expect);

/* Frees the five maps and zeroes r. */
void rollup_free(rollup_t *r);

/* The status e implies for its run, which only run-level events set: "completed" for the
 * system event adw_complete, "failed" for adw_failed (whatever their step or status), else the
 * status of a system event without a step; NULL when none (every other event, steps' events
 * included, leaves the run's status alone). */
const char *rollup_run_status(const adw_event_t *e);

/* Whether e marks its run stalled: the system event run_stalled. */
int rollup_run_stalled(const adw_event_t *e);

/* Whether e leaves its run's stalled flag as it is: the system events ingest raises about
 * approvals and budgets (approval_*, budget_*), which are no activity of the run's. */
int rollup_run_keeps_stalled(const adw_event_t *e);

/* When e is an adw_event StopFailure: the reason (borrowed from e), its payload's `error` when
 * that is a non-empty string, else its summary, else "StopFailure". NULL for any other event. */
const char *rollup_stop_failure(const adw_event_t *e);

/* The tool call e belongs to: for an adw_event PreToolUse, PostToolUse, PostToolUseFailure,
 * PermissionRequest or ToolResultBlock, payload.tool_use_id; for a ToolUseBlock, payload.id
 * (a non-empty string either way). Returns the status it implies ("running" for PreToolUse,
 * ToolUseBlock and PermissionRequest; "completed" for PostToolUse and a ToolResultBlock;
 * "failed" for PostToolUseFailure and a ToolResultBlock whose payload.is_error is true) with
 * *id and *tool_name (payload.tool_name, else a ToolUseBlock's payload.name; NULL when absent)
 * borrowed from e; NULL when e is not part of a tool call (*id and *tool_name then NULL). */
const char *rollup_tool_status(const adw_event_t *e, const char **id, const char **tool_name);

/* The status of a tool call that was `had` (NULL: none yet) after an event implying `next`:
 * "running" never replaces a finished ("completed" or "failed") status; any other replaces. */
const char *rollup_tool_merge(const char *had, const char *next);

/* The status e implies for its step: its own, else "running" for step_start, "completed" for
 * step_complete and "failed" for step_failed; NULL when none. */
const char *rollup_step_status(const adw_event_t *e);

/* Whether s holds any spend: cost > 0 or tokens > 0. */
int rollup_spend_any(const rollup_spend_t *s);

/* The spend a's totals show (the spend rule): &a->otel when it holds any spend, else &a->rep.
 * Borrowed from a. */
const rollup_spend_t *rollup_spend_shown(const rollup_agg_t *a);

/* Adds e (its id assigned) to an aggregate: count, its cost and tokens to the OTel sum (e->otel)
 * or the others' (saturating at the top of their type), the totals shown (the spend rule),
 * first and last timestamps, first and last ids, last received time. */
void rollup_add(rollup_agg_t *a, const adw_event_t *e);

/* The session id e files its run under: its payload's `session_id` when a non-empty string and
 * e has no attr_session (an event waiting to be re-filed files nothing); NULL otherwise.
 * Borrowed from e. */
const char *rollup_session_id(const adw_event_t *e);

/* Re-files e under adw_id (copied): the doc's "adw_id" is replaced and e->adw_id points at the
 * new value. Returns 0, or -ENOMEM (e unchanged). */
int rollup_refile(adw_event_t *e, const char *adw_id);

/* Folds one fresh event of the batch (in id order) into r: its run's aggregate (totals,
 * current step, status, stalled, stop failure); when it has a step, its step's (totals, and the
 * status and duration that system events set); when it has an agent_id, its agent's (totals,
 * agent_type, "completed" on SubagentStop); when it is part of a tool call, the call's; when it
 * files a session (rollup_session_id), the session's (its run and id: the latest wins). */
void rollup_event(rollup_t *r, const adw_event_t *e);

#endif
