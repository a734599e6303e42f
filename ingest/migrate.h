/* migrate: the versioned PostgreSQL schema, applied by the ingest that holds the writer lock. */
#ifndef ADW_MIGRATE_H
#define ADW_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* The connection, and how to run a statement on it: exec (when not NULL) answers as PQexec
 * does (nparams 0: the simple protocol, several statements allowed) or PQexecParams, and may
 * bound its wait; else PQexec / PQexecParams are used. */
typedef struct migrate_db_t {
    PGconn *conn;
    PGresult *(*exec)(void *ctx, const char *sql, int nparams, const char *const *params);
    void *ctx;
} migrate_db_t;

/* The newest schema version this program knows. */
int migrate_latest(void);

/* Brings the database to migrate_latest(), one transaction per version.
 * Returns 0, -EPROTO when the database has a newer schema than this program knows (err says
 * which; the caller must refuse to start), or -EIO on a database error (err has the message). */
int migrate_apply(const migrate_db_t *db, char *err, size_t errlen);

/* Reads the database's epoch (a random value chosen when the schema was created).
 * Returns 0 or -EIO. */
int migrate_epoch(const migrate_db_t *db, int64_t *epoch, char *err, size_t errlen);

#endif
