#include "sub.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include <zmq.h>

#include "codec.h"
#include "db.h"
#include "log.h"
#include "seq.h"
#include "timefmt.h"

#define SUB_RECEIVING_US INT64_C(3000000) /* a message within this counts as receiving */
#define SUB_DB_CHECK_US INT64_C(2000000)  /* idle database check interval */
#define SUB_MISSING_GIVE_UP 20            /* fills that find nothing before skipping the ids */
#define SUB_FILL_BUDGET (4u << 20)        /* bytes of frames per fill query */
#define SUB_DRAIN_MAX 1000                /* messages taken per wake-up */
/* Ingest publishes a $hb every second: when nothing at all arrived for this long while the
 * thread was listening, the link is taken for dead (a black hole: the connection stays open,
 * nothing passes) and the SUB socket is made anew. Application-level rather than ZMTP
 * heartbeats (ZMQ_HEARTBEAT_IVL), which in libzmq 4.3 kill a connection whose input is
 * stopped by a full pipe and can then abort on an assertion (libzmq issue #3937). */
#define SUB_SILENCE_DEFAULT_MS 3000
/* A fill reads at most SUB_FILL_PAGE events by primary key: an answer slower than this means a
 * dead link, and the fill is tried again on a new connection. */
#define SUB_FILL_TIMEOUT_MS 10000

struct sub_t {
    sub_options_t o;
    char *endpoints;
    char *conninfo;
    void *sock;
    unsigned char curve_server_key[32], curve_public_key[32], curve_secret_key[32];
    int curve;         /* CURVE keys loaded at start, set on every socket made */
    void *mon;         /* PAIR receiving the SUB socket's connect and disconnect events */
    unsigned opens;    /* sockets made so far (names the monitor's endpoint) */
    int64_t silent_us; /* time spent listening with nothing received, since the last message */
    int silent_rounds; /* sockets made anew for silence since the last message */
    int lost_logged;   /* a lost connection was logged since the last message */
    pthread_t thread;
    int started;
    atomic_int stop;

    pthread_mutex_t mu; /* guards the inbox */
    pthread_cond_t room;
    sub_item_t *head, *tail;
    size_t bytes;

    _Atomic int64_t last_rx_us;
    atomic_int db_ok;

    /* Thread-only state. */
    PGconn *conn;
    dbroute_conns_t standbys; /* for hole fills */
    seq_t seq;
    int64_t fill_target; /* fill ids up to this before anything else */
    frame_t *held;       /* the event that revealed a hole, delivered after the fill */
    int position_sent;
    int64_t sent_epoch;
    int missing_tries;
    int64_t next_db_check_us;
    int64_t silence_ms; /* see SUB_SILENCE_DEFAULT_MS */

    metric_t *m_events, *m_dups, *m_holes, *m_filled, *m_decode_errors, *m_resets, *m_skipped;
    metric_t *m_disconnects, *m_silences;
};

void sub_item_free(sub_item_t *it)
{
    if (!it)
        return;
    frame_unref(&it->frame);
    free(it);
}

static void nap_ms(sub_t *s, int ms);

/* Appends an item to the inbox, waiting while it is full (unless it is empty or we stop), and
 * while memory is short: the position already counts the event as delivered, so it must not
 * be dropped. Takes the frame reference. Returns 0, or -ECANCELED when stopping (the frame is
 * released). */
static int emit(sub_t *s, sub_item_kind_t kind, frame_t *frame, int64_t last_id, int64_t epoch)
{
    sub_item_t *it;
    while (!(it = calloc(1, sizeof *it))) {
        if (atomic_load(&s->stop)) {
            frame_unref(&frame);
            return -ECANCELED;
        }
        nap_ms(s, 50);
    }
    it->kind = kind;
    it->frame = frame;
    it->last_id = last_id;
    it->epoch = epoch;
    size_t n = frame ? frame->len : 0;
    dbroute_seen(s->o.route, s->seq.last, s->seq.epoch); /* before the loop can have it */
    pthread_mutex_lock(&s->mu);
    while (s->head && s->bytes + n > SUB_INBOX_MAX_BYTES && !atomic_load(&s->stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->room, &s->mu, &ts);
    }
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    s->bytes += n;
    pthread_mutex_unlock(&s->mu);
    if (s->o.wake)
        s->o.wake(s->o.wake_arg);
    return 0;
}

