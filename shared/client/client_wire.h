/* client_wire: the two transports under client.c, one request and its answer at a time.
 * Internal to the client library: programs use client.h.
 *
 * Both take the request as a JSON array of 1..ADW_BATCH_MAX event objects (borrowed), wait
 * until deadline_us (timefmt_mono_us clock) at the latest, and return 0 with one id per event
 * in ids[] (the caller's), or the negative errors of client_send() with the reason in err and
 * *index set for -EINVAL (-1 when ingest named no event). After any failure other than -EINVAL
 * and -EAGAIN the connection is closed; the next request opens a new one.
 */
#ifndef ADW_CLIENT_WIRE_H
#define ADW_CLIENT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* CURVE certificate files (client_cert.c). */
#define CLIENT_CURVE_Z85_LEN 40 /* characters of a key in Z85 */

/* The keys of a CURVE client, Z85 text with a NUL each. Plain data. */
typedef struct client_curve_keys_t {
    char server[CLIENT_CURVE_Z85_LEN + 1]; /* the server's long-term public key */
    char pub[CLIENT_CURVE_Z85_LEN + 1];    /* ours */
    char sec[CLIENT_CURVE_Z85_LEN + 1];    /* our secret key */
} client_curve_keys_t;

/* Reads a certificate as zcert_load does (path + "_secret" when it exists, else path; ZPL with
 * curve/public-key and curve/secret-key in Z85) into pub and, when sec is not NULL, sec (Z85
 * with a NUL). Returns 0, -ENOENT (unreadable), -EINVAL (no valid key, or no secret key when
 * sec is given) or -ENOMEM, with the reason in err. */
int client_cert_load(const char *path, char pub[CLIENT_CURVE_Z85_LEN + 1],
                     char sec[CLIENT_CURVE_Z85_LEN + 1], char *err, size_t errlen);

/* ZeroMQ (client_zmq.c): a libzmq DEALER connected to ingest's ROUTER, opened on the first
 * request and kept while it works. libzmq's monitor says what the socket does not: a refused
 * connection (-ECONNREFUSED at once), a refused or failed handshake (-EPROTO at once), a
 * connection lost before the answer (-ECONNRESET). Every wait is a zmq_poll bounded by the
 * deadline, and sockets close with ZMQ_LINGER 0, so nothing blocks past it. */
typedef struct client_zmq_t client_zmq_t;

/* endpoint: "tcp://host:port" or "ipc:///path" (copied). curve: NULL for NULL security, else
 * the keys to use (copied). Nothing is connected yet. Returns NULL with the reason in err and
 * errno EINVAL (another transport, a malformed endpoint) or ENOMEM. */
client_zmq_t *client_zmq_new(const char *endpoint, const client_curve_keys_t *curve, char *err,
                             size_t errlen);
/* Closes the socket (never blocks), wipes the keys, frees *z and sets it to NULL. Accepts NULL
 * and a pointer to NULL. */
void client_zmq_destroy(client_zmq_t **z);
int client_zmq_request(client_zmq_t *z, const json_t *events, int64_t deadline_us, int64_t *ids,
                       long *index, char *err, size_t errlen);

/* Sockets, shared by both transports. */
/* Connects a non-blocking stream socket to host:port (tcp) or the unix socket path (host NULL,
 * port the path) by the deadline. Returns the fd, or -ECONNREFUSED / -ETIMEDOUT with the
 * reason in err. */
int client_net_connect(const char *host, const char *port, int64_t deadline_us, char *err,
                       size_t errlen);
/* Waits for events on fd until the deadline. Returns 0, -ETIMEDOUT or a negative errno. */
int client_net_wait(int fd, short events, int64_t deadline_us);
/* Writes all of p[0..len) by the deadline. Returns 0, -ETIMEDOUT or -ECONNRESET. */
int client_net_write(int fd, const void *p, size_t len, int64_t deadline_us);

/* TLS for https (client_tls.c): OpenSSL is loaded with dlopen on the first use, so programs
 * that never use https do not load it. Contexts and sessions are opaque (SSL_CTX, SSL). */
/* Returns a client context that verifies servers against the PEM bundle ca_file (borrowed), or
 * the system's CAs when ca_file is NULL or ""; NULL with the reason in err (no libssl.so.3, an
 * unreadable CA file). */
void *client_tls_ctx_new(const char *ca_file, char *err, size_t errlen);
void client_tls_ctx_destroy(void **ctx);
/* Runs the handshake on the connected non-blocking fd by the deadline, checking that the
 * certificate is trusted and names host. Returns 0 with *sess set, -ETIMEDOUT, -ECONNREFUSED
 * (refused or not trusted; reason in err) or -ENOMEM. */
int client_tls_connect(void *ctx, int fd, const char *host, int64_t deadline_us, void **sess,
                       char *err, size_t errlen);
/* Writes all of p[0..len) by the deadline. Returns 0, -ETIMEDOUT or -ECONNRESET. */
int client_tls_write(void *sess, int fd, const void *p, size_t len, int64_t deadline_us);
/* Reads what comes first, waiting until the deadline. Returns the bytes read (> 0), 0 at the
 * end of the stream, -ETIMEDOUT or -ECONNRESET. */
long client_tls_read(void *sess, int fd, void *p, size_t len, int64_t deadline_us);
/* Sends close_notify if the socket takes it and frees *sess (not the fd). Accepts NULL. */
void client_tls_close(void **sess);

/* HTTP/1.1: one keep-alive connection; a request on a reused connection that the server had
 * closed meanwhile is sent again once on a new one. */
typedef struct client_http_t client_http_t;

/* url: "http://host[:port][/prefix]" or "https://..." (copied); token: NULL or "" for none
 * (copied); ca_file: for https, the PEM bundle to trust (NULL or "": the system's; borrowed).
 * Returns NULL with the reason in err (bad URL, https without OpenSSL, an unreadable CA file)
 * or errno ENOMEM. */
client_http_t *client_http_new(const char *url, const char *token, const char *ca_file, char *err,
                               size_t errlen);
void client_http_destroy(client_http_t **h);
int client_http_request(client_http_t *h, const json_t *events, int64_t deadline_us, int64_t *ids,
                        long *index, char *err, size_t errlen);

/* Reads an answer's "ids" (an array of n integers) or, for one event, "id". Returns 0 or
 * -EPROTO with the reason in err. answer is borrowed. */
int client_wire_ids(const json_t *answer, size_t n, int64_t *ids, char *err, size_t errlen);

#endif
