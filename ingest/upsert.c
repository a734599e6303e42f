#include "upsert.h"

#include "pgbin.h"

uint32_t upsert_col_oid(upsert_col_t c)
{
    switch (c) {
    case UPSERT_ADW_ID:
    case UPSERT_KEY:
    case UPSERT_STATUS:
    case UPSERT_CURRENT_STEP:
    case UPSERT_AGENT_TYPE:
    case UPSERT_TOOL_NAME:
    case UPSERT_AGENT_ID:
    case UPSERT_STOP_FAILURE:
    case UPSERT_SESSION_RUN:
        return PGBIN_OID_TEXT;
    case UPSERT_COST:
    case UPSERT_OTEL_COST:
    case UPSERT_REP_COST:
        return PGBIN_OID_FLOAT8;
    case UPSERT_FIRST_TS:
    case UPSERT_LAST_TS:
    case UPSERT_UPDATED:
        return PGBIN_OID_TIMESTAMPTZ;
    case UPSERT_STALLED:
        return PGBIN_OID_BOOL;
    default:
        return PGBIN_OID_INT8;
    }
}

/* Appends column c of aggregate a to b (binary, no text to format here or to parse in
 * PostgreSQL); sets *has_null for an SQL NULL. Returns 0 or nonzero (out of memory). */
static int agg_field(buf_t *b, upsert_col_t c, const rollup_agg_t *a, int *has_null)
{
    switch (c) {
    case UPSERT_ADW_ID:
        return pgbin_text(b, a->adw_id, has_null);
    case UPSERT_KEY:
        return pgbin_text(b, a->key, has_null);
    case UPSERT_STATUS:
        return pgbin_text(b, a->status, has_null);
    case UPSERT_CURRENT_STEP:
        return pgbin_text(b, a->current_step, has_null);
    case UPSERT_AGENT_TYPE:
        return pgbin_text(b, a->agent_type, has_null);
    case UPSERT_TOOL_NAME:
        return pgbin_text(b, a->tool_name, has_null);
    case UPSERT_AGENT_ID:
        return pgbin_text(b, a->agent_id, has_null);
    case UPSERT_STOP_FAILURE:
        return pgbin_text(b, a->stop_failure, has_null);
    case UPSERT_SESSION_RUN:
        return pgbin_text(b, a->session_run, has_null);
    case UPSERT_N:
        return pgbin_int8(b, a->n);
    case UPSERT_COST:
        return pgbin_float8(b, a->cost);
    case UPSERT_TOKENS:
        return pgbin_int8(b, a->tokens);
    case UPSERT_ITOK:
        return pgbin_int8(b, a->itok);
    case UPSERT_OTOK:
        return pgbin_int8(b, a->otok);
    case UPSERT_CRTOK:
        return pgbin_int8(b, a->crtok);
    case UPSERT_CCTOK:
        return pgbin_int8(b, a->cctok);
    case UPSERT_OTEL_COST:
        return pgbin_float8(b, a->otel.cost);
    case UPSERT_OTEL_TOKENS:
        return pgbin_int8(b, a->otel.tokens);
    case UPSERT_OTEL_ITOK:
        return pgbin_int8(b, a->otel.itok);
    case UPSERT_OTEL_OTOK:
        return pgbin_int8(b, a->otel.otok);
    case UPSERT_OTEL_CRTOK:
        return pgbin_int8(b, a->otel.crtok);
    case UPSERT_OTEL_CCTOK:
        return pgbin_int8(b, a->otel.cctok);
    case UPSERT_REP_COST:
        return pgbin_float8(b, a->rep.cost);
    case UPSERT_REP_TOKENS:
        return pgbin_int8(b, a->rep.tokens);
    case UPSERT_REP_ITOK:
        return pgbin_int8(b, a->rep.itok);
    case UPSERT_REP_OTOK:
        return pgbin_int8(b, a->rep.otok);
    case UPSERT_REP_CRTOK:
        return pgbin_int8(b, a->rep.crtok);
    case UPSERT_REP_CCTOK:
        return pgbin_int8(b, a->rep.cctok);
    case UPSERT_FIRST_TS:
        return pgbin_timestamptz(b, a->first_ts);
    case UPSERT_LAST_TS:
        return pgbin_timestamptz(b, a->last_ts);
    case UPSERT_UPDATED:
        return pgbin_timestamptz(b, a->updated_us);
    case UPSERT_FIRST_ID:
        return pgbin_int8(b, a->first_id);
    case UPSERT_LAST_ID:
        return pgbin_int8(b, a->last_id);
    case UPSERT_STALLED:
        if (!a->stalled_set) {
            *has_null = 1;
            return pgbin_null(b);
        }
        return pgbin_bool(b, a->stalled);
    case UPSERT_DURATION:
        if (!a->has_duration) {
            *has_null = 1;
            return pgbin_null(b);
        }
        return pgbin_int8(b, a->duration_ms);
    case UPSERT_STOP_FAILURE_ID:
        if (!a->stop_failure_id) {
            *has_null = 1;
            return pgbin_null(b);
        }
        return pgbin_int8(b, a->stop_failure_id);
    default:
        return -1;
    }
}

int upsert_encode(buf_t *A, const rollup_map_t *m, const upsert_col_t *cols)
{
    int ncols = 0, rc = 0, nulls[UPSERT_MAX_COLS] = {0};
    while (cols[ncols] != UPSERT_END)
        ncols++;
    for (int c = 0; c < ncols; c++)
        rc |= pgbin_array_begin(&A[c], upsert_col_oid(cols[c]));
    for (size_t i = 0; i < m->cap && !rc; i++) {
        const rollup_agg_t *a = &m->slots[i];
        if (!a->adw_id)
            continue;
        for (int c = 0; c < ncols; c++)
            rc |= agg_field(&A[c], cols[c], a, &nulls[c]);
    }
    if (rc)
        return -1;
    for (int c = 0; c < ncols; c++)
        pgbin_array_end(&A[c], (uint32_t)m->used, nulls[c]);
    return ncols;
}
