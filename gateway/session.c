#include "session.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "adw_limits.h"
#include "codec.h"
#include "jsonw.h"
#include "rxguard.h"
#include "timefmt.h"
#include "utf8.h"

void session_send_text(ws_server_t *s, ws_session_t *ss, const char *text, size_t len)
{
    frame_t *f = frame_new_text(text, len);
    if (!f) {
        fanout_close(s->fanout, &ss->fc, 1011, "out of memory");
        return;
    }
    fanout_send(s->fanout, &ss->fc, f);
}

int session_allowance_charge(session_allowance_t *a, int64_t now_us)
{
    a->level -= (now_us - a->at_us) * SESSION_BAD_PER_S;
    if (a->level < 0)
        a->level = 0;
    a->at_us = now_us;
    a->level += 1000000;
    return a->level > (int64_t)SESSION_BAD_BURST * 1000000;
}

/* Counts a client message answered with an error against the client's allowance; a client
 * over it is closed with 1008. */
static void count_bad_message(ws_server_t *s, ws_session_t *ss)
{
    if (session_allowance_charge(&ss->bad, timefmt_mono_us())) {
        metric_add(s->m_bad_messages, 1);
        fanout_close(s->fanout, &ss->fc, WS_CLOSE_POLICY, "too many bad messages");
    }
}

/* Sends {"type":"error","error":msg} for a client message it could not take. */
static void send_error(ws_server_t *s, ws_session_t *ss, const char *msg)
{
    buf_t b;
    buf_init(&b, 0);
    if (buf_puts(&b, "{\"type\":\"error\",\"error\":") || jsonw_string(&b, msg, strlen(msg)) ||
        buf_putc(&b, '}'))
        fanout_close(s->fanout, &ss->fc, 1011, "out of memory");
    else
        session_send_text(s, ss, b.data, b.len);
    buf_free(&b);
    count_bad_message(s, ss);
}

static void send_hello(ws_server_t *s, ws_session_t *ss)
{
    char msg[256];
    int n =
        snprintf(msg, sizeof msg,
                 "{\"type\":\"hello\",\"version\":\"%s\",\"last_id\":%" PRId64 ",\"epoch\":%" PRId64
                 ",\"heartbeat_s\":%d}",
                 ADW_VERSION, fanout_last_id(s->fanout), fanout_epoch(s->fanout), s->o.heartbeat_s);
    session_send_text(s, ss, msg, (size_t)n);
}

static void handle_subscribe(ws_server_t *s, ws_session_t *ss, json_t *msg)
{
    json_t *filters = json_object_get(msg, "filters");
    json_t *since = json_object_get(msg, "since");
    if (since && !json_is_null(since) &&
        (!json_is_integer(since) || json_integer_value(since) < 0)) {
        send_error(s, ss, "since must be an event id (an integer >= 0)");
        return;
    }
    filter_t f;
    filter_init(&f);
    f.scope = ss->scope;
    char err[200];
    if (filter_set_json(&f, filters, err, sizeof err) || filter_check_scope(&f, err, sizeof err)) {
        filter_free(&f);
        send_error(s, ss, err);
        return;
    }
    int has_since = json_is_integer(since); /* false for NULL */
    json_t *echo = filter_to_json(&f);
    json_t *reply =
        echo ? json_pack("{sssOso}", "type", "subscribed", "filters", echo, "since",
                         has_since ? json_integer(json_integer_value(since)) : json_null())
             : NULL;
    buf_t b;
    buf_init(&b, 0);
    if (!reply || jsonw_value(&b, reply)) {
        fanout_close(s->fanout, &ss->fc, 1011, "out of memory");
    } else {
        filter_move(&ss->fc.filter, &f);
        session_send_text(s, ss, b.data, b.len);
        if (has_since)
            replay_start(s->replayer, &ss->fc, &ss->fc.filter, json_integer_value(since),
                         &ss->replay);
    }
    buf_free(&b);
    json_decref(reply);
    json_decref(echo);
    filter_free(&f);
}

static void handle_message(ws_server_t *s, ws_session_t *ss, const char *data, size_t len)
{
    if (ss->rx_binary) {
        send_error(s, ss, "binary messages are not accepted; send JSON text");
        return;
    }
    json_t *msg = NULL;
    char err[200], why[256];
    if (codec_json_parse(data, len, &msg, err, sizeof err)) {
        snprintf(why, sizeof why, "invalid JSON: %s", err);
        send_error(s, ss, why);
        return;
    }
    if (!json_is_object(msg)) {
        send_error(s, ss, "a message must be a JSON object with an action");
        json_decref(msg);
        return;
    }
    json_t *a = json_object_get(msg, "action");
    if (!a)
        a = json_object_get(msg, "type");
    if (!json_is_string(a)) {
        send_error(s, ss, a ? "action must be a string" : "missing action");
        json_decref(msg);
        return;
    }
    const char *action = json_string_value(a);
    if (!strcmp(action, "subscribe")) {
        handle_subscribe(s, ss, msg);
    } else if (!strcmp(action, "ping")) {
        char ts[TIMEFMT_LEN], reply[96];
        timefmt_format(timefmt_now_us(), ts);
        int n = snprintf(reply, sizeof reply, "{\"type\":\"pong\",\"ts\":\"%s\"}", ts);
        session_send_text(s, ss, reply, (size_t)n);
    } else if (!strcmp(action, "pong")) {
        /* liveness only */
    } else {
        buf_t b;
        buf_init(&b, 0);
        buf_puts(&b, "unknown action ");
        jsonw_string(&b, action, strlen(action) > 64 ? 64 : strlen(action));
        buf_puts(&b, " (known: subscribe, ping, pong)");
        send_error(s, ss, b.data ? b.data : "unknown action");
        buf_free(&b);
    }
    json_decref(msg);
}

