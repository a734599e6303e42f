#include "store.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "jsonw.h"
#include "log.h"
#include "migrate.h"
#include "timefmt.h"

#define STORE_LOCK_KEY "7161046289740080" /* pg advisory lock: one writer */
#define STORE_PING_MS 1000
/* Batches with at least this many new events go in with COPY (three round trips, the least
 * work per row); smaller ones as one statement that also brings their runs and steps up to
 * date (one round trip). */
#define STORE_COPY_MIN 64
#define STORE_NPARAMS 37 /* the one-statement batch: 11 event, 15 run and 11 step columns */

/* One of these per (run) or (run, step) touched by a batch: the batch's contribution. */
typedef struct agg {
    const char *adw_id;
    const char *step;         /* NULL for the run row */
    const char *status;       /* last explicit status in the batch, or NULL */
    const char *current_step; /* run: step of the last event that had one */
    int64_t n, tokens, itok, otok, crtok, cctok;
    double cost;
    int64_t first_ts, last_ts, first_id, last_id, updated_us;
    int64_t duration_ms;
    int has_duration;
} agg_t;

typedef struct agg_map {
    agg_t *slots;
    size_t cap; /* power of two */
    size_t used;
} agg_map_t;

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
    int64_t last_ping_ms;
    buf_t arrays[STORE_NPARAMS]; /* a batch's parameters: events', runs', steps' columns */
    buf_t copy;                  /* a large batch's events as a binary COPY stream */
    agg_map_t runs, steps;

    metric_t *m_stored, *m_dupes, *m_batches, *m_commit_fail, *m_batch_size, *m_commit_latency;
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

/* Waits until libpq can hand over the next result without blocking, at most
 * opts.reply_timeout_ms. When PostgreSQL stays silent that long (a black-holed link: the
 * connection is open, nothing arrives), the socket is shut down, so that libpq reports the
 * connection lost and the caller handles it as any lost connection. */
static void await_reply(store_t *s)
{
    int64_t deadline = timefmt_mono_us() + s->opts.reply_timeout_ms * 1000;
    if (PQflush(s->conn) < 0)
        return;
    while (PQisBusy(s->conn)) {
        int fd = PQsocket(s->conn);
        if (fd < 0)
            return;
        int64_t left_ms = (deadline - timefmt_mono_us()) / 1000;
        if (left_ms <= 0) {
            log_warn("store: no answer from PostgreSQL for %" PRId64 " ms; dropping the connection",
                     s->opts.reply_timeout_ms);
            shutdown(fd, SHUT_RDWR);
            return;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left_ms < 1000 ? (int)left_ms : 1000) > 0 && !PQconsumeInput(s->conn))
            return; /* the connection failed: PQgetResult says so */
    }
}

/* PQgetResult bounded by await_reply. Caller owns the result (NULL: no more). */
static PGresult *get_result(store_t *s)
{
    await_reply(s);
    return PQgetResult(s->conn);
}

/* The outcome of the query just sent, as PQexec gives it (the first error, else the last
 * result; stops at a COPY state), each wait bounded by await_reply. Caller owns the result;
 * NULL when nothing could be sent or read (PQerrorMessage says why). */
static PGresult *collect(store_t *s, int sent)
{
    if (!sent)
        return NULL;
    PGresult *keep = NULL, *r;
    while ((r = get_result(s))) {
        ExecStatusType st = PQresultStatus(r);
        if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
            break;
    }
    return keep;
}

/* PQexec and PQexecParams with every wait bounded (see collect). */
static PGresult *exec0(store_t *s, const char *sql)
{
    return collect(s, PQsendQuery(s->conn, sql));
}

static PGresult *exec1(store_t *s, const char *sql, int nparams, const char *const *params)
{
    return collect(s, PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0));
}

static int prepare_statements(store_t *s, char *err, size_t errlen);

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
    if (prepare_statements(s, err, sizeof err)) {
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

/* ---- aggregation ---- */

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

static int agg_reset(agg_map_t *m, size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2)
        cap *= 2;
    if (cap > m->cap) {
        agg_t *slots = realloc(m->slots, cap * sizeof *slots);
        if (!slots)
            return -ENOMEM;
        m->slots = slots;
        m->cap = cap;
    }
    memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->used = 0;
    return 0;
}

