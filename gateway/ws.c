#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "approve.h"
#include "listen.h"
#include "log.h"
#include "routes.h"
#include "rxguard.h"
#include "session.h"
#include "timefmt.h"
#include "tls.h"
#include "webdir.h"
#include "wsstate.h"

_Static_assert(LWS_PRE <= FRAME_HEADROOM, "frames need LWS_PRE bytes of headroom");
_Static_assert(10 <= FRAME_HEADROOM, "frames need room for the longest frame header");

#define WS_TICK_US 250000  /* timer resolution for heartbeats and timeouts */
#define WS_CLOSE_KILL_S 10 /* a client told to close is cut off after this */
#define WS_DRAIN_SLICE 64  /* events moved into the fanout per turn of the loop */

/* ------------------------------------------------------------------------------------------ */
/* Writes */

/* Writes what is queued for c with one lws_write: a lone frame as it is (lws frames it), or
 * several whole frames, already framed, copied into one buffer of at most WS_WRITE_MAX bytes.
 * Returns 0, or -1 when the connection failed. */
static int ws_write_frames(ws_server_t *s, struct lws *wsi, fanout_client_t *c)
{
    frame_t *f = fanout_peek(c);
    if (!f)
        return 0;
    size_t total = 0, nmsg = 0, nev = 0;
    frame_t *next;
    if (c->count > 1 && f->wire_len <= WS_WRITE_MAX) {
        unsigned char *out = s->wbuf + LWS_PRE;
        while ((next = fanout_peek(c)) && total + next->wire_len <= WS_WRITE_MAX) {
            next = fanout_pop(c);
            memcpy(out + total, next->wire, next->wire_len);
            total += next->wire_len;
            nmsg++;
            nev += next->id != 0;
            frame_unref(&next);
        }
        metric_add(s->m_messages, (int64_t)nmsg);
        metric_add(s->m_deliveries, (int64_t)nev);
        return lws_write(wsi, out, total, LWS_WRITE_RAW) < (int)total ? -1 : 0;
    }
    f = fanout_pop(c);
    int n = lws_write(wsi, f->payload, f->len, LWS_WRITE_TEXT);
    metric_add(s->m_messages, 1);
    if (f->id)
        metric_add(s->m_deliveries, 1);
    size_t len = f->len;
    frame_unref(&f);
    return n < (int)len ? -1 : 0;
}

/* LWS_CALLBACK_SERVER_WRITEABLE: a close decided (logged once), else a protocol ping due, else
 * the queued messages; then the replay may read on. Returns 0, or -1 to close. */
static int ws_writeable(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    fanout_client_t *c = &ss->fc;
    if (c->close_code) {
        if (!ss->close_logged) {
            char peer[64] = "";
            lws_get_peer_simple(wsi, peer, sizeof peer);
            log_write(c->close_code == WS_CLOSE_GOING_AWAY ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
                      "closing client %s: %d %s", peer, c->close_code, fanout_close_reason(c));
            ss->close_logged = 1;
        }
        const char *why = fanout_close_reason(c);
        lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)why,
                         strlen(why));
        return -1;
    }
    if (ss->ping_due) {
        ss->ping_due = 0;
        /* libwebsockets 4.1 reports no RECEIVE_PONG for an empty pong, so the ping carries a
         * payload for the client to echo. */
        unsigned char ping[LWS_PRE + 8] = {0};
        memcpy(ping + LWS_PRE, "adw", 3);
        if (lws_write(wsi, ping + LWS_PRE, 3, LWS_WRITE_PING) < 0)
            return -1;
    } else if (ws_write_frames(s, wsi, c) < 0) {
        return -1;
    } else {
        replay_pump(ss->replay);
    }
    if (ss->ping_due || fanout_pending(c) || c->close_code)
        lws_callback_on_writable(wsi);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The loop's own work */

/* The database was replaced: a replay running reads ids of the old epoch's range from the new
 * database, so it is abandoned (its query cancelled, its rows discarded) and its client closed
 * with 1012, to reconnect and learn the new epoch from the hello. */
