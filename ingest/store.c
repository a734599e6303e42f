#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "approval_event.h"
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
/* The reason a request gets when its commit may or may not have happened. */
#define STORE_OUTCOME_UNKNOWN                                                                      \
    "database unavailable: commit outcome unknown; retry with the same event_id"

struct store_t {
    store_options_t opts;
    char conninfo[1024];
    pthread_t thread;
    int thread_started;
    int evfd;
    int wakefd; /* eventfd: a submission or shutdown wakes the idle writer's poll */

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
    int doomed;    /* the server said it is ending the connection (SQLSTATE class 57P) */
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
    for (size_t i = 0; i < r->nraised; i++)
        event_clear(&r->raised[i].ev);
    free(r->raised);
    free(r->held);
    free(r->ended);
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
    s->doomed = 0;
}

/* libpq's notice receiver on the writer's connection (runs on the writer thread, inside the
 * libpq call that read the notice). A notice of class 57P (operator intervention: immediate or
 * fast shutdown, pg_terminate_backend, a crash of another backend) says that the server is
 * closing this connection: it is marked doomed, so that nothing more is sent on it. */
static void on_notice(void *arg, const PGresult *r)
{
    store_t *s = arg;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (state && !strncmp(state, "57P", 3)) {
        s->doomed = 1;
        log_warn("store: PostgreSQL is closing the connection: %s (%s)", msg ? msg : "", state);
    } else {
        log_info("store: PostgreSQL says: %s", msg ? msg : "");
    }
}

/* Connects (no more than connect_timeout_s seconds, at least 2) and installs on_notice.
 * Returns 0 with s->conn ready, or -1 with s->conn NULL and err set. */
static int open_conn(store_t *s, int connect_timeout_s, char *err, size_t errlen)
{
    char user_timeout[24], connect_timeout[24];
    snprintf(user_timeout, sizeof user_timeout, "%" PRId64, s->opts.reply_timeout_ms);
    snprintf(connect_timeout, sizeof connect_timeout, "%d",
             connect_timeout_s < 2 ? 2 : connect_timeout_s);
    const char *keys[] = {
        "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
    const char *vals[] = {connect_timeout, "adw-ingest", "5", "2", "3",
                          user_timeout,    s->conninfo,  NULL};
    s->doomed = 0;
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
                 s->conn ? PQerrorMessage(s->conn) : "out of memory");
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = '\0';
        disconnect(s);
        return -1;
    }
    PQsetNoticeReceiver(s->conn, on_notice, s);
    return 0;
}

/* Drops a connection found lost (why: for the log), and starts connecting again. */
static void lose_conn(store_t *s, const char *why)
{
    char err[256];
    snprintf(err, sizeof err, "lost PostgreSQL: %s", why);
    char *nl = strchr(err, '\n');
    if (nl)
        *nl = '\0';
    set_error(s, err);
    log_warn("store: %s", err);
    disconnect(s);
    set_state(s, STORE_CONNECTING);
}

/* Reads what the idle connection's socket holds (a termination notice, or its end) without
 * blocking. Returns 0 when the connection is still good, else -1 after lose_conn. */
static int check_conn(store_t *s)
{
    if (!PQconsumeInput(s->conn) || PQstatus(s->conn) != CONNECTION_OK) {
        lose_conn(s, PQerrorMessage(s->conn));
        return -1;
    }
    (void)PQisBusy(s->conn); /* parses what was read: a notice reaches on_notice now */
    if (s->doomed) {
        lose_conn(s, "the server is closing the connection");
        return -1;
    }
    return 0;
}

/* Whether the idle connection is still good right now: a look at its socket that does not
 * wait. Returns 0, or -1 after lose_conn. */
static int conn_alive(store_t *s)
{
    struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
    if (p.fd < 0) {
        lose_conn(s, "no socket");
        return -1;
    }
    if (s->doomed || poll(&p, 1, 0) > 0)
        return check_conn(s);
    return 0;
}

/* Waits, while READY and idle, at most timeout_ms for a submission (the wake-up eventfd) or for
 * something on the connection's socket, which is read at once: a dead connection is noticed
 * the moment the server says so, before a request is sent on it. */
