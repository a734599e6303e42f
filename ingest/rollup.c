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
    }
    memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->used = 0;
    return 0;
}

void rollup_map_free(rollup_map_t *m)
{
    free(m->slots);
    *m = (rollup_map_t){0};
}

static int same_key(const rollup_agg_t *a, const char *adw_id, const char *step)
{
    return !strcmp(a->adw_id, adw_id) &&
           ((!a->step && !step) || (a->step && step && !strcmp(a->step, step)));
}

rollup_agg_t *rollup_map_get(rollup_map_t *m, const char *adw_id, const char *step)
{
    size_t i = (size_t)hash_key(adw_id, step) & (m->cap - 1);
    for (;;) {
        rollup_agg_t *a = &m->slots[i];
        if (!a->adw_id) {
            a->adw_id = adw_id;
            a->step = step;
            m->used++;
            return a;
        }
        if (same_key(a, adw_id, step))
            return a;
        i = (i + 1) & (m->cap - 1);
    }
}

rollup_agg_t *rollup_map_find(const rollup_map_t *m, const char *adw_id, const char *step)
{
    if (!m->cap)
        return NULL;
    size_t i = (size_t)hash_key(adw_id, step) & (m->cap - 1);
    for (;;) {
        rollup_agg_t *a = &m->slots[i];
        if (!a->adw_id)
            return NULL;
        if (same_key(a, adw_id, step))
            return a;
        i = (i + 1) & (m->cap - 1);
    }
}

const char *rollup_run_status(const adw_event_t *e)
{
    if (e->status)
        return e->status;
    if (!e->is_system || !e->event)
        return NULL;
    if (!strcmp(e->event, "adw_complete"))
        return "completed";
    if (!strcmp(e->event, "adw_failed"))
        return "failed";
    return NULL;
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

void rollup_add(rollup_agg_t *a, const adw_event_t *e)
{
    if (a->n == 0) {
        a->first_ts = a->last_ts = e->ts_us;
        a->first_id = e->id;
    }
    a->n++;
    a->cost = sat_addf(a->cost, e->cost_usd);
    a->tokens = sat_add(a->tokens, e->tokens);
    a->itok = sat_add(a->itok, e->input_tokens);
    a->otok = sat_add(a->otok, e->output_tokens);
    a->crtok = sat_add(a->crtok, e->cache_read_tokens);
    a->cctok = sat_add(a->cctok, e->cache_creation_tokens);
    if (e->ts_us < a->first_ts)
        a->first_ts = e->ts_us;
    if (e->ts_us > a->last_ts)
        a->last_ts = e->ts_us;
    a->last_id = e->id;
    a->updated_us = e->received_us;
}

void rollup_event(rollup_map_t *runs, rollup_map_t *steps, const adw_event_t *e)
{
    rollup_agg_t *run = rollup_map_get(runs, e->adw_id, NULL);
    rollup_add(run, e);
    if (e->step)
        run->current_step = e->step;
    const char *rs = e->is_system ? rollup_run_status(e) : NULL;
    if (rs)
        run->status = rs;
    if (!e->step)
        return;
    rollup_agg_t *st = rollup_map_get(steps, e->adw_id, e->step);
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
