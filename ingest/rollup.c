#include "rollup.h"

#include <errno.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_key(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    if (b)
        for (; *b; b++)
            h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h;
}

int rollup_map_reset(rollup_map_t *m, size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2)
        cap *= 2;
    if (cap > m->cap) {
        rollup_agg_t *slots = realloc(m->slots, cap * sizeof *slots);
        if (!slots)
            return -ENOMEM;
        m->slots = slots;
        m->cap = cap;
        m->used = 1; /* fresh memory: clear it all */
    }
    if (m->used) /* a map nothing was added to since its last reset is clear already */
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->used = 0;
    return 0;
}

void rollup_map_free(rollup_map_t *m)
{
    free(m->slots);
    *m = (rollup_map_t){0};
}

static int same_key(const rollup_agg_t *a, const char *adw_id, const char *key)
{
    return !strcmp(a->adw_id, adw_id) &&
           ((!a->key && !key) || (a->key && key && !strcmp(a->key, key)));
}

rollup_agg_t *rollup_map_get(rollup_map_t *m, const char *adw_id, const char *key)
{
    size_t i = (size_t)hash_key(adw_id, key) & (m->cap - 1);
    for (;;) {
        rollup_agg_t *a = &m->slots[i];
        if (!a->adw_id) {
            a->adw_id = adw_id;
            a->key = key;
            m->used++;
            return a;
        }
        if (same_key(a, adw_id, key))
            return a;
        i = (i + 1) & (m->cap - 1);
    }
}

rollup_agg_t *rollup_map_find(const rollup_map_t *m, const char *adw_id, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = (size_t)hash_key(adw_id, key) & (m->cap - 1);
    for (;;) {
        rollup_agg_t *a = &m->slots[i];
        if (!a->adw_id)
            return NULL;
        if (same_key(a, adw_id, key))
            return a;
        i = (i + 1) & (m->cap - 1);
    }
}

int rollup_reset(rollup_t *r, size_t expect)
{
    if (rollup_map_reset(&r->runs, expect) || rollup_map_reset(&r->steps, expect) ||
        rollup_map_reset(&r->agents, expect) || rollup_map_reset(&r->tools, expect) ||
        rollup_map_reset(&r->sessions, expect))
        return -ENOMEM;
    return 0;
}

void rollup_free(rollup_t *r)
{
    rollup_map_free(&r->runs);
    rollup_map_free(&r->steps);
    rollup_map_free(&r->agents);
    rollup_map_free(&r->tools);
    rollup_map_free(&r->sessions);
}

const char *rollup_run_status(const adw_event_t *e)
{
    if (!e->is_system)
        return NULL;
    if (e->event && !strcmp(e->event, "adw_complete"))
        return "completed";
    if (e->event && !strcmp(e->event, "adw_failed"))
        return "failed";
    return e->step ? NULL : e->status;
}

int rollup_run_stalled(const adw_event_t *e)
{
    return e->is_system && e->event && !strcmp(e->event, "run_stalled");
}

int rollup_run_keeps_stalled(const adw_event_t *e)
{
    return e->is_system && e->event &&
           (!strncmp(e->event, "approval_", 9) || !strncmp(e->event, "budget_", 7));
}

/* Whether e is an adw_event whose event_type is name. */
static int is_adw_event(const adw_event_t *e, const char *name)
{
    return !e->is_system && e->event_type && !strcmp(e->event_type, name);
}

/* payload.key of e when it is a non-empty string, else NULL. */
static const char *payload_string(const adw_event_t *e, const char *key)
{
    const json_t *v = json_object_get(json_object_get(e->doc, "payload"), key);
    return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

const char *rollup_stop_failure(const adw_event_t *e)
{
    if (!is_adw_event(e, "StopFailure"))
        return NULL;
    const char *why = payload_string(e, "error");
    if (!why)
        why = e->summary && *e->summary ? e->summary : "StopFailure";
    return why;
}

const char *rollup_tool_status(const adw_event_t *e, const char **id, const char **tool_name)
{
    static const struct {
        const char *event_type, *id_key, *status;
    } kinds[] = {
        {"PreToolUse", "tool_use_id", "running"},
        {"PermissionRequest", "tool_use_id", "running"},
        {"ToolUseBlock", "id", "running"},
        {"PostToolUse", "tool_use_id", "completed"},
        {"PostToolUseFailure", "tool_use_id", "failed"},
        {"ToolResultBlock", "tool_use_id", "completed"},
    };
    *id = *tool_name = NULL;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!is_adw_event(e, kinds[k].event_type))
            continue;
        *id = payload_string(e, kinds[k].id_key);
        if (!*id)
            return NULL;
        *tool_name = payload_string(e, "tool_name");
        if (!*tool_name && !strcmp(kinds[k].id_key, "id"))
            *tool_name = payload_string(e, "name");
        if (!strcmp(kinds[k].event_type, "ToolResultBlock") &&
            json_is_true(json_object_get(json_object_get(e->doc, "payload"), "is_error")))
            return "failed";
        return kinds[k].status;
    }
    return NULL;
}

const char *rollup_tool_merge(const char *had, const char *next)
{
    if (had && !strcmp(next, "running") && strcmp(had, "running"))
        return had;
    return next;
}