static void idle_wait(store_t *s, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = s->wakefd, .events = POLLIN},
                          {.fd = PQsocket(s->conn), .events = POLLIN}};
    if (poll(p, p[1].fd < 0 ? 1 : 2, timeout_ms) <= 0)
        return;
    if (p[0].revents) {
        uint64_t v;
        ssize_t rc = read(s->wakefd, &v, sizeof v);
        (void)rc;
    }
    if (p[1].revents)
        check_conn(s);
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
        if (open_conn(s, 5, err, sizeof err)) {
            set_error(s, err);
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
        log_warn("store: %s", err);
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

static void finish_ok(store_t *s, store_req_t **reqs, size_t nreqs)
{
    for (size_t q = 0; q < nreqs; q++)
        reqs[q]->status = STORE_STATUS_OK;
    complete_all(s, reqs, nreqs);
}

/* The rows that tell whether a batch committed: its first and last fresh events (id and
 * received_at, which no other event shares with them). */
typedef struct probe_t {
    int64_t first_id, last_id, first_us, last_us;
} probe_t;

/* Reads the probe's rows back on s->conn. Returns 1 when committed, 0 when not, -1 when the
 * query failed. */
static int probe_read(store_t *s, const probe_t *pr)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%" PRId64, pr->first_id);
    snprintf(b, sizeof b, "%" PRId64, pr->last_id);
    const char *params[2] = {a, b};
    PGresult *r = exec1(s,
                        "SELECT id, (extract(epoch from received_at) * 1000000)::bigint"
                        " FROM events WHERE id = $1::bigint OR id = $2::bigint",
                        2, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    int found = 0;
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        int64_t us = strtoll(PQgetvalue(r, row, 1), NULL, 10);
        if ((id == pr->first_id && us == pr->first_us) || (id == pr->last_id && us == pr->last_us))
            found++;
    }
    PQclear(r);
    return found == (pr->first_id == pr->last_id ? 1 : 2);
}

/* After a COMMIT whose outcome was lost (the batch reqs was sent at deadline_us minus the
 * reply timeout): reconnects and reads back the batch's first and last fresh rows, until it
 * knows or the store stops. The requests are answered as soon as the outcome is known (OK, or
 * unavailable when not stored); when it is still unknown at deadline_us they are answered
 * unavailable with STORE_OUTCOME_UNKNOWN (their client retries with the same event_ids, which
 * the dedup answers either way), and the resolution goes on without them. The connection is
 * left closed: connect_step takes the writer lock and reads the last id afresh. */
static void resolve_unknown(store_t *s, store_req_t **reqs, size_t nreqs, int64_t deadline_us)
{
    probe_t pr = {0};
    for (size_t q = 0; q < nreqs; q++)
        for (size_t i = 0; i < reqs[q]->nevents; i++)
            if (reqs[q]->fresh[i]) {
                if (!pr.first_id) {
                    pr.first_id = reqs[q]->ids[i];
                    pr.first_us = reqs[q]->events[i].received_us;
                }
                pr.last_id = reqs[q]->ids[i];
                pr.last_us = reqs[q]->events[i].received_us;
            }
    int64_t backoff = 100;
    int committed = -1;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        disconnect(s);
        int64_t left_ms = (deadline_us - timefmt_mono_us()) / 1000;
        /* While the requests wait, one attempt may not take much past their deadline. */
        int connect_s = nreqs && left_ms < 5000 ? (int)((left_ms + 999) / 1000) : 5;
        char err[256];
        if (!open_conn(s, connect_s, err, sizeof err) && (committed = probe_read(s, &pr)) >= 0)
            break;
        if (stopping)
            break;
        if (nreqs && timefmt_mono_us() >= deadline_us) {
            log_warn("store: a commit's outcome is unknown after %" PRId64
                     " ms; its requests are answered 503 (retry with the same event_id)",
                     s->opts.reply_timeout_ms);
            for (size_t q = 0; q < nreqs; q++)
                complete_unavailable(s, reqs[q], STORE_OUTCOME_UNKNOWN);
            nreqs = 0;
        }
        /* Requests queued meanwhile are not held up by this batch: they are refused now. */
        drain_queue(s, "database unavailable, retry later");
        int64_t nap = backoff;
        if (nreqs) {
            int64_t to_deadline = (deadline_us - timefmt_mono_us()) / 1000;
            if (nap > to_deadline)
                nap = to_deadline > 0 ? to_deadline : 0;
        }
        struct timespec ts = {.tv_sec = nap / 1000, .tv_nsec = (nap % 1000) * 1000000};
        nanosleep(&ts, NULL);
        backoff = backoff < 2000 ? backoff * 2 : 2000;
    }
    disconnect(s); /* the writer lock is taken afresh by connect_step */
    if (committed >= 0) {
        metric_add(committed ? s->m_unknown_stored : s->m_unknown_not_stored, 1);
        log_warn("store: a commit's outcome was lost; ids %" PRId64 "..%" PRId64 " are %s",
                 pr.first_id, pr.last_id, committed ? "stored" : "not stored");
    }
    if (!nreqs)
        return; /* answered already */
    if (committed == 1) {
        int64_t last = pr.last_id; /* raised events may follow the last fresh one */
        for (size_t q = 0; q < nreqs; q++)
            for (size_t i = 0; i < reqs[q]->nraised; i++)
                if (reqs[q]->raised[i].ev.id > last)
                    last = reqs[q]->raised[i].ev.id;
        atomic_store(&s->last_id, last);
        finish_ok(s, reqs, nreqs);
        return;
    }
    for (size_t q = 0; q < nreqs; q++)
        complete_unavailable(s, reqs[q],
                             committed == 0 ? "database unavailable, retry later"
                                            : STORE_OUTCOME_UNKNOWN);
}