/* Finds or adds the aggregate of (adw_id, step); the map was sized for every event. */
static agg_t *agg_get(agg_map_t *m, const char *adw_id, const char *step)
{
    size_t i = (size_t)hash_key(adw_id, step) & (m->cap - 1);
    for (;;) {
        agg_t *a = &m->slots[i];
        if (!a->adw_id) {
            a->adw_id = adw_id;
            a->step = step;
            m->used++;
            return a;
        }
        if (!strcmp(a->adw_id, adw_id) &&
            ((!a->step && !step) || (a->step && step && !strcmp(a->step, step))))
            return a;
        i = (i + 1) & (m->cap - 1);
    }
}

/* The status a system event implies for its run when it carries none. */
static const char *implied_run_status(const adw_event_t *e)
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

static const char *implied_step_status(const adw_event_t *e)
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

/* Totals saturate at the top of their type rather than overflow (the SQL below does the same
 * when adding a batch to the stored row). Both operands are non-negative. */
static int64_t sat_add(int64_t a, int64_t b)
{
    return b > INT64_MAX - a ? INT64_MAX : a + b;
}

static double sat_addf(double a, double b)
{
    return b > DBL_MAX - a ? DBL_MAX : a + b;
}

static void agg_add(agg_t *a, const adw_event_t *e)
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

/* ---- text-format helpers ---- */

/* Binary array parameters (PostgreSQL's array_recv format) for the events INSERT: no escaping
 * on either side. One of these per column of a batch. */
#define OID_INT8 20
#define OID_TEXT 25
#define OID_TIMESTAMPTZ 1184
#define OID_JSONB 3802
#define OID_FLOAT8 701
#define PG_EPOCH_US 946684800000000LL /* 2000-01-01T00:00:00Z, PostgreSQL's zero */

static int put32(buf_t *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    return buf_append(b, x, 4);
}

static int put16(buf_t *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    return buf_append(b, x, 2);
}

static void patch32(buf_t *b, size_t at, uint32_t v)
{
    unsigned char *p = (unsigned char *)b->data + at;
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* One dimension, lower bound 1; the has-null flag and the count are patched by barr_end. */
static int barr_begin(buf_t *b, uint32_t oid)
{
    buf_reset(b);
    return put32(b, 1) || put32(b, 0) || put32(b, oid) || put32(b, 0) || put32(b, 1);
}

/* The events' columns' types, in the statement's parameter order. */
static const uint32_t EVENT_OIDS[11] = {OID_INT8,        OID_TEXT, OID_TEXT, OID_TEXT,
                                        OID_TEXT,        OID_TEXT, OID_TEXT, OID_TIMESTAMPTZ,
                                        OID_TIMESTAMPTZ, OID_TEXT, OID_JSONB};

/* An empty array (no dimensions). */
static int barr_empty(buf_t *b, uint32_t oid)
{
    buf_reset(b);
    return put32(b, 0) || put32(b, 0) || put32(b, oid);
}

static void barr_end(buf_t *b, uint32_t n, int has_null)
{
    patch32(b, 4, has_null ? 1 : 0);
    patch32(b, 12, n);
}

/* NULL s is an SQL NULL. */
static int barr_text(buf_t *b, const char *s, int *has_null)
{
    if (!s) {
        *has_null = 1;
        return put32(b, 0xffffffffu);
    }
    size_t len = strlen(s);
    return put32(b, (uint32_t)len) || buf_append(b, s, len);
}

static int barr_int8(buf_t *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    return put32(b, 8) || put32(b, (uint32_t)(u >> 32)) || put32(b, (uint32_t)u);
}

static int barr_float8(buf_t *b, double d)
{
    int64_t bits; /* float8send: the IEEE 754 bits, big-endian, as an int8 is sent */
    memcpy(&bits, &d, sizeof bits);
    return barr_int8(b, bits);
}

static int barr_ts(buf_t *b, int64_t unix_us)
{
    return barr_int8(b, unix_us - PG_EPOCH_US);
}

/* A jsonb element: version 1, then the document as delivered ({prefix, doc's members}). */
static int barr_jsonb(buf_t *b, const json_t *doc, const char *prefix)
{
    size_t at = b->len;
    if (put32(b, 0) || buf_putc(b, 1) || jsonw_object_with(b, doc, prefix))
        return -ENOMEM;
    patch32(b, at, (uint32_t)(b->len - at - 4));
    return 0;
}

/* Array literals for unnest($n::type[]). */
static void arr_text(buf_t *b, const char *s)
{
    buf_putc(b, b->len ? ',' : '{');
    if (!s) {
        buf_puts(b, "NULL");
        return;
    }
    buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *s);
    }
    buf_putc(b, '"');
}

