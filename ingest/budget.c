#include "budget.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "pgbin.h"

#define BUDGET_SQL_NAME "adw_budget"

/* The budget columns of the batch's runs that change: a budget given (or the default applied),
 * a threshold raised. An id once stored stays (the once-only rule across restarts). */
static const char BUDGET_SQL[] =
    "UPDATE adw_runs AS r SET budget_usd = coalesce(t.budget_usd, r.budget_usd),"
    " budget_warning_id = coalesce(r.budget_warning_id, t.warning_id),"
    " budget_exceeded_id = coalesce(r.budget_exceeded_id, t.exceeded_id)"
    " FROM unnest($1::text[], $2::float8[], $3::bigint[], $4::bigint[])"
    " AS t(adw_id, budget_usd, warning_id, exceeded_id)"
    " WHERE r.adw_id = t.adw_id";

/* The runs the cache lacks, as adw_runs has them. */
static const char LOAD_SQL[] =
    "SELECT adw_id, budget_usd, otel_cost_usd, otel_tokens, rep_cost_usd,"
    " coalesce(budget_warning_id, 0), coalesce(budget_exceeded_id, 0)"
    " FROM adw_runs WHERE adw_id = ANY($1::text[])";

/* One of these per run in the cache or in the batch. */
typedef struct slot_t {
    char *adw_id; /* NULL: a free slot; owned in the cache, borrowed from the events in a batch */
    budget_run_t run;
    int load;  /* batch: not in the cache, read from adw_runs */
    int dirty; /* batch: its stored budget columns change */
} slot_t;

/* An open-addressing map of runs by adw_id (never grows: sized for its most keys). */
typedef struct map_t {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t used;
} map_t;

struct budget_t {
    budget_options_t o;
    map_t cache; /* adw_id owned */
    map_t batch; /* adw_id borrowed */
    int active;  /* some run may have a budget: the batches are followed */
    int on;      /* this batch is followed (budget_begin) */
    buf_t arrays[4];
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Empties m (without freeing keys) and makes room for expect keys. Returns 0 or -ENOMEM. */
static int map_reset(map_t *m, size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2)
        cap *= 2;
    if (cap > m->cap) {
        slot_t *slots = realloc(m->slots, cap * sizeof *slots);
        if (!slots)
            return -ENOMEM;
        m->slots = slots;
        m->cap = cap;
        m->used = 1; /* fresh memory: clear it all */
    }
    if (m->used)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->used = 0;
    return 0;
}

