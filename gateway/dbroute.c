#include "dbroute.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "dbjson.h"
#include "log.h"
#include "timefmt.h"

#define DBROUTE_RECHECK_US ((int64_t)DBROUTE_RECHECK_MS * 1000)

/* One look: recovery, the epoch and the reach, in one snapshot. */
static const char LOOK_SQL[] = "SELECT pg_is_in_recovery(),"
                               " (SELECT value FROM adw_meta WHERE key = 'epoch'),"
                               " (SELECT coalesce(max(id), 0) FROM events)";

/* One of these per standby listed. */
typedef struct standby_t {
    char *conninfo;        /* the URI as listed */
    char name[128];        /* #N host:port/dbname, for the log (never the password) */
    PGconn *look_conn;     /* the looking thread's connection */
    dbchoice_standby_t st; /* what the last look showed (guarded by mu) */
    int usable;            /* as last logged (guarded by mu) */
    char why[192];         /* why not usable, as last logged (guarded by mu) */
} standby_t;

struct dbroute_t {
    standby_t sb[DBCHOICE_STANDBYS_MAX];
    size_t n;
    int probe_ms;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* stops the looking thread's wait */
    int stop;            /* guarded by mu */
    pthread_t thread;
    int started;
    int64_t seen, epoch; /* dbroute_seen's (guarded by mu) */
    unsigned turn;       /* rotates reads over the standbys that reach (guarded by mu) */
    metric_t *m_primary, *m_standby, *m_usable, *m_retries;
};

