/* The ZeroMQ transport of the client library (client_wire.h): a libzmq DEALER, NULL or CURVE
 * security, its monitor read for what the socket does not say (a refused connection, a refused
 * handshake, a connection lost before the answer). */
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
#include "err.h"
#include "timefmt.h"

#define CLIENT_ZMQ_ANSWER_MAX (1 << 20) /* bytes of one answer message (ZMQ_MAXMSGSIZE) */

#define CLIENT_ZMQ_EVENTS                                                                          \
    (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |                    \
     ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                        \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

#define CLIENT_ZMQ_ASK_CURVE " (does it require CURVE? give --curve-server and --curve-cert)"

struct client_zmq_t {
    char endpoint[512];
    int ipv6;                 /* the host is a bracketed IPv6 address */
    int curve;                /* CURVE security (else NULL) */
    client_curve_keys_t keys; /* CURVE: the keys, Z85 */
    void *ctx;                /* made on the first request */
    void *sock;               /* DEALER; NULL while closed */
    void *mon;                /* PAIR receiving sock's monitor events */
    int connected;            /* a TCP or IPC connection was made since the socket was opened */
    int up;                   /* the handshake succeeded and the connection has not broken since */
    unsigned opens;           /* sockets opened so far: names each monitor endpoint */
    buf_t body;               /* the request, msgpack */
};

/* Checks that endpoint is tcp://host:port (port 1..65535, host possibly [v6]) or
 * ipc:///path. Sets *ipv6 for a bracketed host. Returns 0 or -EINVAL. */
static int check_endpoint(const char *endpoint, int *ipv6)
{
    *ipv6 = 0;
    if (!strncmp(endpoint, "ipc://", 6))
        return endpoint[6] ? 0 : -EINVAL;
    if (strncmp(endpoint, "tcp://", 6))
        return -EINVAL;
    const char *h = endpoint + 6, *colon = strrchr(h, ':');
    if (!colon || colon == h || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -EINVAL;
    size_t hl = (size_t)(colon - h);
    if (h[0] == '[') {
        if (hl <= 2 || h[hl - 1] != ']')
            return -EINVAL;
        *ipv6 = 1;
    }
    if (strlen(colon + 1) > 5)
        return -EINVAL;
    long port = strtol(colon + 1, NULL, 10);
    return port >= 1 && port <= 65535 ? 0 : -EINVAL;
}

client_zmq_t *client_zmq_new(const char *endpoint, const client_curve_keys_t *curve, char *err,
                             size_t errlen)
{
    int ipv6 = 0;
    if (strlen(endpoint) >= sizeof((client_zmq_t *)0)->endpoint ||
        check_endpoint(endpoint, &ipv6)) {
        set_err(err, errlen, "ZeroMQ endpoint '%s' must be tcp://host:port or ipc:///path",
                endpoint);
        errno = EINVAL;
        return NULL;
    }
    client_zmq_t *z = calloc(1, sizeof *z);
    if (!z) {
        set_err(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    snprintf(z->endpoint, sizeof z->endpoint, "%s", endpoint);
    z->ipv6 = ipv6;
    if (curve) {
        z->curve = 1;
        z->keys = *curve;
    }
    buf_init(&z->body, ADW_BODY_MAX_DEFAULT);
    return z;
}

/* Closes the socket and its monitor (never blocks: linger 0). */
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
    z->connected = z->up = 0;
}

void client_zmq_destroy(client_zmq_t **zp)
{
    if (!zp || !*zp)
        return;
    client_zmq_t *z = *zp;
    zclose(z);
    if (z->ctx)
        zmq_ctx_term(z->ctx); /* every socket closed with linger 0: returns at once */
    explicit_bzero(&z->keys, sizeof z->keys);
    buf_free(&z->body);
    free(z);
    *zp = NULL;
}

/* Opens the DEALER and its monitor and starts connecting. Returns 0, or -ENOMEM /
 * -ECONNREFUSED with the reason in err. */
static int zopen(client_zmq_t *z, char *err, size_t errlen)
{
    if (!z->ctx) {
        z->ctx = zmq_ctx_new();
        if (!z->ctx) {
            set_err(err, errlen, "zmq: cannot make a context: %s", zmq_strerror(errno));
            return -ENOMEM;
        }
        zmq_ctx_set(z->ctx, ZMQ_BLOCKY, 0); /* sockets default to linger 0 */
    }
    int zero = 0, one = 1, rc;
    int64_t max = CLIENT_ZMQ_ANSWER_MAX;
    char mon_ep[96];
    snprintf(mon_ep, sizeof mon_ep, "inproc://adw-client-monitor-%p-%u", (void *)z, z->opens++);
    z->sock = zmq_socket(z->ctx, ZMQ_DEALER);
    if (!z->sock)
        goto fail;
    if (zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(z->sock, ZMQ_MAXMSGSIZE, &max, sizeof max) ||
        (z->ipv6 && zmq_setsockopt(z->sock, ZMQ_IPV6, &one, sizeof one)))
        goto fail;
    if (z->curve &&
        (zmq_setsockopt(z->sock, ZMQ_CURVE_SERVERKEY, z->keys.server, CLIENT_CURVE_Z85_LEN) ||
         zmq_setsockopt(z->sock, ZMQ_CURVE_PUBLICKEY, z->keys.pub, CLIENT_CURVE_Z85_LEN) ||
         zmq_setsockopt(z->sock, ZMQ_CURVE_SECRETKEY, z->keys.sec, CLIENT_CURVE_Z85_LEN))) {
        rc = errno;
        set_err(err, errlen, "zmq: CURVE keys refused: %s%s", zmq_strerror(rc),
                rc == EINVAL ? " (this libzmq has no CURVE?)" : "");
        zclose(z);
        return rc == ENOMEM ? -ENOMEM : -ECONNREFUSED;
    }
    if (zmq_socket_monitor(z->sock, mon_ep, CLIENT_ZMQ_EVENTS))
        goto fail;
    z->mon = zmq_socket(z->ctx, ZMQ_PAIR);
    if (!z->mon || zmq_setsockopt(z->mon, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_connect(z->mon, mon_ep))
        goto fail;
    if (zmq_connect(z->sock, z->endpoint)) {
        rc = errno;
        set_err(err, errlen, "zmq: cannot connect to %s: %s", z->endpoint, zmq_strerror(rc));
        zclose(z);
        return rc == ENOMEM ? -ENOMEM : -ECONNREFUSED;
    }
    return 0;
fail:
    rc = errno;
    set_err(err, errlen, "zmq: cannot open a socket: %s", zmq_strerror(rc));
    zclose(z);
    return -ENOMEM;
}

/* What a failed handshake means, with the reason in err. value: the monitor's (a ZAP status
 * code, a ZMQ_PROTOCOL_ERROR_*, an errno). */
static int handshake_failed(client_zmq_t *z, uint16_t ev, uint32_t value, char *err, size_t errlen)
{
    if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        set_err(err, errlen, "zmq: %s refused the handshake (ZAP status %u)%s", z->endpoint,
                (unsigned)value,
                z->curve ? ": is our public key among ingest's ADW_INGEST_CURVE_CLIENTS?" : "");
        return -EPROTO;
    }
    if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        if (z->curve)
            set_err(err, errlen, "zmq: %s does not offer CURVE security", z->endpoint);
        else
            set_err(err, errlen, "zmq: %s wants another security mechanism" CLIENT_ZMQ_ASK_CURVE,
                    z->endpoint);
        return -EPROTO;
    }
    if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        set_err(err, errlen,
                "zmq: the ZMTP handshake with %s failed (protocol error 0x%x; not "
                "adw-ingest?)",
                z->endpoint, (unsigned)value);
        return -EPROTO;
    }
    /* Closed before the handshake ended: a peer that does not speak ZMTP 3, one that refused
     * our keys without saying so, or one that wants keys we did not give. */
    if (z->curve)
        set_err(err, errlen,
                "zmq: %s closed the connection during the CURVE handshake (our key refused, or "
                "not its server key?)",
                z->endpoint);
    else
        set_err(err, errlen,
                "zmq: %s closed the connection during the ZMTP handshake (not adw-ingest?)%s",
                z->endpoint, CLIENT_ZMQ_ASK_CURVE);
    return -EPROTO;
}

/* Reads the monitor's pending events into z's state. Returns 0, or the failure they mean for
 * a request (-ECONNREFUSED, -ECONNRESET, -EPROTO) with the reason in err. A connection that
 * broke while no request was in flight (in_flight 0) fails nothing: z->up says it. */
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
        uint32_t value = 0;
        if (zmq_msg_size(&m) >= 6) {
            memcpy(&ev, zmq_msg_data(&m), sizeof ev);
            memcpy(&value, (const char *)zmq_msg_data(&m) + 2, sizeof value);
        }
        while (zmq_msg_more(&m)) { /* the second frame: the peer's address */
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, z->mon, ZMQ_DONTWAIT) < 0)
                break;
        }
        zmq_msg_close(&m);
        if (fail)
            continue; /* the first failure is the one to tell */
        switch (ev) {
        case ZMQ_EVENT_CONNECTED:
            z->connected = 1;
            break;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            z->up = 1;
            break;
        case ZMQ_EVENT_CONNECT_RETRIED:
            if (!z->connected) {
                set_err(err, errlen, "zmq: cannot connect to %s (connection refused)", z->endpoint);
                fail = -ECONNREFUSED;
            }
            break;
        case ZMQ_EVENT_DISCONNECTED:
            if (z->up) {
                z->up = 0;
                if (in_flight) {
                    set_err(err, errlen,
                            "zmq: %s closed the connection before answering (or sent an answer "
                            "over %d bytes)",
                            z->endpoint, CLIENT_ZMQ_ANSWER_MAX);
                    fail = -ECONNRESET;
                }
            } else {
                fail = handshake_failed(z, ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, 0, err, errlen);
            }
            break;
        default: /* HANDSHAKE_FAILED_*: DISCONNECTED follows */
            fail = handshake_failed(z, ev, value, err, errlen);
            break;
        }
    }
    return fail;
}