static void arr_close(buf_t *b)
{
    if (!b->len)
        buf_putc(b, '{');
    buf_putc(b, '}');
}

/* ---- the batch ---- */

/* TX_DUPLICATE: an event_id of the batch is stored already (the optimistic attempt, which skips
 * the lookup, hit the unique index); nothing was committed. */
typedef enum { TX_OK, TX_NOT_COMMITTED, TX_UNKNOWN, TX_DATA_ERROR, TX_DUPLICATE } tx_result_t;

static tx_result_t classify(store_t *s, PGresult *r, char *err, size_t errlen)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : "";
    snprintf(err, errlen, "%s", *msg ? msg : PQerrorMessage(s->conn));
    char *nl = strchr(err, '\n');
    if (nl)
        *nl = '\0';
    if (PQstatus(s->conn) != CONNECTION_OK)
        return TX_NOT_COMMITTED;
    const char *constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    if (state && !strcmp(state, "23505") && constraint && !strcmp(constraint, "events_event_id"))
        return TX_DUPLICATE;
    if (state && (!strncmp(state, "22", 2) || !strncmp(state, "23", 2) || !strncmp(state, "54", 2)))
        return TX_DATA_ERROR;
    return TX_NOT_COMMITTED;
}

/* Saturating sums of a stored total and a batch's (both non-negative). */
#define SAT_BIGINT(t, col)                                                                         \
    " CASE WHEN excluded." col " > 9223372036854775807 - " t "." col                               \
    " THEN 9223372036854775807 ELSE " t "." col " + excluded." col " END"
#define SAT_FLOAT(t, col)                                                                          \
    " CASE WHEN excluded." col " > 1.7976931348623157e308::float8 - " t "." col                    \
    " THEN 1.7976931348623157e308::float8 ELSE " t "." col " + excluded." col " END"

/* The statements read as SQL, a clause a line. */
// clang-format off
/* A batch in one statement: the events' rows ($1..$11), then what they add to their runs
 * ($12..$26) and steps ($27..$37). Each parameter is an array, one element per event, run or
 * step; a batch that went in by COPY passes no events. */
static const char BATCH_SQL[] =
    "WITH rb AS (SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::bigint[],"
    " $16::float8[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[],"
    " $22::timestamptz[], $23::timestamptz[], $24::bigint[], $25::bigint[], $26::timestamptz[])"
    " AS t(adw_id, status, current_step, n, cost, tokens, itok, otok, crtok, cctok, first_ts,"
    " last_ts, first_id, last_id, updated_at)),"
    " sb AS (SELECT * FROM unnest($27::text[], $28::text[], $29::text[], $30::bigint[],"
    " $31::float8[], $32::bigint[], $33::timestamptz[], $34::timestamptz[], $35::bigint[],"
    " $36::bigint[], $37::bigint[])"
    " AS t(adw_id, step, status, n, cost, tokens, first_ts, last_ts, duration_ms, first_id,"
    " last_id)),"
    " ev AS (INSERT INTO events (id, adw_id, type, step, event_type, event, status, ts,"
    " received_at, event_id, doc) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[],"
    " $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[],"
    " $10::text[], $11::jsonb[])),"
    " ru AS (INSERT INTO adw_runs AS r (adw_id, status, current_step, event_count, cost_usd,"
    " tokens, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, first_ts,"
    " last_ts, first_id, last_id, updated_at)"
    " SELECT adw_id, coalesce(status, 'running'), current_step, n, cost, tokens, itok, otok,"
    " crtok, cctok, first_ts, last_ts, first_id, last_id, updated_at FROM rb"
    " ON CONFLICT (adw_id) DO UPDATE SET"
    " status = coalesce((SELECT rb.status FROM rb WHERE rb.adw_id = excluded.adw_id), r.status),"
    " current_step = coalesce(excluded.current_step, r.current_step),"
    " event_count = r.event_count + excluded.event_count,"
    " cost_usd =" SAT_FLOAT("r", "cost_usd") ","
    " tokens =" SAT_BIGINT("r", "tokens") ","
    " input_tokens =" SAT_BIGINT("r", "input_tokens") ","
    " output_tokens =" SAT_BIGINT("r", "output_tokens") ","
    " cache_read_tokens =" SAT_BIGINT("r", "cache_read_tokens") ","
    " cache_creation_tokens =" SAT_BIGINT("r", "cache_creation_tokens") ","
    " first_ts = least(r.first_ts, excluded.first_ts),"
    " last_ts = greatest(r.last_ts, excluded.last_ts),"
    " last_id = greatest(r.last_id, excluded.last_id),"
    " updated_at = excluded.updated_at)"
    " INSERT INTO adw_steps AS s (adw_id, step, status, event_count, cost_usd, tokens, first_ts,"
    " last_ts, duration_ms, first_id, last_id)"
    " SELECT adw_id, step, coalesce(status, 'running'), n, cost, tokens, first_ts, last_ts,"
    " duration_ms, first_id, last_id FROM sb"
    " ON CONFLICT (adw_id, step) DO UPDATE SET"
    " status = coalesce((SELECT sb.status FROM sb WHERE sb.adw_id = excluded.adw_id"
    " AND sb.step = excluded.step), s.status),"
    " event_count = s.event_count + excluded.event_count,"
    " cost_usd =" SAT_FLOAT("s", "cost_usd") ","
    " tokens =" SAT_BIGINT("s", "tokens") ","
    " first_ts = least(s.first_ts, excluded.first_ts),"
    " last_ts = greatest(s.last_ts, excluded.last_ts),"
    " duration_ms = coalesce(excluded.duration_ms, s.duration_ms),"
    " last_id = greatest(s.last_id, excluded.last_id)";
