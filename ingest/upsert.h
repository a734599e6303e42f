/* upsert: a batch's aggregates (rollup.h: runs, steps, agents, tool calls, sessions) as the
 * batch statement's binary array parameters, one array per column (pgbin.h has the formats).
 * Pure encoding: no I/O. Which columns each kind sends, and in what order, is batch_sql.h's. */
#ifndef ADW_UPSERT_H
#define ADW_UPSERT_H

#include <stdint.h>

#include "buf.h"
#include "rollup.h"

/* The columns an aggregate can send, each with its type (upsert_col_oid). */
typedef enum upsert_col {
    UPSERT_ADW_ID,
    UPSERT_KEY,
    UPSERT_STATUS,
    UPSERT_CURRENT_STEP,
    UPSERT_AGENT_TYPE,
    UPSERT_TOOL_NAME,
    UPSERT_AGENT_ID,
    UPSERT_N,
    UPSERT_COST,
    UPSERT_TOKENS,
    UPSERT_ITOK,
    UPSERT_OTOK,
    UPSERT_CRTOK,
    UPSERT_CCTOK,
    UPSERT_FIRST_TS,
    UPSERT_LAST_TS,
    UPSERT_DURATION,
    UPSERT_FIRST_ID,
    UPSERT_LAST_ID,
    UPSERT_UPDATED,
    UPSERT_STALLED,
    UPSERT_STOP_FAILURE,
    UPSERT_STOP_FAILURE_ID,
    UPSERT_OTEL_COST, /* the OTel spend (rollup.h's spend rule) */
    UPSERT_OTEL_TOKENS,
    UPSERT_OTEL_ITOK,
    UPSERT_OTEL_OTOK,
    UPSERT_OTEL_CRTOK,
    UPSERT_OTEL_CCTOK,
    UPSERT_REP_COST, /* the others' spend */
    UPSERT_REP_TOKENS,
    UPSERT_REP_ITOK,
    UPSERT_REP_OTOK,
    UPSERT_REP_CRTOK,
    UPSERT_REP_CCTOK,
    UPSERT_SESSION_RUN, /* a session's run */
    UPSERT_END,         /* ends a kind's list */
} upsert_col_t;

/* The most columns one kind sends (upsert_encode's bound). */
#define UPSERT_MAX_COLS 24

/* Returns the PostgreSQL type (a PGBIN_OID_*) of column c. */
uint32_t upsert_col_oid(upsert_col_t c);

/* Encodes the aggregates of m (borrowed) as binary arrays A[0..], one per column of cols (ended
 * by UPSERT_END, at most UPSERT_MAX_COLS columns); A's buffers (the caller's) are overwritten.
 * Returns the number of columns, or -1 (out of memory). */
int upsert_encode(buf_t *A, const rollup_map_t *m, const upsert_col_t *cols);

#endif
