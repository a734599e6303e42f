/* batch_sql: the statement a batch commits with (one for everything: the events' rows and
 * what they add to their runs, steps, agents, tool calls and sessions, as data-modifying CTEs),
 * the layout of its parameters, and its preparation on a connection. */
#ifndef ADW_BATCH_SQL_H
#define ADW_BATCH_SQL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "pgwait.h"
#include "rollup.h"
#include "upsert.h"

/* The prepared statement's name. */
#define BATCH_SQL_NAME "adw_batch"
/* The same statement without agents, tool calls and sessions, for a batch that has none: the
 * same parameters, those of the kinds it leaves out sent NULL (batch_sql_lean_kind). */
#define BATCH_LEAN_NAME "adw_batch_lean"

/* The check, sent first in a batch's pipeline, that none of its event_ids ($2, a text[]) is
 * stored below id $1, the first of the partition its ids go to (whose own unique index sees
 * the rest): on one that is, adw_event_id_taken fails the transaction with unique_violation
 * naming events_older_event_id. No rows otherwise. */
#define BATCH_OLDER_NAME "adw_older_event_ids"

/* The events' columns, the statement's first parameters ($1..$13). */
#define BATCH_EVENT_COLS 13
/* The aggregates' kinds, after the events' columns, in the statement's parameter order. */
#define BATCH_NKINDS 8
/* The statement's parameters: the events' columns, then each kind's (checked at compile time
 * against the columns' lists in batch_sql.c). */
#define BATCH_NPARAMS 85

/* The events' columns' types (PGBIN_OID_*), in the statement's parameter order. */
extern const uint32_t BATCH_EVENT_OIDS[BATCH_EVENT_COLS];

/* Kind k (0 <= k < BATCH_NKINDS) of the statement's parameters: returns its map in agg
 * (borrowed from agg) and sets *cols to its columns (static, ended by UPSERT_END). */
const rollup_map_t *batch_sql_kind(const rollup_t *agg, int k, const upsert_col_t **cols);

/* Whether the lean statement (BATCH_LEAN_NAME) writes kind k (0 <= k < BATCH_NKINDS). */
int batch_sql_lean_kind(int k);

/* Prepares the batch statements on a new connection conn (borrowed), each answer bounded by
 * wait. Returns 0, or -EIO with the reason in err. */
int batch_sql_prepare(PGconn *conn, const pgwait_t *wait, char *err, size_t errlen);

#endif
