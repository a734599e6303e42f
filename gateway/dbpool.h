/* dbpool: worker threads that run PostgreSQL jobs off the event loop.
 *
 * Each worker owns one blocking connection (opened on first use, reopened when it goes bad).
 * A job's run function executes on a worker; its done function then executes on the thread
 * that calls dbpool_complete (the event loop), which the pool wakes with the wake callback.
 * The queue of waiting jobs is bounded: past max_jobs, dbpool_submit refuses (the caller
 * answers 503 or closes).
 *
 * With a dbroute (read replicas), a worker reads each job from a standby that reaches the
 * job's need (dbroute.h), on a connection of its own to it, else from the primary; a job one
 * of whose queries failed on a standby runs again on the primary (its run function must then
 * start over: it is called a second time with the primary's connection).
 */
#ifndef ADW_GATEWAY_DBPOOL_H
#define ADW_GATEWAY_DBPOOL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "dbroute.h"

typedef struct dbpool_t dbpool_t;
typedef struct dbjob_t dbjob_t;

/* One of these per job in flight, embedded first in the caller's job struct. */
struct dbjob_t {
    void (*run)(dbjob_t *job, PGconn *conn); /* on a worker, with a usable connection */
    void (*done)(dbjob_t *job);              /* on the completing thread; frees the job */
    int64_t need;  /* the newest event id the job must see (0: the id last seen when submitted) */
    int failed;    /* set by the pool when no connection could be had (run not called) */
    char err[256]; /* why, when failed */
    dbjob_t *next; /* the pool's queues */
};

typedef struct dbpool_options_t {
    const char *conninfo;    /* PostgreSQL (copied) */
    int threads;             /* workers, 1..64 */
    size_t max_jobs;         /* jobs waiting to run before dbpool_submit refuses */
    void (*wake)(void *arg); /* called from a worker after a job finishes */
    void *wake_arg;
    dbroute_t *route; /* borrowed; NULL: every job on conninfo */
} dbpool_options_t;

/* Starts the workers. Returns NULL with the reason in err. */
dbpool_t *dbpool_new(const dbpool_options_t *o, char *err, size_t errlen);

/* Stops the workers: the queries still running are cancelled (PQcancel), so each job ends
 * promptly with its query failed; then calls done for every job not yet completed, with failed
 * set for those that never ran. Accepts NULL; nulls *p. */
void dbpool_destroy(dbpool_t **p);

/* Queues job (borrowed until its done runs). Returns 0, or -EAGAIN when the queue is full (then
 * done is never called for it). */
int dbpool_submit(dbpool_t *p, dbjob_t *job);

/* Asks PostgreSQL to cancel job's query if a worker is running it now (from a thread of the
 * pool's, so this never blocks); the job then completes as usual, its query failed. A job still
 * queued or already finished is left alone: its done function decides what its result is worth.
 * The pool keeps no pointer to job after its done function runs. */
void dbpool_cancel(dbpool_t *p, dbjob_t *job);

/* Calls done for each finished job, in completion order. */
void dbpool_complete(dbpool_t *p);

#endif
