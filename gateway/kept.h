/* kept: what the database still keeps of the event ids. The retention (ingest) drops whole
 * partitions of old events and records in adw_meta the first id it kept; a read that starts
 * below it is incomplete: the replayed message and the REST event reads say so
 * (proto/websocket.md, proto/http.md).
 */
#ifndef ADW_GATEWAY_KEPT_H
#define ADW_GATEWAY_KEPT_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* Reads adw_meta's first_kept_id on conn (borrowed) into *first: 1 when the database has none
 * (never trimmed, or not migrated yet). Returns 0, or -EIO with the reason in err. */
int kept_first_id(PGconn *conn, int64_t *first, char *err, size_t errlen);

/* Whether the events after since are all still there when the first kept id is first: 1 unless
 * since + 1 < first (the ids in between were dropped). */
int kept_complete(int64_t since, int64_t first);

/* Appends to out (outlen bytes, NUL-terminated) the JSON members that say so, after a comma:
 * ,"complete":true  or  ,"complete":false,"first_id":<first>. Returns the length written, as
 * snprintf. */
int kept_json(int64_t since, int64_t first, char *out, size_t outlen);

#endif
