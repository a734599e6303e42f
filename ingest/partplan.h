/* partplan: the arithmetic of the events table's id-range partitions and of the retention
 * setting (proto/schema.sql, "Partitions"). Pure: no I/O, no clock (the caller passes times).
 */
#ifndef ADW_PARTPLAN_H
#define ADW_PARTPLAN_H

#include <stddef.h>
#include <stdint.h>

#define PARTPLAN_EVENTS_DEFAULT 4000000 /* ids per partition unless configured */
#define PARTPLAN_EVENTS_MIN 1000        /* the smallest partition size accepted */

/* Parses a retention: "30d", "12h", "90m", "3600s" or bare seconds (a whole number, at most
 * ten years). NULL, "" and "0" (or "0d", ...) mean keep everything: *seconds = 0.
 * Returns 0 with *seconds set, or -EINVAL with the reason in err (*seconds untouched). */
int partplan_parse_retention(const char *s, int64_t *seconds, char *err, size_t errlen);

/* The next partition the writer must create: the partitions reach up to top (the exclusive
 * upper bound of the highest one; 0 when there is none), the last committed id is last_id, a
 * batch holds at most batch_max events, and a partition holds size ids. The partitions must
 * cover every id the next batch may take and one whole partition beyond it:
 * top >= last_id + 1 + batch_max + size. Returns 1 with [*from, *to) the partition to create
 * next (from = top, or 1 when there is none), or 0 when none is needed (or the ids would pass
 * INT64_MAX). */
int partplan_next(int64_t top, int64_t last_id, int64_t batch_max, int64_t size, int64_t *from,
                  int64_t *to);

/* Reads a range partition's bound as pg_get_expr(relpartbound) writes it for a bigint key,
 * "FOR VALUES FROM ('1') TO ('4000001')" (quotes optional). Returns 0 with [*from, *to), or
 * -EINVAL (MINVALUE, MAXVALUE, DEFAULT or anything else). */
int partplan_parse_bound(const char *expr, int64_t *from, int64_t *to);

/* Whether the retention may drop a partition [from, to) whose newest event was received at
 * newest_us (0: the partition is empty), when the last committed id is last_id, the time is
 * now_us (same clock as newest_us) and retention_s > 0 seconds are kept: only a partition wholly
 * below the last committed id (to <= last_id: it holds neither the next id nor the last one, so
 * max(id), where a starting writer and the gateways take up, always stays) and whose newest
 * event is older than the retention. Returns 1 or 0. */
int partplan_droppable(int64_t to, int64_t last_id, int64_t newest_us, int64_t now_us,
                       int64_t retention_s);

#endif
