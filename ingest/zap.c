#include "zap.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "log.h"
#include "zparts.h"

#define AUTH_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define AUTH_ZAP_MAX_PARTS 16 /* a request has 7 frames (more with several credentials) */
#define AUTH_BURST 256        /* requests answered per turn before yielding */

/* One of these per domain: who may connect. */
typedef struct auth_allow {
    int any;             /* "*": every key */
    zcertstore_t *store; /* else the certificates of the directory */
    char dir[1024];
} auth_allow_t;

struct zap_t {
    loop_t *loop;
    void *zap; /* REP bound to the ZAP endpoint */
    int fd;
    zcert_t *cert;
    auth_allow_t clients, subscribers;
    metric_t *m_admitted, *m_refused;
    log_every_t refusals; /* a refused peer retries without end: one line a second at most */
};

static int allow_open(auth_allow_t *al, const char *what, const char *dir, char *err, size_t errlen)
{
    if (!strcmp(dir, "*")) {
        al->any = 1;
        return 0;
    }
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s '%s' is not a directory of public certificates (or '*')", what,
                 dir);
        return -EINVAL;
    }
    snprintf(al->dir, sizeof al->dir, "%s", dir);
    al->store = zcertstore_new(dir);
    if (!al->store) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* Whether the 32-byte key is admitted. */
static int allow_has(auth_allow_t *al, const unsigned char *key)
{
    if (al->any)
        return 1;
    char txt[41];
    if (!zmq_z85_encode(txt, key, 32))
        return 0;
    return zcertstore_lookup(al->store, txt) != NULL;
}