static void reset_replays(ws_server_t *s)
{
    for (fanout_client_t *c = fanout_clients(s->fanout), *next; c; c = next) {
        next = c->next;
        ws_session_t *ss = ws_session_of(c);
        if (!ss->replay && !c->replaying)
            continue;
        replay_cancel(&ss->replay);
        fanout_close(s->fanout, c, WS_CLOSE_DB_REPLACED, "database replaced; reconnect");
    }
}

/* Hands the events gathered in batch (frames: their frames) to the fanout and frees them. */
static void publish_batch(ws_server_t *s, sub_item_t **batch, frame_t **frames, size_t *nb)
{
    fanout_publish_batch(s->fanout, frames, *nb);
    for (size_t i = 0; i < *nb; i++)
        sub_item_free(batch[i]);
    *nb = 0;
}

/* Moves what the subscriber and the database workers produced into the fanout, at most
 * WS_DRAIN_SLICE events per turn of the loop so that clients write between slices of a burst;
 * the rest waits in s->inbox and the loop is woken again for it. */
static void drain(ws_server_t *s)
{
    if (s->sub && !s->inbox)
        s->inbox = sub_take(s->sub);
    sub_item_t *batch[WS_DRAIN_SLICE];
    frame_t *frames[WS_DRAIN_SLICE];
    size_t nb = 0;
    int64_t last = fanout_last_id(s->fanout);
    for (int n = 0; s->inbox && n < WS_DRAIN_SLICE; n++) {
        sub_item_t *it = s->inbox;
        s->inbox = it->next;
        if (it->kind == SUB_ITEM_EVENT) { /* consecutive events go to the fanout together */
            if (it->frame->id > last) {
                last = it->frame->id;
                frames[nb] = it->frame;
                batch[nb++] = it;
            } else {
                sub_item_free(it);
            }
            continue;
        }
        publish_batch(s, batch, frames, &nb);
        if (it->kind == SUB_ITEM_POSITION) {
            fanout_position(s->fanout, it->last_id, it->epoch);
        } else {
            reset_replays(s);
            fanout_reset(s->fanout, it->epoch);
        }
        last = fanout_last_id(s->fanout);
        sub_item_free(it);
    }
    publish_batch(s, batch, frames, &nb);
    if (s->inbox)
        lws_cancel_service(s->ctx);
    if (s->pool) {
        dbpool_complete(s->pool);
        replayer_pump(s->replayer);
    }
    if (s->forward)
        forward_complete(s->forward);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    ws_server_t *s = lws_container_of(sul, ws_server_t, tick);
    drain(s);
    int64_t now = timefmt_mono_us();
    int64_t silent_max = 3 * (int64_t)s->o.heartbeat_s * 1000000;
    frame_t *ping = NULL; /* one frame shared by every client's queue */
    int beat = now >= s->next_ping_us;
    if (beat) {
        s->next_ping_us = now + (int64_t)s->o.heartbeat_s * 1000000;
        char ts[TIMEFMT_LEN], msg[96];
        timefmt_format(timefmt_now_us(), ts);
        int mlen = snprintf(msg, sizeof msg, "{\"type\":\"ping\",\"ts\":\"%s\"}", ts);
        ping = frame_new_text(msg, (size_t)mlen);
    }
    for (fanout_client_t *c = fanout_clients(s->fanout), *next; c; c = next) {
        next = c->next;
        ws_session_t *ss = ws_session_of(c);
        if (!c->close_code && now - ss->last_rx_us > silent_max) {
            metric_add(s->m_hb_timeouts, 1);
            fanout_close(s->fanout, c, WS_CLOSE_HEARTBEAT, "heartbeat timeout");
        }
        if (c->close_code) {
            if (!ss->kill_armed) { /* a peer that never reads must not linger */
                ss->kill_armed = 1;
                lws_set_timeout(ss->wsi, PENDING_TIMEOUT_USER_OK, WS_CLOSE_KILL_S);
            }
            continue;
        }
        if (beat) {
            if (ping)
                fanout_send(s->fanout, c, frame_ref(ping));
            else
                fanout_close(s->fanout, c, 1011, "out of memory");
            ss->ping_due = 1;
            lws_callback_on_writable(ss->wsi);
        }
    }
    frame_unref(&ping);
    lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, WS_TICK_US);
}

