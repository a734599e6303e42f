/* dbjson: the REST answers' pieces built from a query's result (api.c, approvals.c): a cell as
 * a JSON value, the error body, and whether the query met a database that has no such table yet
 * (asked by every reader of PostgreSQL in the gateway). Pure: no I/O.
 */
#ifndef ADW_GATEWAY_DBJSON_H
#define ADW_GATEWAY_DBJSON_H

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"

/* Each of these returns the cell (row, col) of r (borrowed) as a new JSON value (owned by the
 * caller): JSON null when the cell is NULL, else the value below; NULL when out of memory. */
json_t *dbjson_text(const PGresult *r, int row, int col); /* a string, the text as it is */
json_t *dbjson_int(const PGresult *r, int row, int col);  /* an integer (bigint text) */
json_t *dbjson_real(const PGresult *r, int row, int col); /* a number (numeric text) */
json_t *dbjson_ts(const PGresult *r, int row, int col);   /* RFC 3339 UTC, microseconds, from
                                                             Unix microseconds */
/* The JSON value of jsonb text; the text as a string should it not parse, which PostgreSQL's
 * output always does. */
json_t *dbjson_doc(const PGresult *r, int row, int col);

/* Returns 1 when the failed result r (borrowed) says a table does not exist (SQLSTATE 42P01:
 * a database that ingest has not created yet, or one older than the table), else 0 (also when
 * r is NULL: no result at all). */
int dbjson_undefined_table(const PGresult *r);

/* Replaces what body holds with {"error":msg} (msg borrowed). Out of memory, body is freed
 * (left empty). */
void dbjson_error(buf_t *body, const char *msg);

#endif