static slot_t *map_find(const map_t *m, const char *adw_id)
{
    if (!m->cap)
        return NULL;
    for (size_t i = (size_t)hash_id(adw_id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        slot_t *s = &m->slots[i];
        if (!s->adw_id)
            return NULL;
        if (!strcmp(s->adw_id, adw_id))
            return s;
    }
}

/* Finds or adds adw_id (the map must have room); *added says which. Never NULL. */
static slot_t *map_get(map_t *m, const char *adw_id, int *added)
{
    for (size_t i = (size_t)hash_id(adw_id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        slot_t *s = &m->slots[i];
        if (!s->adw_id) {
            *added = 1;
            m->used++;
            return s; /* the caller sets adw_id */
        }
        if (!strcmp(s->adw_id, adw_id)) {
            *added = 0;
            return s;
        }
    }
}

/* Empties the cache, freeing its keys. */
static void cache_clear(budget_t *b)
{
    for (size_t i = 0; i < b->cache.cap && b->cache.used; i++)
        free(b->cache.slots[i].adw_id);
    if (b->cache.cap)
        memset(b->cache.slots, 0, b->cache.cap * sizeof *b->cache.slots);
    b->cache.used = 0;
}

budget_t *budget_new(const budget_options_t *o)
{
    budget_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->o = *o;
    b->active = o->default_usd > 0;
    for (int i = 0; i < 4; i++)
        buf_init(&b->arrays[i], 0);
    return b;
}

void budget_destroy(budget_t **bp)
{
    if (!bp || !*bp)
        return;
    budget_t *b = *bp;
    cache_clear(b);
    free(b->cache.slots);
    free(b->batch.slots);
    for (int i = 0; i < 4; i++)
        buf_free(&b->arrays[i]);
    free(b);
    *bp = NULL;
}

int budget_prepare(budget_t *b, PGconn *conn, char *err, size_t errlen)
{
    cache_clear(b);
    b->on = 0;
    PGresult *r =
        pgwait_collect(conn, PQsendPrepare(conn, BUDGET_SQL_NAME, BUDGET_SQL, 4, NULL), &b->o.wait);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (ok) {
        r = pgwait_exec(conn, &b->o.wait,
                        "SELECT EXISTS (SELECT 1 FROM adw_runs WHERE budget_usd IS NOT NULL)::int");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        if (ok)
            b->active = b->o.default_usd > 0 || !strcmp(PQgetvalue(r, 0, 0), "1");
        PQclear(r);
    }
    if (!ok) {
        set_err(err, errlen, "preparing budgets: %s", PQerrorMessage(conn));
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = '\0';
        return -EIO;
    }
    return 0;
}

/* Whether some event of the batch still to be stored is an adw_start giving a budget. */
static int gives_budget(store_req_t **reqs, size_t nreqs)
{
    double usd;
    for (size_t q = 0; q < nreqs; q++)
        for (size_t i = 0; i < reqs[q]->nevents; i++)
            if (!reqs[q]->ids[i] && budget_of_start(&reqs[q]->events[i], &usd))
                return 1;
    return 0;
}

/* Fills the batch's slots to load from the SELECT's rows r; the runs it does not hold are new.
 * A run without a stored budget gets the default (to be stored). */
static void take_rows(budget_t *b, const PGresult *r)
{
    for (int row = 0; row < PQntuples(r); row++) {
        slot_t *s = map_find(&b->batch, PQgetvalue(r, row, 0));
        if (!s || !s->load)
            continue;
        s->run.budget_usd = PQgetisnull(r, row, 1) ? 0 : strtod(PQgetvalue(r, row, 1), NULL);
        s->run.otel_cost = strtod(PQgetvalue(r, row, 2), NULL);
        s->run.otel_tokens = strtoll(PQgetvalue(r, row, 3), NULL, 10);
        s->run.rep_cost = strtod(PQgetvalue(r, row, 4), NULL);
        s->run.warning_id = strtoll(PQgetvalue(r, row, 5), NULL, 10);
        s->run.exceeded_id = strtoll(PQgetvalue(r, row, 6), NULL, 10);
    }
    for (size_t i = 0; i < b->batch.cap; i++) {
        slot_t *s = &b->batch.slots[i];
        if (s->adw_id && s->load && !(s->run.budget_usd > 0) && b->o.default_usd > 0) {
            s->run.budget_usd = b->o.default_usd;
            s->dirty = 1;
        }
    }
}

int budget_begin(budget_t *b, PGconn *conn, store_req_t **reqs, size_t nreqs, size_t total,
                 PGresult **failed)
{
    *failed = NULL;
    b->on = 0;
    if (!b->active && !gives_budget(reqs, nreqs))
        return 0; /* no run has a budget: nothing to follow */
    b->active = 1;
    buf_t *keys = &b->arrays[0];
    if (map_reset(&b->batch, total) || pgbin_array_begin(keys, PGBIN_OID_TEXT))
        return -ENOMEM;
    size_t nkeys = 0;
    int rc = 0;
    for (size_t q = 0; q < nreqs; q++)
        for (size_t i = 0; i < reqs[q]->nevents; i++) {
            if (reqs[q]->ids[i])
                continue; /* stored before */
            const char *adw_id = reqs[q]->events[i].adw_id;
            int added;
            slot_t *s = map_get(&b->batch, adw_id, &added);
            if (!added)
                continue;
            s->adw_id = (char *)adw_id;
            const slot_t *c = map_find(&b->cache, adw_id);
            if (c) {
                s->run = c->run;
                continue;
            }
            s->load = 1;
            rc |= pgbin_text(keys, adw_id, NULL);
            nkeys++;
        }
    if (rc)
        return -ENOMEM;
    b->on = 1;
    if (!nkeys)
        return 0;
    pgbin_array_end(keys, (uint32_t)nkeys, 0);
    if (b->cache.used + nkeys > BUDGET_CACHE_MAX)
        cache_clear(b); /* bounded: filled again from adw_runs as runs come back */
    const char *values[1] = {keys->data};
    int lengths[1] = {(int)keys->len}, formats[1] = {1};
    PGresult *r = pgwait_collect(
        conn, PQsendQueryParams(conn, LOAD_SQL, 1, NULL, values, lengths, formats, 0), &b->o.wait);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        b->on = 0;
        *failed = r;
        return -EIO;
    }
    take_rows(b, r);
    PQclear(r);
    return 0;
}

/* Appends ev (moved: the request owns it now) to r->raised after event i. Returns 0 or
 * -ENOMEM (ev then cleared). */
static int raised_push(store_req_t *r, size_t i, adw_event_t *ev)
{
    if (r->nraised == r->raised_cap) {
        size_t cap = r->raised_cap ? r->raised_cap * 2 : 4;
        store_raised_t *n = realloc(r->raised, cap * sizeof *n);
        if (!n) {
            event_clear(ev);
            return -ENOMEM;
        }
        r->raised = n;
        r->raised_cap = cap;
    }
    r->raised[r->nraised++] = (store_raised_t){.ev = *ev, .after = i};
    return 0;
}

/* What a failed build means for the batch: out of memory fails it; an event that does not
 * validate (cannot happen: its parts were validated) is logged and left out. */
static int build_failed(int rc, const char *what, const char *adw_id, const char *err)
{
    if (rc == -ENOMEM)
        return -ENOMEM;
    log_warn("budget: no %s for run %s: %s", what, adw_id, err);
    return 0;
}

int budget_fold(budget_t *b, store_req_t *r, size_t i, int64_t *next)
{
    if (!b->on)
        return 0;
    const adw_event_t *e = &r->events[i];
    slot_t *s = map_find(&b->batch, e->adw_id);
    if (!s)
        return 0; /* cannot happen: budget_begin added every run of the batch */
    double had = s->run.budget_usd;
    budget_add(&s->run, e);
    if (s->run.budget_usd != had)
        s->dirty = 1;
    unsigned crossed = budget_crossed(&s->run);
    int n = 0;
    char err[EVENT_ERR_LEN];
    static const unsigned kinds[2] = {BUDGET_WARNING, BUDGET_EXCEEDED};
    for (int k = 0; k < 2; k++) {
        if (!(crossed & kinds[k]))
            continue;
        adw_event_t ev;
        int rc = budget_event_build(kinds[k], e->adw_id, e->step, &s->run, e->id, e->received_us,
                                    &ev, err, sizeof err);
        if (rc) {
            if (build_failed(rc, "budget event", e->adw_id, err))
                return -ENOMEM;
            continue;
        }
        ev.id = ++*next;
        if (kinds[k] == BUDGET_WARNING)
            s->run.warning_id = ev.id;
        else
            s->run.exceeded_id = ev.id;
        s->dirty = 1;
        if (raised_push(r, i, &ev))
            return -ENOMEM;
        n++;
    }
    if (b->o.enforce && r->hook && budget_is_pre_tool_use(e) && budget_over(&s->run)) {
        adw_event_t ev;
        int rc = budget_denied_build(e, &s->run, e->received_us, &ev, err, sizeof err);
        if (rc) {
            if (build_failed(rc, "budget_denied", e->adw_id, err))
                return -ENOMEM;
            return n;
        }
        ev.id = ++*next;
        if (raised_push(r, i, &ev))
            return -ENOMEM;
        n++;
    }
    return n;
}

int budget_send(budget_t *b, PGconn *conn)
{
    if (!b->on)
        return 0;
    static const uint32_t oids[4] = {PGBIN_OID_TEXT, PGBIN_OID_FLOAT8, PGBIN_OID_INT8,
                                     PGBIN_OID_INT8};
    int rc = 0, nulls[4] = {0};
    uint32_t n = 0;
    for (int c = 0; c < 4; c++)
        rc |= pgbin_array_begin(&b->arrays[c], oids[c]);
    for (size_t i = 0; i < b->batch.cap && !rc; i++) {
        const slot_t *s = &b->batch.slots[i];
        if (!s->adw_id || !s->dirty)
            continue;
        rc |= pgbin_text(&b->arrays[0], s->adw_id, NULL);
        if (s->run.budget_usd > 0) {
            rc |= pgbin_float8(&b->arrays[1], s->run.budget_usd);
        } else {
            rc |= pgbin_null(&b->arrays[1]);
            nulls[1] = 1;
        }
        int64_t ids[2] = {s->run.warning_id, s->run.exceeded_id};
        for (int k = 0; k < 2; k++) {
            if (ids[k]) {
                rc |= pgbin_int8(&b->arrays[2 + k], ids[k]);
            } else {
                rc |= pgbin_null(&b->arrays[2 + k]);
                nulls[2 + k] = 1;
            }
        }
        n++;
    }
    if (rc)
        return -1;
    if (!n)
        return 0;
    const char *values[4];
    int lengths[4], formats[4];
    for (int c = 0; c < 4; c++) {
        pgbin_array_end(&b->arrays[c], n, nulls[c]);
        values[c] = b->arrays[c].data;
        lengths[c] = (int)b->arrays[c].len;
        formats[c] = 1;
    }
    return PQsendQueryPrepared(conn, BUDGET_SQL_NAME, 4, values, lengths, formats, 0) == 1 ? 1 : -1;
}

void budget_commit(budget_t *b)
{
    if (!b->on)
        return;
    b->on = 0;
    if (!b->cache.cap && map_reset(&b->cache, BUDGET_CACHE_MAX))
        return; /* no memory for a cache: every batch reads its runs */
    for (size_t i = 0; i < b->batch.cap; i++) {
        const slot_t *s = &b->batch.slots[i];
        if (!s->adw_id)
            continue;
        slot_t *c = map_find(&b->cache, s->adw_id);
        if (!c) {
            if (b->cache.used >= BUDGET_CACHE_MAX)
                cache_clear(b);
            char *key = strdup(s->adw_id);
            if (!key)
                continue;
            int added;
            c = map_get(&b->cache, key, &added);
            c->adw_id = key;
        }
        c->run = s->run;
    }
}

void budget_abort(budget_t *b)
{
    b->on = 0;
    cache_clear(b);
}