sub_item_t *sub_take(sub_t *s)
{
    pthread_mutex_lock(&s->mu);
    sub_item_t *list = s->head;
    s->head = s->tail = NULL;
    s->bytes = 0;
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->mu);
    return list;
}

int sub_receiving(const sub_t *s)
{
    int64_t t = atomic_load(&((sub_t *)s)->last_rx_us);
    return t && timefmt_mono_us() - t < SUB_RECEIVING_US;
}

int sub_db_ok(const sub_t *s)
{
    return atomic_load(&((sub_t *)s)->db_ok);
}

/* Tells the loop the position once it is known, and the epoch whenever it is learnt. */
static void announce_position(sub_t *s)
{
    if (!s->seq.known)
        return;
    if (s->position_sent && s->sent_epoch == s->seq.epoch)
        return;
    s->position_sent = 1;
    s->sent_epoch = s->seq.epoch;
    emit(s, SUB_ITEM_POSITION, NULL, s->seq.last, s->seq.epoch);
}

static void deliver(sub_t *s, frame_t *f)
{
    int64_t id = f->id;
    if (id != s->seq.last + 1)
        log_warn("sub: event %" PRId64 " follows %" PRId64 " (ids skipped)", id, s->seq.last);
    announce_position(s);
    seq_delivered(&s->seq, id);
    emit(s, SUB_ITEM_EVENT, f, 0, 0);
}

static void set_db_ok(sub_t *s, int ok, const char *why)
{
    int was = atomic_exchange(&s->db_ok, ok);
    if (was && !ok)
        log_warn("sub: PostgreSQL unavailable: %s", why);
    else if (!was && ok)
        log_info("sub: PostgreSQL reachable");
}

/* Reads the page q describes into frames (SUB_FILL_PAGE of them): from a standby that reaches
 * q->upto, else (or when the read fails there) from the primary. Returns db_events_page's
 * answer, or -EIO when the primary cannot be reached. */
static int read_page(sub_t *s, const db_page_query_t *q, frame_t **frames, size_t *n, int64_t *last,
                     int *more, char *err, size_t errlen)
{
    PGconn *standby = NULL;
    int sb = dbroute_standby(s->o.route, &s->standbys, q->upto, &standby);
    if (sb >= 0) {
        int rc = db_events_page(standby, q, frames, SUB_FILL_PAGE, n, last, more, err, errlen);
        if (!dbroute_done(s->o.route, &s->standbys, sb, rc == -EIO))
            return rc;
    }
    if (db_ensure(&s->conn, s->conninfo, err, errlen))
        return -EIO;
    dbroute_primary_read(s->o.route);
    return db_events_page(s->conn, q, frames, SUB_FILL_PAGE, n, last, more, err, errlen);
}

/* Reads ids after seq.last up to fill_target from PostgreSQL and delivers them. Returns 0 when
 * the range is done, -EAGAIN to try again later. */
static int fill(sub_t *s)
{
    char err[256];
    while (s->seq.last < s->fill_target && !atomic_load(&s->stop)) {
        frame_t *frames[SUB_FILL_PAGE];
        size_t n;
        int64_t last;
        int more;
        db_page_query_t q = {.after = s->seq.last,
                             .upto = s->fill_target,
                             .limit = SUB_FILL_PAGE,
                             .byte_budget = SUB_FILL_BUDGET,
                             .timeout_ms = SUB_FILL_TIMEOUT_MS};
        if (read_page(s, &q, frames, &n, &last, &more, err, sizeof err)) {
            set_db_ok(s, 0, err);
            return -EAGAIN;
        }
        set_db_ok(s, 1, NULL);
        if (!n) {
            if (++s->missing_tries < SUB_MISSING_GIVE_UP)
                return -EAGAIN;
            log_error("sub: events %" PRId64 "..%" PRId64 " are not in the database; skipping them",
                      s->seq.last + 1, s->fill_target);
            metric_add(s->m_skipped, s->fill_target - s->seq.last);
            s->seq.last = s->fill_target;
            break;
        }
        s->missing_tries = 0;
        metric_add(s->m_filled, (int64_t)n);
        for (size_t i = 0; i < n; i++)
            deliver(s, frames[i]);
    }
    return 0;
}

