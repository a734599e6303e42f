#include "zmq_in.h"

#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "adw_limits.h"
#include "codec.h"
#include "log.h"
#include "timefmt.h"
#include "zparts.h"

#define ZMQ_IN_MAX_PARTS 8       /* envelope frames plus the body */
#define ZMQ_IN_BURST 256         /* requests read per turn before yielding to other work */
#define ZMQ_IN_CURVE_OVERHEAD 33 /* "\x07MESSAGE", nonce, MAC and flags around a CURVE body */

struct zmq_in_t {
    zmq_in_options_t o;
    void *sock;
    int fd;
    int paused;
};

/* One of these per request awaiting its reply: the envelope to send it back through. */
typedef struct pending_reply {
    zmq_in_t *z;
    uint64_t channel; /* hash of the envelope: one per peer (its routing id) */
    int is_batch;
    size_t nparts;
    size_t len[ZMQ_IN_MAX_PARTS];
    char *part[ZMQ_IN_MAX_PARTS];
} pending_reply_t;

static void reply_free(pending_reply_t *pr)
{
    for (size_t i = 0; i < pr->nparts; i++)
        free(pr->part[i]);
    free(pr);
}

/* A reply is packed into a fixed buffer, so that answering never needs memory: a request
 * that was committed is always answered with all its ids. Room for ADW_BATCH_MAX ids (9 bytes
 * each at most) and an error message. */
#define ZMQ_IN_REPLY_MAX (ADW_BATCH_MAX * 9 + 2048)

typedef struct reply_buf {
    size_t len;
    int overflow;
    char data[ZMQ_IN_REPLY_MAX];
} reply_buf_t;

static int reply_write(void *data, const char *buf, size_t len)
{
    reply_buf_t *rb = data;
    if (len > sizeof rb->data - rb->len) {
        rb->overflow = 1;
        return -1;
    }
    memcpy(rb->data + rb->len, buf, len);
    rb->len += len;
    return 0;
}

static void send_reply(pending_reply_t *pr, const pipeline_outcome_t *o)
{
    static reply_buf_t rb; /* loop thread only */
    msgpack_packer pk;
    rb.len = 0;
    rb.overflow = 0;
    msgpack_packer_init(&pk, &rb, reply_write);
    if (o->status == PIPELINE_OK) {
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "ok", 2);
        msgpack_pack_true(&pk);
        msgpack_pack_str_with_body(&pk, "ids", 3);
        msgpack_pack_array(&pk, o->nids);
        for (size_t i = 0; i < o->nids; i++)
            msgpack_pack_int64(&pk, o->ids[i]);
    } else {
        int with_index = o->index >= 0;
        int retry = o->status != PIPELINE_INVALID;
        msgpack_pack_map(&pk, 2 + with_index + retry);
        msgpack_pack_str_with_body(&pk, "ok", 2);
        msgpack_pack_false(&pk);
        msgpack_pack_str_with_body(&pk, "error", 5);
        const char *err = o->error ? o->error : "refused";
        size_t elen = strlen(err);
        msgpack_pack_str_with_body(&pk, err, elen < 1024 ? elen : 1024);
        if (with_index) {
            msgpack_pack_str_with_body(&pk, "index", 5);
            msgpack_pack_int64(&pk, o->index);
        }
        if (retry) {
            msgpack_pack_str_with_body(&pk, "retry", 5);
            msgpack_pack_true(&pk);
        }
    }
    if (rb.overflow) { /* cannot happen within ADW_BATCH_MAX; never send a truncated map */
        log_error("zmq_in: reply of %zu ids does not fit; not sent", o->nids);
        return;
    }
    zmq_in_t *z = pr->z;
    for (size_t i = 0; i < pr->nparts; i++)
        zmq_send(z->sock, pr->part[i], pr->len[i], ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (zmq_send(z->sock, rb.data, rb.len, ZMQ_DONTWAIT) < 0)
        log_debug("zmq_in: reply dropped: %s", zmq_strerror(errno));
}

static void on_done(void *ctx, const pipeline_outcome_t *o)
{
    pending_reply_t *pr = ctx;
    send_reply(pr, o);
    reply_free(pr);
}

