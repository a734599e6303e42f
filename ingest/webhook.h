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

/* Most webhooks and most event names accepted, longest URL and name. */
#define WEBHOOK_MAX 16
#define WEBHOOK_EVENTS_MAX 32
#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_EVENT_NAME_MAX 64
/* Most bytes of bodies queued per webhook besides ADW_INGEST_WEBHOOK_QUEUE's count: past
 * either bound the oldest go (the newest event always stays). */
#define WEBHOOK_QUEUE_BYTES_MAX (16 << 20)
/* Longest text line, in bytes (UTF-8, cut on a character boundary). */
#define WEBHOOK_TEXT_MAX 300
/* Each request's timeout, and the bounds of the retry delay. */
#define WEBHOOK_TIMEOUT_MS 10000
#define WEBHOOK_BACKOFF_MIN_MS 1000
#define WEBHOOK_BACKOFF_MAX_MS 60000
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

/* Checks one webhook URL: http:// or https:// (any case), a non-empty host (a bracketed IPv6
 * literal included), an optional port 1..65535, no blanks or control characters, at most
 * WEBHOOK_URL_MAX bytes. Returns 0, or -EINVAL with the reason in err. Pure. */
int webhook_url_check(const char *url, size_t len, char *err, size_t errlen);

/* Splits a comma-separated list (blanks around items ignored) into at most max items, each a
 * malloc'd string in out[] (the caller frees them; none on error). Each URL is checked with
 * webhook_url_check. Returns the number of items (>= 1), or -EINVAL with the reason in err (an
 * empty item, a bad URL, more than max items) or -ENOMEM. Pure. */
int webhook_parse_urls(const char *list, char **out, size_t max, char *err, size_t errlen);

/* As webhook_parse_urls for event names: 1..WEBHOOK_EVENT_NAME_MAX bytes of [a-z0-9_]. Pure. */
int webhook_parse_events(const char *list, char **out, size_t max, char *err, size_t errlen);

/* The delay before retry number `failures` (1: after the first failed attempt): 1 s doubled
 * per failure, at most 60 s. Pure. */
int64_t webhook_backoff_ms(int failures);

/* Writes the one-line text of a system event into out (NUL-terminated, at most
 * min(outlen - 1, WEBHOOK_TEXT_MAX) bytes, cut on a UTF-8 boundary), e.g.
 * ":x: Run `abc` failed at step build: <summary> — <public_url>/#/runs/abc". Slack's control
 * characters &, <, > in the event's strings are written as &amp; &lt; &gt; so a summary
 * cannot mention a channel or forge a link. public_url NULL or "": no link. Returns the
 * length written. Pure. */
size_t webhook_text(const adw_event_t *e, const char *public_url, char *out, size_t outlen);

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