/* Delivers the held event if it is still the next one. */
static void release_held(sub_t *s)
{
    if (!s->held)
        return;
    frame_t *f = s->held;
    s->held = NULL;
    seq_verdict_t v = seq_on_event(&s->seq, f->id);
    if (v == SEQ_DELIVER) {
        deliver(s, f);
    } else if (v == SEQ_GAP) { /* the database did not have all before it: fill again */
        s->held = f;
        s->fill_target = f->id - 1;
    } else {
        frame_unref(&f);
    }
}

static void on_heartbeat(sub_t *s, const void *body, size_t len)
{
    json_t *v = NULL;
    char err[160];
    if (codec_msgpack_decode(body, len, &v, err, sizeof err) || !json_is_object(v) ||
        !json_is_integer(json_object_get(v, "last_id"))) {
        metric_add(s->m_decode_errors, 1);
        log_warn("sub: undecodable heartbeat: %s", v ? "missing last_id" : err);
        json_decref(v);
        return;
    }
    int64_t last_id = json_integer_value(json_object_get(v, "last_id"));
    json_t *ep = json_object_get(v, "epoch");
    int64_t epoch = json_is_integer(ep) ? json_integer_value(ep) : 0;
    json_decref(v);
    int64_t before = s->seq.last;
    switch (seq_on_heartbeat(&s->seq, last_id, epoch)) {
    case SEQ_RESET:
        log_warn("sub: epoch changed to %" PRId64 " (the database was replaced); ids start over",
                 epoch);
        metric_add(s->m_resets, 1);
        s->position_sent = 1;
        s->sent_epoch = epoch;
        emit(s, SUB_ITEM_RESET, NULL, 0, epoch);
        s->fill_target = last_id;
        break;
    case SEQ_GAP:
        log_info("sub: heartbeat at %" PRId64 " is ahead of %" PRId64 "; reading the rest", last_id,
                 before);
        metric_add(s->m_holes, 1);
        if (last_id > s->fill_target)
            s->fill_target = last_id;
        break;
    default:
        announce_position(s);
        break;
    }
}

static void on_event(sub_t *s, const void *body, size_t len)
{
    json_t *v = NULL;
    char err[160];
    if (codec_msgpack_decode(body, len, &v, err, sizeof err)) {
        metric_add(s->m_decode_errors, 1);
        log_warn("sub: undecodable event: %s", err);
        return;
    }
    frame_t *f = frame_from_event(v, err, sizeof err);
    json_decref(v);
    if (!f) {
        metric_add(s->m_decode_errors, 1);
        log_warn("sub: unusable event: %s", err);
        return;
    }
    metric_add(s->m_events, 1);
    int64_t before = s->seq.last;
    switch (seq_on_event(&s->seq, f->id)) {
    case SEQ_DELIVER:
        deliver(s, f);
        break;
    case SEQ_GAP:
        log_info("sub: event %" PRId64 " after %" PRId64 "; reading the hole", f->id, before);
        metric_add(s->m_holes, 1);
        s->held = f;
        if (f->id - 1 > s->fill_target)
            s->fill_target = f->id - 1;
        break;
    default:
        metric_add(s->m_dups, 1);
        frame_unref(&f);
        break;
    }
}

/* Receives one two-frame message if one is waiting. Returns 1 when one was handled, 0 when none
 * was waiting. */
static int receive_one(sub_t *s)
{
    zmq_msg_t topic, body;
    zmq_msg_init(&topic);
    if (zmq_msg_recv(&topic, s->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&topic);
        return 0;
    }
    atomic_store(&s->last_rx_us, timefmt_mono_us());
    int has_body = zmq_msg_more(&topic);
    zmq_msg_init(&body);
    if (has_body)
        zmq_msg_recv(&body, s->sock, 0);
    while (zmq_msg_more(&body)) { /* unexpected extra frames: drop them */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        zmq_msg_recv(&extra, s->sock, 0);
        int more = zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        if (!more)
            break;
    }
    if (!has_body) {
        metric_add(s->m_decode_errors, 1);
    } else if (zmq_msg_size(&topic) == 3 && !memcmp(zmq_msg_data(&topic), "$hb", 3)) {
        on_heartbeat(s, zmq_msg_data(&body), zmq_msg_size(&body));
    } else {
        on_event(s, zmq_msg_data(&body), zmq_msg_size(&body));
    }
    zmq_msg_close(&body);
    zmq_msg_close(&topic);
    return 1;
}

