/* adw-ingest: takes events over HTTP and ZeroMQ, commits them to PostgreSQL in batches, then
 * publishes them on a ZeroMQ PUB socket. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "adw_limits.h"
#include "budget_rule.h"
#include "zap.h"
#include "config.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "partplan.h"
#include "pipeline.h"
#include "publish.h"
#include "routes.h"
#include "store.h"
#include "tls.h"
#include "webhook.h"
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
    int64_t partition_events;
    const char *retention;
    int64_t retention_check_ms;
    const char *webhooks;
    const char *webhook_events;
    int64_t webhook_queue;
    const char *public_url;
    const char *approvals;
    int64_t approvals_max;
    const char *run_budget_usd;
    int enforce_budget;
    const char *log_level;
    const char *log_format;
} ingest_options_t;

#define OPT(f) offsetof(ingest_options_t, f)
static const config_option_t OPTIONS[] = {
    {.flag = "http",
     .env = "ADW_INGEST_HTTP",
     .type = CONFIG_STRING,
     .def = "0.0.0.0:8000",
     .offset = OPT(http),
     .doc = "HTTP listen address (host:port)"},
    {.flag = "zmq",
     .env = "ADW_INGEST_ZMQ",
     .type = CONFIG_STRING,
     .def = "tcp://*:5555",
     .offset = OPT(zmq),
     .doc = "ZeroMQ ROUTER endpoint for submissions"},
    {.flag = "pub",
     .env = "ADW_INGEST_PUB",
     .type = CONFIG_STRING,
     .def = "tcp://*:5556",
     .offset = OPT(pub),
     .doc = "ZeroMQ PUB endpoint where stored events are published"},
    {.flag = "database-url",
     .env = "DATABASE_URL",
     .type = CONFIG_STRING,
     .def = "",
     .offset = OPT(database_url),
     .doc = "PostgreSQL libpq URI or conninfo (empty: libpq's PG* environment)"},
    {.flag = "token",
     .env = "ADW_INGEST_TOKEN",
     .type = CONFIG_STRING,
     .offset = OPT(token),
     .doc = "bearer token every POST must carry (unset: no authentication)"},
    {.flag = "tls-cert",
     .env = "ADW_INGEST_TLS_CERT",
     .type = CONFIG_STRING,
     .offset = OPT(tls_cert),
     .doc = "PEM certificate chain: HTTP speaks only TLS (https; with --tls-key; unset: plain)"},
    {.flag = "tls-key",
     .env = "ADW_INGEST_TLS_KEY",
     .type = CONFIG_STRING,
     .offset = OPT(tls_key),
     .doc = "PEM private key for --tls-cert"},
    {.flag = "curve-cert",
     .env = "ADW_INGEST_CURVE_CERT",
     .type = CONFIG_STRING,
     .offset = OPT(curve_cert),
     .doc =
         "CURVE on both ZeroMQ sockets with this certificate (PATH; secret half in PATH_secret); "
         "unset: no CURVE"},
    {.flag = "curve-clients",
     .env = "ADW_INGEST_CURVE_CLIENTS",
     .type = CONFIG_STRING,
     .offset = OPT(curve_clients),
     .doc = "with CURVE: directory of the public certificates allowed to submit, or '*' (any key)"},
    {.flag = "curve-subscribers",
     .env = "ADW_INGEST_CURVE_SUBSCRIBERS",
     .type = CONFIG_STRING,
     .offset = OPT(curve_subscribers),
     .doc = "with CURVE: directory of the public certificates allowed on PUB, or '*' (default: "
            "curve-clients)"},
    {.flag = "max-body",
     .env = "ADW_INGEST_MAX_BODY",
     .type = CONFIG_INT,
     .def = "1M",
     .offset = OPT(max_body),
     .min = 1024,
     .max = 64 << 20,
     .bytes = 1,
     .doc = "largest request body or ZeroMQ frame, in bytes (k/M suffixes)"},
    {.flag = "max-head",
     .env = "ADW_INGEST_MAX_HEAD",
     .type = CONFIG_INT,
     .def = "8k",
     .offset = OPT(max_head),
     .min = 1024,
     .max = 1 << 20,
     .bytes = 1,
     .doc = "largest HTTP request head, in bytes (over it: 431)"},
    {.flag = "max-batch",
     .env = "ADW_INGEST_MAX_BATCH",
     .type = CONFIG_INT,
     .def = "5000",
     .offset = OPT(max_batch),
     .min = 1,
     .max = 100000,
     .doc = "most events committed in one transaction"},
    {.flag = "max-pending",
     .env = "ADW_INGEST_MAX_PENDING",
     .type = CONFIG_INT,
     .def = "100000",
     .offset = OPT(max_pending),
     .min = 1000,
     .max = 10000000,
     .doc = "events waiting for commit before submissions get 503"},
    {.flag = "pub-hwm",
     .env = "ADW_INGEST_PUB_HWM",
     .type = CONFIG_INT,
     .def = "100000",
     .offset = OPT(pub_hwm),
     .min = 1,
     .max = 10000000,
     .doc = "PUB high-water mark: messages queued per subscriber"},
    {.flag = "heartbeat-ms",
     .env = "ADW_INGEST_HEARTBEAT_MS",
     .type = CONFIG_INT,
     .def = "1000",
     .offset = OPT(heartbeat_ms),
     .min = 10,
     .max = 60000,
     .doc = "interval of $hb heartbeats on the PUB socket"},
    {.flag = "request-timeout-ms",
     .env = "ADW_INGEST_REQUEST_TIMEOUT_MS",
     .type = CONFIG_INT,
     .def = "10000",
     .offset = OPT(request_timeout_ms),
     .min = 100,
     .max = 3600000,
     .doc = "time a client has to send a whole request (else 408)"},
    {.flag = "idle-timeout-ms",
     .env = "ADW_INGEST_IDLE_TIMEOUT_MS",
     .type = CONFIG_INT,
     .def = "60000",
     .offset = OPT(idle_timeout_ms),
     .min = 100,
     .max = 86400000,
     .doc = "idle keep-alive connections are closed after this"},
    {.flag = "max-connections",
     .env = "ADW_INGEST_MAX_CONNECTIONS",
     .type = CONFIG_INT,
     .def = "10000",
     .offset = OPT(max_connections),
     .min = 1,
     .max = 1000000,
     .doc = "HTTP connections held at once (more get 503)"},
    {.flag = "shutdown-timeout-ms",
     .env = "ADW_INGEST_SHUTDOWN_TIMEOUT_MS",
     .type = CONFIG_INT,
     .def = "10000",
     .offset = OPT(shutdown_timeout_ms),
     .max = 600000,
     .doc = "on SIGTERM, how long to wait for requests in flight"},
    {.flag = "db-timeout-ms",
     .env = "ADW_INGEST_DB_TIMEOUT_MS",
     .type = CONFIG_INT,
     .def = "15000",
     .offset = OPT(db_timeout_ms),
     .min = 500,
     .max = 3600000,
     .doc = "longest wait for PostgreSQL's answer (a silent connection is then closed and made "
            "again), and for a lost commit's outcome (then 503: retry with the same event_id)"},
    {.flag = "stall-s",
     .env = "ADW_INGEST_STALL_S",
     .type = CONFIG_INT,
     .def = "600",
     .offset = OPT(stall_s),
     .max = 31536000,
     .doc = "a running run with no event for this many seconds gets a run_stalled event (0: off)"},
    {.flag = "partition-events",
     .env = "ADW_INGEST_PARTITION_EVENTS",
     .type = CONFIG_INT,
     .def = "4000000",
     .offset = OPT(partition_events),
     .min = PARTPLAN_EVENTS_MIN,
     .max = INT64_C(1) << 40,
     .doc = "event ids per partition of the events table (partitions are made ahead by the "
            "writer)"},
    {.flag = "retention",
     .env = "ADW_INGEST_RETENTION",
     .type = CONFIG_STRING,
     .def = "0",
     .offset = OPT(retention),
     .doc = "drop whole partitions whose newest event is older than this: 30d, 12h, 90m, 3600s "
            "or seconds (0: keep everything)"},
    {.flag = "retention-check-ms",
     .env = "ADW_INGEST_RETENTION_CHECK_MS",
     .type = CONFIG_INT,
     .def = "60000",
     .offset = OPT(retention_check_ms),
     .min = 100,
     .max = 86400000,
     .doc = "how often the writer looks for partitions the retention drops"},
    {.flag = "webhooks",
     .env = "ADW_INGEST_WEBHOOKS",
     .type = CONFIG_STRING,
     .offset = OPT(webhooks),
     .doc = "comma-separated http(s) URLs POSTed {\"text\",\"event\"} for the webhook events "
            "(unset: none)"},
    {.flag = "webhook-events",
     .env = "ADW_INGEST_WEBHOOK_EVENTS",
     .type = CONFIG_STRING,
     .def = "adw_failed,run_stalled,budget_exceeded,approval_requested",
     .offset = OPT(webhook_events),
     .doc = "comma-separated system event names sent to the webhooks"},
    {.flag = "webhook-queue",
     .env = "ADW_INGEST_WEBHOOK_QUEUE",
     .type = CONFIG_INT,
     .def = "1000",
     .offset = OPT(webhook_queue),
     .min = 1,
     .max = 1000000,
     .doc = "events held per webhook while it is unreachable (over it: the oldest dropped)"},
    {.flag = "public-url",
     .env = "ADW_INGEST_PUBLIC_URL",
     .type = CONFIG_STRING,
     .offset = OPT(public_url),
     .doc = "the dashboard's http(s) base URL, for links in webhook texts (unset: no link)"},
    {.flag = "approvals",
     .env = "ADW_INGEST_APPROVALS",
     .type = CONFIG_STRING,
     .offset = OPT(approvals),
     .doc = "approval rules, JSON or @FILE: matching PreToolUse hooks wait for a decision "
            "(unset: none)"},
    {.flag = "approvals-max",
     .env = "ADW_INGEST_APPROVALS_MAX",
     .type = CONFIG_INT,
     .def = "1000",
     .offset = OPT(approvals_max),
     .min = 1,
     .max = 100000,
     .doc = "hooks held for a decision at once (more are answered 503)"},
    {.flag = "run-budget-usd",
     .env = "ADW_INGEST_RUN_BUDGET_USD",
     .type = CONFIG_STRING,
     .offset = OPT(run_budget_usd),
     .doc = "a run's budget in US dollars when its adw_start gives no payload.budget_usd "
            "(unset: none); budget_warning at 80 %, budget_exceeded at 100 %"},
    {.flag = "enforce-budget",
     .env = "ADW_INGEST_ENFORCE_BUDGET",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(enforce_budget),
     .doc = "deny a PreToolUse hook (/api/hooks) of a run over its budget, and store "
            "budget_denied"},
    CONFIG_LOG_OPTIONS(ingest_options_t, "info"),
};

static const config_program_t PROGRAM = {
    .name = "adw-ingest",
    .summary = "Takes ADW events over HTTP and ZeroMQ, stores them in PostgreSQL, publishes them.",
    .usage = "[options]",
    .options = OPTIONS,
    .noptions = sizeof OPTIONS / sizeof OPTIONS[0],
};

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
    approvals_t *approvals;
    httpd_t *http;
    webhook_t *webhook;
    int sigfd; /* signalfd of SIGTERM and SIGINT, blocked in every thread */
    int stop;  /* loop_run returns when set: a signal, or the store's fatal error */
    int fatal;
} ingest_t;