/* Commits reqs, isolating a request PostgreSQL refuses so the others still commit. */
// NOLINTNEXTLINE(misc-no-recursion): one level at most, the retry is one request at a time
static void process(store_t *s, store_req_t **reqs, size_t nreqs)
{
    char err[256];
    int64_t t0 = timefmt_mono_us();
    int64_t last_id = atomic_load(&s->last_id);
    /* Each partition's unique index sees only its own event_ids: look them up first, unless
     * every stored event and every id this batch may take (each event and the at most 3 its
     * budget raises) lie in one partition, whose index then finds a duplicate by itself. */
    size_t total = 0;
    for (size_t q = 0; q < nreqs; q++)
        total += reqs[q]->nevents;
    int lookup = !partition_one_holds(s->parts, last_id + 4 * (int64_t)total);
    batch_result_t res =
        batch_commit(s->batch, s->conn, reqs, nreqs, lookup, &last_id, err, sizeof err);
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
    case BATCH_UNKNOWN:
        log_warn("store: %s", err);
        set_error(s, err);
        set_state(s, STORE_CONNECTING);
        resolve_unknown(s, reqs, nreqs, t0 + s->opts.reply_timeout_ms * 1000);
        return;
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

/* The failed query res (cleared here) of the scan r (store_submit), what ("stall scan") names
 * it: logged and kept as the last error, r completed as unavailable, and a lost connection
 * makes the writer connect again. */
static void scan_failed(store_t *s, store_req_t *r, PGresult *res, const char *what)
{
    char err[256];
    snprintf(err, sizeof err, "%s: %s", what, PQerrorMessage(s->conn));
    PQclear(res);
    log_warn("store: %s", err);
    set_error(s, err);
    complete_unavailable(s, r, "database unavailable, retry later");
    if (PQstatus(s->conn) != CONNECTION_OK) {
        disconnect(s);
        set_state(s, STORE_CONNECTING);
    }
}

/* The rows of the scan r's result res, with room reserved in r for an event each. Returns their
 * number; 0 when there are none, or no memory now (the next scan tries): then res is cleared and
 * r completed. */
static int scan_reserve(store_t *s, store_req_t *r, PGresult *res)
{
    int rows = PQntuples(res);
    if (rows == 0 || req_reserve(r, (size_t)rows)) {
        PQclear(res);
        finish_ok(s, &r, 1);
        return 0;
    }
    return rows;
}

/* Commits the n events the scan r raised into r->events (none: r completes at once). */
static void scan_commit(store_t *s, store_req_t *r, size_t n)
{
    r->nevents = n;
    atomic_fetch_add(&s->pending, (int64_t)n); /* complete_all takes them off again */
    if (n == 0) {
        finish_ok(s, &r, 1);
        return;
    }
    process(s, &r, 1);
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
        scan_failed(s, r, res, "stall scan");
        return;
    }
    int rows = scan_reserve(s, r, res);
    if (rows == 0)
        return; /* nothing to raise */
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
    scan_commit(s, r, n);
}

/* The approvals an expire scan ends: pending, not held by this ingest ($1), the oldest first. */
static const char APPROVAL_SCAN_SQL[] =
    "SELECT approval_id, adw_id, step, summary,"
    " (extract(epoch from requested_at) * 1000000)::bigint"
    " FROM adw_approvals WHERE status = 'pending' AND NOT (approval_id = ANY($1::text[]))"
    " ORDER BY requested_id LIMIT $2::int";