/* Logs and counts the SUB socket's connection events waiting on the monitor. */
static void on_monitor(sub_t *s)
{
    for (;;) {
        zmq_msg_t head, addr;
        zmq_msg_init(&head);
        if (zmq_msg_recv(&head, s->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&head) >= sizeof event)
            memcpy(&event, zmq_msg_data(&head), sizeof event);
        char ep[128] = "";
        zmq_msg_init(&addr);
        if (zmq_msg_more(&head) && zmq_msg_recv(&addr, s->mon, 0) >= 0)
            snprintf(ep, sizeof ep, "%.*s",
                     (int)(zmq_msg_size(&addr) < 127 ? zmq_msg_size(&addr) : 127),
                     (const char *)zmq_msg_data(&addr));
        zmq_msg_close(&addr);
        zmq_msg_close(&head);
        if (event == ZMQ_EVENT_DISCONNECTED) {
            metric_add(s->m_disconnects, 1);
            if (!s->lost_logged++) /* once until messages flow again */
                log_warn("sub: connection to %s lost; connecting again", ep);
        } else if (event == ZMQ_EVENT_CONNECTED) {
            log_debug("sub: connected to %s", ep);
        }
    }
}

static void nap_ms(sub_t *s, int ms)
{
    for (int i = 0; i < ms / 50 && !atomic_load(&s->stop); i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void check_db(sub_t *s)
{
    int64_t now = timefmt_mono_us();
    if (now < s->next_db_check_us)
        return;
    s->next_db_check_us = now + SUB_DB_CHECK_US;
    char err[256];
    if (db_ensure(&s->conn, s->conninfo, err, sizeof err) || db_ping(s->conn, err, sizeof err)) {
        set_db_ok(s, 0, err);
        return;
    }
    set_db_ok(s, 1, NULL);
    if (!s->seq.known) { /* started without the database: take its position now */
        int64_t last, epoch;
        if (!db_position(s->conn, &last, &epoch, err, sizeof err) && !s->seq.known) {
            seq_start(&s->seq, last, epoch);
            log_info("sub: starting after event %" PRId64 " (epoch %" PRId64 ")", last, epoch);
            announce_position(s);
        }
    }
}

/* Loads the CURVE keys: ingest's public certificate at server, ours at cert; neither given:
 * nothing to do. Returns 0 or -EINVAL with the reason. */
static int curve_load(sub_t *s, const char *server, const char *cert, char *err, size_t errlen)
{
    int given = (server && *server) + (cert && *cert);
    if (!given)
        return 0;
    if (given == 1) {
        snprintf(err, errlen,
                 "CURVE needs both ADW_GATEWAY_CURVE_SERVER (ingest's public "
                 "certificate) and ADW_GATEWAY_CURVE_CERT (the gateway's)");
        return -EINVAL;
    }
    static const unsigned char zero[32];
    zcert_t *srv = zcert_load(server), *own = zcert_load(cert);
    int rc = -EINVAL;
    if (!srv) {
        snprintf(err, errlen, "ADW_GATEWAY_CURVE_SERVER: cannot read a certificate from %s",
                 server);
    } else if (!own) {
        snprintf(err, errlen, "ADW_GATEWAY_CURVE_CERT: cannot read a certificate from %s", cert);
    } else if (!memcmp(zcert_secret_key(own), zero, sizeof zero)) {
        snprintf(err, errlen,
                 "ADW_GATEWAY_CURVE_CERT: %s holds no secret key (%s_secret is "
                 "needed)",
                 cert, cert);
    } else {
        memcpy(s->curve_server_key, zcert_public_key(srv), 32);
        memcpy(s->curve_public_key, zcert_public_key(own), 32);
        memcpy(s->curve_secret_key, zcert_secret_key(own), 32);
        s->curve = 1;
        rc = 0;
    }
    zcert_destroy(&srv);
    zcert_destroy(&own);
    return rc;
}

/* Closes the SUB socket and its monitor (whatever they still queue is dropped). */
static void close_socket(sub_t *s)
{
    if (s->mon)
        zmq_close(s->mon);
    s->mon = NULL;
    if (s->sock) {
        zmq_socket_monitor(s->sock, NULL, 0);
        zmq_close(s->sock);
    }
    s->sock = NULL;
}

/* Makes the SUB socket (and its monitor, when it can) and connects it to every endpoint.
 * Returns 0, or -1 with the reason in err and no socket. */
static int open_socket(sub_t *s, char *err, size_t errlen)
{
    s->sock = zmq_socket(s->o.zctx, ZMQ_SUB);
    if (!s->sock) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return -1;
    }
    int hwm = s->o.rcvhwm > 0 ? s->o.rcvhwm : 1000, linger = 0;
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (s->curve && (zmq_setsockopt(s->sock, ZMQ_CURVE_SERVERKEY, s->curve_server_key, 32) ||
                     zmq_setsockopt(s->sock, ZMQ_CURVE_PUBLICKEY, s->curve_public_key, 32) ||
                     zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, s->curve_secret_key, 32))) {
        snprintf(err, errlen, "cannot set the CURVE keys: %s", zmq_strerror(errno));
        goto fail;
    }
    zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, "", 0);
    /* The monitor is optional: it only logs and counts connection events. */
    char mon[80];
    snprintf(mon, sizeof mon, "inproc://adw-sub-monitor-%p-%u", (void *)s, s->opens++);
    if (!zmq_socket_monitor(s->sock, mon, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED)) {
        s->mon = zmq_socket(s->o.zctx, ZMQ_PAIR);
        if (s->mon) {
            zmq_setsockopt(s->mon, ZMQ_LINGER, &linger, sizeof linger);
            if (zmq_connect(s->mon, mon)) {
                zmq_close(s->mon);
                s->mon = NULL;
            }
        }
    }
    int nconnected = 0;
    char *save = NULL, *list = strdup(s->endpoints);
    if (!list) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (char *ep = strtok_r(list, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        if (!*ep)
            continue;
        if (zmq_connect(s->sock, ep)) {
            snprintf(err, errlen, "cannot subscribe to %s: %s", ep, zmq_strerror(errno));
            free(list);
            goto fail;
        }
        nconnected++;
    }
    free(list);
    if (!nconnected) {
        snprintf(err, errlen, "no endpoint to subscribe to");
        goto fail;
    }
    return 0;
fail:
    close_socket(s);
    return -1;
}

