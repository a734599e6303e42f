/* wsstate: the state the gateway's network side shares between its files: ws.c (the server,
 * the protocol callback, the loop's own work), admit.c (upgrade admission), routes.c (plain
 * HTTP), respond.c (writing a response), approve.c (a decision's request) and session.c (a
 * WebSocket client's messages). Only those files include it; everyone else sees ws.h.
 *
 * Threads: everything here belongs to the loop thread (the one that calls ws_service).
 */
#ifndef ADW_GATEWAY_WSSTATE_H
#define ADW_GATEWAY_WSSTATE_H

#include <libwebsockets.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "buf.h"
#include "dbpool.h"
#include "decide.h"
#include "export.h"
#include "fanout.h"
#include "filter.h"
#include "forward.h"
#include "metrics.h"
#include "replay.h"
#include "sub.h"
#include "tokens.h"
#include "wsopts.h"
#include "wsproto.h"

#define WS_PATH "/ws/events"
#define WS_WRITE_MAX 65536 /* bytes of queued messages written at once to a client */
#define WS_ARGS_MAX 32     /* query parameters looked at */
#define WS_ARGBUF 16384    /* bytes of decoded query parameters */

typedef struct approve_t approve_t; /* approve.h */

/* The bad-message allowance of one client (session.h). Plain data, zeroed to start. */
typedef struct session_allowance_t {
    int64_t level; /* bad messages not yet forgiven, in millionths */
    int64_t at_us; /* when level was last brought up to date (monotonic) */
} session_allowance_t;

/* One of these per connection: lws allocates it zeroed, and again when HTTP turns WebSocket
 * (so nothing in it survives from LWS_CALLBACK_HTTP_CONFIRM_UPGRADE to the WebSocket side).
 * An idle client keeps it (and lws's own state) for its life: what it needs only for a moment
 * (the query's filter until ESTABLISHED, a close reason) lives elsewhere. */
typedef struct ws_session_t {
    struct lws *wsi;
    /* WebSocket */
    int is_ws;
    fanout_client_t fc;         /* registered with the fanout while is_ws */
    const filter_list_t *scope; /* its read token's adw_id prefixes (NULL: every run) */
    buf_t rx;                   /* the client message being received, when it comes in pieces */
    int rx_binary;
    int64_t last_rx_us; /* when the client last sent anything */
    int ping_due;       /* a protocol ping is to be written */
    int kill_armed;     /* a hard timeout is set after a close was decided */
    int close_logged;
    session_allowance_t bad; /* bad messages answered with an error (session.h) */
    replay_t *replay;        /* the replay running for it, if any */
    /* HTTP */
    int responding; /* a response is ready to write */
    int headers_sent;
    int head; /* a HEAD request: headers only */
    int status;
    const char *ctype;
    const char *extra_header; /* one more "Name:" header, or NULL */
    const char *extra_value;
    char *body; /* owned */
    size_t len, off;
    api_job_t *job;     /* the API query in flight */
    export_t *export;   /* the download in progress (export.h), if any */
    approve_t *approve; /* the decision being handled (approve.h), if any */
} ws_session_t;

/* What admission decided for an upgrade at LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, kept for the same
 * connection's LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION and LWS_CALLBACK_ESTABLISHED (admit.h). One
 * of these per server: lws runs both callbacks for a connection in one call, with nothing of
 * another connection between them, so at most one admission is ever waiting. */
typedef struct admit_record_t {
    struct lws *wsi;            /* the connection it was decided for; NULL: none waiting */
    filter_t filter;            /* the query's filter, its scope set (owned) */
    const filter_list_t *scope; /* the token's adw_id prefixes (NULL: every run) */
    int has_since;
    int64_t since;
} admit_record_t;

/* One of these per gateway: the lws context's user. */
typedef struct ws_server_t ws_server_t;
struct ws_server_t {
    ws_options_t o;
    tokens_t *tokens;
    decide_t *decide;   /* decide tokens (decide.h); empty when none */
    forward_t *forward; /* hands decisions to ingest (forward.h) */
    char *origins;
    char web_root[PATH_MAX];
    int have_web;
    struct lws_context *ctx;
    fanout_t *fanout;
    replayer_t *replayer;
    sub_t *sub;
    sub_item_t *inbox; /* taken from sub, not yet published */
    dbpool_t *pool;
    lws_sorted_usec_list_t tick;
    int64_t next_ping_us;
    int shutting_down;
    unsigned char *wbuf; /* LWS_PRE + WS_WRITE_MAX, for HTTP bodies and coalesced messages */
    char argbuf[WS_ARGBUF];
    param_t args[WS_ARGS_MAX]; /* the current request's query (admit_read_args) */
    size_t nargs;
    admit_record_t admitted; /* the upgrade admitted and not yet taken (admit.h) */
    metric_t *m_deliveries, *m_messages, *m_connections, *m_hb_timeouts, *m_too_big;
    metric_t *m_bad_messages, *m_unmasked;
    metric_t *m_rej_auth, *m_rej_origin, *m_rej_full, *m_rej_unready, *m_rej_bad;
    metric_t *m_http;
};

/* The server a connection belongs to. */
static inline ws_server_t *ws_server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* The session holding fanout client c. */
static inline ws_session_t *ws_session_of(fanout_client_t *c)
{
    return (ws_session_t *)((char *)c - offsetof(ws_session_t, fc));
}

#endif
