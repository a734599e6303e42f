/* adw-ingest: takes events over HTTP and ZeroMQ, commits them to PostgreSQL in batches, then
 * publishes them on a ZeroMQ PUB socket. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "adw_limits.h"
#include "zap.h"
#include "config.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pipeline.h"
#include "publish.h"
#include "routes.h"
#include "store.h"
#include "tls.h"
#include "zmq_in.h"

typedef struct ingest_options_t {
    const char *http;
    const char *zmq;
    const char *pub;
    const char *database_url;
    const char *token;
    const char *tls_cert;
    const char *tls_key;
    const char *curve_cert;
    const char *curve_clients;
    const char *curve_subscribers;
    int64_t max_body;
    int64_t max_head;
    int64_t max_batch;
    int64_t max_pending;
    int64_t pub_hwm;
    int64_t heartbeat_ms;
    int64_t request_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t max_connections;
    int64_t shutdown_timeout_ms;
    int64_t db_timeout_ms;
    int64_t stall_s;
    const char *log_level;
    const char *log_format;
} ingest_options_t;

#define OPT(f) offsetof(ingest_options_t, f)
static const config_option_t OPTIONS[] = {
    {"http", "ADW_INGEST_HTTP", CONFIG_STRING, "0.0.0.0:8000", OPT(http), 0, 0, 0,
     "HTTP listen address (host:port)"},
    {"zmq", "ADW_INGEST_ZMQ", CONFIG_STRING, "tcp://*:5555", OPT(zmq), 0, 0, 0,
     "ZeroMQ ROUTER endpoint for submissions"},
    {"pub", "ADW_INGEST_PUB", CONFIG_STRING, "tcp://*:5556", OPT(pub), 0, 0, 0,
     "ZeroMQ PUB endpoint where stored events are published"},
    {"database-url", "DATABASE_URL", CONFIG_STRING, "", OPT(database_url), 0, 0, 0,
     "PostgreSQL libpq URI or conninfo (empty: libpq's PG* environment)"},
    {"token", "ADW_INGEST_TOKEN", CONFIG_STRING, NULL, OPT(token), 0, 0, 0,
     "bearer token every POST must carry (unset: no authentication)"},
    {"tls-cert", "ADW_INGEST_TLS_CERT", CONFIG_STRING, NULL, OPT(tls_cert), 0, 0, 0,
     "PEM certificate chain: HTTP speaks only TLS (https; with --tls-key; unset: plain)"},
    {"tls-key", "ADW_INGEST_TLS_KEY", CONFIG_STRING, NULL, OPT(tls_key), 0, 0, 0,
     "PEM private key for --tls-cert"},
    {"curve-cert", "ADW_INGEST_CURVE_CERT", CONFIG_STRING, NULL, OPT(curve_cert), 0, 0, 0,
     "CURVE on both ZeroMQ sockets with this certificate (PATH; secret half in PATH_secret); "
     "unset: no CURVE"},
    {"curve-clients", "ADW_INGEST_CURVE_CLIENTS", CONFIG_STRING, NULL, OPT(curve_clients), 0, 0, 0,
     "with CURVE: directory of the public certificates allowed to submit, or '*' (any key)"},
    {"curve-subscribers", "ADW_INGEST_CURVE_SUBSCRIBERS", CONFIG_STRING, NULL,
     OPT(curve_subscribers), 0, 0, 0,
     "with CURVE: directory of the public certificates allowed on PUB, or '*' (default: "
     "curve-clients)"},
    {"max-body", "ADW_INGEST_MAX_BODY", CONFIG_INT, "1M", OPT(max_body), 1024, 64 << 20, 1,
     "largest request body or ZeroMQ frame, in bytes (k/M suffixes)"},
    {"max-head", "ADW_INGEST_MAX_HEAD", CONFIG_INT, "8k", OPT(max_head), 1024, 1 << 20, 1,
     "largest HTTP request head, in bytes (over it: 431)"},
    {"max-batch", "ADW_INGEST_MAX_BATCH", CONFIG_INT, "5000", OPT(max_batch), 1, 100000, 0,
     "most events committed in one transaction"},
    {"max-pending", "ADW_INGEST_MAX_PENDING", CONFIG_INT, "100000", OPT(max_pending), 1000,
     10000000, 0, "events waiting for commit before submissions get 503"},
    {"pub-hwm", "ADW_INGEST_PUB_HWM", CONFIG_INT, "100000", OPT(pub_hwm), 1, 10000000, 0,
     "PUB high-water mark: messages queued per subscriber"},
    {"heartbeat-ms", "ADW_INGEST_HEARTBEAT_MS", CONFIG_INT, "1000", OPT(heartbeat_ms), 10, 60000, 0,
     "interval of $hb heartbeats on the PUB socket"},
    {"request-timeout-ms", "ADW_INGEST_REQUEST_TIMEOUT_MS", CONFIG_INT, "10000",
     OPT(request_timeout_ms), 100, 3600000, 0,
     "time a client has to send a whole request (else 408)"},
    {"idle-timeout-ms", "ADW_INGEST_IDLE_TIMEOUT_MS", CONFIG_INT, "60000", OPT(idle_timeout_ms),
     100, 86400000, 0, "idle keep-alive connections are closed after this"},
    {"max-connections", "ADW_INGEST_MAX_CONNECTIONS", CONFIG_INT, "10000", OPT(max_connections), 1,
     1000000, 0, "HTTP connections held at once (more get 503)"},
    {"shutdown-timeout-ms", "ADW_INGEST_SHUTDOWN_TIMEOUT_MS", CONFIG_INT, "10000",
     OPT(shutdown_timeout_ms), 0, 600000, 0, "on SIGTERM, how long to wait for requests in flight"},
    {"db-timeout-ms", "ADW_INGEST_DB_TIMEOUT_MS", CONFIG_INT, "15000", OPT(db_timeout_ms), 500,
     3600000, 0,
     "longest wait for PostgreSQL's answer; a silent connection is then closed and made again"},
    {"stall-s", "ADW_INGEST_STALL_S", CONFIG_INT, "600", OPT(stall_s), 0, 31536000, 0,
     "a running run with no event for this many seconds gets a run_stalled event (0: off)"},
    CONFIG_LOG_OPTIONS(ingest_options_t, "info"),
};

static const config_program_t PROGRAM = {
    .name = "adw-ingest",
    .summary = "Takes ADW events over HTTP and ZeroMQ, stores them in PostgreSQL, publishes them.",
    .usage = "[options]",
    .options = OPTIONS,
    .noptions = sizeof OPTIONS / sizeof OPTIONS[0],
};

static volatile sig_atomic_t signalled;
static volatile int stop_loop;
static loop_t *the_loop;

static void on_signal(int sig)
{
    (void)sig;
    signalled = 1;
    stop_loop = 1;
    if (the_loop)
        loop_wake(the_loop);
}

typedef struct ingest_t {
    ingest_options_t opt;
    metrics_t *metrics;
    loop_t *loop;
    void *zctx;
    zap_t *auth;
    store_t *store;
    publish_t *publish;
    pipeline_t *pipeline;
    zmq_in_t *zin;
    routes_t *routes;
    httpd_t *http;
    int fatal;
} ingest_t;

static int on_ready(void *arg, char *why, size_t whylen)
{
    ingest_t *in = arg;
    store_state_t st = store_state(in->store);
    if (st == STORE_READY && pipeline_synced(in->pipeline))
        return 1;
    if (st == STORE_STANDBY) {
        snprintf(why, whylen, "standby: another adw-ingest holds the writer lock");
    } else {
        char e[200];
        store_last_error(in->store, e, sizeof e);
        snprintf(why, whylen, "database unavailable%s%s", e[0] ? ": " : "", e);
    }
    return 0;
}

static void on_heartbeat(loop_t *loop, void *arg)
{
    ingest_t *in = arg;
    if (store_state(in->store) == STORE_FATAL) {
        in->fatal = 1;
        stop_loop = 1;
        loop_wake(loop);
        return;
    }
    if (pipeline_synced(in->pipeline))
        publish_heartbeat(in->publish, store_epoch(in->store));
}

static void shutdown_gracefully(ingest_t *in)
{
    log_info("shutting down: no new requests; finishing those in flight");
    httpd_drain(in->http);
    zmq_in_pause(in->zin);
    pipeline_stop(in->pipeline);
    int64_t deadline = loop_now_ms(in->loop) + in->opt.shutdown_timeout_ms;
    while ((pipeline_waiting(in->pipeline) || httpd_busy(in->http)) &&
           loop_now_ms(in->loop) < deadline)
        loop_run_once(in->loop);
    if (pipeline_waiting(in->pipeline))
        log_warn("shutdown: %zu requests still unanswered after %lld ms",
                 pipeline_waiting(in->pipeline), (long long)in->opt.shutdown_timeout_ms);
}

int main(int argc, char **argv)
{
    ingest_t in;
    memset(&in, 0, sizeof in);
    char err[512];
    int rc = config_start(&PROGRAM, &in.opt, argc, argv, &in.opt.log_level, &in.opt.log_format);
    if (rc)
        return rc == CONFIG_EXIT ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int exit_code = 1;
    SSL_CTX *tls = NULL;
    if (!tls_pair_ok(in.opt.tls_cert, in.opt.tls_key, "ADW_INGEST_TLS_CERT", "ADW_INGEST_TLS_KEY",
                     err, sizeof err) ||
        (in.opt.tls_cert && *in.opt.tls_cert &&
         !(tls = tls_server_new(in.opt.tls_cert, in.opt.tls_key, err, sizeof err)))) {
        log_error("%s", err);
        return 2;
    }
    in.metrics = metrics_new();
    in.loop = loop_new();
    in.zctx = zmq_ctx_new();
    if (!in.metrics || !in.loop || !in.zctx) {
        log_error("out of memory");
        goto done;
    }
    the_loop = in.loop;
    if (in.opt.curve_cert && *in.opt.curve_cert) {
        zap_options_t ao = {.zctx = in.zctx,
                            .cert = in.opt.curve_cert,
                            .clients = in.opt.curve_clients,
                            .subscribers = in.opt.curve_subscribers,
                            .loop = in.loop,
                            .metrics = in.metrics};
        in.auth = zap_new(&ao, err, sizeof err);
        if (!in.auth) {
            log_error("%s", err);
            exit_code = 2;
            goto done;
        }
    } else if ((in.opt.curve_clients && *in.opt.curve_clients) ||
               (in.opt.curve_subscribers && *in.opt.curve_subscribers)) {
        log_error("ADW_INGEST_CURVE_CLIENTS and ADW_INGEST_CURVE_SUBSCRIBERS need "
                  "ADW_INGEST_CURVE_CERT");
        exit_code = 2;
        goto done;
    }
    store_options_t so = {.conninfo = in.opt.database_url,
                          .max_batch_events = in.opt.max_batch,
                          .reply_timeout_ms = in.opt.db_timeout_ms,
                          .metrics = in.metrics};
    publish_options_t po = {.zctx = in.zctx,
                            .endpoint = in.opt.pub,
                            .sndhwm = in.opt.pub_hwm,
                            .metrics = in.metrics,
                            .auth = in.auth};
    in.publish = publish_new(&po, err, sizeof err);
    if (!in.publish) {
        log_error("%s", err);
        goto done;
    }
    in.store = store_new(&so);
    if (!in.store) {
        log_error("cannot start the database writer");
        goto done;
    }
    pipeline_options_t pl = {.loop = in.loop,
                             .store = in.store,
                             .publish = in.publish,
                             .max_pending = in.opt.max_pending,
                             .stall_s = in.opt.stall_s,
                             .metrics = in.metrics};
    in.pipeline = pipeline_new(&pl);
    if (!in.pipeline) {
        log_error("cannot start the pipeline");
        goto done;
    }
    zmq_in_options_t zo = {.zctx = in.zctx,
                           .endpoint = in.opt.zmq,
                           .max_msg = in.opt.max_body,
                           .auth = in.auth,
                           .loop = in.loop,
                           .pipeline = in.pipeline};
    in.zin = zmq_in_new(&zo, err, sizeof err);
    if (!in.zin) {
        log_error("%s", err);
        goto done;
    }
    routes_options_t ro = {.pipeline = in.pipeline,
                           .token = in.opt.token,
                           .metrics = in.metrics,
                           .max_body = in.opt.max_body,
                           .ready = on_ready,
                           .ready_arg = &in};
    in.routes = routes_new(&ro);
    if (!in.routes) {
        log_error("out of memory");
        goto done;
    }
    httpd_options_t ho = {.listen = in.opt.http,
                          .tls = tls,
                          .max_body = in.opt.max_body,
                          .head_max = in.opt.max_head,
                          .request_timeout_ms = in.opt.request_timeout_ms,
                          .idle_timeout_ms = in.opt.idle_timeout_ms,
                          .max_connections = in.opt.max_connections,
                          .loop = in.loop,
                          .metrics = in.metrics,
                          .handler = routes_handler(in.routes)};
    in.http = httpd_new(&ho, err, sizeof err);
    if (!in.http) {
        log_error("%s", err);
        goto done;
    }
    if (loop_timer(in.loop, in.opt.heartbeat_ms, on_heartbeat, &in) < 0) {
        log_error("cannot start the heartbeat timer");
        goto done;
    }
    log_info("listening: %s %s, zmq %s, pub %s%s%s%s", tls ? "https" : "http", in.opt.http,
             in.opt.zmq, in.opt.pub, in.opt.token && *in.opt.token ? ", token required" : "",
             in.auth ? ", CURVE server key " : "", in.auth ? zap_public_key(in.auth) : "");

    loop_run(in.loop, &stop_loop);

    if (in.fatal) {
        char e[256];
        store_last_error(in.store, e, sizeof e);
        log_error("cannot run: %s", e);
        goto done;
    }
    shutdown_gracefully(&in);
    exit_code = 0;
done:
    httpd_destroy(&in.http);
    routes_destroy(&in.routes); /* after the server that uses them */
    zmq_in_destroy(&in.zin);
    pipeline_destroy(&in.pipeline); /* unwatches the store's fd: before the store goes */
    store_destroy(&in.store);
    publish_destroy(&in.publish);
    zap_destroy(&in.auth);
    if (in.zctx)
        zmq_ctx_term(in.zctx);
    loop_destroy(&in.loop);
    metrics_destroy(&in.metrics);
    tls_server_destroy(&tls);
    if (exit_code == 0)
        log_info("stopped");
    return exit_code;
}
