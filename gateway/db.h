/* db: the gateway's read-only PostgreSQL queries, on a blocking libpq connection owned by the
 * calling thread (the subscriber's, or a dbpool worker's). Never on the event loop thread.
 *
 * Every query is parameterised. Connections are read-only (default_transaction_read_only) and
 * bounded in time (connect_timeout, statement_timeout, and a wait for each answer bounded on the
 * client side too, so that a link that silently drops everything cannot hang the caller).
 */
#ifndef ADW_GATEWAY_DB_H
#define ADW_GATEWAY_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "frame.h"

#define DB_CONNECT_TIMEOUT_S 5
#define DB_STATEMENT_TIMEOUT_MS 30000
#define DB_REPLY_TIMEOUT_MS (DB_STATEMENT_TIMEOUT_MS + 5000) /* longest wait for an answer */
#define DB_PING_TIMEOUT_MS 5000 /* the same for the checks (SELECT 1, position) */

/* PQexecParams (text results), waiting at most timeout_ms for the answer: past it the
 * connection is shut down as lost (PQstatus then says CONNECTION_BAD; db_ensure makes a new
 * one) and the result is libpq's error. Caller owns the result (PQclear); NULL when the query
 * could not even be sent. */
PGresult *db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
                  int timeout_ms);

/* The number of queries db_exec ran on the calling thread that did not succeed (an error
 * result, or none at all), since the thread began: comparing it before and after a job tells
 * whether one of the job's queries failed. */
unsigned db_failures(void);

/* Opens a connection to conninfo (borrowed; a libpq URI or key=value string, "" for libpq's
 * PG* environment). Returns it (owned by the caller, PQfinish) or NULL with the reason in err. */
PGconn *db_connect(const char *conninfo, char *err, size_t errlen);

/* Makes sure *conn is usable: connects when NULL, resets when the connection went bad.
 * Returns 0, or -EIO with the reason in err (then *conn may be NULL). */
int db_ensure(PGconn **conn, const char *conninfo, char *err, size_t errlen);

/* Reads the newest event id (0 for none) and the database's epoch (0 when unknown). A database
 * that ingest has not migrated yet counts as empty with an unknown epoch. Returns 0 or -EIO. */
int db_position(PGconn *conn, int64_t *last_id, int64_t *epoch, char *err, size_t errlen);

/* Runs "SELECT 1". Returns 0 or -EIO. */
int db_ping(PGconn *conn, char *err, size_t errlen);

/* One page of stored events, in id order. */
typedef struct db_page_query_t {
    int64_t after;          /* ids greater than this */
    int64_t upto;           /* and at most this (0: no bound) */
    const filter_t *filter; /* borrowed; NULL for every event */
    int limit;              /* rows fetched at most (1..1000) */
    size_t byte_budget;     /* stop adding frames once their payloads pass this (0: no budget) */
    int timeout_ms;         /* longest wait for the answer (0: DB_REPLY_TIMEOUT_MS) */
} db_page_query_t;

/* Fetches the page q describes and appends one frame per event to frames[0..cap) (cap >=
 * q->limit), each owned by the caller. *n is the number of frames, *last the id of the last one
 * (q->after when none), *more 1 when the page ended early (limit or budget reached, so more
 * events may follow) and 0 when the range is exhausted. Returns 0, or -EIO (the query failed)
 * or -ENOMEM, with the reason in err and no frames left to free. */
/* Builds one frame (owned by the caller) from row `row` of a result whose columns are those of
 * the events page query: id, adw_id, type, step, coalesce(event_type, event), doc::text,
 * agent_id. The document as PostgreSQL printed it, made compact with id and received_at first;
 * should that fail, decoded and re-serialized, or, should it not decode, the document text as
 * is. NULL when out of memory. */
frame_t *db_row_frame(const PGresult *r, int row, int64_t id);

int db_events_page(PGconn *conn, const db_page_query_t *q, frame_t **frames, size_t cap, size_t *n,
                   int64_t *last, int *more, char *err, size_t errlen);

/* Appends to out the PostgreSQL text[] literal for l (borrowed): {"a","b"} with quotes and
 * backslashes escaped. Returns 0 or -ENOMEM. */
int db_text_array(buf_t *out, const filter_list_t *l);

#endif
