/* forward: hands approval decisions to ingest over HTTP (POST {ingest}/api/approvals/{id}),
 * from a thread of its own driving libcurl's multi interface, off the event loop.
 *
 * The loop submits (forward_submit: copies everything, a short lock, curl_multi_wakeup); the
 * thread runs up to FORWARD_PARALLEL requests at once, each bounded by FORWARD_TIMEOUT_MS;
 * finished ones wait in a done list until the loop calls forward_complete (the thread calls
 * the wake function after each). At most FORWARD_QUEUE_MAX requests are in the module at once:
 * past that forward_submit refuses (the caller answers 503).
 *
 * Each request carries "Authorization: Bearer <ingest token>" (when one is set),
 * "X-ADW-Decided-By: <name>", "X-ADW-Forwarded: 1" and the decision body. Ingest's answer
 * (status and body, up to FORWARD_BODY_MAX bytes) is handed back as it is; ingest unreachable
 * or too slow is status 0 with the reason.
 *
 * Threads: forward_submit, forward_cancel, forward_complete on the loop thread only.
 */
#ifndef ADW_GATEWAY_FORWARD_H
#define ADW_GATEWAY_FORWARD_H

#include <stddef.h>

#define FORWARD_TIMEOUT_MS 10000
#define FORWARD_PARALLEL 16
#define FORWARD_QUEUE_MAX 64
#define FORWARD_BODY_MAX 65536 /* bytes of ingest's answer kept */

typedef struct forward_t forward_t;
typedef struct forward_req_t forward_req_t;

typedef struct forward_options_t {
    const char *ingest_url;   /* base URL, e.g. http://127.0.0.1:8000 (copied) */
    const char *ingest_token; /* bearer token for ingest (copied; NULL or "": none) */
    void (*wake)(void *arg);  /* called from the thread after a request finished */
    void *wake_arg;
} forward_options_t;

/* Called on the loop thread by forward_complete: status is ingest's HTTP status, or 0 when it
 * could not be reached (then body is NULL and why says what happened); body (owned by the
 * callee, free()) is ingest's answer, len its length. */
typedef void (*forward_reply_fn)(void *user, int status, char *body, size_t len, const char *why);

/* Checks the URL (http or https, no query) and starts the thread (libcurl initialised here,
 * before other threads use it). Returns NULL with the reason in err. */
forward_t *forward_new(const forward_options_t *o, char *err, size_t errlen);

/* Stops the thread: requests in flight are abandoned and their replies never called. Accepts
 * NULL; nulls *f. */
void forward_destroy(forward_t **f);

/* Queues a decision for approval_id (32 lowercase hex, borrowed) with decided_by (borrowed) and
 * body[0..len) (copied). reply is called once, later, from forward_complete, unless
 * forward_cancel comes first. Returns the request, or NULL when the queue is full or memory runs
 * out (then reply is never called). */
forward_req_t *forward_submit(forward_t *f, const char *approval_id, const char *decided_by,
                              const char *body, size_t len, forward_reply_fn reply, void *user);

/* Stops reply from being called for r (the requester went away); the request itself still
 * runs to its end. Accepts NULL r, and NULL f (after forward_destroy, which freed r). */
void forward_cancel(forward_t *f, forward_req_t *r);

/* Calls the reply of every finished request, in completion order. */
void forward_complete(forward_t *f);

#endif