static void wake_client(void *user)
{
    lws_callback_on_writable(user);
}

/* The one protocol callback, for HTTP and WebSocket alike. */
static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    ws_session_t *ss = user;
    ws_server_t *s = ws_server_of(wsi);
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s)
            drain(s);
        return 0;

    /* HTTP */
    case LWS_CALLBACK_HTTP:
        return routes_serve(s, wsi, ss, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return routes_writeable(s, wsi, ss);
    case LWS_CALLBACK_HTTP_BODY: /* only a decision's body is read (approve.h) */
        if (ss && ss->approve)
            return approve_body(s, wsi, ss, in, len);
        break;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (ss && ss->approve)
            return approve_body_done(s, wsi, ss);
        break;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        routes_closed(ss);
        break;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return admit_upgrade(s, wsi, in);

    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        rxguard_watch(lws_get_socket_fd(wsi));
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (s)
            admit_forget(s, wsi);
        break;

    /* WebSocket */
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return admit_take(s, wsi, ss);
    case LWS_CALLBACK_ESTABLISHED:
        session_open(s, wsi, ss);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return session_receive(s, wsi, ss, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        ss->last_rx_us = timefmt_mono_us();
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_writeable(s, wsi, ss);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return 0;
    case LWS_CALLBACK_CLOSED:
        session_close(s, ss);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* rx_buffer_size: lws allocates this much (and LWS_PRE + 4) for every WebSocket connection when
 * it is established and keeps it for the connection's life, and hands a client's message over
 * in pieces of at most this size; session.c puts them together within ADW_CLIENT_FRAME_MAX.
 * 4096 cost 4 KB of each idle client's 6.5; a control frame (125 bytes of payload at most)
 * must fit whole, since lws answers a ping with what the buffer holds.
 * tx_packet_size: lws writes at most this much per send() (the rest on later turns). */
#define WS_RX_BUFFER 128
_Static_assert(WS_RX_BUFFER >= 125, "a control frame's payload must fit lws's receive buffer");
static const struct lws_protocols PROTOCOLS[] = {
    {"adw-events", ws_callback, sizeof(ws_session_t), WS_RX_BUFFER, 0, NULL, WS_WRITE_MAX},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ------------------------------------------------------------------------------------------ */
/* Life cycle */

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_write(level == LLL_ERR ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, "lws: %.*s", (int)n, line);
}

/* Binds and releases the address once, so that "address in use" is reported plainly. */
static int probe_bind(const char *host, int port, char *err, size_t errlen, const char *listen)
{
    struct sockaddr_in6 a6 = {0};
    struct sockaddr_in a4 = {0};
    int v6 = strchr(host, ':') != NULL;
    if (v6) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a6.sin6_addr) != 1) {
            snprintf(err, errlen, "cannot listen on %s: not an IP address", listen);
            return -EINVAL;
        }
    } else {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        if (!*host)
            a4.sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &a4.sin_addr) != 1) {
            snprintf(err, errlen, "cannot listen on %s: not an IP address", listen);
            return -EINVAL;
        }
    }
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = v6 ? bind(fd, (struct sockaddr *)&a6, sizeof a6)
                : bind(fd, (struct sockaddr *)&a4, sizeof a4);
    int e = errno;
    close(fd);
    if (rc) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen,
                 e == EADDRINUSE ? "address already in use" : strerror(e));
        return -e;
    }
    return 0;
}