/* The latest ended approvals, for r->ended. */
static const char APPROVAL_ENDED_SQL[] =
    "SELECT approval_id, status FROM adw_approvals WHERE status <> 'pending'"
    " ORDER BY requested_id DESC LIMIT $1::int";

/* Reads the latest ended approvals into r->ended; nothing on failure (no memory, an error). */
static void read_ended(store_t *s, store_req_t *r)
{
    char limit[24];
    snprintf(limit, sizeof limit, "%d", APPROVAL_SCAN_ENDED_MAX);
    const char *params[1] = {limit};
    PGresult *res = exec1(s, APPROVAL_ENDED_SQL, 1, params);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        buf_t b;
        buf_init(&b, 0);
        int bad = buf_putc(&b, '\0'); /* allocated: an empty list is "" */
        buf_reset(&b);
        for (int row = 0; row < PQntuples(res) && !bad; row++)
            bad |= buf_printf(&b, "%s %s\n", PQgetvalue(res, row, 0), PQgetvalue(res, row, 1));
        if (!bad) {
            r->ended = b.data; /* NUL-terminated by buf_printf */
            b.data = NULL;
        }
        buf_free(&b);
    }
    PQclear(res);
}

/* Runs the approval expire scan r (store_submit) and commits what it raises. */
static void scan_approvals(store_t *s, store_req_t *r)
{
    int64_t now_us = timefmt_now_us();
    char limit[24];
    int64_t most =
        s->opts.max_batch_events < APPROVAL_SCAN_MAX ? s->opts.max_batch_events : APPROVAL_SCAN_MAX;
    snprintf(limit, sizeof limit, "%" PRId64, most);
    const char *params[2] = {r->held ? r->held : "{}", limit};
    PGresult *res = exec1(s, APPROVAL_SCAN_SQL, 2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        scan_failed(s, r, res, "approval scan");
        return;
    }
    read_ended(s, r);
    int rows = scan_reserve(s, r, res);
    if (rows == 0)
        return; /* nothing to end */
    size_t n = 0;
    for (int row = 0; row < rows; row++) {
        const char *id = PQgetvalue(res, row, 0);
        const char *adw_id = PQgetvalue(res, row, 1);
        const char *step = PQgetisnull(res, row, 2) ? NULL : PQgetvalue(res, row, 2);
        const char *summary = PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3);
        int64_t since = strtoll(PQgetvalue(res, row, 4), NULL, 10);
        int64_t waited_ms = now_us > since ? (now_us - since) / 1000 : 0;
        char err[EVENT_ERR_LEN];
        if (approval_event_expired(id, adw_id, step, "ingest restarted", waited_ms, summary, now_us,
                                   &r->events[n], err, sizeof err)) {
            log_warn("store: no approval_expired for approval %s: %s", id, err);
            continue;
        }
        n++;
    }
    PQclear(res);
    r->approvals = 1;
    scan_commit(s, r, n);
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

        /* READY: idle, watch the connection until something is queued (or it is time for a
         * ping); then gather whatever is queued, up to the batch bound. */
        pthread_mutex_lock(&s->mu);
        if (!s->q_head && !s->stopping) {
            pthread_mutex_unlock(&s->mu);
            int64_t to_ping = STORE_PING_MS - (mono_ms() - s->last_ping_ms);
            idle_wait(s, to_ping < 1 ? 1 : (int)to_ping);
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
        if (n && conn_alive(s)) {
            /* The server closed the connection before this batch was sent: nothing of it was
             * committed, and the store is already connecting again. */
            for (size_t q = 0; q < n; q++)
                complete_unavailable(s, batch[q], "database unavailable, retry later");
            continue;
        }
        if (n && keep_partitions(s)) {
            for (size_t q = 0; q < n; q++)
                complete_unavailable(s, batch[q], "database unavailable, retry later");
        } else if (n == 1 && batch[0]->stall_s && !batch[0]->nevents) {
            scan_stalls(s, batch[0]);
            s->last_ping_ms = mono_ms();
        } else if (n == 1 && batch[0]->approval_scan && !batch[0]->nevents) {
            scan_approvals(s, batch[0]);
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
            if (!ok)
                lose_conn(s, PQerrorMessage(s->conn));
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

/* Wakes the writer from idle_wait (a full counter means it is woken already). */
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
    disconnect(s);
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
