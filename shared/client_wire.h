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

/* ZeroMQ: a DEALER socket with a monitor, so that a refused or broken connection fails the
 * request at once instead of at the deadline. */
typedef struct client_zmq_t client_zmq_t;

/* endpoint and ctx are borrowed (ctx NULL: the transport makes and owns one, on first use).
 * Returns NULL with errno ENOMEM. */
client_zmq_t *client_zmq_new(const char *endpoint, void *ctx);
void client_zmq_destroy(client_zmq_t **z);
int client_zmq_request(client_zmq_t *z, const json_t *events, int64_t deadline_us, int64_t *ids,
                       long *index, char *err, size_t errlen);

/* HTTP/1.1: one keep-alive connection; a request on a reused connection that the server had
 * closed meanwhile is sent again once on a new one. */
typedef struct client_http_t client_http_t;

/* url: "http://host[:port][/prefix]" (copied); token: NULL or "" for none (copied).
 * Returns NULL with the reason in err (bad URL) or errno ENOMEM. */
client_http_t *client_http_new(const char *url, const char *token, char *err, size_t errlen);
void client_http_destroy(client_http_t **h);
int client_http_request(client_http_t *h, const json_t *events, int64_t deadline_us, int64_t *ids,
                        long *index, char *err, size_t errlen);

/* Reads an answer's "ids" (an array of n integers) or, for one event, "id". Returns 0 or
 * -EPROTO with the reason in err. answer is borrowed. */
int client_wire_ids(const json_t *answer, size_t n, int64_t *ids, char *err, size_t errlen);

#endif