ws_server_t *ws_new(const ws_options_t *o, char *err, size_t errlen)
{
    listen_addr_t la;
    if (listen_parse(o->listen, &la, NULL, 0) || la.port == 0) {
        snprintf(err, errlen, "bad listen address \"%s\" (want host:port)", o->listen);
        return NULL;
    }
    char *host = la.host; /* "*" is "" already */
    int port = la.port;
    if (!strcmp(host, "0.0.0.0"))
        host[0] = '\0';
    if (probe_bind(host, port, err, errlen, o->listen))
        return NULL;
    ws_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->tokens = tokens_new(o->token, o->read_tokens, err, errlen);
    if (!s->tokens)
        goto fail;
    s->decide = decide_new(o->decide_tokens, err, errlen);
    if (!s->decide)
        goto fail;
    if (o->token && *o->token && decide_has(s->decide, o->token)) {
        snprintf(err, errlen, "ADW_GATEWAY_DECIDE_TOKENS: a decide token equals ADW_GATEWAY_TOKEN");
        goto fail;
    }
    forward_options_t fwo = {.ingest_url = o->ingest_url,
                             .ingest_token = o->ingest_token,
                             .wake = ws_wake,
                             .wake_arg = s};
    s->forward = forward_new(&fwo, err, errlen);
    if (!s->forward)
        goto fail;
    int tls = o->tls_cert && *o->tls_cert;
    if (!tls_pair_ok(o->tls_cert, o->tls_key, "ADW_GATEWAY_TLS_CERT", "ADW_GATEWAY_TLS_KEY", err,
                     errlen))
        goto fail;
    if (tls) { /* lws's own failure says little: check the files here first */
        SSL_CTX *check = tls_server_new(o->tls_cert, o->tls_key, err, errlen);
        if (!check)
            goto fail;
        tls_server_destroy(&check);
    }
    s->origins = o->origins && *o->origins ? strdup(o->origins) : NULL;
    s->wbuf = malloc(LWS_PRE + WS_WRITE_MAX);
    fanout_options_t fo = {.max_queue = o->max_queue, .wake = wake_client, .metrics = o->metrics};
    s->fanout = fanout_new(&fo);
    if (!s->wbuf || !s->fanout || (o->origins && *o->origins && !s->origins)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (o->web_dir && *o->web_dir) {
        int rc = webdir_root(o->web_dir, s->web_root, sizeof s->web_root);
        if (rc)
            log_warn("not serving %s: %s", o->web_dir, strerror(-rc));
        s->have_web = !rc;
    }
    metrics_t *m = o->metrics;
    if (m) {
        s->m_deliveries = metrics_counter(m, "adw_gateway_deliveries_total", NULL,
                                          "Events written to WebSocket clients");
        s->m_messages = metrics_counter(m, "adw_gateway_messages_total", NULL,
                                        "Messages of any kind written to WebSocket clients");
        s->m_connections = metrics_counter(m, "adw_gateway_connections_total", NULL,
                                           "WebSocket connections accepted");
        s->m_hb_timeouts =
            metrics_counter(m, "adw_gateway_drops_total", "reason=\"heartbeat_timeout\"",
                            "Clients closed by the gateway, by reason");
        s->m_too_big = metrics_counter(m, "adw_gateway_drops_total", "reason=\"message_too_big\"",
                                       "Clients closed by the gateway, by reason");
        s->m_bad_messages = metrics_counter(m, "adw_gateway_drops_total", "reason=\"bad_messages\"",
                                            "Clients closed by the gateway, by reason");
        s->m_unmasked = metrics_counter(m, "adw_gateway_drops_total", "reason=\"unmasked_frame\"",
                                        "Clients closed by the gateway, by reason");
        const char *help = "WebSocket upgrades refused, by reason";
        s->m_rej_auth = metrics_counter(m, "adw_gateway_rejected_total", "reason=\"token\"", help);
        s->m_rej_origin =
            metrics_counter(m, "adw_gateway_rejected_total", "reason=\"origin\"", help);
        s->m_rej_full = metrics_counter(m, "adw_gateway_rejected_total", "reason=\"full\"", help);
        s->m_rej_unready =
            metrics_counter(m, "adw_gateway_rejected_total", "reason=\"not_ready\"", help);
        s->m_rej_bad =
            metrics_counter(m, "adw_gateway_rejected_total", "reason=\"bad_request\"", help);
        s->m_http = metrics_counter(m, "adw_gateway_http_requests_total", NULL,
                                    "HTTP requests other than WebSocket upgrades");
    }

    lws_set_log_level(LLL_ERR | (log_enabled(LOG_LEVEL_DEBUG) ? LLL_WARN : 0), lws_log);
    static const lws_retry_bo_t retry = {.secs_since_valid_ping = 65000,
                                         .secs_since_valid_hangup = 65535};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = *host ? host : NULL;
    info.protocols = PROTOCOLS;
    info.user = s;
    info.gid = -1;
    info.uid = -1;
    info.options = strchr(host, ':') ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6;
    if (tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = o->tls_cert;
        info.ssl_private_key_filepath = o->tls_key;
    }
    info.max_http_header_data = 16384;
    info.max_http_header_pool = 256;
    info.pt_serv_buf_size = 32768;
    info.keepalive_timeout = 30;
    info.timeout_secs = 20;
    info.fd_limit_per_thread = admit_fd_budget(s);
    info.retry_and_idle_policy = &retry;
    info.vhost_name = "adw-gateway";
    info.server_string = "adw-gateway";
    int grc = rxguard_init(session_unmasked);
    if (grc)
        log_warn("cannot check that client frames are masked: %s",
                 grc == -ENOTSUP ? "recv or SSL_read is not interposed" : strerror(-grc));
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        snprintf(err, errlen, "cannot listen on %s (libwebsockets could not start)", o->listen);
        goto fail;
    }
    s->next_ping_us = timefmt_mono_us() + (int64_t)o->heartbeat_s * 1000000;
    lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, WS_TICK_US);
    return s;
