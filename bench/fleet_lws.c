/* fleet_lws: the fleet's clients as libwebsockets' client, one context per thread. It costs
 * about ten times the CPU per message of the own client (fleet_epoll.c): a second, independent
 * client to check the figures against. */
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_lws.h"
#include "timefmt.h"

static int lwsc_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    fclient_t *c = user;
    /* A client connection's callbacks carry its fclient_t (the connect's userdata, th set);
     * the context's own carry none and need nothing here. */
    if (!c || !c->th)
        return 0;
    fleet_thread_t *th = c->th;
    pthread_mutex_lock(&th->mu);
    int rc = 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->state = FC_OPEN;
        c->connected = 1;
        th->in_flight--;
        th->st.connected++;
        if (!th->st.first_connect_us)
            th->st.first_connect_us = timefmt_now_us();
        if (!c->ever)
            th->st.ever_connected++;
        c->ever = 1;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c->state == FC_CONNECTING)
            th->in_flight--;
        c->state = FC_DONE;
        c->wsi = NULL;
        th->st.failed++;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        th->now_us = timefmt_now_us();
        th->arrived_us = 0; /* no kernel timestamp through libwebsockets */
        if (fleet_client_piece(c, in, len, lws_is_final_fragment(wsi))) {
            c->pong_due = 1;
            lws_callback_on_writable(c->wsi);
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->pong_due) {
            unsigned char buf[LWS_PRE + FLEET_PONG_LEN];
            memcpy(buf + LWS_PRE, FLEET_PONG, FLEET_PONG_LEN);
            c->pong_due = 0;
            if (lws_write(wsi, buf + LWS_PRE, FLEET_PONG_LEN, LWS_WRITE_TEXT) < 0)
                rc = -1;
        }
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2)
            th->st.last_close_code =
                (((const unsigned char *)in)[0] << 8) | ((const unsigned char *)in)[1];
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c->connected) {
            th->st.connected--;
            th->st.closed++;
        }
        c->connected = 0;
        c->state = FC_DONE;
        c->wsi = NULL;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&th->mu);
    return rc;
}

static const struct lws_protocols LWSC_PROTOCOLS[] = {
    {"adw-bench", lwsc_callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Starts connections until FLEET_CONNECTS_IN_FLIGHT handshakes are under way. */
static void lwsc_connect_more(fleet_thread_t *th)
{
    fleet_t *f = th->f;
    while (th->next_connect < th->nclients && th->in_flight < FLEET_CONNECTS_IN_FLIGHT) {
        fclient_t *c = &th->clients[th->next_connect++];
        url_t *u = &f->urls[c->url];
        char path[1024];
        const char *q = fleet_client_query(c);
        snprintf(path, sizeof path, "%s%s%s", u->path,
                 q && *q ? (strchr(u->path, '?') ? "&" : "?") : "", q && *q ? q : "");
        char origin[160]; /* libwebsockets writes "Origin: http://" before it */
        snprintf(origin, sizeof origin, "%s:%d", u->host, u->port);
        struct lws_client_connect_info ci;
        memset(&ci, 0, sizeof ci);
        ci.context = th->ctx;
        ci.address = u->host;
        ci.port = u->port;
        ci.path = path;
        ci.host = origin;
        ci.origin = origin;
        ci.ietf_version_or_minus_one = -1;
        ci.userdata = c;
        ci.local_protocol_name = "adw-bench";
        ci.pwsi = &c->wsi;
        ci.iface = fleet_client_source(c);
        pthread_mutex_lock(&th->mu);
        c->state = FC_CONNECTING;
        th->in_flight++;
        pthread_mutex_unlock(&th->mu);
        if (!lws_client_connect_via_info(&ci)) {
            pthread_mutex_lock(&th->mu);
            if (c->state == FC_CONNECTING) { /* no error callback came */
                c->state = FC_DONE;
                th->in_flight--;
                th->st.failed++;
            }
            pthread_mutex_unlock(&th->mu);
        }
    }
}

int fleet_lws_init(fleet_thread_t *th)
{
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = LWSC_PROTOCOLS;
    info.gid = -1;
    info.uid = -1;
    info.fd_limit_per_thread = (unsigned int)(th->nclients + 64);
    th->ctx = lws_create_context(&info);
    return th->ctx ? 0 : -1;
}

void *fleet_lws_run(void *arg)
{
    fleet_thread_t *th = arg;
    while (!atomic_load(&th->f->stop)) {
        lwsc_connect_more(th);
        lws_service(th->ctx, 50);
    }
    return NULL;
}

void fleet_lws_wake(fleet_thread_t *th)
{
    if (th->ctx)
        lws_cancel_service(th->ctx);
}

void fleet_lws_fini(fleet_thread_t *th)
{
    if (th->ctx)
        lws_context_destroy(th->ctx);
    th->ctx = NULL;
}
