#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "log.h"
#include "migrate.h"
#include "partition.h"
#include "partplan.h"
#include "pgwait.h"
#include "stall.h"
#include "timefmt.h"

#define STORE_LOCK_KEY "7161046289740080" /* pg advisory lock: one writer */
#define STORE_PING_MS 1000

struct store_t {
    store_options_t opts;
    char conninfo[1024];
    pthread_t thread;
    int thread_started;
    int evfd;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    store_req_t *q_head, *q_tail; /* submitted, not taken */
    store_req_t *d_head, *d_tail; /* completed, not collected */
    int stopping;
    char last_error[256];

    _Atomic int state;
    _Atomic int64_t last_id;
    _Atomic int64_t epoch;
    _Atomic int64_t pending;
    _Atomic int stopped;

    /* Writer thread only. */
    PGconn *conn;
    pgwait_t wait; /* the bound on each answer from PostgreSQL */
    int64_t last_ping_ms;
    batch_t *batch;
    partition_t *parts;
    int64_t last_retain_ms; /* when the retention last looked (0: at once) */

    metric_t *m_state, *m_reconnects, *m_lookups;
    metric_t *m_unknown_stored, *m_unknown_not_stored; /* commits whose answer was lost */
};

static int64_t mono_ms(void)
{
    return timefmt_mono_us() / 1000;
}

store_req_t *store_req_new(size_t n)
{
    store_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->events = calloc(n ? n : 1, sizeof *r->events);
    r->ids = calloc(n ? n : 1, sizeof *r->ids);
    r->fresh = calloc(n ? n : 1, 1);
    r->frame_end = calloc(n ? n : 1, sizeof *r->frame_end);
    buf_init(&r->frames, 0);
    r->nevents = n;
    if (!r->events || !r->ids || !r->fresh || !r->frame_end) {
        store_req_destroy(&r);
        return NULL;
    }
    return r;
}

void store_req_destroy(store_req_t **rp)
{
    if (!rp || !*rp)
        return;
    store_req_t *r = *rp;
    if (r->events)
        for (size_t i = 0; i < r->nevents; i++)
            event_clear(&r->events[i]);
    free(r->events);
    free(r->ids);
    free(r->fresh);
    free(r->frame_end);
    buf_free(&r->frames);
    free(r);
    *rp = NULL;
}

const char *store_state_name(store_state_t st)
{
    switch (st) {
    case STORE_CONNECTING:
        return "connecting";
    case STORE_STANDBY:
        return "standby";
    case STORE_READY:
        return "ready";
    case STORE_FATAL:
        return "fatal";
    }
    return "unknown";
}

static void set_error(store_t *s, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    /* Cut to fit, deliberately (the precision keeps -Wformat-truncation quiet in Release). */
    snprintf(s->last_error, sizeof s->last_error, "%.*s", (int)sizeof s->last_error - 1, msg);
    pthread_mutex_unlock(&s->mu);
}

void store_last_error(store_t *s, char *out, size_t outlen)
{
    pthread_mutex_lock(&s->mu);
    snprintf(out, outlen, "%s", s->last_error);
    pthread_mutex_unlock(&s->mu);
}

static void set_state(store_t *s, store_state_t st)
{
    int old = atomic_exchange(&s->state, (int)st);
    if (old != (int)st) {
        log_info("store: %s -> %s", store_state_name((store_state_t)old), store_state_name(st));
        metric_set(s->m_state, st);
    }
}

/* ---- completion ---- */

