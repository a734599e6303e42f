#include "kept.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dbjson.h"
#include "err.h"

int kept_first_id(PGconn *conn, int64_t *first, char *err, size_t errlen)
{
    PGresult *r = db_exec(conn, "SELECT value FROM adw_meta WHERE key = 'first_kept_id'", 0, NULL,
                          DB_PING_TIMEOUT_MS);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int missing = dbjson_undefined_table(r); /* no adw_meta yet: nothing stored */
        if (!missing) {
            const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
            set_err(err, errlen, "reading first_kept_id: %.*s", (int)strcspn(msg, "\n"), msg);
        }
        PQclear(r);
        *first = 1;
        return missing ? 0 : -EIO;
    }
    *first = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 1;
    if (*first < 1)
        *first = 1;
    PQclear(r);
    return 0;
}

int kept_complete(int64_t since, int64_t first)
{
    return since >= first - 1;
}

int kept_json(int64_t since, int64_t first, char *out, size_t outlen)
{
    if (kept_complete(since, first))
        return snprintf(out, outlen, ",\"complete\":true");
    return snprintf(out, outlen, ",\"complete\":false,\"first_id\":%" PRId64, first);
}
