/* The ZeroMQ transport of the client library (client_wire.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "adw_limits.h"
#include "buf.h"
#include "client.h"
#include "client_wire.h"
#include "codec.h"
#include "timefmt.h"

#define CLIENT_ZMQ_EVENTS                                                                          \
    (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |                    \
     ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                        \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

struct client_zmq_t {
    char *endpoint;
    void *ctx;
    int own_ctx;
    void *sock;     /* DEALER; NULL while closed */
    void *mon;      /* PAIR receiving sock's monitor events */
    int connected;  /* the monitor reported a connection since the socket was opened */
    unsigned opens; /* sockets opened so far: names each monitor endpoint */
    buf_t out;      /* the request frame */
};

client_zmq_t *client_zmq_new(const char *endpoint, void *ctx)
{
    client_zmq_t *z = calloc(1, sizeof *z);
    if (!z)
        goto fail;
    z->endpoint = strdup(endpoint);
    if (!z->endpoint)
        goto fail;
    z->ctx = ctx;
    buf_init(&z->out, ADW_BODY_MAX_DEFAULT);
    return z;
fail:
    free(z);
    errno = ENOMEM;
    return NULL;
}

static void zclose(client_zmq_t *z)
{
    if (z->sock) {
        zmq_socket_monitor(z->sock, NULL, 0);
        zmq_close(z->sock);
        z->sock = NULL;
    }
    if (z->mon) {
        zmq_close(z->mon);
        z->mon = NULL;
    }
    z->connected = 0;
}

void client_zmq_destroy(client_zmq_t **zp)
{
    if (!zp || !*zp)
        return;
    client_zmq_t *z = *zp;
    zclose(z);
    if (z->own_ctx && z->ctx)
        zmq_ctx_term(z->ctx);
    buf_free(&z->out);
    free(z->endpoint);
    free(z);
    *zp = NULL;
}

/* Opens the DEALER and its monitor and starts connecting. Returns 0 or a negative errno. */
static int zopen(client_zmq_t *z, char *err, size_t errlen)
{
    if (!z->ctx) {
        z->ctx = zmq_ctx_new();
        if (!z->ctx) {
            snprintf(err, errlen, "zmq: cannot make a context: %s", zmq_strerror(errno));
            return -ENOMEM;
        }
        z->own_ctx = 1;
        zmq_ctx_set(z->ctx, ZMQ_BLOCKY, 0);
    }
    int zero = 0, rc;
    char mon_ep[96];
    snprintf(mon_ep, sizeof mon_ep, "inproc://adw-client-monitor-%p-%u", (void *)z, z->opens++);
    z->sock = zmq_socket(z->ctx, ZMQ_DEALER);
    if (!z->sock)
        goto fail;
    zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_socket_monitor(z->sock, mon_ep, CLIENT_ZMQ_EVENTS))
        goto fail;
    z->mon = zmq_socket(z->ctx, ZMQ_PAIR);
    if (!z->mon)
        goto fail;
    zmq_setsockopt(z->mon, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(z->mon, mon_ep))
        goto fail;
    if (zmq_connect(z->sock, z->endpoint)) {
        rc = errno;
        snprintf(err, errlen, "zmq: cannot connect to %s: %s", z->endpoint, zmq_strerror(rc));
        zclose(z);
        return rc == ENOMEM ? -ENOMEM : -ECONNREFUSED;
    }
    return 0;
fail:
    rc = errno;
    snprintf(err, errlen, "zmq: cannot open a socket: %s", zmq_strerror(rc));
    zclose(z);
    return -ENOMEM;
}

/* Reads the monitor's pending events. Returns 0, or the failure they mean for a request
 * (-ECONNREFUSED, -ECONNRESET, -EPROTO) with the reason in err. A connection that broke while
 * no request was in flight (in_flight 0) fails nothing: ZeroMQ connects again by itself. */
static int read_monitor(client_zmq_t *z, int in_flight, char *err, size_t errlen)
{
    int fail = 0;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        uint16_t ev = 0;
        if (zmq_msg_size(&m) >= sizeof ev)
            memcpy(&ev, zmq_msg_data(&m), sizeof ev);
        while (zmq_msg_more(&m)) { /* the second frame: the peer's address */
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, z->mon, ZMQ_DONTWAIT) < 0)
                break;
        }
        zmq_msg_close(&m);
        switch (ev) {
        case ZMQ_EVENT_CONNECTED:
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            z->connected = 1;
            break;
        case ZMQ_EVENT_CONNECT_RETRIED:
            if (!z->connected && !fail) {
                snprintf(err, errlen, "zmq: cannot connect to %s (connection refused)",
                         z->endpoint);
                fail = -ECONNREFUSED;
            }
            break;
        case ZMQ_EVENT_DISCONNECTED:
            if (in_flight && !fail) {
                snprintf(err, errlen, "zmq: %s closed the connection", z->endpoint);
                fail = z->connected ? -ECONNRESET : -ECONNREFUSED;
            }
            z->connected = 0;
            break;
        default: /* a failed handshake: not a ZeroMQ peer, or another protocol */
            if (!fail) {
                snprintf(err, errlen, "zmq: handshake with %s failed (not adw-ingest?)",
                         z->endpoint);
                fail = -EPROTO;
            }
            break;
        }
    }
    return fail;
}