/* Hands n requests back to the loop thread at once: one lock, one wake-up. */
static void complete_all(store_t *s, store_req_t **reqs, size_t n)
{
    int64_t events = 0;
    for (size_t i = 0; i < n; i++) {
        events += (int64_t)reqs[i]->nevents;
        reqs[i]->next = i + 1 < n ? reqs[i + 1] : NULL;
    }
    atomic_fetch_sub(&s->pending, events);
    pthread_mutex_lock(&s->mu);
    if (s->d_tail)
        s->d_tail->next = reqs[0];
    else
        s->d_head = reqs[0];
    s->d_tail = reqs[n - 1];
    pthread_mutex_unlock(&s->mu);
    uint64_t one = 1;
    /* EAGAIN means the counter is full: the loop is woken already. */
    while (write(s->evfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void complete(store_t *s, store_req_t *r)
{
    complete_all(s, &r, 1);
}

static void complete_unavailable(store_t *s, store_req_t *r, const char *why)
{
    r->status = STORE_STATUS_UNAVAILABLE;
    snprintf(r->err, sizeof r->err, "%s", why);
    complete(s, r);
}

/* Completes every queued request as unavailable (called while not READY). */
static void drain_queue(store_t *s, const char *why)
{
    pthread_mutex_lock(&s->mu);
    store_req_t *r = s->q_head;
    s->q_head = s->q_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (r) {
        store_req_t *next = r->next;
        complete_unavailable(s, r, why);
        r = next;
    }
}

/* ---- connection ---- */

static void disconnect(store_t *s)
{
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
}

/* PQexec and PQexecParams with every wait bounded (pgwait.h: each answer may take
 * opts.reply_timeout_ms; past that the connection counts as lost). */
static PGresult *exec0(store_t *s, const char *sql)
{
    return pgwait_exec(s->conn, &s->wait, sql);
}

static PGresult *exec1(store_t *s, const char *sql, int nparams, const char *const *params)
{
    return pgwait_exec_params(s->conn, &s->wait, sql, nparams, params);
}

/* For migrate: a statement with its waits bounded like every other. */
static PGresult *migrate_exec(void *ctx, const char *sql, int nparams, const char *const *params)
{
    store_t *s = ctx;
    return nparams ? exec1(s, sql, nparams, params) : exec0(s, sql);
}

/* Connects, takes the writer lock, migrates, reads epoch and last id.
 * Returns 0 when READY, 1 when standing by (connected, lock held elsewhere), -1 on error. */
static int connect_step(store_t *s)
{
    char err[512];
    if (!s->conn) {
        char user_timeout[24];
        snprintf(user_timeout, sizeof user_timeout, "%" PRId64, s->opts.reply_timeout_ms);
        const char *keys[] = {
            "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
            "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
        const char *vals[] = {"5", "adw-ingest", "5", "2", "3", user_timeout, s->conninfo, NULL};
        s->conn = PQconnectdbParams(keys, vals, 1);
        if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
            snprintf(err, sizeof err, "cannot connect to PostgreSQL: %s",
                     s->conn ? PQerrorMessage(s->conn) : "out of memory");
            char *nl = strchr(err, '\n');
            if (nl)
                *nl = '\0';
            set_error(s, err);
            disconnect(s);
            return -1;
        }
        metric_add(s->m_reconnects, 1);
        PQclear(exec0(s, "SET synchronous_commit = on"));
    }
    const char *params[1] = {STORE_LOCK_KEY};
    PGresult *r = exec1(s, "SELECT pg_try_advisory_lock($1::bigint)", 1, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, sizeof err, "advisory lock: %s", PQerrorMessage(s->conn));
        PQclear(r);
        set_error(s, err);
        disconnect(s);
        return -1;
    }
    int locked = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (!locked) {
        set_state(s, STORE_STANDBY);
        return 1;
    }
    migrate_db_t db = {.conn = s->conn, .exec = migrate_exec, .ctx = s};
    int rc = migrate_apply(&db, err, sizeof err);
    if (rc == -EPROTO) {
        set_error(s, err);
        log_error("store: %s", err);
        set_state(s, STORE_FATAL);
        disconnect(s);
        return -1;
    }
    int64_t epoch = 0;
    if (rc || migrate_epoch(&db, &epoch, err, sizeof err)) {
        set_error(s, err);
        disconnect(s);
        return -1;
    }
    r = exec1(s, "SELECT coalesce(max(id), 0) FROM events", 0, NULL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, sizeof err, "reading the last id: %s", PQerrorMessage(s->conn));
        PQclear(r);
        set_error(s, err);
        disconnect(s);
        return -1;
    }
    atomic_store(&s->last_id, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
    if (partition_sync(s->parts, s->conn, atomic_load(&s->last_id), err, sizeof err)) {
        set_error(s, err);
        log_warn("store: %s", err);
        disconnect(s);
        return -1;
    }
    s->last_retain_ms = 0;
    if (batch_prepare(s->batch, s->conn, err, sizeof err)) {
        set_error(s, err);
        disconnect(s);
        return -1;
    }
    atomic_store(&s->epoch, epoch);
    s->last_ping_ms = mono_ms();
    log_info("store: writer lock held; epoch %" PRId64 ", last id %" PRId64, epoch,
             atomic_load(&s->last_id));
    set_state(s, STORE_READY);
    return 0;
}

/* After a COMMIT whose outcome was lost: reconnects and reads back the batch's first and last
 * fresh rows. Returns 1 when committed, 0 when not, -1 when it cannot tell (stopping). */
static int resolve_unknown(store_t *s, store_req_t **reqs, size_t nreqs)
{
    int64_t first_id = 0, last_id = 0, first_us = 0, last_us = 0;
    for (size_t q = 0; q < nreqs; q++)
        for (size_t i = 0; i < reqs[q]->nevents; i++)
            if (reqs[q]->fresh[i]) {
                if (!first_id) {
                    first_id = reqs[q]->ids[i];
                    first_us = reqs[q]->events[i].received_us;
                }
                last_id = reqs[q]->ids[i];
                last_us = reqs[q]->events[i].received_us;
            }
    int64_t backoff = 100;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        disconnect(s);
        const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
        const char *vals[] = {"5", "adw-ingest", s->conninfo, NULL};
        s->conn = PQconnectdbParams(keys, vals, 1);
        if (s->conn && PQstatus(s->conn) == CONNECTION_OK) {
            char a[24], b[24];
            snprintf(a, sizeof a, "%" PRId64, first_id);
            snprintf(b, sizeof b, "%" PRId64, last_id);
            const char *params[2] = {a, b};
            PGresult *r = exec1(s,
                                "SELECT id, (extract(epoch from received_at) * 1000000)::bigint"
                                " FROM events WHERE id = $1::bigint OR id = $2::bigint",
                                2, params);
            if (PQresultStatus(r) == PGRES_TUPLES_OK) {
                int found = 0;
                for (int row = 0; row < PQntuples(r); row++) {
                    int64_t id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
                    int64_t us = strtoll(PQgetvalue(r, row, 1), NULL, 10);
                    if ((id == first_id && us == first_us) || (id == last_id && us == last_us))
                        found++;
                }
                PQclear(r);
                disconnect(s); /* the writer lock is taken afresh by connect_step */
                int committed = found == (first_id == last_id ? 1 : 2);
                log_warn("store: a commit's outcome was lost; ids %" PRId64 "..%" PRId64 " are %s",
                         first_id, last_id, committed ? "stored" : "not stored");
                return committed;
            }
            PQclear(r);
        }
        if (stopping)
            return -1;
        /* Requests queued meanwhile are not held up by this batch: they are refused now. */
        drain_queue(s, "database unavailable, retry later");
        struct timespec ts = {.tv_sec = backoff / 1000, .tv_nsec = (backoff % 1000) * 1000000};
        nanosleep(&ts, NULL);
        backoff = backoff < 2000 ? backoff * 2 : 2000;
    }
}

static void finish_ok(store_t *s, store_req_t **reqs, size_t nreqs)
{
    for (size_t q = 0; q < nreqs; q++)
        reqs[q]->status = STORE_STATUS_OK;
    complete_all(s, reqs, nreqs);
}

/* Commits reqs, isolating a request PostgreSQL refuses so the others still commit. */
// NOLINTNEXTLINE(misc-no-recursion): one level at most, the retry is one request at a time
static void process(store_t *s, store_req_t **reqs, size_t nreqs)
{
    char err[256];
    int64_t last_id = atomic_load(&s->last_id);
    /* Each partition's unique index sees only its own event_ids: look them up first. */
    batch_result_t res = batch_commit(s->batch, s->conn, reqs, nreqs, 1, &last_id, err, sizeof err);
    if (res == BATCH_DUPLICATE) {
        metric_add(s->m_lookups, 1);
        res = batch_commit(s->batch, s->conn, reqs, nreqs, 1, &last_id, err, sizeof err);
    }
    switch (res) {
    case BATCH_OK:
        atomic_store(&s->last_id, last_id);
        finish_ok(s, reqs, nreqs);
        return;
    case BATCH_DUPLICATE: /* cannot happen after the lookup; treated as a refusal */
    case BATCH_DATA_ERROR:
        if (nreqs > 1) {
            for (size_t q = 0; q < nreqs; q++)
                process(s, &reqs[q], 1);
            return;
        }
        log_warn("store: PostgreSQL refused a request: %s", err);
        reqs[0]->status = STORE_STATUS_REJECTED;
        snprintf(reqs[0]->err, sizeof reqs[0]->err, "refused by the database: %.130s", err);
        complete(s, reqs[0]);
        return;
    case BATCH_UNKNOWN: {
        set_state(s, STORE_CONNECTING);
        int committed = resolve_unknown(s, reqs, nreqs);
        if (committed >= 0)
            metric_add(committed ? s->m_unknown_stored : s->m_unknown_not_stored, 1);
        if (committed == 1) {
            int64_t last = 0;
            for (size_t q = 0; q < nreqs; q++)
                for (size_t i = 0; i < reqs[q]->nevents; i++)
                    if (reqs[q]->fresh[i] && reqs[q]->ids[i] > last)
                        last = reqs[q]->ids[i];
            atomic_store(&s->last_id, last);
            finish_ok(s, reqs, nreqs);
            return;
        }
        for (size_t q = 0; q < nreqs; q++)
            complete_unavailable(s, reqs[q], "database unavailable, retry later");
        return;
    }
    case BATCH_SEND_FAILED:
        /* Cannot tell what was sent: start afresh (a new connection takes the lock again). */
        disconnect(s);
        /* fall through */
    case BATCH_NOT_COMMITTED:
        log_warn("store: transaction failed: %s", err);
        set_error(s, err);
        for (size_t q = 0; q < nreqs; q++)
            complete_unavailable(s, reqs[q], "database unavailable, retry later");
        if (PQstatus(s->conn) != CONNECTION_OK) {
            disconnect(s);
            set_state(s, STORE_CONNECTING);
        }
        return;
    }
}

/* Gives r room for n events (r has none yet). Returns 0 or -ENOMEM (r unchanged). */
static int req_reserve(store_req_t *r, size_t n)
{
    adw_event_t *events = calloc(n, sizeof *events);
    int64_t *ids = calloc(n, sizeof *ids);
    unsigned char *fresh = calloc(n, 1);
    size_t *frame_end = calloc(n, sizeof *frame_end);
    if (!events || !ids || !fresh || !frame_end) {
        free(events);
        free(ids);
        free(fresh);
        free(frame_end);
        return -ENOMEM;
    }
    free(r->events);
    free(r->ids);
    free(r->fresh);
    free(r->frame_end);
    r->events = events;
    r->ids = ids;
    r->fresh = fresh;
    r->frame_end = frame_end;
    return 0;
}

/* The runs a stall scan raises run_stalled for: running, not stalled, idle since before $1
 * (microseconds since the epoch, ingest's clock, as received_at), the longest idle first.
 * The partial index adw_runs_running_idle serves it. */
static const char STALL_SCAN_SQL[] = "SELECT adw_id, current_step, last_id,"
                                     " (extract(epoch from updated_at) * 1000000)::bigint"
                                     " FROM adw_runs"
                                     " WHERE status = 'running' AND NOT stalled"
                                     " AND updated_at < to_timestamp($1::bigint / 1000000.0)"
                                     " ORDER BY updated_at LIMIT $2::int";

/* Runs the stall scan r (store_submit) and commits what it raises. */
static void scan_stalls(store_t *s, store_req_t *r)
{
    int64_t now_us = timefmt_now_us();
    char cutoff[24], limit[24];
    snprintf(cutoff, sizeof cutoff, "%" PRId64, now_us - r->stall_s * 1000000);
    int64_t most =
        s->opts.max_batch_events < STALL_SCAN_MAX ? s->opts.max_batch_events : STALL_SCAN_MAX;
    snprintf(limit, sizeof limit, "%" PRId64, most);
    const char *params[2] = {cutoff, limit};
    PGresult *res = exec1(s, STALL_SCAN_SQL, 2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char err[256];
        snprintf(err, sizeof err, "stall scan: %s", PQerrorMessage(s->conn));
        PQclear(res);
        log_warn("store: %s", err);
        set_error(s, err);
        complete_unavailable(s, r, "database unavailable, retry later");
        if (PQstatus(s->conn) != CONNECTION_OK) {
            disconnect(s);
            set_state(s, STORE_CONNECTING);
        }
        return;
    }
    int rows = PQntuples(res);
    if (rows == 0 || req_reserve(r, (size_t)rows)) {
        PQclear(res);
        finish_ok(s, &r, 1); /* nothing to raise (or no memory now: the next scan tries) */
        return;
    }
    size_t n = 0;
    for (int row = 0; row < rows; row++) {
        const char *adw_id = PQgetvalue(res, row, 0);
        const char *step = PQgetisnull(res, row, 1) ? NULL : PQgetvalue(res, row, 1);
        int64_t last_id = strtoll(PQgetvalue(res, row, 2), NULL, 10);
        int64_t idle_s = stall_idle_s(now_us, strtoll(PQgetvalue(res, row, 3), NULL, 10));
        char err[EVENT_ERR_LEN];
        if (stall_event_build(adw_id, step, idle_s, last_id, now_us, &r->events[n], err,
                              sizeof err)) {
            log_warn("store: no run_stalled for run %s: %s", adw_id, err);
            continue;
        }
        n++;
    }
    PQclear(res);
    r->nevents = n;
    atomic_fetch_add(&s->pending, (int64_t)n); /* complete_all takes them off again */
    if (n == 0) {
        finish_ok(s, &r, 1);
        return;
    }
    process(s, &r, 1);
}

/* A database failure between batches: logged and kept as the last error; a lost connection
 * makes the writer connect again. */
static void upkeep_failed(store_t *s, const char *err)
{
    log_warn("store: %s", err);
    set_error(s, err);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        disconnect(s);
        set_state(s, STORE_CONNECTING);
    }
}