fail:
    ws_destroy(&s);
    return NULL;
}

int ws_attach(ws_server_t *s, sub_t *sub, dbpool_t *pool)
{
    replayer_options_t ro = {.fanout = s->fanout,
                             .pool = pool,
                             .max_queue = s->o.max_queue,
                             .max_active = s->o.max_replays > 0 ? (size_t)s->o.max_replays : 1,
                             .metrics = s->o.metrics};
    s->replayer = replayer_new(&ro);
    if (!s->replayer)
        return -ENOMEM;
    s->sub = sub;
    s->pool = pool;
    return 0;
}

void ws_service(ws_server_t *s)
{
    lws_service(s->ctx, 0);
}

void ws_wake(void *arg)
{
    ws_server_t *s = arg;
    if (s && s->ctx)
        lws_cancel_service(s->ctx);
}

void ws_shutdown(ws_server_t *s)
{
    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    for (fanout_client_t *c = fanout_clients(s->fanout), *next; c; c = next) {
        next = c->next;
        fanout_close(s->fanout, c, WS_CLOSE_GOING_AWAY, "server shutting down");
    }
}

size_t ws_clients(const ws_server_t *s)
{
    return fanout_count(s->fanout);
}

void ws_destroy(ws_server_t **ps)
{
    if (!ps || !*ps)
        return;
    ws_server_t *s = *ps;
    *ps = NULL;
    forward_destroy(&s->forward); /* first: its thread wakes the context */
    if (s->ctx) {
        lws_sul_cancel(&s->tick);
        lws_context_destroy(s->ctx);
        rxguard_shutdown();
    }
    for (sub_item_t *it = s->inbox, *next; it; it = next) {
        next = it->next;
        sub_item_free(it);
    }
    replayer_destroy(&s->replayer);
    fanout_destroy(&s->fanout);
    free(s->wbuf);
    admit_forget(s, NULL);
    tokens_destroy(&s->tokens);
    decide_destroy(&s->decide);
    free(s->origins);
    free(s);
}