const char *rollup_step_status(const adw_event_t *e)
{
    if (e->status)
        return e->status;
    if (!e->event)
        return NULL;
    if (!strcmp(e->event, "step_start"))
        return "running";
    if (!strcmp(e->event, "step_complete"))
        return "completed";
    if (!strcmp(e->event, "step_failed"))
        return "failed";
    return NULL;
}

/* Totals saturate at the top of their type rather than overflow (the batch's SQL does the same
 * when adding a batch to the stored row). Both operands are non-negative. */
static int64_t sat_add(int64_t a, int64_t b)
{
    return b > INT64_MAX - a ? INT64_MAX : a + b;
}

static double sat_addf(double a, double b)
{
    return b > DBL_MAX - a ? DBL_MAX : a + b;
}

int rollup_spend_any(const rollup_spend_t *s)
{
    return s->cost > 0 || s->tokens > 0;
}

const rollup_spend_t *rollup_spend_shown(const rollup_agg_t *a)
{
    return rollup_spend_any(&a->otel) ? &a->otel : &a->rep;
}

void rollup_add(rollup_agg_t *a, const adw_event_t *e)
{
    if (a->n == 0) {
        a->first_ts = a->last_ts = e->ts_us;
        a->first_id = e->id;
    }
    a->n++;
    rollup_spend_t *s = e->otel ? &a->otel : &a->rep;
    s->cost = sat_addf(s->cost, e->cost_usd);
    s->tokens = sat_add(s->tokens, e->tokens);
    s->itok = sat_add(s->itok, e->input_tokens);
    s->otok = sat_add(s->otok, e->output_tokens);
    s->crtok = sat_add(s->crtok, e->cache_read_tokens);
    s->cctok = sat_add(s->cctok, e->cache_creation_tokens);
    const rollup_spend_t *shown = rollup_spend_shown(a);
    a->cost = shown->cost;
    a->tokens = shown->tokens;
    a->itok = shown->itok;
    a->otok = shown->otok;
    a->crtok = shown->crtok;
    a->cctok = shown->cctok;
    if (e->ts_us < a->first_ts)
        a->first_ts = e->ts_us;
    if (e->ts_us > a->last_ts)
        a->last_ts = e->ts_us;
    a->last_id = e->id;
    a->updated_us = e->received_us;
}

const char *rollup_session_id(const adw_event_t *e)
{
    return e->attr_session ? NULL : payload_string(e, "session_id");
}

int rollup_refile(adw_event_t *e, const char *adw_id)
{
    json_t *v = json_string(adw_id);
    if (!v || json_object_set_new(e->doc, "adw_id", v)) /* set_new releases v on failure */
        return -ENOMEM;
    e->adw_id = json_string_value(json_object_get(e->doc, "adw_id"));
    return 0;
}

/* Folds e into its agent's aggregate (e has an agent_id). */
static void fold_agent(rollup_map_t *agents, const adw_event_t *e)
{
    rollup_agg_t *ag = rollup_map_get(agents, e->adw_id, e->agent_id);
    rollup_add(ag, e);
    if (e->agent_type)
        ag->agent_type = e->agent_type;
    if (e->event_type && !strcmp(e->event_type, "SubagentStop"))
        ag->status = "completed";
}

/* Folds e into its tool call's aggregate, when it belongs to one. */
static void fold_tool(rollup_map_t *tools, const adw_event_t *e)
{
    const char *id, *name;
    const char *status = rollup_tool_status(e, &id, &name);
    if (!status)
        return;
    rollup_agg_t *tc = rollup_map_get(tools, e->adw_id, id);
    rollup_add(tc, e);
    tc->status = rollup_tool_merge(tc->status, status);
    if (name)
        tc->tool_name = name;
    if (e->agent_id)
        tc->agent_id = e->agent_id;
}

void rollup_event(rollup_t *r, const adw_event_t *e)
{
    rollup_agg_t *run = rollup_map_get(&r->runs, e->adw_id, NULL);
    rollup_add(run, e);
    if (e->step)
        run->current_step = e->step;
    const char *rs = rollup_run_status(e);
    if (rs)
        run->status = rs;
    if (!rollup_run_keeps_stalled(e)) { /* the run's last such event in the batch decides */
        run->stalled = rollup_run_stalled(e);
        run->stalled_set = 1;
    }
    const char *why = rollup_stop_failure(e);
    if (why) {
        run->stop_failure = why;
        run->stop_failure_id = e->id;
    }
    if (e->agent_id)
        fold_agent(&r->agents, e);
    fold_tool(&r->tools, e);
    const char *session = rollup_session_id(e);
    if (session) {
        rollup_agg_t *se = rollup_map_get(&r->sessions, session, NULL);
        se->session_run = e->adw_id;
        se->last_id = e->id;
    }
    if (!e->step)
        return;
    rollup_agg_t *st = rollup_map_get(&r->steps, e->adw_id, e->step);
    rollup_add(st, e);
    const char *ss = e->is_system ? rollup_step_status(e) : NULL;
    if (ss)
        st->status = ss;
    if (e->is_system && (e->has & EVENT_HAS_DURATION) && e->event &&
        !strncmp(e->event, "step_", 5) && strcmp(e->event, "step_start")) {
        st->duration_ms = e->duration_ms;
        st->has_duration = 1;
    }
}
