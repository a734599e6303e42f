/* batch: one group commit of the writer. A batch is the requests the writer took from its queue
 * in one go; batch_commit gives their fresh events contiguous ids after the last committed one,
 * writes them with what they add to their runs, steps, agents and tool calls (rollup.h) in one
 * transaction, and encodes each fresh event for publishing while PostgreSQL works.
 *
 * Small batches go in as one prepared statement of binary array parameters (one round trip);
 * large ones by a binary COPY, then the same statement for the aggregates (pgbin.h has the
 * formats). Used by the writer thread only, on the connection it owns.
 */
#ifndef ADW_BATCH_H
#define ADW_BATCH_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "pgwait.h"
#include "store.h"

typedef enum batch_result {
    BATCH_OK,            /* committed: ids, fresh flags and frames filled */
    BATCH_NOT_COMMITTED, /* nothing committed (err says why); the connection may be lost */
    BATCH_SEND_FAILED,   /* nothing committed, and what reached the server is unknown: the
                            caller closes the connection (a new one takes the lock again) */
    BATCH_UNKNOWN,       /* the connection went before the COMMIT's answer: may be committed */
    BATCH_DATA_ERROR,    /* nothing committed: PostgreSQL refused the data (err says why) */
    BATCH_DUPLICATE,     /* nothing committed: an event_id of the batch is stored already (the
                            attempt without the lookup hit a partition's unique index, or the
                            check of the partitions below found it) */
} batch_result_t;

/* batch_commit's dedup: look the batch's event_ids up first, across every partition. */
#define BATCH_LOOKUP INT64_C(-1)

typedef struct batch_options_t {
    pgwait_t wait;         /* the bound on each answer */
    double run_budget_usd; /* a run's budget when its adw_start gives none (0: none; budget.h) */
    int enforce_budget;    /* a hook's PreToolUse of a run over budget gets a budget_denied */
    /* The series a commit updates; each may be NULL. */
    metric_t *stored, *duplicates, *batches, *batch_size, *commit_latency, *lookups;
} batch_options_t;

/* One of these per writer: the buffers a batch is encoded into, kept from one to the next. */
typedef struct batch_t batch_t;

/* Returns a new batch_t (owned by the caller, batch_destroy), or NULL when out of memory. */
batch_t *batch_new(const batch_options_t *o);

/* Frees b. Accepts NULL and sets *b to NULL. */
void batch_destroy(batch_t **b);

/* Prepares the batch's statements on a new connection conn (borrowed). Returns 0, or -EIO with
 * the reason in err. */
int batch_prepare(const batch_t *b, PGconn *conn, char *err, size_t errlen);

/* Commits reqs[0..nreqs) (borrowed; the requests' outputs are written) on conn (borrowed, with
 * the statements prepared) in one transaction. *last_id is the last committed id; the fresh
 * events get the ids after it, and an event whose event_id is stored already, or came earlier
 * in the batch, gets that event's id and is not fresh. How stored event_ids are found
 * (partition_dedup_floor tells which; proto/decisions.md): with dedup BATCH_LOOKUP they are
 * looked up first (one more round trip); with 0 only the unique index of the partition the ids
 * go to finds one; with dedup > 0 (the first id of that partition) that index, and a check of
 * the ids below dedup sent first in the batch's own pipeline (no round trip of its own). A
 * duplicate found by an index or the check makes the result BATCH_DUPLICATE: the caller tries
 * again with BATCH_LOOKUP. The events ingest
 * raises about budgets (budget.h) go into the requests' raised lists, with the ids right after the
 * events that raised them. Returns BATCH_OK with *last_id set to the new last id, or another result
 * with err set (see batch_result_t). */
batch_result_t batch_commit(batch_t *b, PGconn *conn, store_req_t **reqs, size_t nreqs,
                            int64_t dedup, int64_t *last_id, char *err, size_t errlen);

#endif
