#include "partition.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "partplan.h"
#include "timefmt.h"

typedef struct part_t {
    int64_t from, to; /* the partition events_p<from> holds ids [from, to) */
} part_t;

struct partition_t {
    partition_options_t o;
    part_t *parts; /* ascending by from, contiguous */
    size_t n, cap;
    metric_t *m_partitions, *m_dropped;
};

partition_t *partition_new(const partition_options_t *o)
{
    partition_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->o = *o;
    if (o->metrics) {
        p->m_partitions = metrics_gauge(o->metrics, "adw_ingest_partitions", NULL,
                                        "Partitions of the events table");
        p->m_dropped = metrics_counter(o->metrics, "adw_ingest_partitions_dropped_total", NULL,
                                       "Partitions of the events table dropped by the retention");
    }
    return p;
}

void partition_destroy(partition_t **pp)
{
    if (!pp || !*pp)
        return;
    free((*pp)->parts);
    free(*pp);
    *pp = NULL;
}

static int64_t top(const partition_t *p)
{
    return p->n ? p->parts[p->n - 1].to : 0;
}

/* Appends [from, to). Returns 0 or -ENOMEM. */
static int push(partition_t *p, int64_t from, int64_t to)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        part_t *np = realloc(p->parts, cap * sizeof *np);
        if (!np)
            return -ENOMEM;
        p->parts = np;
        p->cap = cap;
    }
    p->parts[p->n++] = (part_t){.from = from, .to = to};
    metric_set(p->m_partitions, (int64_t)p->n);
    return 0;
}

static int cmp_from(const void *a, const void *b)
{
    const part_t *x = a, *y = b;
    return (x->from > y->from) - (x->from < y->from);
}

/* The first line of what conn or r says, with a prefix, into err. */
static void db_err(char *err, size_t errlen, const char *what, PGconn *conn, const PGresult *r)
{
    const char *msg =
        r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    size_t len = strcspn(msg, "\n");
    set_err(err, errlen, "%s: %.*s", what, (int)(len > 200 ? 200 : len), msg);
}

/* Runs sql (the simple protocol); 0 when it succeeded, else -EIO with err set. */
static int exec_ok(partition_t *p, PGconn *conn, const char *sql, const char *what, char *err,
                   size_t errlen)
{
    PGresult *r = pgwait_exec(conn, &p->o.wait, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        db_err(err, errlen, what, conn, r);
    PQclear(r);
    return ok ? 0 : -EIO;
}

/* Rolls back the transaction block left open on a live connection. */
static void rollback(partition_t *p, PGconn *conn)
{
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(pgwait_exec(conn, &p->o.wait, "ROLLBACK"));
}

/* "BEGIN; SET LOCAL lock_timeout": a lock the transaction waits for (a drop's ACCESS EXCLUSIVE
 * behind a gateway's long read) is given up after PARTITION_LOCK_MS, or half the bound on each
 * answer if less, and tried again later: neither the writer nor the reads queued behind the
 * request wait longer. */
#define PARTITION_LOCK_MS 1000
static int begin(partition_t *p, PGconn *conn, char *err, size_t errlen)
{
    char sql[96];
    int64_t ms = p->o.wait.timeout_ms / 2;
    snprintf(sql, sizeof sql, "BEGIN; SET LOCAL lock_timeout = '%" PRId64 "ms'",
             ms > PARTITION_LOCK_MS ? PARTITION_LOCK_MS
             : ms > 0               ? ms
                                    : 1);
    return exec_ok(p, conn, sql, "BEGIN", err, errlen);
}

int partition_sync(partition_t *p, PGconn *conn, int64_t last_id, char *err, size_t errlen)
{
    p->n = 0;
    PGresult *r = pgwait_exec(conn, &p->o.wait,
                              "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), e.relkind"
                              " FROM pg_class e LEFT JOIN pg_inherits i ON i.inhparent = e.oid"
                              " LEFT JOIN pg_class c ON c.oid = i.inhrelid"
                              " WHERE e.oid = 'events'::regclass");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_err(err, errlen, "reading the partitions", conn, r);
        PQclear(r);
        return -EIO;
    }
    int rows = PQntuples(r);
    if (rows < 1 || strcmp(PQgetvalue(r, 0, 2), "p")) {
        set_err(err, errlen, "the events table is not partitioned");
        PQclear(r);
        return -EIO;
    }
    for (int row = 0; row < rows; row++) {
        if (PQgetisnull(r, row, 0))
            continue; /* the one row of a table without partitions */
        int64_t from, to;
        if (partplan_parse_bound(PQgetvalue(r, row, 1), &from, &to)) {
            set_err(err, errlen, "partition %.64s of events has bounds '%.80s', not an id range",
                    PQgetvalue(r, row, 0), PQgetvalue(r, row, 1));
            PQclear(r);
            return -EIO;
        }
        if (push(p, from, to)) {
            set_err(err, errlen, "out of memory");
            PQclear(r);
            return -EIO;
        }
    }
    PQclear(r);
    if (p->n > 1)
        qsort(p->parts, p->n, sizeof *p->parts, cmp_from);
    for (size_t i = 1; i < p->n; i++)
        if (p->parts[i].from != p->parts[i - 1].to) {
            set_err(err, errlen,
                    "the partitions of events leave ids %" PRId64 " to %" PRId64 " without one",
                    p->parts[i - 1].to, p->parts[i].from - 1);
            return -EIO;
        }
    metric_set(p->m_partitions, (int64_t)p->n);
    return partition_ensure(p, conn, last_id, err, errlen);
}

