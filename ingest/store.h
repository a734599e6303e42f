/* store: the single writer of the database. A thread of its own owns the PostgreSQL
 * connection, holds the writer advisory lock (a second ingest waits as a hot standby),
 * applies migrations, and commits queued requests in group commits: while one transaction
 * commits, the next batch gathers in the queue. Ids are assigned here, contiguous and
 * increasing in commit order.
 *
 * Between batches (and on each new connection) the writer keeps the events table's partitions
 * ahead of the next id, and every retain_every_ms applies the retention (partition.h).
 *
 * The loop thread submits requests and collects them back once their outcome is known; an
 * eventfd (store_fd) becomes readable when completed requests are waiting.
 */
#ifndef ADW_STORE_H
#define ADW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"
#include "metrics.h"

typedef enum store_state {
    STORE_CONNECTING = 0, /* not connected yet, or reconnecting */
    STORE_STANDBY,        /* connected; another ingest holds the writer lock */
    STORE_READY,          /* connected, leader, schema current: submissions are taken */
    STORE_FATAL,          /* cannot ever work (schema too new): the program must exit */
} store_state_t;

typedef enum store_status {
    STORE_STATUS_OK = 0,      /* every event committed (or found already stored) */
    STORE_STATUS_UNAVAILABLE, /* nothing committed: the database is unavailable, retry later */
    STORE_STATUS_REJECTED,    /* nothing committed: PostgreSQL refused the data (err says why) */
} store_status_t;

/* One of these per submission (an HTTP request or a ZeroMQ message). The submitter allocates
 * it with store_req_new and owns it again once it comes back from store_completed. */
typedef struct store_req_t {
    struct store_req_t *next; /* queue link; owned by whoever holds the request */
    adw_event_t *events;      /* the validated events; owned by the request */
    size_t nevents;
    int64_t *ids;          /* out: the id of each event (new or the earlier one's) */
    unsigned char *fresh;  /* out: 1 when this request stored the event (publish it) */
    buf_t frames;          /* out: each fresh event as a msgpack map, back to back */
    size_t *frame_end;     /* out: end offset in frames of each event's map (fresh only) */
    store_status_t status; /* out */
    char err[160];         /* out: reason when status is not OK */
    void *ctx;             /* the submitter's; the store never touches it */
    int64_t stall_s;       /* > 0: a stall scan (store_submit), submitted with no events */
} store_req_t;

typedef struct store_options_t {
    const char *conninfo;     /* libpq URI or conninfo; NULL/"" for libpq's defaults */
    int64_t max_batch_events; /* most events in one transaction */
    int64_t reply_timeout_ms; /* longest wait for an answer; then the connection counts as lost
                                 (0: 15 s) */
    metrics_t *metrics;       /* registry for the store's series; may be NULL */
    int64_t partition_events; /* ids per partition of events (0: PARTPLAN_EVENTS_DEFAULT) */
    int64_t retention_s;      /* drop partitions whose newest event is older (0: keep all) */
    int64_t retain_every_ms;  /* how often the retention looks (0: 60 s) */
} store_options_t;

typedef struct store_t store_t;

/* Allocates a request for n events (events zeroed, to be filled by the caller).
 * Returns NULL when out of memory. */
store_req_t *store_req_new(size_t n);

/* Frees a request, clearing its events. Accepts NULL and sets *r to NULL. */
void store_req_destroy(store_req_t **r);

/* Starts the writer thread, which connects by itself (with backoff). Returns NULL when the
 * thread or eventfd cannot be created. */
store_t *store_new(const store_options_t *o);

/* Stops the writer: the transaction in flight finishes and its requests complete; requests
 * still queued complete with STORE_STATUS_UNAVAILABLE. Completed requests not yet collected
 * are freed. Accepts NULL and sets *s to NULL. */
void store_destroy(store_t **s);

/* Asks the writer to stop after the transaction in flight (non-blocking); queued requests are
 * then completed as unavailable. */
void store_shutdown(store_t *s);

/* The eventfd that becomes readable when completed requests are waiting. */
int store_fd(const store_t *s);

/* Queues a request; the store owns it until store_completed hands it back.
 * A request with stall_s > 0 and no events is a stall scan, which the writer commits in a
 * transaction of its own: it fills the request's events with one run_stalled event
 * (stall.h) per run whose status is 'running', not stalled, and whose last event was received
 * stall_s seconds ago or more (the longest idle first, at most STALL_SCAN_MAX and
 * max_batch_events), and commits them as a submission (ids, rollup: the runs become stalled,
 * frames). It completes OK with no events when no run qualifies, and as unavailable when the store
 * is not READY. */
void store_submit(store_t *s, store_req_t *r);

/* Takes every completed request, in completion order (linked by next), or NULL. */
store_req_t *store_completed(store_t *s);

store_state_t store_state(const store_t *s);
const char *store_state_name(store_state_t st);

/* The reason for STORE_FATAL (or the last connection error), for logs. Thread-safe copy. */
void store_last_error(store_t *s, char *out, size_t outlen);

/* The highest committed id (0 for an empty database; meaningful once READY). */
int64_t store_last_id(const store_t *s);

/* The database's epoch (meaningful once READY; 0 before). */
int64_t store_epoch(const store_t *s);

/* Events queued or in flight. */
int64_t store_pending_events(const store_t *s);

/* Whether the writer thread has finished (after store_shutdown). */
int store_stopped(const store_t *s);

#endif