/* Copies libpq's message into out after what, without its trailing newline. */
static void reason(char *out, size_t len, const char *what, const char *msg)
{
    snprintf(out, len, "%s: %s", what, msg && *msg ? msg : "unknown error");
    for (size_t n = strlen(out); n && (out[n - 1] == '\n' || out[n - 1] == ' ');)
        out[--n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

/* Logs a change of standby i's usability, or of the reason it is not read, and sets the gauge.
 * why: the look's reason when the standby is down. Called with mu held. */
static void refresh_locked(dbroute_t *r, size_t i, const char *why)
{
    standby_t *s = &r->sb[i];
    int usable = dbchoice_usable(&s->st, r->epoch);
    if (!usable && s->st.up)
        why = r->epoch ? "its epoch differs from the primary's (a standby of another database)"
                       : "the primary's epoch is not known yet";
    if (usable && !s->usable) {
        log_info("standby %s: read from now on (it shows events up to %" PRId64 ")", s->name,
                 s->st.reach);
        s->why[0] = '\0';
    } else if (!usable && (s->usable || strcmp(s->why, why))) {
        if (!r->epoch)
            log_info("standby %s: not read yet: %s", s->name, why);
        else
            log_warn("standby %s: not read: %s", s->name, why);
        if (why != s->why)
            snprintf(s->why, sizeof s->why, "%s", why);
    }
    s->usable = usable;
    int64_t count = 0;
    for (size_t k = 0; k < r->n; k++)
        count += dbchoice_usable(&r->sb[k].st, r->epoch);
    metric_set(r->m_usable, count);
}

/* Records what a look at standby i that began at began_us showed (why: the reason when it is
 * down), unless a later look was recorded meanwhile. */
static void record(dbroute_t *r, size_t i, const dbchoice_standby_t *st, const char *why)
{
    pthread_mutex_lock(&r->mu);
    if (st->looked_us >= r->sb[i].st.looked_us) {
        r->sb[i].st = *st;
        refresh_locked(r, i, why);
    }
    pthread_mutex_unlock(&r->mu);
}

static void record_down(dbroute_t *r, size_t i, int64_t began_us, const char *why)
{
    const dbchoice_standby_t st = {.up = 0, .looked_us = began_us};
    char line[192];
    snprintf(line, sizeof line, "%.*s", (int)sizeof line - 1, why);
    line[strcspn(line, "\n")] = '\0'; /* libpq's first line says it */
    record(r, i, &st, line);
}

/* Looks at standby i on conn (a connected one) and records what it shows. Returns 0, or -EIO
 * when the query failed (recorded as down). */
static int look(dbroute_t *r, size_t i, PGconn *conn, int64_t began_us)
{
    PGresult *res = db_exec(conn, LOOK_SQL, 0, NULL, DBROUTE_LOOK_TIMEOUT_MS);
    dbchoice_standby_t st = {.looked_us = began_us};
    char why[192] = "";
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (dbjson_undefined_table(res))
            snprintf(why, sizeof why, "no ADW schema there (adw_meta, events)");
        else
            reason(why, sizeof why, "unreachable", PQerrorMessage(conn));
        rc = -EIO;
    } else if (strcmp(PQgetvalue(res, 0, 0), "t")) {
        snprintf(why, sizeof why, "not in recovery (a primary, or a promoted standby)");
    } else {
        st.up = 1;
        st.epoch = PQgetisnull(res, 0, 1) ? 0 : strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        st.reach = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        if (!st.epoch) {
            st.up = 0;
            snprintf(why, sizeof why, "no epoch in its adw_meta");
        }
    }
    PQclear(res);
    record(r, i, &st, why);
    return rc;
}

static void *looker(void *arg)
{
    dbroute_t *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        for (size_t i = 0; i < r->n; i++) {
            standby_t *s = &r->sb[i];
            char err[256];
            int64_t t0 = timefmt_mono_us();
            if (db_ensure(&s->look_conn, s->conninfo, err, sizeof err))
                record_down(r, i, t0, err);
            else
                look(r, i, s->look_conn, t0);
        }
        pthread_mutex_lock(&r->mu);
        if (r->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += r->probe_ms / 1000;
        ts.tv_nsec += (long)(r->probe_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->wake, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Sets s->name from its URI (host, port, database; never the password). Returns 0, or -EINVAL
 * when libpq cannot parse the URI. */
static int standby_name(standby_t *s, size_t i)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(s->conninfo, &perr);
    PQfreemem(perr);
    if (!opts)
        return -EINVAL;
    const char *host = NULL, *port = NULL, *db = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (!strcmp(o->keyword, "host") || (!host && !strcmp(o->keyword, "hostaddr")))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            db = o->val;
    }
    snprintf(s->name, sizeof s->name, "#%zu %s:%s/%s", i + 1, host ? host : "localhost",
             port ? port : "5432", db ? db : "");
    PQconninfoFree(opts);
    return 0;
}

dbroute_t *dbroute_new(const dbroute_options_t *o, char *err, size_t errlen)
{
    dbroute_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->wake, NULL);
    r->probe_ms = o->probe_ms > 0 ? o->probe_ms : DBROUTE_PROBE_MS;
    dbchoice_span_t spans[DBCHOICE_STANDBYS_MAX];
    size_t n = 0;
    if (dbchoice_parse(o->urls, spans, DBCHOICE_STANDBYS_MAX, &n, err, errlen))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        standby_t *s = &r->sb[i];
        s->conninfo = strndup(o->urls + spans[i].off, spans[i].len);
        if (!s->conninfo) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        r->n++;
        if (standby_name(s, i)) {
            snprintf(err, errlen, "ADW_GATEWAY_READ_URL: entry %zu is not a valid libpq URI",
                     i + 1);
            goto fail;
        }
    }
    if (o->metrics) {
        const char *help = "Reads of events and run state, by the server that answered them";
        r->m_primary =
            metrics_counter(o->metrics, "adw_gateway_db_reads_total", "target=\"primary\"", help);
        r->m_standby =
            metrics_counter(o->metrics, "adw_gateway_db_reads_total", "target=\"standby\"", help);
        r->m_usable = metrics_gauge(o->metrics, "adw_gateway_standbys_usable", NULL,
                                    "Standbys read now (answering, in recovery, same epoch)");
        r->m_retries = metrics_counter(o->metrics, "adw_gateway_db_standby_retries_total", NULL,
                                       "Reads that failed on a standby and were read again "
                                       "from the primary");
    }
    if (r->n) {
        if (pthread_create(&r->thread, NULL, looker, r)) {
            snprintf(err, errlen, "cannot start the standby looking thread");
            goto fail;
        }
        r->started = 1;
        log_info("read replicas: %zu standby%s, looked at every %d ms", r->n, r->n == 1 ? "" : "s",
                 r->probe_ms);
    }
    return r;
fail:
    dbroute_destroy(&r);
    return NULL;
}