/* After silence_ms spent listening with nothing received: a new socket, new connections (and a
 * new socket when the last one could not be made). */
static void check_silence(sub_t *s)
{
    if (s->sock && s->silent_us < s->silence_ms * 1000)
        return;
    char err[256];
    if (s->sock) {
        metric_add(s->m_silences, 1);
        if (!s->silent_rounds++) /* once per silence, however long it lasts */
            log_warn("sub: nothing from ingest for %" PRId64 " ms; connecting again",
                     s->silence_ms);
        close_socket(s);
    }
    if (open_socket(s, err, sizeof err))
        log_error("sub: %s", err);
    s->silent_us = 0;
}

static void *sub_main(void *arg)
{
    sub_t *s = arg;
    char err[256];
    if (!db_ensure(&s->conn, s->conninfo, err, sizeof err)) {
        int64_t last, epoch;
        if (!db_position(s->conn, &last, &epoch, err, sizeof err)) {
            seq_start(&s->seq, last, epoch);
            set_db_ok(s, 1, NULL);
            log_info("sub: starting after event %" PRId64 " (epoch %" PRId64 ")", last, epoch);
            announce_position(s);
        }
    }
    if (!s->seq.known)
        log_warn("sub: %s; starting from the first heartbeat", err);
    s->next_db_check_us = timefmt_mono_us() + SUB_DB_CHECK_US;
    int backoff_ms = 100;
    while (!atomic_load(&s->stop)) {
        if (s->held || s->fill_target > s->seq.last) {
            if (fill(s)) {
                nap_ms(s, backoff_ms);
                backoff_ms = backoff_ms < 1600 ? backoff_ms * 2 : 2000;
                continue;
            }
            backoff_ms = 100;
            release_held(s);
            continue;
        }
        if (!s->sock) { /* could not be made: try again */
            nap_ms(s, 500);
            check_silence(s);
            continue;
        }
        int64_t t0 = timefmt_mono_us();
        zmq_pollitem_t pi[2] = {{.socket = s->sock, .events = ZMQ_POLLIN},
                                {.socket = s->mon, .events = ZMQ_POLLIN}};
        int n = zmq_poll(pi, s->mon ? 2 : 1, 100);
        if (n < 0 && errno != EINTR) {
            log_error("sub: zmq_poll: %s", zmq_strerror(errno));
            nap_ms(s, 100);
        }
        if (s->mon)
            on_monitor(s);
        int got = 0;
        for (int i = 0; i < SUB_DRAIN_MAX && !s->held && s->fill_target <= s->seq.last; i++) {
            if (!receive_one(s))
                break;
            got++;
        }
        s->silent_us = got ? 0 : s->silent_us + (timefmt_mono_us() - t0);
        if (got && (s->silent_rounds || s->lost_logged)) {
            log_info("sub: ingest heard again (%d new subscriptions, %d lost connections)",
                     s->silent_rounds, s->lost_logged);
            s->silent_rounds = s->lost_logged = 0;
        }
        check_silence(s);
        check_db(s);
    }
    return NULL;
}