int64_t partition_dedup_floor(const partition_t *p, int64_t from, int64_t upto)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->parts[i].from <= from && upto < p->parts[i].to)
            return i ? p->parts[i].from : 0;
    return -1;
}

int partition_ensure(partition_t *p, PGconn *conn, int64_t last_id, char *err, size_t errlen)
{
    int64_t from, to;
    while (partplan_next(top(p), last_id, p->o.batch_max, p->o.size, &from, &to)) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "CREATE TABLE events_p%" PRId64 " (LIKE events INCLUDING DEFAULTS"
                 " INCLUDING CONSTRAINTS);"
                 " CREATE UNIQUE INDEX events_p%" PRId64 "_event_id ON events_p%" PRId64
                 " (event_id) WHERE event_id IS NOT NULL;"
                 " ALTER TABLE events ATTACH PARTITION events_p%" PRId64
                 " FOR VALUES FROM (%" PRId64 ") TO (%" PRId64 "); COMMIT",
                 from, from, from, from, from, to);
        if (begin(p, conn, err, errlen) ||
            exec_ok(p, conn, sql, "creating a partition", err, errlen)) {
            rollback(p, conn);
            return -EIO;
        }
        if (push(p, from, to)) {
            set_err(err, errlen, "out of memory");
            return -EIO;
        }
        log_info("partition: created events_p%" PRId64 " for ids %" PRId64 " to %" PRId64, from,
                 from, to - 1);
    }
    return 0;
}

/* The received_at of the partition's highest id, in microseconds (0: empty), into *newest.
 * Returns 0 or -EIO. */
static int newest_received(partition_t *p, PGconn *conn, int64_t from, int64_t *newest, char *err,
                           size_t errlen)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT (extract(epoch FROM received_at) * 1000000)::bigint FROM events_p%" PRId64
             " ORDER BY id DESC LIMIT 1",
             from);
    PGresult *r = pgwait_exec(conn, &p->o.wait, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_err(err, errlen, "retention", conn, r);
        PQclear(r);
        return -EIO;
    }
    *newest = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return 0;
}

/* The runs whose last event is below $1, the first kept id, with what hangs on them;
 * answers how many runs went. */
