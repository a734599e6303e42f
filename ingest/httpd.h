/* httpd: ingest's HTTP/1.1 engine (keep-alive, pipelining, chunked bodies) on the project's own
 * strict parser (shared/core/http1.h), because libwebsockets 4.1.6 enforces no body limit and
 * no framing rule. It listens, accepts (refusing with 503 over max_connections, and one waiting
 * client at a time when out of descriptors), speaks TLS, reads heads and bodies within their
 * limits and timeouts, writes answers in request order, and drains on shutdown. What a request
 * means is its handler's (routes.h): the engine knows nothing of events.
 *
 * A request's life: the head is parsed; handler.head decides on it (answers it, or asks for
 * the body); handler.body gets the whole body (Content-Length or chunked) and answers now or
 * later (httpd_defer, then httpd_respond from any loop callback). While a request waits, its
 * connection reads nothing more, so a pipelining client cannot make it buffer without bound;
 * answers go out in request order.
 *
 * With a TLS context every connection is TLS, driven without blocking: the handshake, reads
 * and writes go on whenever the socket allows (OpenSSL's WANT_READ / WANT_WRITE), so a slow or
 * stalled handshake holds up no one else. A handshake counts against the request timeout: one
 * not done within it is cut off; one that fails (not TLS, a bad ClientHello) closes that
 * connection only.
 *
 * Loop thread only.
 */
#ifndef ADW_HTTPD_H
#define ADW_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "http1.h"
#include "loop.h"
#include "metrics.h"
#include "tls.h"

typedef struct httpd_t httpd_t;

/* One client connection, as a handler sees it: the handle of the request being answered. */
typedef struct httpd_conn_t httpd_conn_t;

/* What handler.head decides. */
typedef enum httpd_next {
    HTTPD_ANSWERED = 0, /* the request was answered (httpd_respond) from its head alone */
    HTTPD_READ_BODY,    /* read the body (httpd_check_body passed), then call handler.body */
} httpd_next_t;

/* Requests the engine refuses by itself, told to handler.refused. */
typedef enum httpd_refusal {
    HTTPD_REFUSED_HEAD,      /* the head is malformed or too large (400, 431, 501, 505) */
    HTTPD_REFUSED_NO_LENGTH, /* a body without Content-Length or chunked (411) */
    HTTPD_REFUSED_TOO_LARGE, /* a body over max_body, announced or growing in chunks (413) */
} httpd_refusal_t;

/* A handler: the routes of a server. arg is each callback's first argument. */
typedef struct httpd_handler_t {
    /* A complete head (req and path, the percent-decoded path, are valid during the call).
     * Answers the request with httpd_respond and returns HTTPD_ANSWERED, or returns
     * HTTPD_READ_BODY after httpd_check_body passed. */
    httpd_next_t (*head)(void *arg, httpd_conn_t *c, const http1_request_t *req, const char *path);
    /* The whole body of a request head() asked to read (body is valid during the call).
     * Answers with httpd_respond now, or calls httpd_defer and answers later. */
    void (*body)(void *arg, httpd_conn_t *c, const char *body, size_t len);
    /* A deferred request's connection closes before its answer: c must not be answered or
     * used after this returns. May be NULL. */
    void (*closed)(void *arg, httpd_conn_t *c);
    /* The engine refused a request itself (for counting). May be NULL. */
    void (*refused)(void *arg, httpd_refusal_t why);
    size_t session_size; /* bytes of per-connection state the handler keeps (httpd_session) */
    void *arg;
} httpd_handler_t;

typedef struct httpd_options_t {
    const char *listen;         /* "host:port" (shared/core/listen.h) */
    SSL_CTX *tls;               /* borrowed server context (tls.h): the port speaks only TLS;
                                   NULL for plain HTTP */
    int64_t max_body;           /* bytes; over it: 413 */
    int64_t head_max;           /* bytes of a request head; over it: 431 */
    int64_t request_timeout_ms; /* a request must arrive whole within this; else 408 */
    int64_t idle_timeout_ms;    /* an idle keep-alive connection is closed after this */
    int64_t max_connections;    /* more are answered 503 and closed */
    loop_t *loop;
    metrics_t *metrics; /* registry for the adw_ingest_http_* series; may be NULL */
    httpd_handler_t handler;
} httpd_options_t;

/* Binds and listens. Returns NULL with a one-line reason in err. */
httpd_t *httpd_new(const httpd_options_t *o, char *err, size_t errlen);

/* Closes the listener and every connection (handler.closed for those waiting). Accepts NULL
 * and sets *s to NULL. */
void httpd_destroy(httpd_t **s);

/* Stops accepting connections and new requests; responses in flight still go out. */
void httpd_drain(httpd_t *s);

/* Connections with a request whose answer is not yet fully written. */
size_t httpd_busy(const httpd_t *s);

/* Binds a listening TCP socket (non-blocking, SO_REUSEADDR) on hostport, read by
 * listen_parse; a host name is resolved, every interface ("", "*") is the wildcard of the
 * first address family that binds. Returns the fd (the caller's) or -errno with a reason. */
int httpd_listen(const char *hostport, char *err, size_t errlen);

/* The handler's per-connection state: session_size bytes, zeroed when the connection opens.
 * Owned by the engine; valid until the connection closes. */
void *httpd_session(httpd_conn_t *c);

/* Queues the answer to c's current request: status, Content-Type ctype, body[0..len) (copied),
 * extra header lines ("Name: value\r\n" each, or NULL). close_after (or a request that did not
 * ask for keep-alive, or draining) closes the connection once it is written. A NULL body
 * closes the connection without an answer. For a deferred request the answer is written at
 * once, and c may be gone when this returns. Counts adw_ingest_http_errors_total. */
void httpd_respond(httpd_conn_t *c, int status, const char *ctype, const char *body, size_t len,
                   const char *extra, int close_after);

/* Answers with the JSON body {"error":error[,"index":index]} (index < 0: none); extra NULL
 * adds what the status implies (503: Retry-After: 1; 401: WWW-Authenticate: Bearer). As
 * httpd_respond otherwise. */
void httpd_respond_error(httpd_conn_t *c, int status, const char *error, long index,
                         const char *extra, int close_after);

/* For handler.head on a request with a body: returns 0 when the body may be read, else
 * answers 411 (no Content-Length, not chunked) or 413 (Content-Length over max_body), tells
 * handler.refused, and returns -1. */
int httpd_check_body(httpd_conn_t *c);

/* For handler.body: the answer comes later, from httpd_respond (or never, when the connection
 * closes first: then handler.closed). */
void httpd_defer(httpd_conn_t *c);

/* For a deferred request that may wait long (a held hook): the connection is read meanwhile
 * (what arrives is kept, within the connection's bound, for after the answer), so that the
 * peer closing it is seen at once: handler.closed is then called. */
void httpd_hold(httpd_conn_t *c);

#endif