sub_t *sub_new(const sub_options_t *o, char *err, size_t errlen)
{
    sub_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->room, NULL);
    s->endpoints = strdup(o->endpoints ? o->endpoints : "");
    s->conninfo = strdup(o->conninfo ? o->conninfo : "");
    if (!s->endpoints || !s->conninfo) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->silence_ms = o->silence_ms > 0 ? o->silence_ms : SUB_SILENCE_DEFAULT_MS;
    if (curve_load(s, o->curve_server, o->curve_cert, err, errlen) || open_socket(s, err, errlen))
        goto fail;
    if (o->metrics) {
        metrics_t *m = o->metrics;
        s->m_events = metrics_counter(m, "adw_gateway_sub_events_total", NULL,
                                      "Events received from ingest's PUB socket");
        s->m_dups = metrics_counter(m, "adw_gateway_sub_duplicates_total", NULL,
                                    "Events received that had been delivered already");
        s->m_holes = metrics_counter(m, "adw_gateway_hole_fills_total", NULL,
                                     "Holes in the ids detected and filled from PostgreSQL");
        s->m_filled = metrics_counter(m, "adw_gateway_hole_filled_events_total", NULL,
                                      "Events read from PostgreSQL to fill holes");
        s->m_skipped = metrics_counter(m, "adw_gateway_hole_skipped_ids_total", NULL,
                                       "Ids given up on because PostgreSQL did not have them");
        s->m_decode_errors = metrics_counter(m, "adw_gateway_sub_decode_errors_total", NULL,
                                             "Messages from ingest that could not be decoded");
        s->m_resets = metrics_counter(m, "adw_gateway_epoch_resets_total", NULL,
                                      "Epoch changes seen (the database was replaced)");
        s->m_disconnects = metrics_counter(m, "adw_gateway_sub_disconnects_total", NULL,
                                           "Connections to ingest's PUB lost");
        s->m_silences =
            metrics_counter(m, "adw_gateway_sub_silences_total", NULL,
                            "Times nothing came from ingest for the silence bound and the "
                            "subscription was made anew");
    }
    if (pthread_create(&s->thread, NULL, sub_main, s)) {
        snprintf(err, errlen, "cannot start the subscriber thread");
        goto fail;
    }
    s->started = 1;
    return s;
fail:
    sub_destroy(&s);
    return NULL;
}

void sub_destroy(sub_t **ps)
{
    if (!ps || !*ps)
        return;
    sub_t *s = *ps;
    *ps = NULL;
    atomic_store(&s->stop, 1);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->thread, NULL);
    for (sub_item_t *it = sub_take(s), *next; it; it = next) {
        next = it->next;
        sub_item_free(it);
    }
    frame_unref(&s->held);
    close_socket(s);
    memset(s->curve_secret_key, 0, sizeof s->curve_secret_key);
    if (s->conn)
        PQfinish(s->conn);
    dbroute_conns_close(&s->standbys);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->room);
    free(s->endpoints);
    free(s->conninfo);
    free(s);
}
