/* fanout: the clients, each with its filter and backlog of shared frames, and the delivery of
 * every event, in id order, to the clients that want it.
 *
 * Single-threaded: only the event loop thread calls these functions. No I/O: the fanout queues
 * frames and calls the wake callback when a client has something to write (or must be closed);
 * the WebSocket layer then takes frames one at a time with fanout_pop.
 *
 * Bounds: a client's backlog (frames queued, including live events held during a replay) is
 * limited to max_queue bytes of payload. A client past it is culled: its backlog is dropped,
 * it is marked for closing with 4008 "slow consumer; last_id=N" (N the last event it was
 * given), and nobody else waits for it.
 *
 * Replay hand-over: fanout_replay_begin fixes the replay's upper bound at the last id the
 * fanout has published; live events after it are held for the client until fanout_replay_end
 * and then follow the replayed ones, so the client sees each id once and in order.
 */
#ifndef ADW_GATEWAY_FANOUT_H
#define ADW_GATEWAY_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "frame.h"
#include "metrics.h"

#define FANOUT_CLOSE_SLOW 4008
#define FANOUT_REASON_MAX 120 /* a close reason fits a control frame (125 bytes with the code) */
#define FANOUT_RING_INLINE 4  /* backlog slots inside the client: an idle one allocates none */
#define FANOUT_RING_KEEP 256  /* a drained backlog larger than this is given back */

typedef struct fanout_t fanout_t;

/* One of these per WebSocket client, embedded in its session and registered with fanout_add.
 * Fields are read-only outside fanout.c except filter and user. */
typedef struct fanout_client_t {
    struct fanout_client_t *prev, *next; /* the registry */
    filter_t filter;                     /* which events it wants */
    void *user;                          /* handed to the wake callback (the connection) */
    int64_t cursor;                      /* events with an id at or below this are not queued */
    int64_t last_sent;                   /* the last event id taken with fanout_pop */
    frame_t **ring;                      /* backlog, a ring of cap frame references: small, or
                                            allocated once more than FANOUT_RING_INLINE wait */
    size_t head, count, cap;
    frame_t *small[FANOUT_RING_INLINE];
    size_t bytes;  /* payload bytes in the ring and in pend */
    int replaying; /* between fanout_replay_begin and fanout_replay_end */
    int64_t replay_upto;
    frame_t **pend; /* live events held while replaying */
    size_t npend, pcap;
    int close_code;     /* nonzero once the client must be closed */
    char *close_reason; /* with close_code: owned, at most FANOUT_REASON_MAX bytes; NULL when
                           memory ran out (use fanout_close_reason) */
} fanout_client_t;

typedef struct fanout_options_t {
    size_t max_queue;         /* bytes of backlog per client before it is culled */
    void (*wake)(void *user); /* a client has something to write or must close */
    metrics_t *metrics;       /* borrowed; NULL for none */
} fanout_options_t;

/* Returns a new fanout with no clients and no position, or NULL when out of memory. */
fanout_t *fanout_new(const fanout_options_t *o);

/* Frees the fanout; clients must have been removed. Accepts NULL; nulls *f. */
void fanout_destroy(fanout_t **f);

/* Registers c (caller-owned, zeroed or not) with an empty filter, receiving live events
 * published from now on. */
void fanout_add(fanout_t *f, fanout_client_t *c, void *user);

/* Unregisters c and frees its backlog and filter. Safe on a client never added (zeroed). */
void fanout_remove(fanout_t *f, fanout_client_t *c);

/* Sets the position (the last id already published) if none was set, and the epoch. */
void fanout_position(fanout_t *f, int64_t last_id, int64_t epoch);

/* The database changed: the position becomes 0 in the new epoch and every client's cursor 0. */
void fanout_reset(fanout_t *f, int64_t epoch);

/* The first registered client (follow ->next), or NULL. */
fanout_client_t *fanout_clients(fanout_t *f);

/* 1 once a position is set. */
int fanout_initialized(const fanout_t *f);
int64_t fanout_last_id(const fanout_t *f);
int64_t fanout_epoch(const fanout_t *f);
size_t fanout_count(const fanout_t *f);

/* Publishes the next event (id above the position; the reference stays the caller's): queues
 * it to every open client whose cursor is below its id and whose filter matches, culling those
 * that pass max_queue. */
void fanout_publish(fanout_t *f, frame_t *frame);

/* Publishes the next n events (ids ascending, each above the position; the references stay
 * the caller's) as n calls of fanout_publish would, but visits each client once for all of
 * them and wakes it once: with 1,000 clients and a commit of 20 events, the fan-out looks at
 * each client 20 times less often. */
void fanout_publish_batch(fanout_t *f, frame_t *const *frames, size_t n);

/* Queues a message that is not an event (hello, pong, ...) to c, taking the reference. It goes
 * out after what is queued already, even during a replay. Does nothing (but release it) once
 * c is closing. Counts toward max_queue. */
void fanout_send(fanout_t *f, fanout_client_t *c, frame_t *frame);

/* Takes the next frame to write to c (the caller owns the reference), or NULL when none. */
frame_t *fanout_pop(fanout_client_t *c);

/* The next frame fanout_pop would take (borrowed; still queued), or NULL. */
frame_t *fanout_peek(const fanout_client_t *c);

/* 1 when c has frames queued. */
int fanout_pending(const fanout_client_t *c);

/* Marks c for closing with code and reason (copied, truncated to FANOUT_REASON_MAX), drops its
 * backlog, and wakes it. A client already closing keeps its first code. */
void fanout_close(fanout_t *f, fanout_client_t *c, int code, const char *reason);

/* The reason given with c's close code (borrowed from c; "" when none). */
const char *fanout_close_reason(const fanout_client_t *c);

/* Starts a replay for c from since: returns the upper bound (the larger of since and the
 * position); events up to it come from fanout_replay_add, live ones after it are held. A replay
 * already running is abandoned (its held events dropped: the new range covers them). */
int64_t fanout_replay_begin(fanout_t *f, fanout_client_t *c, int64_t since);

/* Queues a replayed event (taking the reference), in order. */
void fanout_replay_add(fanout_t *f, fanout_client_t *c, frame_t *frame);

/* Ends the replay: queues msg (the "replayed" message; taking the reference), then the held
 * live events. */
void fanout_replay_end(fanout_t *f, fanout_client_t *c, frame_t *msg);

#endif