/* Handles the whole message data (len bytes, borrowed): 1007 for text that is not UTF-8, else
 * the message. Returns 0, or -1 to close the connection (the close reason set). */
static int take_message(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const char *data,
                        size_t len)
{
    if (!ss->rx_binary && utf8_validate(data, len)) {
        /* RFC 6455: a text message that is not UTF-8 fails the connection with 1007. */
        static const char bad[] = "text message is not valid UTF-8";
        lws_close_reason(wsi, WS_CLOSE_INVALID_UTF8, (unsigned char *)bad, sizeof bad - 1);
        return -1;
    }
    handle_message(s, ss, data, len);
    return 0;
}

int session_receive(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const void *in, size_t len)
{
    ss->last_rx_us = timefmt_mono_us();
    int first = lws_is_first_fragment(wsi);
    if (first) {
        buf_free(&ss->rx);
        ss->rx_binary = lws_frame_is_binary(wsi);
    }
    size_t remaining = lws_remaining_packet_payload(wsi);
    if (ss->rx.len + len + remaining > ADW_CLIENT_FRAME_MAX) {
        static const char reason[] = "message too big (limit 65536 bytes)";
        metric_add(s->m_too_big, 1);
        lws_close_reason(wsi, WS_CLOSE_TOO_BIG, (unsigned char *)reason, sizeof reason - 1);
        return -1;
    }
    int whole = !remaining && lws_is_final_fragment(wsi);
    if (first && whole) /* the usual case: the message in one piece, taken where it lies */
        return take_message(s, wsi, ss, len ? in : "", len);
    /* lws hands a message over in pieces of at most the protocol's rx_buffer_size (ws.c) and
     * a fragmented one frame by frame: they are put together here, within the limit above. */
    if (buf_append(&ss->rx, in, len)) {
        lws_close_reason(wsi, 1011, (unsigned char *)"out of memory", 13);
        return -1;
    }
    if (!whole)
        return 0;
    int rc = take_message(s, wsi, ss, ss->rx.data ? ss->rx.data : "", ss->rx.len);
    buf_free(&ss->rx); /* an idle client holds no receive buffer */
    return rc;
}

void session_unmasked(void *user)
{
    ws_session_t *ss = user;
    if (!ss->is_ws)
        return;
    ws_server_t *s = ws_server_of(ss->wsi);
    metric_add(s->m_unmasked, 1);
    fanout_close(s->fanout, &ss->fc, WS_CLOSE_PROTOCOL, "client frame not masked");
}

void session_open(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    ss->wsi = wsi;
    ss->is_ws = 1;
    ss->last_rx_us = timefmt_mono_us();
    ss->bad.at_us = ss->last_rx_us;
    buf_init(&ss->rx, ADW_CLIENT_FRAME_MAX + 1);
    fanout_add(s->fanout, &ss->fc, wsi);
    int has_since = 0;
    int64_t since = 0;
    if (admit_claim(s, wsi, &ss->fc.filter, &has_since, &since)) {
        /* Never expected (admit.h): without its filter the client could see beyond its scope. */
        fanout_close(s->fanout, &ss->fc, 1011, "admission lost");
        return;
    }
    metric_add(s->m_connections, 1);
    send_hello(s, ss);
    if (has_since)
        replay_start(s->replayer, &ss->fc, &ss->fc.filter, since, &ss->replay);
    if (rxguard_attach(lws_get_socket_fd(wsi), ss)) /* frames sent along with the upgrade */
        session_unmasked(ss);
    if (s->shutting_down)
        fanout_close(s->fanout, &ss->fc, WS_CLOSE_GOING_AWAY, "server shutting down");
}

void session_close(ws_server_t *s, ws_session_t *ss)
{
    if (ss->is_ws)
        rxguard_attach(lws_get_socket_fd(ss->wsi), NULL);
    replay_cancel(&ss->replay);
    if (ss->is_ws)
        fanout_remove(s->fanout, &ss->fc);
    ss->is_ws = 0;
    buf_free(&ss->rx);
}