#define RUNS_GONE_SQL(approvals)                                                                   \
    "WITH gone AS (DELETE FROM adw_runs WHERE last_id < $1::bigint RETURNING adw_id),"             \
    " s AS (DELETE FROM adw_steps WHERE adw_id IN (SELECT adw_id FROM gone)),"                     \
    " a AS (DELETE FROM adw_agents WHERE adw_id IN (SELECT adw_id FROM gone)),"                    \
    " t AS (DELETE FROM adw_tool_calls WHERE adw_id IN (SELECT adw_id FROM gone)),"                \
    " x AS (DELETE FROM adw_sessions WHERE adw_id IN (SELECT adw_id FROM gone))" approvals         \
    " SELECT count(*) FROM gone"

static const char RUNS_GONE[] = RUNS_GONE_SQL("");
static const char RUNS_GONE_APPROVALS[] =
    RUNS_GONE_SQL(", p AS (DELETE FROM adw_approvals WHERE adw_id IN (SELECT adw_id FROM gone))");

int partition_retain(partition_t *p, PGconn *conn, int64_t last_id, int64_t now_us, char *err,
                     size_t errlen)
{
    if (p->o.retention_s <= 0)
        return 0;
    size_t k = 0;
    int64_t newest = 0, newest_dropped = 0;
    while (k + 1 < p->n) { /* the highest partition always stays */
        if (newest_received(p, conn, p->parts[k].from, &newest, err, errlen))
            return -EIO;
        if (!partplan_droppable(p->parts[k].to, last_id, newest, now_us, p->o.retention_s))
            break;
        if (newest > newest_dropped)
            newest_dropped = newest;
        k++;
    }
    if (!k)
        return 0;
    PGresult *r = pgwait_exec(conn, &p->o.wait, "SELECT to_regclass('adw_approvals') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_err(err, errlen, "retention", conn, r);
        PQclear(r);
        return -EIO;
    }
    int approvals = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    r = NULL;
    if (begin(p, conn, err, errlen))
        goto fail;
    for (size_t i = 0; i < k; i++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "ALTER TABLE events DETACH PARTITION events_p%" PRId64
                 "; DROP TABLE events_p%" PRId64,
                 p->parts[i].from, p->parts[i].from);
        if (exec_ok(p, conn, sql, "dropping a partition", err, errlen))
            goto fail;
    }
    int64_t first_kept = p->parts[k].from;
    char kept[24];
    snprintf(kept, sizeof kept, "%" PRId64, first_kept);
    const char *params[1] = {kept};
    r = pgwait_exec_params(conn, &p->o.wait,
                           "INSERT INTO adw_meta (key, value) VALUES ('first_kept_id', $1)"
                           " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           1, params);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_err(err, errlen, "retention", conn, r);
        goto fail;
    }
    PQclear(r);
    r = pgwait_exec_params(conn, &p->o.wait, approvals ? RUNS_GONE_APPROVALS : RUNS_GONE, 1,
                           params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_err(err, errlen, "retention", conn, r);
        goto fail;
    }
    int64_t runs = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = NULL;
    if (exec_ok(p, conn, "COMMIT", "retention", err, errlen))
        goto fail;
    char when[TIMEFMT_LEN];
    timefmt_format(newest_dropped, when);
    log_info("retention: dropped %zu partition(s) of events, ids %" PRId64 " to %" PRId64
             " (newest event received %s, retention %" PRId64 " s); first kept id %" PRId64
             "; %" PRId64 " run(s) without events left removed",
             k, p->parts[0].from, first_kept - 1, when, p->o.retention_s, first_kept, runs);
    memmove(p->parts, p->parts + k, (p->n - k) * sizeof *p->parts);
    p->n -= k;
    metric_set(p->m_partitions, (int64_t)p->n);
    metric_add(p->m_dropped, (int64_t)k);
    return (int)k;
fail:
    PQclear(r);
    rollback(p, conn);
    return -EIO;
}
