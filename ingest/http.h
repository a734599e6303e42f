/* http: ingest's HTTP/1.1 server (keep-alive, pipelining, chunked bodies) on the project's own
 * strict parser (shared/http1.h), because libwebsockets 4.1.6 enforces no body limit and no
 * framing rule. Routes: POST /api/events, /api/events/broadcast, /api/hooks; GET /healthz,
 * /readyz, /metrics.
 *
 * With a TLS context every connection is TLS, driven without blocking: the handshake, reads
 * and writes go on whenever the socket allows (OpenSSL's WANT_READ / WANT_WRITE), so a slow or
 * stalled handshake holds up no one else. A handshake counts against the request timeout: one
 * not done within it is cut off; one that fails (not TLS, a bad ClientHello) closes that
 * connection only.
 *
 * Loop thread only.
 */
#ifndef ADW_HTTP_H
#define ADW_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "tls.h"
#include "metrics.h"
#include "pipeline.h"

typedef struct http_server_t http_server_t;

/* Answers /readyz: returns 1 when ready, else 0 with a reason in why. */
typedef int (*http_ready_fn)(void *arg, char *why, size_t whylen);

typedef struct http_options_t {
    const char *listen;         /* "host:port" */
    const char *token;          /* bearer token every POST needs; NULL or "" for none */
    SSL_CTX *tls;               /* borrowed server context (tls.h): the port speaks only TLS;
                                   NULL for plain HTTP */
    int64_t max_body;           /* bytes; over it: 413 */
    int64_t head_max;           /* bytes of a request head; over it: 431 */
    int64_t request_timeout_ms; /* a request must arrive whole within this; else 408 */
    int64_t idle_timeout_ms;    /* an idle keep-alive connection is closed after this */
    int64_t max_connections;    /* more are answered 503 and closed */
    loop_t *loop;
    pipeline_t *pipeline;
    metrics_t *metrics;
    http_ready_fn ready;
    void *ready_arg;
} http_options_t;

/* Binds and listens. Returns NULL with a one-line reason in err. */
http_server_t *http_new(const http_options_t *o, char *err, size_t errlen);

/* Closes the listener and every connection. Accepts NULL and sets *s to NULL. */
void http_destroy(http_server_t **s);

/* Stops accepting connections and new requests; responses in flight still go out. */
void http_drain(http_server_t *s);

/* Connections with a request whose answer is not yet fully written. */
size_t http_busy(const http_server_t *s);

/* Splits "host:port" (host may be "*", empty, or a bracketed IPv6 address) and binds a
 * listening TCP socket (non-blocking, SO_REUSEADDR). Returns the fd or -errno. */
int http_listen(const char *hostport, char *err, size_t errlen);

#endif