/* Handles one received message; parts[last] is the body. */
static void handle(zmq_in_t *z, zmq_msg_t *parts, size_t nparts)
{
    pending_reply_t *pr = calloc(1, sizeof *pr);
    if (!pr)
        return;
    pr->z = z;
    pr->nparts = nparts - 1;
    for (size_t i = 0; i + 1 < nparts; i++) {
        pr->len[i] = zmq_msg_size(&parts[i]);
        pr->part[i] = malloc(pr->len[i] ? pr->len[i] : 1);
        if (!pr->part[i]) {
            pr->nparts = i;
            reply_free(pr);
            return;
        }
        memcpy(pr->part[i], zmq_msg_data(&parts[i]), pr->len[i]);
    }
    /* FNV-1a over the envelope; the routing id comes first. */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < pr->nparts; i++) {
        for (size_t k = 0; k < pr->len[i]; k++)
            h = (h ^ (unsigned char)pr->part[i][k]) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    pr->channel = h;
    zmq_msg_t *body = &parts[nparts - 1];
    pipeline_t *p = z->o.pipeline;
    char err[256];
    json_t *value = NULL;
    if (codec_msgpack_decode(zmq_msg_data(body), zmq_msg_size(body), &value, err, sizeof err)) {
        pipeline_count_rejected(p, PIPELINE_REJECT_BAD_JSON);
        pipeline_refuse(p, pr->channel, PIPELINE_INVALID, err, -1, on_done, pr);
        return;
    }
    int64_t now = timefmt_now_us();
    store_req_t *r = NULL;
    long index = -1;
    int rc = pipeline_build(value, now, &r, &pr->is_batch, err, sizeof err, &index);
    pipeline_count_received(p, PIPELINE_ZMQ,
                            json_is_array(value) ? (int64_t)json_array_size(value) : 1);
    json_decref(value);
    if (rc) {
        pipeline_count_rejected(p,
                                rc == -E2BIG ? PIPELINE_REJECT_BATCH_SIZE : PIPELINE_REJECT_SCHEMA);
        pipeline_refuse(p, pr->channel, PIPELINE_INVALID, err, index, on_done, pr);
        return;
    }
    if (!pipeline_submit(p, pr->channel, r, on_done, pr))
        reply_free(pr);
}

/* Reads up to a burst of requests. Returns 1 when more may be waiting. */
static int drain(loop_t *loop, void *arg)
{
    (void)loop;
    zmq_in_t *z = arg;
    if (z->paused)
        return 0;
    for (int n = 0; n < ZMQ_IN_BURST; n++) {
        zmq_msg_t parts[ZMQ_IN_MAX_PARTS];
        size_t nparts;
        int rc = zparts_recv(z->sock, parts, ZMQ_IN_MAX_PARTS, &nparts);
        if (rc == -EAGAIN)
            return 0;
        if (!rc && nparts >= 2) /* too many frames or cut short: drop the whole message */
            handle(z, parts, nparts);
        else if (nparts)
            log_debug("zmq_in: dropped a malformed message of %zu frames", nparts);
        zparts_close(parts, nparts);
    }
    return 1;
}

zmq_in_t *zmq_in_new(const zmq_in_options_t *o, char *err, size_t errlen)
{
    zmq_in_t *z = calloc(1, sizeof *z);
    if (!z) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    z->o = *o;
    z->sock = zmq_socket(o->zctx, ZMQ_ROUTER);
    if (!z->sock) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        goto fail;
    }
    /* With CURVE a body travels in a MESSAGE box: 33 bytes more on the wire. */
    int64_t maxmsg = o->max_msg + (o->auth ? ZMQ_IN_CURVE_OVERHEAD : 0);
    /* A ZAP domain, even without a ZAP handler, makes libzmq refuse ZMTP 1.0 and 2.0 peers,
     * whose unauthenticated framing would bypass the handshake (and any bytes look like one). */
    zmq_setsockopt(z->sock, ZMQ_ZAP_DOMAIN, AUTH_DOMAIN_SUBMIT, strlen(AUTH_DOMAIN_SUBMIT));
    if (o->auth && zap_apply(o->auth, z->sock, AUTH_DOMAIN_SUBMIT)) {
        snprintf(err, errlen, "cannot make the submission socket a CURVE server: %s",
                 zmq_strerror(errno));
        goto fail;
    }
    int linger = 1000, hwm = 10000;
    zmq_setsockopt(z->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(z->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(z->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(z->sock, o->endpoint)) {
        snprintf(err, errlen, "cannot bind the ZeroMQ submission socket to %s: %s", o->endpoint,
                 zmq_strerror(errno));
        goto fail;
    }
    size_t sz = sizeof z->fd;
    if (zmq_getsockopt(z->sock, ZMQ_FD, &z->fd, &sz) || loop_watch_zmq(o->loop, z->fd, drain, z)) {
        snprintf(err, errlen, "cannot watch the ZeroMQ socket");
        goto fail;
    }
    return z;
fail:
    if (z->sock)
        zmq_close(z->sock);
    free(z);
    return NULL;
}

void zmq_in_pause(zmq_in_t *z)
{
    z->paused = 1;
}

void zmq_in_destroy(zmq_in_t **zp)
{
    if (!zp || !*zp)
        return;
    zmq_in_t *z = *zp;
    loop_unwatch(z->o.loop, z->fd);
    zmq_close(z->sock);
    free(z);
    *zp = NULL;
}