/* Creates the partitions the next batch needs (and one beyond) before it goes; nothing is sent
 * when they exist. Returns 0, or -EIO when they could not be made (the batch would fail). */
static int keep_partitions(store_t *s)
{
    char err[256];
    if (partition_ensure(s->parts, s->conn, atomic_load(&s->last_id), err, sizeof err) == 0)
        return 0;
    upkeep_failed(s, err);
    return -EIO;
}

static int retention_due(const store_t *s)
{
    return s->opts.retention_s > 0 &&
           (!s->last_retain_ms || mono_ms() - s->last_retain_ms >= s->opts.retain_every_ms);
}

/* Applies the retention (partition_retain). */
static void retain(store_t *s)
{
    char err[256];
    s->last_retain_ms = mono_ms();
    if (partition_retain(s->parts, s->conn, atomic_load(&s->last_id), timefmt_now_us(), err,
                         sizeof err) < 0)
        upkeep_failed(s, err);
}

static void *store_main(void *arg)
{
    store_t *s = arg;
    int64_t backoff = 100;
    store_req_t **batch = NULL;
    size_t batch_cap = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stopping)
            break;
        store_state_t st = (store_state_t)atomic_load(&s->state);
        if (st == STORE_FATAL)
            break;
        if (st != STORE_READY) {
            int rc = connect_step(s);
            if (rc == 0) {
                backoff = 100;
                continue;
            }
            if (atomic_load(&s->state) == STORE_FATAL)
                break;
            if (rc < 0)
                set_state(s, STORE_CONNECTING);
            drain_queue(s, rc > 0 ? "standby: another ingest is the writer"
                                  : "database unavailable, retry later");
            pthread_mutex_lock(&s->mu);
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            int64_t wait_ms = rc > 0 ? 1000 : backoff;
            until.tv_sec += wait_ms / 1000;
            until.tv_nsec += (wait_ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            if (!s->stopping)
                pthread_cond_timedwait(&s->cond, &s->mu, &until);
            pthread_mutex_unlock(&s->mu);
            if (rc < 0)
                backoff = backoff < 2000 ? backoff * 2 : 2000;
            continue;
        }

        /* READY: gather whatever is queued, up to the batch bound. */
        pthread_mutex_lock(&s->mu);
        if (!s->q_head && !s->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&s->cond, &s->mu, &until);
        }
        size_t n = 0, events = 0;
        while (s->q_head &&
               (n == 0 || events + s->q_head->nevents <= (size_t)s->opts.max_batch_events)) {
            if (n && s->q_head->stall_s)
                break; /* a stall scan goes alone */
            if (n == batch_cap) {
                size_t cap = batch_cap ? batch_cap * 2 : 64;
                // NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers
                store_req_t **nb = realloc(batch, cap * sizeof *nb);
                if (!nb)
                    break;
                batch = nb;
                batch_cap = cap;
            }
            store_req_t *r = s->q_head;
            s->q_head = r->next;
            if (!s->q_head)
                s->q_tail = NULL;
            r->next = NULL;
            batch[n++] = r;
            events += r->nevents;
            if (r->stall_s)
                break;
        }
        pthread_mutex_unlock(&s->mu);
        if (n && keep_partitions(s)) {
            for (size_t q = 0; q < n; q++)
                complete_unavailable(s, batch[q], "database unavailable, retry later");
        } else if (n == 1 && batch[0]->stall_s && !batch[0]->nevents) {
            scan_stalls(s, batch[0]);
            s->last_ping_ms = mono_ms();
        } else if (n) {
            process(s, batch, n);
            s->last_ping_ms = mono_ms();
        } else if (mono_ms() - s->last_ping_ms >= STORE_PING_MS) {
            /* Idle: notice a lost server now rather than at the next submission. */
            PGresult *r = exec0(s, "SELECT 1");
            int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
            PQclear(r);
            s->last_ping_ms = mono_ms();
            if (!ok) {
                char err[256];
                snprintf(err, sizeof err, "lost PostgreSQL: %s", PQerrorMessage(s->conn));
                set_error(s, err);
                log_warn("store: %s", err);
                disconnect(s);
                set_state(s, STORE_CONNECTING);
            }
        }
        /* Between batches, even under a steady load: the partitions ahead, then the
         * retention when due (each a no-op without work). */
        if (atomic_load(&s->state) == STORE_READY && s->conn && !keep_partitions(s) &&
            retention_due(s))
            retain(s);
    }
    drain_queue(s, "shutting down");
    disconnect(s);
    free(batch);
    atomic_store(&s->stopped, 1);
    return NULL;
}

