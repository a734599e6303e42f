/* partition: the writer's upkeep of the events table's id-range partitions (partplan.h has the
 * arithmetic): partitions created ahead of the next id, so that no insert ever lacks one, and
 * the retention, which drops whole partitions whose newest event is older than it keeps, with
 * the runs left without an event (proto/schema.sql, "Partitions"). Used by the writer thread
 * only, on the connection it owns, between batches.
 */
#ifndef ADW_PARTITION_H
#define ADW_PARTITION_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "pgwait.h"

typedef struct partition_options_t {
    int64_t size;        /* ids per partition (>= PARTPLAN_EVENTS_MIN) */
    int64_t batch_max;   /* most events one batch holds */
    int64_t retention_s; /* drop partitions whose newest event is older (0: keep everything) */
    pgwait_t wait;       /* the bound on each answer */
    metrics_t *metrics;  /* registry for adw_ingest_partitions*; may be NULL */
} partition_options_t;

/* One of these per writer: what it knows of the partitions (read again on each connection). */
typedef struct partition_t partition_t;

/* Returns a new partition_t (the caller owns it: partition_destroy), or NULL when out of
 * memory. */
partition_t *partition_new(const partition_options_t *o);

/* Frees p. Accepts NULL and sets *p to NULL. */
void partition_destroy(partition_t **p);

/* On a new connection conn (borrowed, holding the writer lock): reads the partitions of events,
 * then creates those needed ahead of last_id as partition_ensure. Returns 0, or -EIO with the
 * reason in err (events is not partitioned, a bound is not a plain id range, or a statement
 * failed). */
int partition_sync(partition_t *p, PGconn *conn, int64_t last_id, char *err, size_t errlen);

/* Creates partitions, each in a transaction of its own, until they cover every id the next
 * batch after last_id may take and one whole partition beyond (partplan_next). Nothing is sent
 * when none is needed. Returns 0, or -EIO with the reason in err (the partitions made before
 * the failure stay). */
int partition_ensure(partition_t *p, PGconn *conn, int64_t last_id, char *err, size_t errlen);

/* Where a batch taking the ids from..upto (inclusive, from <= upto, from above every stored id)
 * must look for its event_ids stored before: 0 when one partition, the lowest, holds those ids
 * (it then holds every stored id too, and its unique index on event_id finds a duplicate: no
 * lookup needed); the first id of the partition that holds them when it is not the lowest
 * (its unique index finds a duplicate stored in it, and only the ids below need a look; none
 * is stored above it); -1 when no one partition holds them (or p knows none): look everywhere.
 * Reads only what p knows (no query). */
int64_t partition_dedup_floor(const partition_t *p, int64_t from, int64_t upto);

/* The retention, when configured: drops, oldest first and in one transaction, the partitions
 * partplan_droppable allows at now_us (microseconds since the epoch) until the first that
 * must stay; then sets adw_meta's first_kept_id to that one's first id and deletes the runs
 * whose last event is below it, with their steps, agents, tool calls, sessions and approvals
 * (adw_approvals, when it exists). Logs what it dropped. Returns the number of partitions
 * dropped (0: none, or no retention), or -EIO with the reason in err (nothing dropped; a lock
 * not granted within the wait bound counts as a failure, tried again at the next check). */
int partition_retain(partition_t *p, PGconn *conn, int64_t last_id, int64_t now_us, char *err,
                     size_t errlen);

#endif
