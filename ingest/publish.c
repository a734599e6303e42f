#include "publish.h"

#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"

struct publish_t {
    void *sock;
    int64_t last_id;
    metric_t *m_published, *m_heartbeats, *m_send_errors;
};

publish_t *publish_new(const publish_options_t *o, char *err, size_t errlen)
{
    publish_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->sock = zmq_socket(o->zctx, ZMQ_PUB);
    if (!p->sock) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        goto fail;
    }
    int hwm = o->sndhwm > 0 && o->sndhwm < 0x7fffffff ? (int)o->sndhwm : 100000;
    int linger = 1000;
    int64_t max_in = PUBLISH_MAX_INBOUND;
    zmq_setsockopt(p->sock, ZMQ_MAXMSGSIZE, &max_in, sizeof max_in);
    /* A ZAP domain, even without a ZAP handler, makes libzmq refuse ZMTP 1.0 and 2.0 peers: random
     * bytes taken for their framing would otherwise be subscriptions. */
    zmq_setsockopt(p->sock, ZMQ_ZAP_DOMAIN, AUTH_DOMAIN_PUBLISH, strlen(AUTH_DOMAIN_PUBLISH));
    if (o->auth && zap_apply(o->auth, p->sock, AUTH_DOMAIN_PUBLISH)) {
        snprintf(err, errlen, "cannot make the PUB socket a CURVE server: %s", zmq_strerror(errno));
        goto fail;
    }
    zmq_setsockopt(p->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(p->sock, o->endpoint)) {
        snprintf(err, errlen, "cannot bind the PUB socket to %s: %s", o->endpoint,
                 zmq_strerror(errno));
        goto fail;
    }
    if (o->metrics) {
        p->m_published = metrics_counter(o->metrics, "adw_ingest_published_total", NULL,
                                         "Events published on the PUB socket");
        p->m_heartbeats = metrics_counter(o->metrics, "adw_ingest_heartbeats_total", NULL,
                                          "$hb heartbeats published");
        p->m_send_errors = metrics_counter(o->metrics, "adw_ingest_publish_errors_total", NULL,
                                           "PUB sends that failed");
    }
    return p;
fail:
    if (p->sock)
        zmq_close(p->sock);
    free(p);
    return NULL;
}

void publish_destroy(publish_t **pp)
{
    if (!pp || !*pp)
        return;
    zmq_close((*pp)->sock);
    free(*pp);
    *pp = NULL;
}

static int send2(publish_t *p, const char *topic, size_t tlen, const void *body, size_t blen)
{
    if (zmq_send(p->sock, topic, tlen, ZMQ_SNDMORE) < 0 || zmq_send(p->sock, body, blen, 0) < 0) {
        metric_add(p->m_send_errors, 1);
        return -errno;
    }
    return 0;
}

int publish_event(publish_t *p, const char *adw_id, int64_t id, const void *frame, size_t len)
{
    if (id != p->last_id + 1)
        log_warn("publish: id %lld follows %lld", (long long)id, (long long)p->last_id);
    p->last_id = id;
    int rc = send2(p, adw_id, strlen(adw_id), frame, len);
    if (!rc)
        metric_add(p->m_published, 1);
    return rc;
}

int publish_heartbeat(publish_t *p, int64_t epoch)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "last_id", 7);
    msgpack_pack_int64(&pk, p->last_id);
    msgpack_pack_str_with_body(&pk, "epoch", 5);
    msgpack_pack_int64(&pk, epoch);
    int rc = send2(p, "$hb", 3, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (!rc)
        metric_add(p->m_heartbeats, 1);
    return rc;
}

void publish_set_last(publish_t *p, int64_t last_id)
{
    p->last_id = last_id;
}

int64_t publish_last_id(const publish_t *p)
{
    return p->last_id;
}
