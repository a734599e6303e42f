/* store_internal: what the files of the store share among themselves: the writer's state
 * (store_t) and the helpers each of them calls. Private to the store's files (store.c,
 * store_scan.c, store_commit.c, store_resolve.c, store_conn.c, store_done.c): only they include
 * it; everyone else sees store.h. Each file calls only those below it, in that order; the
 * declarations stand grouped by the file that defines them, the bottom one first.
 *
 * Threads: the store__ functions run on the writer thread (store_main in store.c).
 */
#ifndef ADW_STORE_INTERNAL_H
#define ADW_STORE_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "metrics.h"
#include "partition.h"
#include "pgwait.h"
#include "store.h"

/* The store: one of these per store_new. */
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

/* ---- store_done.c: completion, state and the last error ---- */

/* Keeps msg (cut to fit) as the last error, for store_last_error. */
void store__set_error(store_t *s, const char *msg);

/* Sets the state, logging a change and setting the state gauge. */
void store__set_state(store_t *s, store_state_t st);

/* Hands r back to the loop thread with the status and reason it carries. The store no longer
 * owns r. */
void store__complete(store_t *s, store_req_t *r);

/* Hands r back to the loop thread as STORE_STATUS_UNAVAILABLE with why as its reason. The store
 * no longer owns r. */
void store__complete_unavailable(store_t *s, store_req_t *r, const char *why);

/* Completes every queued request as unavailable with why (called while not READY). */
void store__drain_queue(store_t *s, const char *why);

/* Hands the nreqs requests reqs back to the loop thread as STORE_STATUS_OK. The store no longer
 * owns them. */
void store__finish_ok(store_t *s, store_req_t **reqs, size_t nreqs);

/* ---- store_conn.c: the connection ---- */

/* The monotonic clock in milliseconds. */
int64_t store__mono_ms(void);

/* PQexec and PQexecParams on s->conn with every wait bounded (pgwait.h: each answer may take
 * opts.reply_timeout_ms; past that the connection counts as lost). */
PGresult *store__exec0(store_t *s, const char *sql);
PGresult *store__exec1(store_t *s, const char *sql, int nparams, const char *const *params);

/* Closes the connection, if any. */
void store__disconnect(store_t *s);

/* Connects (no more than connect_timeout_s seconds, at least 2) and installs the notice
 * receiver. Returns 0 with s->conn ready, or -1 with s->conn NULL and err set. */
int store__open_conn(store_t *s, int connect_timeout_s, char *err, size_t errlen);

/* Drops a connection found lost (why: for the log), and starts connecting again. */
void store__lose_conn(store_t *s, const char *why);

/* Whether the idle connection is still good right now: a look at its socket that does not
 * wait. Returns 0, or -1 after store__lose_conn. */
int store__conn_alive(store_t *s);

/* Waits, while READY and idle, at most timeout_ms for a submission (the wake-up eventfd) or for
 * something on the connection's socket, which is read at once. */
void store__idle_wait(store_t *s, int timeout_ms);

/* Connects, takes the writer lock, migrates, reads epoch and last id.
 * Returns 0 when READY, 1 when standing by (connected, lock held elsewhere), -1 on error. */
int store__connect_step(store_t *s);

/* ---- store_resolve.c: a commit whose answer was lost ---- */

/* Finds out whether the batch reqs (sent at deadline_us minus the reply timeout) committed,
 * answers its requests, and leaves the connection closed. */
void store__resolve_unknown(store_t *s, store_req_t **reqs, size_t nreqs, int64_t deadline_us);

/* ---- store_commit.c: the commit of a batch ---- */

/* Commits reqs in one transaction, isolating a request PostgreSQL refuses so the others still
 * commit; each request completes (OK, rejected or unavailable). A commit whose answer was lost
 * goes to store__resolve_unknown; a lost connection makes the store CONNECTING. */
void store__process(store_t *s, store_req_t **reqs, size_t nreqs);

/* ---- store_scan.c: the scans the writer runs as submissions of their own ---- */

/* Runs the stall scan r (store_submit) and commits what it raises; r completes. */
void store__scan_stalls(store_t *s, store_req_t *r);

/* Runs the approval expire scan r (store_submit) and commits what it raises; r completes. */
void store__scan_approvals(store_t *s, store_req_t *r);

#endif
