/* store: the writer's queue and batch loop (store_main), and the store's public face
 * (store.h). Submissions queue up; the writer thread gathers what is queued into one batch,
 * commits it (store__process, batch.h) and hands the requests back through the completed list
 * and its eventfd. Between batches it keeps the partitions ahead and applies the retention.
 *
 * Its other parts, sharing store_t through store_internal.h, each calling only those below
 * it: the scans (store_scan.c), the commit of a batch (store_commit.c), a commit whose answer
 * was lost (store_resolve.c), the connection (store_conn.c), and the completion of requests
 * with the state and the last error (store_done.c).
 */
#include "store.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "log.h"
#include "partition.h"
#include "partplan.h"
#include "store_internal.h"
#include "timefmt.h"

#define STORE_PING_MS 1000

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
    for (size_t i = 0; i < r->nraised; i++)
        event_clear(&r->raised[i].ev);
    free(r->raised);
    free(r->held);
    free(r->ended);
    free(r);
    *rp = NULL;
}

void store_last_error(store_t *s, char *out, size_t outlen)
{
    pthread_mutex_lock(&s->mu);
    snprintf(out, outlen, "%s", s->last_error);
    pthread_mutex_unlock(&s->mu);
}

/* A database failure between batches: logged and kept as the last error; a lost connection
 * makes the writer connect again. */
static void upkeep_failed(store_t *s, const char *err)
{
    log_warn("store: %s", err);
    store__set_error(s, err);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        store__disconnect(s);
        store__set_state(s, STORE_CONNECTING);
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
           (!s->last_retain_ms || store__mono_ms() - s->last_retain_ms >= s->opts.retain_every_ms);
}

/* Applies the retention (partition_retain). */
static void retain(store_t *s)
{
    char err[256];
    s->last_retain_ms = store__mono_ms();
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
            int rc = store__connect_step(s);
            if (rc == 0) {
                backoff = 100;
                continue;
            }
            if (atomic_load(&s->state) == STORE_FATAL)
                break;
            if (rc < 0)
                store__set_state(s, STORE_CONNECTING);
            store__drain_queue(s, rc > 0 ? "standby: another ingest is the writer"
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

        /* READY: idle, watch the connection until something is queued (or it is time for a
         * ping); then gather whatever is queued, up to the batch bound. */
        pthread_mutex_lock(&s->mu);
        if (!s->q_head && !s->stopping) {
            pthread_mutex_unlock(&s->mu);
            int64_t to_ping = STORE_PING_MS - (store__mono_ms() - s->last_ping_ms);
            store__idle_wait(s, to_ping < 1 ? 1 : (int)to_ping);
            if (atomic_load(&s->state) != STORE_READY)
                continue; /* the connection went: what is queued is refused there */
            pthread_mutex_lock(&s->mu);
        }
        size_t n = 0, events = 0;
        while (s->q_head &&
               (n == 0 || events + s->q_head->nevents <= (size_t)s->opts.max_batch_events)) {
            if (n && (s->q_head->stall_s || s->q_head->approval_scan))
                break; /* a scan goes alone */
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
            if (r->stall_s || r->approval_scan)
                break;
        }
        pthread_mutex_unlock(&s->mu);
        if (n && store__conn_alive(s)) {
            /* The server closed the connection before this batch was sent: nothing of it was
             * committed, and the store is already connecting again. */
            for (size_t q = 0; q < n; q++)
                store__complete_unavailable(s, batch[q], "database unavailable, retry later");
            continue;
        }
        if (n && keep_partitions(s)) {
            for (size_t q = 0; q < n; q++)
                store__complete_unavailable(s, batch[q], "database unavailable, retry later");
        } else if (n == 1 && batch[0]->stall_s && !batch[0]->nevents) {
            store__scan_stalls(s, batch[0]);
            s->last_ping_ms = store__mono_ms();
        } else if (n == 1 && batch[0]->approval_scan && !batch[0]->nevents) {
            store__scan_approvals(s, batch[0]);
            s->last_ping_ms = store__mono_ms();
        } else if (n) {
            store__process(s, batch, n);
            s->last_ping_ms = store__mono_ms();
        } else if (store__mono_ms() - s->last_ping_ms >= STORE_PING_MS) {
            /* Idle: notice a lost server now rather than at the next submission. */
            PGresult *r = store__exec0(s, "SELECT 1");
            int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
            PQclear(r);
            s->last_ping_ms = store__mono_ms();
            if (!ok)
                store__lose_conn(s, PQerrorMessage(s->conn));
        }
        /* Between batches, even under a steady load: the partitions ahead, then the
         * retention when due (each a no-op without work). */
        if (atomic_load(&s->state) == STORE_READY && s->conn && !keep_partitions(s) &&
            retention_due(s))
            retain(s);
    }
    store__drain_queue(s, "shutting down");
    store__disconnect(s);
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
    s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (s->evfd < 0 || s->wakefd < 0)
        goto fail;
    s->wait = (pgwait_t){.who = "store", .timeout_ms = s->opts.reply_timeout_ms, .each_result = 1};
    batch_options_t bo = {
        .wait = s->wait, .run_budget_usd = o->run_budget_usd, .enforce_budget = o->enforce_budget};
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
        bo.lookups = metrics_counter(m, "adw_ingest_event_id_lookups_total", NULL,
                                     "Round trips spent looking event_ids up before a commit");
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

/* Wakes the writer from store__idle_wait (a full counter means it is woken already). */
static void wake(store_t *s)
{
    uint64_t one = 1;
    while (write(s->wakefd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

void store_shutdown(store_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    wake(s);
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
    store__disconnect(s);
    if (s->evfd >= 0)
        close(s->evfd);
    if (s->wakefd >= 0)
        close(s->wakefd);
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
    wake(s);
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
