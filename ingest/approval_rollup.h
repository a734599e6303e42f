/* approval_rollup: what a batch's approval events write to adw_approvals, in the batch's own
 * transaction (proto/schema.sql): approval_requested inserts the row ('pending'); the first
 * approval_decided or approval_expired of an approval updates it, only while it is 'pending'.
 * Only requests ingest raised itself (store_req_t.approvals) count: an event of the same name
 * sent by a client is stored as any event and changes no approval.
 *
 * Writer thread only, on the connection it owns, in pipeline mode.
 */
#ifndef ADW_APPROVAL_ROLLUP_H
#define ADW_APPROVAL_ROLLUP_H

#include <libpq-fe.h>
#include <stddef.h>

#include "buf.h"
#include "store.h"

/* The parameters of the two statements, as text[] literals. One per writer; zero-initialise,
 * free with approval_rollup_free. */
typedef struct approval_rollup_t {
    buf_t ins[11]; /* approval_requested rows */
    buf_t upd[8];  /* decided / expired updates */
    size_t nins, nupd;
} approval_rollup_t;

/* Encodes the fresh approval events of reqs[0..nreqs) (ids assigned). Returns 0, or -ENOMEM. */
int approval_rollup_encode(approval_rollup_t *a, store_req_t **reqs, size_t nreqs);

/* Sends (PQsendQueryParams, in pipeline mode on conn) the INSERT and the UPDATE that the
 * encoded events need. Returns the number of statements sent (0, 1 or 2), or -1 when sending
 * failed. */
int approval_rollup_send(approval_rollup_t *a, PGconn *conn);

/* Frees a's buffers. */
void approval_rollup_free(approval_rollup_t *a);

#endif
