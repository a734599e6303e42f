/* dbroute: read replicas. Knows the PostgreSQL streaming standbys the gateway may read
 * (ADW_GATEWAY_READ_URL) and tells each reading thread (the dbpool's workers, the subscriber's
 * hole fills) where a read needing the event ids up to `need` goes: a usable standby that
 * reaches need (dbchoice.h), on the thread's own connection to it, else the primary.
 *
 * A thread of its own looks at every standby each probe_ms, on one connection per standby:
 * one query reads pg_is_in_recovery(), the adw_meta epoch and max(id) of events (the reach).
 * A reading thread looks again itself, on its own connection, when it opens that connection
 * and when a read needs more than the last look showed (at most once per DBROUTE_RECHECK_MS
 * per standby), so a standby that keeps up takes reads of the newest events too. The primary's
 * epoch and the gateway's last seen id come from the subscriber (dbroute_seen).
 *
 * A read that fails on a standby is read again from the primary by its caller (dbroute_done
 * says so); a standby whose connection was lost is not chosen again before a look finds it
 * back. Connections to a standby that stopped being usable are closed on their thread's next
 * read. Thread-safe: every function may be called from any thread, except that a
 * dbroute_conns_t belongs to one thread.
 *
 * Metrics: adw_gateway_db_reads_total{target="primary|standby"}, adw_gateway_standbys_usable,
 * adw_gateway_db_standby_retries_total.
 */
#ifndef ADW_GATEWAY_DBROUTE_H
#define ADW_GATEWAY_DBROUTE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "dbchoice.h"
#include "metrics.h"

#define DBROUTE_PROBE_MS 200  /* default time between two looks at each standby */
#define DBROUTE_RECHECK_MS 20 /* a reading thread's own look, at most this often per standby */
#define DBROUTE_LOOK_TIMEOUT_MS 2000 /* longest wait for a look's answer */

typedef struct dbroute_t dbroute_t;

/* One of these per reading thread: its connections to the standbys (by index in the list),
 * opened on first use. Zero-initialised: none. Close with dbroute_conns_close. */
typedef struct dbroute_conns_t {
    PGconn *conn[DBCHOICE_STANDBYS_MAX];
} dbroute_conns_t;

typedef struct dbroute_options_t {
    const char *urls;   /* ADW_GATEWAY_READ_URL (copied; dbchoice_parse); NULL or "": none */
    int probe_ms;       /* between two looks at each standby (0: DBROUTE_PROBE_MS) */
    metrics_t *metrics; /* borrowed; NULL for none */
} dbroute_options_t;

/* Parses o->urls and starts the thread that looks at the standbys (none without standbys).
 * Returns NULL with the reason in err for a bad list (dbchoice_parse) or when out of
 * resources. */
dbroute_t *dbroute_new(const dbroute_options_t *o, char *err, size_t errlen);

/* Stops and joins the looking thread, closes its connections. Every reading thread must have
 * closed its dbroute_conns_t. Accepts NULL; nulls *r. */
void dbroute_destroy(dbroute_t **r);

/* The number of standbys listed. Accepts NULL (0). */
size_t dbroute_standbys(const dbroute_t *r);

/* The subscriber's position: the last event id handed to the event loop, and the primary's
 * epoch (0: unknown, then no standby is read). A new epoch replaces the position; within an
 * epoch it only grows. Accepts NULL. */
void dbroute_seen(dbroute_t *r, int64_t last_id, int64_t epoch);

/* The last event id seen (dbroute_seen): what a read of the current state needs. Accepts NULL
 * (0). */
int64_t dbroute_need(dbroute_t *r);

/* Where a read needing the ids up to need goes. Returns the index of a standby, with *conn set
 * to cs's connection to it (owned by cs; connected and looked at now when it was not open), or
 * -1: read from the primary. May block for a connection (DB_CONNECT_TIMEOUT_S) or a look
 * (DBROUTE_LOOK_TIMEOUT_MS). Closes cs's connections to standbys no longer usable. Accepts a
 * NULL r (-1). */
int dbroute_standby(dbroute_t *r, dbroute_conns_t *cs, int64_t need, PGconn **conn);

/* Reports how the read on standby (from dbroute_standby, on cs) went: failed is 1 when one of
 * its queries failed. Returns 0 (counted as a standby read), or 1 when failed: the caller reads
 * again from the primary; a lost connection is closed and the standby not chosen until a look
 * finds it back. */
int dbroute_done(dbroute_t *r, dbroute_conns_t *cs, int standby, int failed);

/* Counts a read made on the primary. Accepts NULL. */
void dbroute_primary_read(dbroute_t *r);

/* Closes every connection in cs. Accepts NULL. */
void dbroute_conns_close(dbroute_conns_t *cs);

#endif