// clang-format on

/* Prepares the statements of a batch on a new connection. Returns 0 or -1 with err. */
static int prepare_statements(store_t *s, char *err, size_t errlen)
{
    static const struct {
        const char *name, *sql;
        int nparams;
    } stmts[] = {{"adw_batch", BATCH_SQL, STORE_NPARAMS}};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        PGresult *r =
            collect(s, PQsendPrepare(s->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL));
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            snprintf(err, errlen, "preparing %s: %s", stmts[i].name, PQerrorMessage(s->conn));
            char *nl = strchr(err, '\n');
            if (nl)
                *nl = '\0';
            return -1;
        }
    }
    return 0;
}

/* Encodes what the batch adds to its runs (steps = 0: parameters $12..$26) or steps (1:
 * $27..$37) as binary arrays. Returns 0 or -1 (out of memory). */
static int encode_aggs(store_t *s, int steps)
{
    agg_map_t *m = steps ? &s->steps : &s->runs;
    /* The columns' types, in the statement's parameter order (binary arrays: no text to
     * format here or to parse in PostgreSQL). */
    static const uint32_t RUN_OIDS[15] = {OID_TEXT,   OID_TEXT, OID_TEXT,        OID_INT8,
                                          OID_FLOAT8, OID_INT8, OID_INT8,        OID_INT8,
                                          OID_INT8,   OID_INT8, OID_TIMESTAMPTZ, OID_TIMESTAMPTZ,
                                          OID_INT8,   OID_INT8, OID_TIMESTAMPTZ};
    static const uint32_t STEP_OIDS[11] = {OID_TEXT,   OID_TEXT, OID_TEXT,        OID_INT8,
                                           OID_FLOAT8, OID_INT8, OID_TIMESTAMPTZ, OID_TIMESTAMPTZ,
                                           OID_INT8,   OID_INT8, OID_INT8};
    const uint32_t *oids = steps ? STEP_OIDS : RUN_OIDS;
    int ncols = steps ? 11 : 15, rc = 0, nulls[15] = {0};
    buf_t *A = s->arrays + (steps ? 26 : 11);
    for (int c = 0; c < ncols; c++)
        rc |= barr_begin(&A[c], oids[c]);
    for (size_t i = 0; i < m->cap && !rc; i++) {
        agg_t *a = &m->slots[i];
        if (!a->adw_id)
            continue;
        int c = 0;
        rc |= barr_text(&A[c], a->adw_id, &nulls[c]);
        c++;
        if (steps) {
            rc |= barr_text(&A[c], a->step, &nulls[c]);
            c++;
        }
        rc |= barr_text(&A[c], a->status, &nulls[c]);
        c++;
        if (!steps) {
            rc |= barr_text(&A[c], a->current_step, &nulls[c]);
            c++;
        }
        rc |= barr_int8(&A[c++], a->n);
        rc |= barr_float8(&A[c++], a->cost);
        rc |= barr_int8(&A[c++], a->tokens);
        if (!steps) {
            rc |= barr_int8(&A[c++], a->itok);
            rc |= barr_int8(&A[c++], a->otok);
            rc |= barr_int8(&A[c++], a->crtok);
            rc |= barr_int8(&A[c++], a->cctok);
        }
        rc |= barr_ts(&A[c++], a->first_ts);
        rc |= barr_ts(&A[c++], a->last_ts);
        if (steps) {
            if (a->has_duration)
                rc |= barr_int8(&A[c], a->duration_ms);
            else
                rc |= barr_text(&A[c], NULL, &nulls[c]); /* NULL looks the same in any type */
            c++;
        }
        rc |= barr_int8(&A[c++], a->first_id);
        rc |= barr_int8(&A[c++], a->last_id);
        if (!steps)
            rc |= barr_ts(&A[c++], a->updated_us);
    }
    if (rc)
        return -1;
    for (int c = 0; c < ncols; c++)
        barr_end(&A[c], (uint32_t)m->used, nulls[c]);
    return 0;
}

