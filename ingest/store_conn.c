/* store_conn: the writer's connection to PostgreSQL, from its opening (the writer advisory
 * lock, the migrations, the epoch and last id, the partitions and the prepared statements) to
 * its loss: the idle connection's socket is watched, and a termination notice or the end of
 * the connection makes the store CONNECTING at once. The statements the store's files send on
 * it (store__exec0, store__exec1, each answer's wait bounded) and the clock its ping is timed
 * by are here too. Writer thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "log.h"
#include "migrate.h"
#include "partition.h"
#include "store_internal.h"
#include "timefmt.h"

#define STORE_LOCK_KEY "7161046289740080" /* pg advisory lock: one writer */

int64_t store__mono_ms(void)
{
    return timefmt_mono_us() / 1000;
}

PGresult *store__exec0(store_t *s, const char *sql)
{
    return pgwait_exec(s->conn, &s->wait, sql);
}

PGresult *store__exec1(store_t *s, const char *sql, int nparams, const char *const *params)
{
    return pgwait_exec_params(s->conn, &s->wait, sql, nparams, params);
}

void store__disconnect(store_t *s)
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
int store__open_conn(store_t *s, int connect_timeout_s, char *err, size_t errlen)
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
        store__disconnect(s);
        return -1;
    }
    PQsetNoticeReceiver(s->conn, on_notice, s);
    return 0;
}

/* Drops a connection found lost (why: for the log), and starts connecting again. */
void store__lose_conn(store_t *s, const char *why)
{
    char err[256];
    snprintf(err, sizeof err, "lost PostgreSQL: %s", why);
    char *nl = strchr(err, '\n');
    if (nl)
        *nl = '\0';
    store__set_error(s, err);
    log_warn("store: %s", err);
    store__disconnect(s);
    store__set_state(s, STORE_CONNECTING);
}

/* Reads what the idle connection's socket holds (a termination notice, or its end) without
 * blocking. Returns 0 when the connection is still good, else -1 after store__lose_conn. */
static int check_conn(store_t *s)
{
    if (!PQconsumeInput(s->conn) || PQstatus(s->conn) != CONNECTION_OK) {
        store__lose_conn(s, PQerrorMessage(s->conn));
        return -1;
    }
    (void)PQisBusy(s->conn); /* parses what was read: a notice reaches on_notice now */
    if (s->doomed) {
        store__lose_conn(s, "the server is closing the connection");
        return -1;
    }
    return 0;
}

/* Whether the idle connection is still good right now: a look at its socket that does not
 * wait. Returns 0, or -1 after store__lose_conn. */
int store__conn_alive(store_t *s)
{
    struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
    if (p.fd < 0) {
        store__lose_conn(s, "no socket");
        return -1;
    }
    if (s->doomed || poll(&p, 1, 0) > 0)
        return check_conn(s);
    return 0;
}

/* Waits, while READY and idle, at most timeout_ms for a submission (the wake-up eventfd) or for
 * something on the connection's socket, which is read at once: a dead connection is noticed
 * the moment the server says so, before a request is sent on it. */
void store__idle_wait(store_t *s, int timeout_ms)
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

/* For migrate: a statement with its waits bounded like every other. */
static PGresult *migrate_exec(void *ctx, const char *sql, int nparams, const char *const *params)
{
    store_t *s = ctx;
    return nparams ? store__exec1(s, sql, nparams, params) : store__exec0(s, sql);
}

/* Connects, takes the writer lock, migrates, reads epoch and last id.
 * Returns 0 when READY, 1 when standing by (connected, lock held elsewhere), -1 on error. */
int store__connect_step(store_t *s)
{
    char err[512];
    if (!s->conn) {
        if (store__open_conn(s, 5, err, sizeof err)) {
            store__set_error(s, err);
            return -1;
        }
        metric_add(s->m_reconnects, 1);
        PQclear(store__exec0(s, "SET synchronous_commit = on"));
    }
    const char *params[1] = {STORE_LOCK_KEY};
    PGresult *r = store__exec1(s, "SELECT pg_try_advisory_lock($1::bigint)", 1, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, sizeof err, "advisory lock: %s", PQerrorMessage(s->conn));
        PQclear(r);
        store__set_error(s, err);
        store__disconnect(s);
        return -1;
    }
    int locked = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (!locked) {
        store__set_state(s, STORE_STANDBY);
        return 1;
    }
    migrate_db_t db = {.conn = s->conn, .exec = migrate_exec, .ctx = s};
    int rc = migrate_apply(&db, err, sizeof err);
    if (rc == -EPROTO) {
        store__set_error(s, err);
        log_error("store: %s", err);
        store__set_state(s, STORE_FATAL);
        store__disconnect(s);
        return -1;
    }
    int64_t epoch = 0;
    if (rc || migrate_epoch(&db, &epoch, err, sizeof err)) {
        store__set_error(s, err);
        store__disconnect(s);
        return -1;
    }
    r = store__exec1(s, "SELECT coalesce(max(id), 0) FROM events", 0, NULL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, sizeof err, "reading the last id: %s", PQerrorMessage(s->conn));
        PQclear(r);
        store__set_error(s, err);
        store__disconnect(s);
        return -1;
    }
    atomic_store(&s->last_id, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
    if (partition_sync(s->parts, s->conn, atomic_load(&s->last_id), err, sizeof err)) {
        store__set_error(s, err);
        log_warn("store: %s", err);
        store__disconnect(s);
        return -1;
    }
    s->last_retain_ms = 0;
    if (batch_prepare(s->batch, s->conn, err, sizeof err)) {
        log_warn("store: %s", err);
        store__set_error(s, err);
        store__disconnect(s);
        return -1;
    }
    atomic_store(&s->epoch, epoch);
    s->last_ping_ms = store__mono_ms();
    log_info("store: writer lock held; epoch %" PRId64 ", last id %" PRId64, epoch,
             atomic_load(&s->last_id));
    store__set_state(s, STORE_READY);
    return 0;
}
