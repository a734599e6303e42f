/* pgwait: waiting for PostgreSQL with a bound. libpq's blocking calls wait as long as the
 * kernel lets them; these wait on the connection's socket with a deadline instead, so that a
 * link that silently drops everything (the connection open, nothing arriving) cannot hang the
 * caller. Past the deadline the socket is shut down: libpq then reports the connection lost,
 * and the caller handles it as any lost connection (PQstatus says CONNECTION_BAD).
 *
 * For a blocking-mode connection owned by the calling thread. Nothing here blocks longer than
 * the bound, or than one second between two looks at the clock.
 */
#ifndef ADW_PGWAIT_H
#define ADW_PGWAIT_H

#include <libpq-fe.h>
#include <stdint.h>

/* How long a caller waits for PostgreSQL. Plain data, usually a constant of the caller. */
typedef struct pgwait_t {
    const char *who;    /* the prefix of the log line when the bound is reached ("store") */
    int64_t timeout_ms; /* the longest wait */
    int each_result;    /* 1: each result of a query may take timeout_ms; 0: all of them */
} pgwait_t;

/* Waits until PQgetResult can answer without blocking, or until deadline_us (timefmt_mono_us's
 * clock): flushes what is queued, then reads as the socket becomes readable. When the deadline
 * passes first, logs "<who>: no answer from PostgreSQL for <timeout_ms> ms; dropping the
 * connection" (a warning) and shuts the socket down. Returns nothing: whatever happened,
 * PQgetResult then says (a result, or libpq's error for a lost connection). */
void pgwait_ready(PGconn *conn, const pgwait_t *w, int64_t deadline_us);

/* PQgetResult with its wait bounded by w->timeout_ms from now. Caller owns the result (PQclear);
 * NULL when the query has no more results. */
PGresult *pgwait_result(PGconn *conn, const pgwait_t *w);

/* The outcome of the query just sent (sent: what the PQsend* call returned), as PQexec gives
 * it: the first error, else the last result; stops at a COPY state. Each wait is bounded as w
 * says. Caller owns the result (PQclear); NULL when nothing was sent (sent == 0) or nothing
 * could be read (PQerrorMessage says why). */
PGresult *pgwait_collect(PGconn *conn, int sent, const pgwait_t *w);

/* PQexec with bounded waits: sql as the simple protocol sends it (several statements allowed).
 * Caller owns the result, as for pgwait_collect. */
PGresult *pgwait_exec(PGconn *conn, const pgwait_t *w, const char *sql);

/* PQexecParams (text parameters and results) with bounded waits. params (borrowed) holds nparams
 * strings (NULL: an SQL NULL). Caller owns the result, as for pgwait_collect. */
PGresult *pgwait_exec_params(PGconn *conn, const pgwait_t *w, const char *sql, int nparams,
                             const char *const *params);

#endif