void dbroute_destroy(dbroute_t **pr)
{
    if (!pr || !*pr)
        return;
    dbroute_t *r = *pr;
    *pr = NULL;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->mu);
    if (r->started)
        pthread_join(r->thread, NULL);
    for (size_t i = 0; i < r->n; i++) {
        if (r->sb[i].look_conn)
            PQfinish(r->sb[i].look_conn);
        free(r->sb[i].conninfo);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->wake);
    free(r);
}

size_t dbroute_standbys(const dbroute_t *r)
{
    return r ? r->n : 0;
}

void dbroute_seen(dbroute_t *r, int64_t last_id, int64_t epoch)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    if (epoch != r->epoch) {
        r->epoch = epoch;
        r->seen = last_id;
        for (size_t i = 0; i < r->n; i++)
            refresh_locked(r, i, r->sb[i].why);
    } else if (last_id > r->seen) {
        r->seen = last_id;
    }
    pthread_mutex_unlock(&r->mu);
}

int64_t dbroute_need(dbroute_t *r)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->mu);
    int64_t seen = r->seen;
    pthread_mutex_unlock(&r->mu);
    return seen;
}

int dbroute_standby(dbroute_t *r, dbroute_conns_t *cs, int64_t need, PGconn **conn)
{
    *conn = NULL;
    if (!r || !r->n)
        return -1;
    int64_t now = timefmt_mono_us();
    dbchoice_standby_t v[DBCHOICE_STANDBYS_MAX];
    int drop[DBCHOICE_STANDBYS_MAX] = {0};
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++) {
        v[i] = r->sb[i].st;
        drop[i] = cs->conn[i] && !dbchoice_usable(&v[i], r->epoch);
    }
    dbchoice_t c = dbchoice_pick(v, r->n, r->epoch, need, r->turn++, now, DBROUTE_RECHECK_US);
    if (c.look) /* one look at a time: the others read from the primary meanwhile */
        r->sb[c.standby].st.looked_us = now;
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < r->n; i++) {
        if (drop[i]) {
            PQfinish(cs->conn[i]);
            cs->conn[i] = NULL;
        }
    }
    if (c.standby < 0)
        return -1;
    size_t i = (size_t)c.standby;
    int fresh = !cs->conn[i] || PQstatus(cs->conn[i]) != CONNECTION_OK;
    char err[256];
    if (fresh && db_ensure(&cs->conn[i], r->sb[i].conninfo, err, sizeof err)) {
        record_down(r, i, now, err);
        return -1;
    }
    if (fresh || c.look) { /* a new connection may lead elsewhere: look before reading */
        if (look(r, i, cs->conn[i], now))
            return -1;
        pthread_mutex_lock(&r->mu);
        int ok = dbchoice_usable(&r->sb[i].st, r->epoch) && r->sb[i].st.reach >= need;
        pthread_mutex_unlock(&r->mu);
        if (!ok)
            return -1;
    }
    *conn = cs->conn[i];
    return (int)i;
}

int dbroute_done(dbroute_t *r, dbroute_conns_t *cs, int standby, int failed)
{
    if (!failed) {
        metric_add(r->m_standby, 1);
        return 0;
    }
    metric_add(r->m_retries, 1);
    size_t i = (size_t)standby;
    char why[256];
    reason(why, sizeof why, "a read failed", PQerrorMessage(cs->conn[i]));
    log_warn("standby %s: %s; reading from the primary", r->sb[i].name, why);
    if (PQstatus(cs->conn[i]) != CONNECTION_OK) {
        PQfinish(cs->conn[i]);
        cs->conn[i] = NULL;
        record_down(r, i, timefmt_mono_us(), "connection lost");
    }
    return 1;
}

void dbroute_primary_read(dbroute_t *r)
{
    if (r)
        metric_add(r->m_primary, 1);
}

void dbroute_conns_close(dbroute_conns_t *cs)
{
    if (!cs)
        return;
    for (size_t i = 0; i < DBCHOICE_STANDBYS_MAX; i++) {
        if (cs->conn[i])
            PQfinish(cs->conn[i]);
        cs->conn[i] = NULL;
    }
}
