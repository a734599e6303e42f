/* replay: sends a client the stored events it asked for with `since`, read from PostgreSQL in
 * pages on the dbpool's workers, then hands it over to live delivery (fanout_replay_*).
 *
 * Loop-thread only. Pages are fetched one at a time and only while the client's backlog is
 * below half of max_queue, so a replay of any length never holds more than about max_queue
 * bytes for a client and never delays anybody else; replay_pump asks for the next page once
 * the client has drained. A failed read closes the client with 1011 (it resumes with since).
 *
 * Admission (replayq.h): at most max_active pages are being read or queued on the pool at once,
 * whoever they are for; a replay waits for its turn before each page, in FIFO order, behind those
 * already waiting, so a recovery storm of thousands of replays puts at most max_active jobs on
 * the pool (whose threads bound the queries running) and is never refused or closed for it. A
 * client whose since is at or above the gateway's position needs no read and no turn. A page the
 * pool cannot queue (its queue full of REST requests) waits at the head of the line for
 * replayer_pump.
 */
#ifndef ADW_GATEWAY_REPLAY_H
#define ADW_GATEWAY_REPLAY_H

#include <stdint.h>

#include "dbpool.h"
#include "fanout.h"
#include "filter.h"
#include "metrics.h"

#define REPLAY_PAGE 256          /* events per query */
#define REPLAY_CLOSE_FAILED 1011 /* close code when the database cannot serve a replay */

typedef struct replayer_t replayer_t;
typedef struct replay_t replay_t;

typedef struct replayer_options_t {
    fanout_t *fanout;   /* borrowed */
    dbpool_t *pool;     /* borrowed */
    size_t max_queue;   /* the fanout's per-client bound, for flow control */
    size_t max_active;  /* pages on the pool at once (ADW_GATEWAY_MAX_REPLAYS); 0 counts as 1 */
    metrics_t *metrics; /* borrowed; NULL for none */
} replayer_options_t;

/* Returns a new replayer, or NULL when out of memory. */
replayer_t *replayer_new(const replayer_options_t *o);

/* Frees it; every replay must have ended or been cancelled. Accepts NULL; nulls *rp. */
void replayer_destroy(replayer_t **rp);

/* Starts replaying to c the events matching filter (borrowed; copied) with id > since, up to
 * the fanout's position (fanout_replay_begin), then ends with a {"type":"replayed",...}
 * message. *slot (owned by the caller, e.g. in the session) holds the replay while it runs and
 * is set to NULL when it ends; a replay already in *slot is cancelled first. Returns 0, or
 * -ENOMEM (c is closed with 1011). */
int replay_start(replayer_t *rp, fanout_client_t *c, const filter_t *filter, int64_t since,
                 replay_t **slot);

/* Abandons the replay in *slot (the client went away, or the database was replaced): a page
 * being read has its query cancelled and its rows discarded. Sets *slot to NULL. Accepts NULL. */
void replay_cancel(replay_t **slot);

/* Asks for the next page if the replay was paused for c's backlog to drain and it has. */
void replay_pump(replay_t *r);

/* Tries again to queue the pages waiting for their turn, when a slot is free; for the loop to
 * call after the pool has completed jobs (its queue may have room again). Accepts NULL. */
void replayer_pump(replayer_t *rp);

#endif