/* Interprets an answer. */
static int read_answer(const void *p, size_t len, size_t n, int64_t *ids, long *index, char *err,
                       size_t errlen)
{
    json_t *ans = NULL;
    char why[200];
    if (codec_msgpack_decode(p, len, &ans, why, sizeof why)) {
        set_err(err, errlen, "zmq: unreadable answer: %s", why);
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
        set_err(err, errlen, "ingest refused: %s", e ? e : "(no reason)");
        if (index && json_is_integer(ix) && json_integer_value(ix) >= 0 &&
            (size_t)json_integer_value(ix) < n)
            *index = (long)json_integer_value(ix);
        rc = retry ? -EAGAIN : -EINVAL;
    } else {
        set_err(err, errlen, "zmq: answer without \"ok\"");
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

/* Sends the request on an open socket and waits for its answer until the deadline. Returns
 * what read_answer() does, or -ECONNREFUSED / -ECONNRESET / -EPROTO / -ETIMEDOUT with the
 * reason in err. */
static int exchange(client_zmq_t *z, size_t n, int64_t deadline_us, int64_t *ids, long *index,
                    char *err, size_t errlen)
{
    /* Queued at once (ZMQ_IMMEDIATE off): libzmq sends it when the handshake is done. */
    if (zmq_send(z->sock, z->body.data, z->body.len, ZMQ_DONTWAIT) < 0) {
        set_err(err, errlen, "zmq: send: %s", zmq_strerror(errno));
        return errno == ENOMEM ? -ENOMEM : -ECONNRESET;
    }
    for (;;) {
        int wait = ms_left(deadline_us);
        if (wait == 0) {
            set_err(err, errlen, "zmq: no answer from %s in time", z->endpoint);
            return -ETIMEDOUT;
        }
        zmq_pollitem_t items[2] = {{z->sock, 0, ZMQ_POLLIN, 0}, {z->mon, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, wait) < 0 && errno != EINTR) {
            set_err(err, errlen, "zmq: poll: %s", zmq_strerror(errno));
            return -ECONNRESET;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            int rc = read_monitor(z, 1, err, errlen);
            if (rc)
                return rc;
        }
        if (!(items[0].revents & ZMQ_POLLIN))
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
        int rc = read_answer(zmq_msg_data(&m), zmq_msg_size(&m), n, ids, index, err, errlen);
        zmq_msg_close(&m);
        return rc;
    }
}

int client_zmq_request(client_zmq_t *z, const json_t *events, int64_t deadline_us, int64_t *ids,
                       long *index, char *err, size_t errlen)
{
    size_t n = json_array_size(events);
    if (index)
        *index = -1;
    buf_reset(&z->body);
    int rc = codec_msgpack_to_buf(&z->body, events);
    if (rc) {
        set_err(err, errlen, "zmq: cannot encode the request: %s",
                rc == -E2BIG ? "over the body limit" : strerror(-rc));
        return rc == -E2BIG ? -E2BIG : rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    for (int attempt = 0;; attempt++) {
        if (z->sock && (read_monitor(z, 0, err, errlen) || !z->up))
            zclose(z); /* it broke while idle (ingest restarted): a fresh socket, not its queue */
        int reused = z->sock != NULL;
        if (!reused && (rc = zopen(z, err, errlen)))
            return rc;
        rc = exchange(z, n, deadline_us, ids, index, err, errlen);
        if (rc == 0 || rc == -EINVAL || rc == -EAGAIN)
            return rc; /* the connection stays */
        zclose(z);     /* a late answer to this request must never be taken for another's */
        if (rc == -ECONNRESET && reused && attempt == 0 && ms_left(deadline_us) > 0)
            continue; /* it broke as the request went: once more, afresh */
        return rc;
    }
}
