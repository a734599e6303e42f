/* webhook: POSTs chosen committed system events to HTTP(S) receivers (Slack-compatible
 * incoming webhooks and the like), from a thread of its own driving libcurl's multi interface.
 *
 * The loop enqueues (webhook_enqueue: a copy of the body per webhook, under a short lock, then
 * curl_multi_wakeup); the thread delivers each webhook's queue in order, one request at a
 * time (head of line: an event is retried until delivered or dropped). 2xx: delivered; 5xx,
 * 429 and connection errors (a timeout included): retried after webhook_backoff_ms; any other
 * answer: dropped and logged. A queue over its bounds (queue_max events, WEBHOOK_QUEUE_BYTES_MAX
 * bytes) drops its oldest events.
 *
 * Body: {"text":"<one line a person reads>","event":{"id":N,"received_at":"...",...doc}}.
 */
#ifndef ADW_WEBHOOK_H
#define ADW_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "metrics.h"
#include "webhook_text.h" /* the limits, the lists, the text line */

/* Most bytes of bodies queued per webhook besides ADW_INGEST_WEBHOOK_QUEUE's count: past
 * either bound the oldest go (the newest event always stays). */
#define WEBHOOK_QUEUE_BYTES_MAX (16 << 20)
/* Each request's timeout. */
#define WEBHOOK_TIMEOUT_MS 10000
/* On webhook_destroy: how long what is queued may still take before it is dropped. */
#define WEBHOOK_DRAIN_MS 2000

typedef struct webhook_t webhook_t;

typedef struct webhook_options_t {
    const char *urls;       /* comma-separated http(s) URLs (webhook_parse_urls) */
    const char *events;     /* comma-separated system event names (webhook_parse_events) */
    int64_t queue_max;      /* per webhook, >= 1 */
    const char *public_url; /* the dashboard's base URL for links; NULL or "": no link */
    metrics_t *metrics;     /* borrowed; may be NULL */
} webhook_options_t;

/* Starts the delivery thread (libcurl initialised once per process before any call; the
 * caller calls this before other threads use libcurl). Returns NULL with the reason in err
 * (a bad option: -EINVAL territory, reported as a configuration error) and sets *bad_option
 * when the options were at fault (else out of memory or no thread). Every string is copied. */
webhook_t *webhook_new(const webhook_options_t *o, int *bad_option, char *err, size_t errlen);

/* Loop thread: queues e (borrowed; committed, id and received_us set) on every webhook when it
 * is a system event whose name is listed. Never blocks beyond a short lock. Accepts NULL w. */
void webhook_enqueue(webhook_t *w, const adw_event_t *e);

/* The number of webhooks. */
size_t webhook_count(const webhook_t *w);

/* Stops the thread after trying for up to WEBHOOK_DRAIN_MS to deliver what is queued (what is
 * left is dropped and counted), then frees everything. Accepts NULL and sets *w to NULL. */
void webhook_destroy(webhook_t **w);

#endif