/* Sends the batch statement: the events' columns in s->arrays[0..10] (none: empty arrays, as
 * after a COPY), the runs and steps from the aggregates. Returns 0 or -1. */
static int send_batch(store_t *s, int with_events)
{
    if (!with_events)
        for (int c = 0; c < 11; c++)
            if (barr_empty(&s->arrays[c], EVENT_OIDS[c]))
                return -1;
    if (encode_aggs(s, 0) || encode_aggs(s, 1))
        return -1;
    const char *values[STORE_NPARAMS];
    int lengths[STORE_NPARAMS], formats[STORE_NPARAMS];
    for (int c = 0; c < STORE_NPARAMS; c++) {
        values[c] = s->arrays[c].data;
        lengths[c] = (int)s->arrays[c].len;
        formats[c] = 1;
    }
    return PQsendQueryPrepared(s->conn, "adw_batch", STORE_NPARAMS, values, lengths, formats, 0) ==
                   1
               ? 0
               : -1;
}

/* Looks up which event_ids of the batch are stored already; marks those events not fresh with
 * their stored ids. Returns 0 or -1 with *res set. */
static int find_duplicates(store_t *s, store_req_t **reqs, size_t nreqs, char *err, size_t errlen,
                           tx_result_t *res)
{
    buf_t *keys = &s->arrays[0];
    buf_reset(keys);
    size_t nkeys = 0;
    for (size_t q = 0; q < nreqs; q++)
        for (size_t i = 0; i < reqs[q]->nevents; i++)
            if (reqs[q]->events[i].event_id) {
                arr_text(keys, reqs[q]->events[i].event_id);
                nkeys++;
            }
    if (!nkeys)
        return 0;
    arr_close(keys);
    const char *params[1] = {keys->data};
    PGresult *r =
        exec1(s, "SELECT event_id, id FROM events WHERE event_id = ANY($1::text[])", 1, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        *res = classify(s, r, err, errlen);
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    for (int row = 0; row < n; row++) {
        const char *eid = PQgetvalue(r, row, 0);
        int64_t id = strtoll(PQgetvalue(r, row, 1), NULL, 10);
        for (size_t q = 0; q < nreqs; q++)
            for (size_t i = 0; i < reqs[q]->nevents; i++) {
                adw_event_t *e = &reqs[q]->events[i];
                if (e->event_id && !reqs[q]->ids[i] && !strcmp(e->event_id, eid)) {
                    reqs[q]->ids[i] = id;
                    reqs[q]->fresh[i] = 0;
                }
            }
    }
    PQclear(r);
    return 0;
}

/* Finds an earlier fresh event of this batch with the same event_id; returns its id or 0. */
static int64_t batch_duplicate(store_req_t **reqs, size_t q_end, size_t i_end, const char *eid,
                               agg_map_t *seen)
{
    (void)reqs;
    (void)q_end;
    (void)i_end;
    size_t i = (size_t)hash_key(eid, NULL) & (seen->cap - 1);
    for (;;) {
        agg_t *a = &seen->slots[i];
        if (!a->adw_id)
            return 0;
        if (!strcmp(a->adw_id, eid))
            return a->first_id;
        i = (i + 1) & (seen->cap - 1);
    }
}

/* Encodes each fresh event for publishing: a msgpack map of id, received_at, then its keys.
 * Returns 0, or -ENOMEM. */
static int encode_frames(store_req_t **reqs, size_t nreqs)
{
    int rc = 0;
    for (size_t q = 0; q < nreqs; q++) {
        store_req_t *r = reqs[q];
        buf_reset(&r->frames);
        for (size_t i = 0; i < r->nevents; i++) {
            if (!r->fresh[i])
                continue;
            adw_event_t *e = &r->events[i];
            char received[TIMEFMT_LEN];
            timefmt_format(e->received_us, received);
            rc |= codec_msgpack_event(&r->frames, e->doc, e->id, received);
            r->frame_end[i] = r->frames.len;
        }
    }
    if (!rc)
        return 0;
    /* Out of memory: no frame at all rather than a cut one (an empty frame is not published,
     * and each gateway reads those events from PostgreSQL after the gap). */
    for (size_t q = 0; q < nreqs; q++) {
        buf_reset(&reqs[q]->frames);
        memset(reqs[q]->frame_end, 0, reqs[q]->nevents * sizeof *reqs[q]->frame_end);
    }
    return -ENOMEM;
}

/* After a commit whose frames could not be encoded: tries again; if memory is still short,
 * the events go unpublished: each gateway sees the gap with the next event or heartbeat and
 * reads them from PostgreSQL. */
static void encode_frames_again(store_req_t **reqs, size_t nreqs)
{
    if (encode_frames(reqs, nreqs))
        log_warn("store: out of memory encoding a committed batch for publishing; gateways will "
                 "read it from PostgreSQL");
}

/* Runs one transaction for reqs. Returns the outcome; on TX_OK every request's ids, fresh
 * flags and frames are filled. */
/* Runs one transaction for reqs. With lookup, event_ids stored earlier are looked up first
 * (one more round trip); without, the unique index on event_id catches them (TX_DUPLICATE)
 * and the caller tries again with the lookup: retries are rare, so the common path is one
 * round trip. */
static tx_result_t commit_batch(store_t *s, store_req_t **reqs, size_t nreqs, int lookup, char *err,
                                size_t errlen)
{
    tx_result_t res = TX_NOT_COMMITTED;
    int unencoded = 0;
    size_t total = 0;
    for (size_t q = 0; q < nreqs; q++) {
        total += reqs[q]->nevents;
        memset(reqs[q]->ids, 0, reqs[q]->nevents * sizeof(int64_t));
        memset(reqs[q]->fresh, 0, reqs[q]->nevents);
        buf_reset(&reqs[q]->frames);
    }
    int64_t t0 = timefmt_mono_us();
    if (agg_reset(&s->runs, total) || agg_reset(&s->steps, total)) {
        snprintf(err, errlen, "out of memory");
        return TX_NOT_COMMITTED;
    }
    /* One writer (the advisory lock): what is stored cannot change under us, so the lookup
     * of earlier event_ids needs no transaction of its own. */
    if (lookup && find_duplicates(s, reqs, nreqs, err, errlen, &res))
        return res;

    /* Assign ids; duplicates inside the batch reuse the first one's id. The steps map doubles
     * as the event_id index until the aggregation below resets it. */
    agg_map_t *seen = &s->steps;
    int64_t next = atomic_load(&s->last_id);
    size_t nfresh = 0;
    for (size_t q = 0; q < nreqs; q++) {
        store_req_t *r = reqs[q];
        for (size_t i = 0; i < r->nevents; i++) {
            adw_event_t *e = &r->events[i];
            if (r->ids[i])
                continue; /* stored before */
            if (e->event_id) {
                int64_t dup = batch_duplicate(reqs, q, i, e->event_id, seen);
                if (dup) {
                    r->ids[i] = dup;
                    continue;
                }
                agg_t *a = agg_get(seen, e->event_id, NULL);
                a->first_id = next + 1;
            }
            r->ids[i] = ++next;
            r->fresh[i] = 1;
            e->id = next;
            nfresh++;
        }
    }
    if (agg_reset(&s->steps, total)) {
        snprintf(err, errlen, "out of memory");
        return TX_NOT_COMMITTED;
    }
    if (!nfresh)
        goto committed; /* every event was stored before: nothing to write */

    /* The events' columns, as binary arrays (one per column) or as the rows of a binary COPY
     * (every column into one buffer); and the run and step aggregates. The field encodings of
     * the two are the same. */
    static const char COPY_SIGNATURE[11] = "PGCOPY\n\377\r\n";
    int use_copy = nfresh >= STORE_COPY_MIN;
    buf_t *col[11];
    int rc = 0, nulls[11] = {0};
    if (use_copy) {
        buf_reset(&s->copy);
        rc |= buf_append(&s->copy, COPY_SIGNATURE, sizeof COPY_SIGNATURE);
        rc |= put32(&s->copy, 0) || put32(&s->copy, 0); /* flags, header extension */
    }
    for (int c = 0; c < 11; c++) {
        col[c] = use_copy ? &s->copy : &s->arrays[c];
        if (!use_copy)
            rc |= barr_begin(col[c], EVENT_OIDS[c]);
    }
    for (size_t q = 0; q < nreqs && !rc; q++) {
        store_req_t *r = reqs[q];
        for (size_t i = 0; i < r->nevents && !rc; i++) {
            if (!r->fresh[i])
                continue;
            adw_event_t *e = &r->events[i];
            char received[TIMEFMT_LEN], prefix[96];
            timefmt_format(e->received_us, received);
            snprintf(prefix, sizeof prefix, "\"id\":%" PRId64 ",\"received_at\":\"%s\"", e->id,
                     received);
            if (use_copy)
                rc |= put16(&s->copy, 11);
            rc |= barr_int8(col[0], e->id);
            rc |= barr_text(col[1], e->adw_id, &nulls[1]);
            rc |= barr_text(col[2], e->type, &nulls[2]);
            rc |= barr_text(col[3], e->step, &nulls[3]);
            rc |= barr_text(col[4], e->event_type, &nulls[4]);
            rc |= barr_text(col[5], e->event, &nulls[5]);
            rc |= barr_text(col[6], e->status, &nulls[6]);
            rc |= barr_ts(col[7], e->ts_us);
            rc |= barr_ts(col[8], e->received_us);
            rc |= barr_text(col[9], e->event_id, &nulls[9]);
            rc |= barr_jsonb(col[10], e->doc, prefix);

            agg_t *run = agg_get(&s->runs, e->adw_id, NULL);
            agg_add(run, e);
            if (e->step)
                run->current_step = e->step;
            const char *rs = e->is_system ? implied_run_status(e) : NULL;
            if (rs)
                run->status = rs;
            if (e->step) {
                agg_t *st = agg_get(&s->steps, e->adw_id, e->step);
                agg_add(st, e);
                const char *ss = e->is_system ? implied_step_status(e) : NULL;
                if (ss)
                    st->status = ss;
                if (e->is_system && (e->has & EVENT_HAS_DURATION) && e->event &&
                    !strncmp(e->event, "step_", 5) && strcmp(e->event, "step_start")) {
                    st->duration_ms = e->duration_ms;
                    st->has_duration = 1;
                }
            }
        }
    }
    if (use_copy)
        rc |= put16(&s->copy, 0xffff); /* the trailer */
    if (rc || (use_copy && s->copy.len > INT32_MAX)) {
        snprintf(err, errlen, "cannot serialize the batch (out of memory)");
        return TX_NOT_COMMITTED;
    }

    int failed = 0, synced = 0, nq;
    if (use_copy) {
        /* BEGIN and the COPY in one round trip, the rows in a second; then the upserts and
         * COMMIT in a third. */
        PGresult *r = exec0(s, "BEGIN; COPY events (id, adw_id, type, step, event_type,"
                               " event, status, ts, received_at, event_id, doc)"
                               " FROM STDIN (FORMAT binary)");
        if (PQresultStatus(r) != PGRES_COPY_IN) {
            res = classify(s, r, err, errlen);
            PQclear(r);
            goto rollback;
        }
        PQclear(r);
        if (PQputCopyData(s->conn, s->copy.data, (int)s->copy.len) != 1 ||
            PQputCopyEnd(s->conn, NULL) != 1) {
            res = classify(s, NULL, err, errlen);
            goto rollback;
        }
        r = get_result(s);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            res = classify(s, r, err, errlen);
            PQclear(r);
            while ((r = get_result(s)))
                PQclear(r);
            goto rollback;
        }
        PQclear(r);
        while ((r = get_result(s)))
            PQclear(r);
        nq = 2;
        if (PQenterPipelineMode(s->conn) != 1 || send_batch(s, 0) ||
            PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
            PQpipelineSync(s->conn) != 1)
            goto send_failed;
    } else {
        /* One round trip: the batch statement, then Sync, which commits its implicit
         * transaction (or rolls it back when it failed). */
        for (int c = 0; c < 11; c++)
            barr_end(col[c], (uint32_t)nfresh, nulls[c]);
        nq = 1;
        if (PQenterPipelineMode(s->conn) != 1 || send_batch(s, 1) || PQpipelineSync(s->conn) != 1)
            goto send_failed;
    }
    /* While PostgreSQL works: each fresh event as it will be published. */
    unencoded = encode_frames(reqs, nreqs);
    for (int guard = 0; guard < 4 * nq + 4 && !synced; guard++) {
        PGresult *r = get_result(s);
        if (!r) {
            if (PQstatus(s->conn) != CONNECTION_OK)
                break;
            continue; /* the end of one query's results */
        }
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
            synced = 1;
            break;
        case PGRES_COMMAND_OK:
        case PGRES_PIPELINE_ABORTED:
            break;
        default:
            /* Only an error the server reports (it carries an SQLSTATE) proves that nothing
             * was committed; one libpq makes up for a lost connection proves nothing. */
            if (!failed && PQresultErrorField(r, PG_DIAG_SQLSTATE)) {
                res = classify(s, r, err, errlen);
                failed = 1;
            }
        }
        PQclear(r);
    }
    if (synced)
        PQexitPipelineMode(s->conn);
    if (!failed && (!synced || PQstatus(s->conn) != CONNECTION_OK)) {
        /* The connection went before the commit's answer: it may or may not have happened. */
        snprintf(err, errlen, "connection lost during commit: %s", PQerrorMessage(s->conn));
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = '\0';
        return TX_UNKNOWN;
    }
    if (failed)
        goto rollback; /* with COPY the transaction block is still open, and failed */