store_t *store_new(const store_options_t *o)
{
    store_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->opts = *o;
    if (s->opts.max_batch_events <= 0)
        s->opts.max_batch_events = 2000;
    if (s->opts.reply_timeout_ms <= 0)
        s->opts.reply_timeout_ms = 15000;
    if (s->opts.partition_events <= 0)
        s->opts.partition_events = PARTPLAN_EVENTS_DEFAULT;
    if (s->opts.retain_every_ms <= 0)
        s->opts.retain_every_ms = 60000;
    snprintf(s->conninfo, sizeof s->conninfo, "%s", o->conninfo ? o->conninfo : "");
    s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (s->evfd < 0)
        goto fail;
    s->wait = (pgwait_t){.who = "store", .timeout_ms = s->opts.reply_timeout_ms, .each_result = 1};
    batch_options_t bo = {.wait = s->wait};
    metrics_t *m = o->metrics;
    if (m) {
        bo.stored =
            metrics_counter(m, "adw_ingest_stored_total", NULL, "Events committed to PostgreSQL");
        bo.duplicates = metrics_counter(m, "adw_ingest_duplicates_total", NULL,
                                        "Events answered with an earlier event's id (event_id)");
        bo.batches = metrics_counter(m, "adw_ingest_batches_total", NULL, "Transactions committed");
        static const double sizes[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
        bo.batch_size = metrics_histogram(m, "adw_ingest_batch_size", NULL,
                                          "Events per committed transaction", sizes, 12);
        bo.commit_latency = metrics_histogram(m, "adw_ingest_commit_seconds", NULL,
                                              "Time from BEGIN to the COMMIT's answer",
                                              METRICS_LATENCY_BOUNDS, METRICS_LATENCY_NBOUNDS);
        s->m_state = metrics_gauge(m, "adw_ingest_store_state", NULL,
                                   "0 connecting, 1 standby, 2 ready, 3 fatal");
        s->m_lookups = metrics_counter(m, "adw_ingest_duplicate_retries_total", NULL,
                                       "Transactions run again to answer a retried event_id");
        s->m_reconnects = metrics_counter(m, "adw_ingest_db_connects_total", NULL,
                                          "Connections made to PostgreSQL");
        s->m_unknown_stored =
            metrics_counter(m, "adw_ingest_commit_outcome_lost_total", "outcome=\"stored\"",
                            "Commits whose answer was lost, resolved by reading the batch back");
        s->m_unknown_not_stored =
            metrics_counter(m, "adw_ingest_commit_outcome_lost_total", "outcome=\"not_stored\"",
                            "Commits whose answer was lost, resolved by reading the batch back");
    }
    if (!(s->batch = batch_new(&bo)))
        goto fail;
    partition_options_t pa = {.size = s->opts.partition_events,
                              .batch_max = s->opts.max_batch_events,
                              .retention_s = s->opts.retention_s,
                              .wait = s->wait,
                              .metrics = m};
    if (!(s->parts = partition_new(&pa)))
        goto fail;
    if (pthread_create(&s->thread, NULL, store_main, s))
        goto fail;
    s->thread_started = 1;
    return s;
fail:
    store_destroy(&s);
    return NULL;
}

void store_shutdown(store_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

void store_destroy(store_t **sp)
{
    if (!sp || !*sp)
        return;
    store_t *s = *sp;
    if (s->thread_started) {
        store_shutdown(s);
        pthread_join(s->thread, NULL);
    }
    store_req_t *r = store_completed(s);
    while (r) {
        store_req_t *next = r->next;
        store_req_destroy(&r);
        r = next;
    }
    disconnect(s);
    if (s->evfd >= 0)
        close(s->evfd);
    batch_destroy(&s->batch);
    partition_destroy(&s->parts);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
    *sp = NULL;
}

int store_fd(const store_t *s)
{
    return s->evfd;
}

void store_submit(store_t *s, store_req_t *r)
{
    r->next = NULL;
    r->status = STORE_STATUS_OK;
    r->err[0] = '\0';
    atomic_fetch_add(&s->pending, (int64_t)r->nevents);
    pthread_mutex_lock(&s->mu);
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

store_req_t *store_completed(store_t *s)
{
    uint64_t v;
    ssize_t rc = read(s->evfd, &v, sizeof v);
    (void)rc;
    pthread_mutex_lock(&s->mu);
    store_req_t *r = s->d_head;
    s->d_head = s->d_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    return r;
}

store_state_t store_state(const store_t *s)
{
    return (store_state_t)atomic_load(&((store_t *)s)->state);
}

int64_t store_last_id(const store_t *s)
{
    return atomic_load(&((store_t *)s)->last_id);
}

int64_t store_epoch(const store_t *s)
{
    return atomic_load(&((store_t *)s)->epoch);
}

int64_t store_pending_events(const store_t *s)
{
    return atomic_load(&((store_t *)s)->pending);
}

int store_stopped(const store_t *s)
{
    return atomic_load(&((store_t *)s)->stopped);
}
