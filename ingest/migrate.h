/* migrate: the versioned PostgreSQL schema, applied by the ingest that holds the writer lock. */
#ifndef ADW_MIGRATE_H
#define ADW_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* The newest schema version this program knows. */
int migrate_latest(void);

/* Brings the database to migrate_latest(), one transaction per version.
 * Returns 0, -EPROTO when the database has a newer schema than this program knows (err says
 * which; the caller must refuse to start), or -EIO on a database error (err has the message). */
int migrate_apply(PGconn *conn, char *err, size_t errlen);

/* Reads the database's epoch (a random value chosen when the schema was created).
 * Returns 0 or -EIO. */
int migrate_epoch(PGconn *conn, int64_t *epoch, char *err, size_t errlen);

#endif