committed:
    atomic_store(&s->last_id, next);
    metric_add(s->m_stored, (int64_t)nfresh);
    metric_add(s->m_dupes, (int64_t)(total - nfresh));
    metric_add(s->m_batches, 1);
    metric_observe(s->m_batch_size, (double)total);
    metric_observe(s->m_commit_latency, (double)(timefmt_mono_us() - t0) / 1e6);
    if (unencoded) /* out of memory: once more, else the gateways read these from PostgreSQL */
        encode_frames_again(reqs, nreqs);
    return TX_OK;

send_failed:
    res = classify(s, NULL, err, errlen);
    /* Cannot tell what was sent: start afresh (a new connection takes the lock again). */
    disconnect(s);
    return TX_NOT_COMMITTED;

rollback:
    if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(exec0(s, "ROLLBACK"));
    return res;
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
static void process(store_t *s, store_req_t **reqs, size_t nreqs)
{
    char err[256];
    tx_result_t res = commit_batch(s, reqs, nreqs, 0, err, sizeof err);
    if (res == TX_DUPLICATE) {
        metric_add(s->m_lookups, 1);
        res = commit_batch(s, reqs, nreqs, 1, err, sizeof err);
    }
    switch (res) {
    case TX_OK:
        finish_ok(s, reqs, nreqs);
        return;
    case TX_DUPLICATE: /* cannot happen after the lookup; treated as a refusal */
    case TX_DATA_ERROR:
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
    case TX_UNKNOWN: {
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
    case TX_NOT_COMMITTED:
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
            if (n == batch_cap) {
                size_t cap = batch_cap ? batch_cap * 2 : 64;
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
        }
        pthread_mutex_unlock(&s->mu);
        if (n) {
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
    snprintf(s->conninfo, sizeof s->conninfo, "%s", o->conninfo ? o->conninfo : "");
    s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    for (int i = 0; i < STORE_NPARAMS; i++)
        buf_init(&s->arrays[i], 0);
    buf_init(&s->copy, 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (s->evfd < 0)
        goto fail;
    metrics_t *m = o->metrics;
    if (m) {
        s->m_stored =
            metrics_counter(m, "adw_ingest_stored_total", NULL, "Events committed to PostgreSQL");
        s->m_dupes = metrics_counter(m, "adw_ingest_duplicates_total", NULL,
                                     "Events answered with an earlier event's id (event_id)");
        s->m_batches =
            metrics_counter(m, "adw_ingest_batches_total", NULL, "Transactions committed");
        static const double sizes[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
        s->m_batch_size = metrics_histogram(m, "adw_ingest_batch_size", NULL,
                                            "Events per committed transaction", sizes, 12);
        s->m_commit_latency = metrics_histogram(m, "adw_ingest_commit_seconds", NULL,
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
    for (int i = 0; i < STORE_NPARAMS; i++)
        buf_free(&s->arrays[i]);
    buf_free(&s->copy);
    free(s->runs.slots);
    free(s->steps.slots);
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