/* Interprets a reply frame. */
static int read_reply(const zmq_msg_t *m, size_t n, int64_t *ids, long *index, char *err,
                      size_t errlen)
{
    json_t *ans = NULL;
    char why[200];
    if (codec_msgpack_decode(zmq_msg_data((zmq_msg_t *)m), zmq_msg_size((zmq_msg_t *)m), &ans, why,
                             sizeof why)) {
        snprintf(err, errlen, "zmq: unreadable answer: %s", why);
        return -EPROTO;
    }
    int rc;
    json_t *ok = json_object_get(ans, "ok");
    if (json_is_true(ok)) {
        rc = client_wire_ids(ans, n, ids, err, errlen);
    } else if (json_is_false(ok)) {
        const char *e = json_string_value(json_object_get(ans, "error"));
        json_t *ix = json_object_get(ans, "index");
        int retry = json_is_true(json_object_get(ans, "retry"));
        snprintf(err, errlen, "ingest refused: %s", e ? e : "(no reason)");
        if (index)
            *index = json_is_integer(ix) && json_integer_value(ix) >= 0 &&
                             (size_t)json_integer_value(ix) < n
                         ? (long)json_integer_value(ix)
                         : -1;
        rc = retry ? -EAGAIN : -EINVAL;
    } else {
        snprintf(err, errlen, "zmq: answer without \"ok\"");
        rc = -EPROTO;
    }
    json_decref(ans);
    return rc;
}

static int ms_left(int64_t deadline_us)
{
    int64_t left = deadline_us - timefmt_mono_us();
    if (left <= 0)
        return 0;
    return (int)((left + 999) / 1000);
}

int client_zmq_request(client_zmq_t *z, const json_t *events, int64_t deadline_us, int64_t *ids,
                       long *index, char *err, size_t errlen)
{
    size_t n = json_array_size(events);
    if (index)
        *index = -1;
    buf_reset(&z->out);
    int rc = codec_msgpack_to_buf(&z->out, events);
    if (rc) {
        snprintf(err, errlen, "zmq: cannot encode the request: %s",
                 rc == -E2BIG ? "over the body limit" : strerror(-rc));
        return rc == -E2BIG ? -E2BIG : rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    if (!z->sock && (rc = zopen(z, err, errlen)))
        return rc;
    rc = read_monitor(z, 0, err, errlen); /* what happened while idle */
    if (rc)
        goto fail;
    int sent = 0;
    for (;;) {
        if (!sent) {
            if (zmq_send(z->sock, z->out.data, z->out.len, ZMQ_DONTWAIT) >= 0)
                sent = 1;
            else if (errno != EAGAIN) {
                snprintf(err, errlen, "zmq: send: %s", zmq_strerror(errno));
                rc = -ECONNRESET;
                goto fail;
            }
        }
        int wait = ms_left(deadline_us);
        if (wait == 0) {
            snprintf(err, errlen, "zmq: no answer from %s in time", z->endpoint);
            rc = -ETIMEDOUT;
            goto fail;
        }
        zmq_pollitem_t items[2] = {
            {z->sock, 0, (short)(sent ? ZMQ_POLLIN : ZMQ_POLLOUT), 0},
            {z->mon, 0, ZMQ_POLLIN, 0},
        };
        if (zmq_poll(items, 2, wait) < 0 && errno != EINTR) {
            snprintf(err, errlen, "zmq: poll: %s", zmq_strerror(errno));
            rc = -ECONNRESET;
            goto fail;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            rc = read_monitor(z, sent, err, errlen);
            if (rc)
                goto fail;
        }
        if (!sent || !(items[0].revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        while (zmq_msg_more(&m)) { /* envelope frames before the body: keep the last */
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, z->sock, ZMQ_DONTWAIT) < 0)
                break;
        }
        rc = read_reply(&m, n, ids, index, err, errlen);
        zmq_msg_close(&m);
        if (rc && rc != -EINVAL && rc != -EAGAIN)
            goto fail;
        return rc;
    }
fail:
    zclose(z);
    return rc;
}