static void reply(zap_t *a, zmq_msg_t *request_id, const char *code, const char *text)
{
    zmq_send(a->zap, "1.0", 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(a->zap, zmq_msg_data(request_id), zmq_msg_size(request_id),
             ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(a->zap, code, strlen(code), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(a->zap, text, strlen(text), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(a->zap, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT); /* user id */
    zmq_send(a->zap, "", 0, ZMQ_DONTWAIT);               /* metadata */
}

static int frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && !memcmp(zmq_msg_data(m), s, n);
}

/* Answers one request of nparts frames. */
static void handle(zap_t *a, zmq_msg_t *parts, size_t nparts)
{
    /* version, request id, domain, address, routing id, mechanism, credentials... */
    if (nparts < 6 || !frame_is(&parts[0], "1.0")) {
        log_warn("auth: a malformed ZAP request of %zu frames", nparts);
        if (nparts >= 2)
            reply(a, &parts[1], "500", "malformed request");
        return;
    }
    zmq_msg_t *domain = &parts[2], *address = &parts[3], *mech = &parts[5];
    auth_allow_t *al = frame_is(domain, AUTH_DOMAIN_PUBLISH) ? &a->subscribers : &a->clients;
    const char *addr = (const char *)zmq_msg_data(address);
    int alen = (int)(zmq_msg_size(address) < 64 ? zmq_msg_size(address) : 64);
    int dlen = (int)(zmq_msg_size(domain) < 16 ? zmq_msg_size(domain) : 16);
    unsigned long long held = 0;
    if (!frame_is(mech, "CURVE") || nparts < 7 || zmq_msg_size(&parts[6]) != 32) {
        metric_add(a->m_refused, 1);
        if (log_every(&a->refusals, &held))
            log_warn("auth: refused a peer from %.*s on %.*s: not CURVE (%llu more refused since "
                     "the last line)",
                     alen, addr, dlen, (const char *)zmq_msg_data(domain), held);
        reply(a, &parts[1], "400", "CURVE required");
        return;
    }
    const unsigned char *key = zmq_msg_data(&parts[6]);
    if (allow_has(al, key)) {
        metric_add(a->m_admitted, 1);
        reply(a, &parts[1], "200", "OK");
        return;
    }
    char txt[41] = "?";
    zmq_z85_encode(txt, key, 32);
    metric_add(a->m_refused, 1);
    if (log_every(&a->refusals, &held))
        log_warn("auth: refused CURVE key %s from %.*s on %.*s: not in %s (%llu more refused since "
                 "the last line)",
                 txt, alen, addr, dlen, (const char *)zmq_msg_data(domain), al->dir, held);
    reply(a, &parts[1], "400", "unknown key");
}

/* Answers up to a burst of requests. Returns 1 when more may be waiting. */
static int drain(loop_t *loop, void *arg)
{
    (void)loop;
    zap_t *a = arg;
    for (int n = 0; n < AUTH_BURST; n++) {
        zmq_msg_t parts[AUTH_ZAP_MAX_PARTS];
        size_t nparts;
        if (zparts_recv(a->zap, parts, AUTH_ZAP_MAX_PARTS, &nparts) == -EAGAIN)
            return 0;
        if (nparts) /* what came, even cut short or past the bound: handle checks its frames */
            handle(a, parts, nparts);
        zparts_close(parts, nparts);
    }
    return 1;
}

zap_t *zap_new(const zap_options_t *o, char *err, size_t errlen)
{
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "this libzmq has no CURVE support");
        return NULL;
    }
    zap_t *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->refusals.period_ms = 1000;
    a->loop = o->loop;
    a->fd = -1;
    a->cert = zcert_load(o->cert);
    static const unsigned char zero[32];
    if (!a->cert) {
        snprintf(err, errlen, "ADW_INGEST_CURVE_CERT: cannot read a CURVE certificate from %s",
                 o->cert);
        goto fail;
    }
    if (!memcmp(zcert_secret_key(a->cert), zero, sizeof zero)) {
        snprintf(err, errlen,
                 "ADW_INGEST_CURVE_CERT: %s holds no secret key (its secret half, %s_secret, "
                 "is needed)",
                 o->cert, o->cert);
        goto fail;
    }
    if (!o->clients || !*o->clients) {
        snprintf(err, errlen,
                 "ADW_INGEST_CURVE_CLIENTS is required with ADW_INGEST_CURVE_CERT: a directory "
                 "of client public certificates, or '*' for any key");
        goto fail;
    }
    const char *subs = o->subscribers && *o->subscribers ? o->subscribers : o->clients;
    if (allow_open(&a->clients, "ADW_INGEST_CURVE_CLIENTS", o->clients, err, errlen) ||
        allow_open(&a->subscribers, "ADW_INGEST_CURVE_SUBSCRIBERS", subs, err, errlen))
        goto fail;
    a->zap = zmq_socket(o->zctx, ZMQ_REP);
    if (!a->zap || zmq_bind(a->zap, AUTH_ZAP_ENDPOINT)) {
        snprintf(err, errlen, "cannot bind the ZAP handler: %s", zmq_strerror(errno));
        goto fail;
    }
    int linger = 0;
    zmq_setsockopt(a->zap, ZMQ_LINGER, &linger, sizeof linger);
    size_t sz = sizeof a->fd;
    if (zmq_getsockopt(a->zap, ZMQ_FD, &a->fd, &sz)) {
        a->fd = -1;
        snprintf(err, errlen, "cannot watch the ZAP socket");
        goto fail;
    }
    if (loop_watch_zmq(o->loop, a->fd, drain, a)) {
        snprintf(err, errlen, "cannot watch the ZAP socket");
        goto fail;
    }
    if (o->metrics) {
        a->m_admitted =
            metrics_counter(o->metrics, "adw_ingest_curve_peers_total", "result=\"admitted\"",
                            "CURVE handshakes admitted or refused by key");
        a->m_refused =
            metrics_counter(o->metrics, "adw_ingest_curve_peers_total", "result=\"refused\"",
                            "CURVE handshakes admitted or refused by key");
    }
    return a;
fail:
    zap_destroy(&a);
    return NULL;
}

void zap_destroy(zap_t **ap)
{
    if (!ap || !*ap)
        return;
    zap_t *a = *ap;
    if (a->fd >= 0)
        loop_unwatch(a->loop, a->fd);
    if (a->zap)
        zmq_close(a->zap);
    zcertstore_destroy(&a->clients.store);
    zcertstore_destroy(&a->subscribers.store);
    zcert_destroy(&a->cert);
    free(a);
    *ap = NULL;
}

int zap_apply(const zap_t *a, void *sock, const char *domain)
{
    int on = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &on, sizeof on) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, zcert_secret_key(a->cert), 32) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, zcert_public_key(a->cert), 32) ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)))
        return -errno;
    return 0;
}

const char *zap_public_key(const zap_t *a)
{
    return zcert_public_txt(a->cert);
}
