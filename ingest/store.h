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
 *
 * While idle, the writer watches its connection's socket: a termination notice or the end of
 * the connection makes the store CONNECTING at once, before any request is sent on it.
 */
#ifndef ADW_STORE_H
#define ADW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"
#include "metrics.h"

#define APPROVAL_SCAN_MAX 1000        /* most approvals one expire scan ends */
#define APPROVAL_SCAN_ENDED_MAX 10000 /* most ended approvals one expire scan reads back */

typedef enum store_state {
    STORE_CONNECTING = 0, /* not connected yet, or reconnecting */
    STORE_STANDBY,        /* connected; another ingest holds the writer lock */
    STORE_READY,          /* connected, leader, schema current: submissions are taken */
    STORE_FATAL,          /* cannot ever work (schema too new): the program must exit */
} store_state_t;

typedef enum store_status {
    STORE_STATUS_OK = 0,      /* every event committed (or found already stored) */
    STORE_STATUS_UNAVAILABLE, /* the database is unavailable, retry later: nothing committed,
                                 unless err is "...commit outcome unknown; retry with the same
                                 event_id" (the commit's answer was lost and not resolved within
                                 reply_timeout_ms; the retry's dedup settles it) */
    STORE_STATUS_REJECTED,    /* nothing committed: PostgreSQL refused the data (err says why) */
} store_status_t;

/* One of these per event the writer raised itself after one of a request's events (budget.h:
 * budget_warning, budget_exceeded, budget_denied): stored in the same transaction with the id
 * right after that event's (or after the one raised before it), and published in id order. */
typedef struct store_raised_t {
    adw_event_t ev;   /* owned (event_clear); ev.id is its id */
    size_t after;     /* index in the request's events of the event it follows */
    size_t frame_end; /* end offset in the request's frames of its map */
} store_raised_t;

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
    int approval_scan;     /* an approval expire scan (store_submit), submitted with no events */
    char *held;            /* approval scan: the approval ids this ingest holds, as a text[]
                              literal ("{id,id}"); owned by the request; NULL: none */
    char *ended;           /* out, approval scan: the latest ended approvals (at most
                              APPROVAL_SCAN_ENDED_MAX, newest first), "<id> <status>\n" each;
                              owned by the request; NULL: none read */
    int approvals;         /* the events are approval events ingest raised (approvals.h, or an
                              approval scan): adw_approvals rolls them up in the transaction */
    int hook;              /* a Claude Code hook body (/api/hooks): with budget enforcement, a
                              PreToolUse of a run over its budget gets a budget_denied */
    /* out: the events the writer raised after this request's, in id order (owned) */
    store_raised_t *raised;
    size_t nraised, raised_cap;
} store_req_t;

typedef struct store_options_t {
    const char *conninfo;     /* libpq URI or conninfo; NULL/"" for libpq's defaults */
    int64_t max_batch_events; /* most events in one transaction */
    int64_t reply_timeout_ms; /* longest wait for an answer; then the connection counts as lost
                                 (0: 15 s). Also the longest a request waits, from its batch's
                                 sending, for a lost commit's outcome */
    metrics_t *metrics;       /* registry for the store's series; may be NULL */
    double run_budget_usd;    /* a run's budget when its adw_start gives none (0: none) */
    int enforce_budget;       /* a PreToolUse hook of a run over its budget gets budget_denied */
    int64_t partition_events; /* ids per partition of events (0: PARTPLAN_EVENTS_DEFAULT) */
    int64_t retention_s;      /* drop partitions whose newest event is older (0: keep all) */
    int64_t retain_every_ms;  /* how often the retention looks (0: 60 s) */
} store_options_t;

typedef struct store_t store_t;

/* Allocates a request for n events (events zeroed, to be filled by the caller).
 * Returns NULL when out of memory. */
store_req_t *store_req_new(size_t n);

/* Frees a request, clearing its events and those raised after them. Accepts NULL and sets *r
 * to NULL. */
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
/* A request with approval_scan and no events is an approval expire scan, committed in a
 * transaction of its own like a stall scan: one approval_expired ("ingest restarted") for each
 * adw_approvals row still 'pending' whose approval_id is not in r->held (the oldest first, at
 * most APPROVAL_SCAN_MAX and max_batch_events; the next scan takes the rest), rolled up into
 * adw_approvals. It completes OK with no events when no row qualifies. It also reads back the
 * latest ended approvals into r->ended (none when that read fails: the scan still goes on). */

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
