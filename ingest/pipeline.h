/* pipeline: the one place an event is accepted. Submissions from HTTP and ZeroMQ enter here
 * already validated; the pipeline admits them (or refuses with 503 semantics when the database
 * is unavailable or the queue is full), hands them to the store, publishes what was committed
 * in id order, and then answers each submitter, in submission order.
 *
 * Loop thread only.
 */
#ifndef ADW_PIPELINE_H
#define ADW_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "metrics.h"
#include "publish.h"
#include "store.h"
#include "webhook.h"

#include <jansson.h>

typedef enum pipeline_status {
    PIPELINE_OK = 0,      /* committed (or found stored): ids are valid */
    PIPELINE_INVALID,     /* refused before storing: bad input (HTTP 400) */
    PIPELINE_UNAVAILABLE, /* the database is unavailable or this ingest is a standby (503) */
    PIPELINE_OVERLOADED,  /* too many events waiting for commit (503) */
    PIPELINE_STOPPING,    /* shutting down (503) */
} pipeline_status_t;

/* What a submitter is told, once. Pointers are valid during the callback only. */
typedef struct pipeline_outcome_t {
    pipeline_status_t status;
    const char *error;  /* reason when not OK */
    long index;         /* the event the error is about, or -1 */
    const int64_t *ids; /* OK: one id per event */
    size_t nids;
    const adw_event_t *events; /* OK: the events, as committed (nids of them) */
    const char *ended;         /* OK, an approval scan: store_req_t.ended (may be NULL) */
    const adw_event_t *denied; /* OK: the budget_denied raised after the request's hook event
                                  (store_req_t.hook), or NULL */
} pipeline_outcome_t;

typedef void (*pipeline_done_fn)(void *ctx, const pipeline_outcome_t *o);

typedef struct pipeline_t pipeline_t;
typedef struct pipeline_entry_t pipeline_entry_t;

typedef struct pipeline_options_t {
    loop_t *loop;
    store_t *store;
    publish_t *publish;
    int64_t max_pending; /* events waiting for commit before submissions are refused */
    int64_t stall_s;     /* > 0: raise run_stalled for runs idle this long (store_submit's
                            stall scan, every stall_scan_period_ms); 0: stalls are off */
    metrics_t *metrics;
    webhook_t *webhook; /* NULL: no webhooks; else each committed event is offered to it, in id
                           order, after it is published */
} pipeline_options_t;

/* Returns a pipeline watching the store's completions, or NULL. With stall_s, a loop timer
 * submits a stall scan while the store is READY and admits submissions (never on a standby),
 * one at a time; what it raises is published like any committed event. */
pipeline_t *pipeline_new(const pipeline_options_t *o);

/* Frees the pipeline; entries still waiting are dropped without their callbacks.
 * Accepts NULL and sets *p to NULL. */
void pipeline_destroy(pipeline_t **p);

/* Submits a request of validated events (the pipeline takes ownership of r). done is called
 * exactly once, later, from the loop, and never before the done of an earlier submission or
 * refusal on the same channel (a submitter's key: one per HTTP connection or ZeroMQ peer), so
 * each submitter's replies keep its request order; submitters on other channels do not wait
 * for each other. Returns a handle for pipeline_cancel, or NULL when out of memory (then r was
 * freed and done is never called). */
pipeline_entry_t *pipeline_submit(pipeline_t *p, uint64_t channel, store_req_t *r,
                                  pipeline_done_fn done, void *ctx);

/* Queues a refusal, answered on the next loop turn once every earlier entry of its channel is
 * answered. Same returns as pipeline_submit. */
pipeline_entry_t *pipeline_refuse(pipeline_t *p, uint64_t channel, pipeline_status_t status,
                                  const char *error, long index, pipeline_done_fn done, void *ctx);

/* The submitter went away: the outcome still happens, but done will not be called. */
void pipeline_cancel(pipeline_entry_t *e);

/* Whether submissions are admitted now (database ready, queue below its bound). */
pipeline_status_t pipeline_admission(const pipeline_t *p);

/* Validates a decoded submission (one event object, or an array of 1..ADW_BATCH_MAX of them)
 * and builds a store request of it (caller owns *out). Returns 0, or -EINVAL with the reason in
 * err and the failing event's position in *index (-1 when about the whole submission). */
int pipeline_build(json_t *value, int64_t received_us, store_req_t **out, int *is_batch, char *err,
                   size_t errlen, long *index);

/* Stops admitting; what is in flight completes and is answered. */
void pipeline_stop(pipeline_t *p);

/* Whether the publisher follows the store (ready, last id read): heartbeats may go out. */
int pipeline_synced(const pipeline_t *p);

/* Entries not yet answered. */
size_t pipeline_waiting(const pipeline_t *p);

/* Why an event or request was refused: the reason label of adw_ingest_rejected_total (the
 * fixed set in proto/), in the order the series are registered. */
typedef enum pipeline_reject {
    PIPELINE_REJECT_BAD_JSON = 0, /* "bad_json": not JSON (or msgpack), or an empty body */
    PIPELINE_REJECT_SCHEMA,       /* "schema": not a valid event or hook body */
    PIPELINE_REJECT_TOO_LARGE,    /* "too_large": a body over the size limit */
    PIPELINE_REJECT_BATCH_SIZE,   /* "batch_size": more events than ADW_BATCH_MAX */
    PIPELINE_REJECT_UNAUTHORIZED, /* "unauthorized": missing or wrong bearer token */
    PIPELINE_REJECT_BAD_REQUEST,  /* "bad_request": malformed HTTP, no length, wrong type */
    PIPELINE_REJECT_DATABASE,     /* "database": PostgreSQL refused the data */
    PIPELINE_REJECT_UNAVAILABLE,  /* "unavailable": the database is unavailable */
    PIPELINE_REJECT_OVERLOADED,   /* "overloaded": too many pending events, or shutting down */
    PIPELINE_REJECT_COUNT         /* the number of reasons, not a reason */
} pipeline_reject_t;

/* Where events came from: the transport label of adw_ingest_received_total. */
typedef enum pipeline_transport {
    PIPELINE_HTTP = 0, /* "http" */
    PIPELINE_ZMQ,      /* "zmq" */
} pipeline_transport_t;

/* Returns the metric label of reason ("bad_json", ...), or NULL when reason is out of range.
 * Static storage. */
const char *pipeline_reject_name(pipeline_reject_t reason);

/* Records one refused event or request. */
void pipeline_count_rejected(pipeline_t *p, pipeline_reject_t reason);

/* Records n events received over transport. */
void pipeline_count_received(pipeline_t *p, pipeline_transport_t transport, int64_t n);

#endif
