#include "pgwait.h"

#include <inttypes.h>
#include <poll.h>
#include <sys/socket.h>

#include "log.h"
#include "timefmt.h"

void pgwait_ready(PGconn *conn, const pgwait_t *w, int64_t deadline_us)
{
    if (PQflush(conn) < 0)
        return;
    while (PQisBusy(conn)) {
        int fd = PQsocket(conn);
        if (fd < 0)
            return;
        int64_t left_ms = (deadline_us - timefmt_mono_us()) / 1000;
        if (left_ms <= 0) {
            log_warn("%s: no answer from PostgreSQL for %" PRId64 " ms; dropping the connection",
                     w->who, w->timeout_ms);
            shutdown(fd, SHUT_RDWR);
            return;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left_ms < 1000 ? (int)left_ms : 1000) > 0 && !PQconsumeInput(conn))
            return; /* the connection failed: PQgetResult says so */
    }
}

PGresult *pgwait_result(PGconn *conn, const pgwait_t *w)
{
    pgwait_ready(conn, w, timefmt_mono_us() + w->timeout_ms * 1000);
    return PQgetResult(conn);
}

PGresult *pgwait_collect(PGconn *conn, int sent, const pgwait_t *w)
{
    if (!sent)
        return NULL;
    int64_t deadline = 0;
    PGresult *keep = NULL, *r;
    for (int first = 1;; first = 0) {
        if (first || w->each_result)
            deadline = timefmt_mono_us() + w->timeout_ms * 1000;
        pgwait_ready(conn, w, deadline);
        if (!(r = PQgetResult(conn)))
            break;
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

PGresult *pgwait_exec(PGconn *conn, const pgwait_t *w, const char *sql)
{
    return pgwait_collect(conn, PQsendQuery(conn, sql), w);
}

PGresult *pgwait_exec_params(PGconn *conn, const pgwait_t *w, const char *sql, int nparams,
                             const char *const *params)
{
    return pgwait_collect(conn, PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0),
                          w);
}