/* Blocks SIGTERM and SIGINT in the calling thread, before any other thread exists, so that
 * every thread started later (the database writer, ZeroMQ's I/O threads) inherits the mask
 * and the signals wait for the loop, which reads them from a signalfd: no handler runs, and
 * the process-wide SIG_IGN of SIGPIPE stays. Returns the signalfd or -errno. */
static int signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc)
        return -rc;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* The signalfd is readable: SIGTERM or SIGINT arrived. Stops the loop; main then drains. */
static void on_signal(loop_t *loop, int fd, int mask, void *arg)
{
    (void)loop;
    (void)mask;
    ingest_t *in = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        in->stop = 1;
}

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
        in->stop = 1;
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
    approvals_stop(in->approvals); /* held hooks: approval_expired, while it can be stored */
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
    int64_t retention_s = 0;
    if (partplan_parse_retention(in.opt.retention, &retention_s, err, sizeof err)) {
        log_error("ADW_INGEST_RETENTION: %s", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    in.sigfd = signals_block();
    if (in.sigfd < 0) {
        log_error("cannot watch signals: %s", strerror(-in.sigfd));
        return 1;
    }

    int exit_code = 1;
    SSL_CTX *tls = NULL;
    if (!tls_pair_ok(in.opt.tls_cert, in.opt.tls_key, "ADW_INGEST_TLS_CERT", "ADW_INGEST_TLS_KEY",
                     err, sizeof err) ||
        (in.opt.tls_cert && *in.opt.tls_cert &&
         !(tls = tls_server_new(in.opt.tls_cert, in.opt.tls_key, err, sizeof err)))) {
        log_error("%s", err);
        close(in.sigfd);
        return 2;
    }
    double run_budget = 0;
    if (in.opt.run_budget_usd && *in.opt.run_budget_usd &&
        budget_parse_usd(in.opt.run_budget_usd, &run_budget, err, sizeof err)) {
        log_error("ADW_INGEST_RUN_BUDGET_USD: %s", err);
        tls_server_destroy(&tls);
        close(in.sigfd);
        return 2;
    }
    in.metrics = metrics_new();
    in.loop = loop_new();
    in.zctx = zmq_ctx_new();
    if (!in.metrics || !in.loop || !in.zctx) {
        log_error("out of memory");
        goto done;
    }
    if (loop_watch(in.loop, in.sigfd, LOOP_READ, on_signal, &in) < 0) {
        log_error("cannot watch signals");
        goto done;
    }
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
    if (in.opt.webhooks && *in.opt.webhooks) {
        webhook_options_t wo = {.urls = in.opt.webhooks,
                                .events = in.opt.webhook_events,
                                .queue_max = in.opt.webhook_queue,
                                .public_url = in.opt.public_url,
                                .metrics = in.metrics};
        int bad = 0;
        in.webhook = webhook_new(&wo, &bad, err, sizeof err);
        if (!in.webhook) {
            log_error("%s", err);
            exit_code = bad ? 2 : 1;
            goto done;
        }
    } else if (in.opt.public_url && *in.opt.public_url &&
               webhook_url_check(in.opt.public_url, strlen(in.opt.public_url), err, sizeof err) <
                   0) {
        log_error("ADW_INGEST_PUBLIC_URL: %s", err);
        exit_code = 2;
        goto done;
    }
    store_options_t so = {.conninfo = in.opt.database_url,
                          .max_batch_events = in.opt.max_batch,
                          .reply_timeout_ms = in.opt.db_timeout_ms,
                          .metrics = in.metrics,
                          .run_budget_usd = run_budget,
                          .enforce_budget = in.opt.enforce_budget,

                          .partition_events = in.opt.partition_events,
                          .retention_s = retention_s,
                          .retain_every_ms = in.opt.retention_check_ms};
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
                             .metrics = in.metrics,
                             .webhook = in.webhook};
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
    approval_rules_t *rules = approvals_load_rules(in.opt.approvals, err, sizeof err);
    if (!rules && err[0]) {
        log_error("ADW_INGEST_APPROVALS: %s", err);
        exit_code = 2;
        goto done;
    }
    if (rules)
        log_info("approvals: %zu rules", approval_rules_count(rules));
    approvals_options_t ao = {.loop = in.loop,
                              .pipeline = in.pipeline,
                              .rules = rules,
                              .max_pending = in.opt.approvals_max,
                              .metrics = in.metrics};
    in.approvals = approvals_new(&ao);
    if (!in.approvals) {
        log_error("out of memory");
        goto done;
    }
    routes_options_t ro = {.pipeline = in.pipeline,
                           .approvals = in.approvals,
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

    loop_run(in.loop, &in.stop);

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
    pipeline_destroy(&in.pipeline);   /* unwatches the store's fd: before the store goes */
    approvals_destroy(&in.approvals); /* after the pipeline: no callback of it runs any more */
    store_destroy(&in.store);
    webhook_destroy(&in.webhook); /* delivers what it can in WEBHOOK_DRAIN_MS */
    publish_destroy(&in.publish);
    zap_destroy(&in.auth);
    if (in.zctx)
        zmq_ctx_term(in.zctx);
    if (in.loop)
        loop_unwatch(in.loop, in.sigfd);
    close(in.sigfd);
    loop_destroy(&in.loop);
    metrics_destroy(&in.metrics);
    tls_server_destroy(&tls);
    if (exit_code == 0)
        log_info("stopped");
    return exit_code;
}
