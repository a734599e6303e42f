/* adw-gateway: subscribes to ingest's PUB socket and serves the events to WebSocket clients,
 * with replay and history from PostgreSQL, the REST read API and the dashboard. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "config.h"
#include "dbpool.h"
#include "dbroute.h"
#include "log.h"
#include "metrics.h"
#include "sub.h"
#include "timefmt.h"
#include "ws.h"

#ifndef ADW_GATEWAY_WEB_SRC_DIR
#define ADW_GATEWAY_WEB_SRC_DIR ""
#endif
#ifndef ADW_GATEWAY_WEB_INSTALL_DIR
#define ADW_GATEWAY_WEB_INSTALL_DIR "/usr/local/share/adw/web"
#endif

typedef struct gateway_options_t {
    const char *http;
    const char *sub;
    const char *curve_server;
    const char *curve_cert;
    const char *database_url;
    const char *read_url;
    const char *token;
    const char *read_tokens;
    const char *decide_tokens;
    const char *ingest_url;
    const char *ingest_token;
    const char *tls_cert;
    const char *tls_key;
    const char *origins;
    const char *web_dir;
    int64_t heartbeat_s;
    int64_t max_queue;
    int64_t max_clients;
    int64_t sub_hwm;
    int64_t sub_silence_ms;
    int64_t db_threads;
    int64_t read_probe_ms;
    int64_t max_replays;
    int64_t shutdown_timeout_ms;
    const char *log_level;
    const char *log_format;
} gateway_options_t;

#define OPT(f) offsetof(gateway_options_t, f)
static const config_option_t OPTIONS[] = {
    {.flag = "http",
     .env = "ADW_GATEWAY_HTTP",
     .type = CONFIG_STRING,
     .def = "0.0.0.0:8080",
     .offset = OPT(http),
     .doc = "HTTP and WebSocket listen address (host:port)"},
    {.flag = "sub",
     .env = "ADW_GATEWAY_SUB",
     .type = CONFIG_STRING,
     .def = "tcp://127.0.0.1:5556",
     .offset = OPT(sub),
     .doc = "ingest PUB endpoints to subscribe to (comma-separated)"},
    {.flag = "curve-server",
     .env = "ADW_GATEWAY_CURVE_SERVER",
     .type = CONFIG_STRING,
     .offset = OPT(curve_server),
     .doc = "subscribe with CURVE: ingest's public certificate file (unset: no CURVE)"},
    {.flag = "curve-cert",
     .env = "ADW_GATEWAY_CURVE_CERT",
     .type = CONFIG_STRING,
     .offset = OPT(curve_cert),
     .doc = "subscribe with CURVE: the gateway's certificate (PATH; secret half in PATH_secret)"},
    {.flag = "database-url",
     .env = "DATABASE_URL",
     .type = CONFIG_STRING,
     .def = "",
     .offset = OPT(database_url),
     .doc = "PostgreSQL libpq URI or conninfo, read only (empty: libpq's PG* environment)"},
    {.flag = "read-url",
     .env = "ADW_GATEWAY_READ_URL",
     .type = CONFIG_STRING,
     .offset = OPT(read_url),
     .doc = "PostgreSQL streaming standbys to read from: postgresql:// URIs separated by "
            "whitespace or commas, at most 8 (unset: every read on the primary)"},
    {.flag = "token",
     .env = "ADW_GATEWAY_TOKEN",
     .type = CONFIG_STRING,
     .offset = OPT(token),
     .doc = "token /ws/events and /api/* require, reading every run (query token or Bearer; unset: "
            "none)"},
    {.flag = "read-tokens",
     .env = "ADW_GATEWAY_READ_TOKENS",
     .type = CONFIG_STRING,
     .offset = OPT(read_tokens),
     .doc = "read tokens scoped to adw_id prefixes: \"tok=prefix,prefix;tok2=prefix\", or @file "
            "(unset: none)"},
    {.flag = "decide-tokens",
     .env = "ADW_GATEWAY_DECIDE_TOKENS",
     .type = CONFIG_STRING,
     .offset = OPT(decide_tokens),
     .doc = "tokens that may decide approvals, scoped: \"name:tok=prefix,prefix;tok2=*\", or @file "
            "(unset: no deciding at this gateway)"},
    {.flag = "ingest-url",
     .env = "ADW_GATEWAY_INGEST_URL",
     .type = CONFIG_STRING,
     .def = "http://127.0.0.1:8000",
     .offset = OPT(ingest_url),
     .doc = "ingest's HTTP address, where approval decisions are handed on"},
    {.flag = "ingest-token",
     .env = "ADW_GATEWAY_INGEST_TOKEN",
     .type = CONFIG_STRING,
     .offset = OPT(ingest_token),
     .doc = "ingest's bearer token (ADW_INGEST_TOKEN) for the decisions handed on (unset: none)"},
    {.flag = "tls-cert",
     .env = "ADW_GATEWAY_TLS_CERT",
     .type = CONFIG_STRING,
     .offset = OPT(tls_cert),
     .doc = "PEM certificate chain: serve https and wss only (with --tls-key; unset: plain HTTP)"},
    {.flag = "tls-key",
     .env = "ADW_GATEWAY_TLS_KEY",
     .type = CONFIG_STRING,
     .offset = OPT(tls_key),
     .doc = "PEM private key for --tls-cert"},
    {.flag = "origins",
     .env = "ADW_GATEWAY_ORIGINS",
     .type = CONFIG_STRING,
     .offset = OPT(origins),
     .doc =
         "browser origins allowed to open a WebSocket, comma-separated, or * (unset: same origin "
         "and localhost)"},
    {.flag = "web-dir",
     .env = "ADW_GATEWAY_WEB_DIR",
     .type = CONFIG_STRING,
     .offset = OPT(web_dir),
     .doc = "directory served at / (unset: the source tree's gateway/web, "
            "else " ADW_GATEWAY_WEB_INSTALL_DIR ")"},
    {.flag = "heartbeat-s",
     .env = "ADW_GATEWAY_HEARTBEAT_S",
     .type = CONFIG_INT,
     .def = "30",
     .offset = OPT(heartbeat_s),
     .min = 1,
     .max = 3600,
     .doc = "seconds between pings; a client silent for 3 times this is closed (4000)"},
    {.flag = "max-queue",
     .env = "ADW_GATEWAY_MAX_QUEUE",
     .type = CONFIG_INT,
     .def = "8M",
     .offset = OPT(max_queue),
     .min = 4096,
     .max = 1LL << 32,
     .bytes = 1,
     .doc = "unsent bytes per client before it is closed as a slow consumer (4008)"},
    {.flag = "max-clients",
     .env = "ADW_GATEWAY_MAX_CLIENTS",
     .type = CONFIG_INT,
     .def = "19000",
     .offset = OPT(max_clients),
     .min = 1,
     .max = 1000000,
     .doc = "WebSocket clients at once (more get 503)"},
    {.flag = "sub-hwm",
     .env = "ADW_GATEWAY_SUB_HWM",
     .type = CONFIG_INT,
     .def = "100000",
     .offset = OPT(sub_hwm),
     .min = 1,
     .max = 10000000,
     .doc = "SUB receive high-water mark, in messages (past it ZeroMQ drops; holes are filled from "
            "PostgreSQL)"},
    {.flag = "sub-silence-ms",
     .env = "ADW_GATEWAY_SUB_SILENCE_MS",
     .type = CONFIG_INT,
     .def = "3000",
     .offset = OPT(sub_silence_ms),
     .min = 500,
     .max = 600000,
     .doc =
         "nothing from ingest for this long (it beats every second): subscribe anew (a dead link)"},
    {.flag = "db-threads",
     .env = "ADW_GATEWAY_DB_THREADS",
     .type = CONFIG_INT,
     .def = "2",
     .offset = OPT(db_threads),
     .min = 1,
     .max = 64,
     .doc = "threads (and PostgreSQL connections) for replays and the REST API"},
    {.flag = "read-probe-ms",
     .env = "ADW_GATEWAY_READ_PROBE_MS",
     .type = CONFIG_INT,
     .def = "200",
     .offset = OPT(read_probe_ms),
     .min = 20,
     .max = 60000,
     .doc = "milliseconds between two looks at each standby (recovery, epoch, newest event id)"},
    {.flag = "max-replays",
     .env = "ADW_GATEWAY_MAX_REPLAYS",
     .type = CONFIG_INT,
     .def = "0",
     .offset = OPT(max_replays),
     .max = 1024,
     .doc = "replay pages read from PostgreSQL at once or queued for the DB threads; more replays "
            "wait their turn in order, never refused (0: twice db-threads)"},
    {.flag = "shutdown-timeout-ms",
     .env = "ADW_GATEWAY_SHUTDOWN_TIMEOUT_MS",
     .type = CONFIG_INT,
     .def = "5000",
     .offset = OPT(shutdown_timeout_ms),
     .max = 600000,
     .doc = "on SIGTERM, how long to wait for clients to take their close frames"},
    CONFIG_LOG_OPTIONS(gateway_options_t, "info"),
};

static const config_program_t PROGRAM = {
    .name = "adw-gateway",
    .summary = "Serves ADW events to WebSocket clients, with replay, the REST API and the "
               "dashboard.",
    .usage = "[options]",
    .options = OPTIONS,
    .noptions = sizeof OPTIONS / sizeof OPTIONS[0],
};

/* SIGTERM and SIGINT. The libwebsockets loop cannot watch a descriptor of ours without adopting
 * it as a raw socket inside ws.c, so the simplest correct way is a thread: the signals are
 * blocked in main before any thread starts (the subscriber, the database workers and ZeroMQ's
 * threads inherit the mask), and one small thread takes them with sigwait(), sets the flag and
 * wakes the loop with ws_wake (lws_cancel_service, which any thread may call). No signal
 * handler runs. wake_lock orders the flag with wake_server: a signal before the server exists
 * is seen by the loop's first check, and none is delivered to a server being destroyed. */
static sigset_t stop_signals;
static atomic_int signalled;
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static ws_server_t *wake_server; /* guarded by wake_lock; NULL while there is no loop to wake */

static void *signal_main(void *arg)
{
    (void)arg;
    for (;;) {
        int sig;
        if (sigwait(&stop_signals, &sig))
            continue;
        pthread_mutex_lock(&wake_lock);
        atomic_store(&signalled, 1);
        if (wake_server)
            ws_wake(wake_server);
        pthread_mutex_unlock(&wake_lock);
    }
    return NULL;
}

/* Blocks SIGTERM and SIGINT in the calling thread (call before any other thread exists) and
 * starts the thread that waits for them. Returns 0 or -errno. */
static int signals_start(void)
{
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    int rc = pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    pthread_t t;
    if (!rc)
        rc = pthread_create(&t, NULL, signal_main, NULL);
    if (!rc)
        rc = pthread_detach(t);
    return -rc;
}

/* Sets the server the signal thread wakes (NULL: none). */
static void signals_wake(ws_server_t *server)
{
    pthread_mutex_lock(&wake_lock);
    wake_server = server;
    pthread_mutex_unlock(&wake_lock);
}

/* The dashboard directory: the option, else the source tree's, else the installed one. */
static const char *web_dir(const char *opt)
{
    if (opt && *opt)
        return opt;
    struct stat st;
    if (*ADW_GATEWAY_WEB_SRC_DIR && !stat(ADW_GATEWAY_WEB_SRC_DIR, &st) && S_ISDIR(st.st_mode))
        return ADW_GATEWAY_WEB_SRC_DIR;
    return ADW_GATEWAY_WEB_INSTALL_DIR;
}

int main(int argc, char **argv)
{
    gateway_options_t opt;
    memset(&opt, 0, sizeof opt);
    char err[512];
    int rc = config_start(&PROGRAM, &opt, argc, argv, &opt.log_level, &opt.log_format);
    if (rc)
        return rc == CONFIG_EXIT ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    rc = signals_start();
    if (rc) {
        log_error("cannot watch signals: %s", strerror(-rc));
        return 1;
    }

    int exit_code = 1;
    metrics_t *metrics = metrics_new();
    void *zctx = zmq_ctx_new();
    ws_server_t *server = NULL;
    sub_t *sub = NULL;
    dbpool_t *pool = NULL;
    dbroute_t *route = NULL;
    if (!metrics || !zctx) {
        log_error("out of memory");
        goto done;
    }
    ws_options_t wo = {.listen = opt.http,
                       .token = opt.token,
                       .read_tokens = opt.read_tokens,
                       .decide_tokens = opt.decide_tokens,
                       .ingest_url = opt.ingest_url,
                       .ingest_token = opt.ingest_token,
                       .tls_cert = opt.tls_cert,
                       .tls_key = opt.tls_key,
                       .origins = opt.origins,
                       .web_dir = web_dir(opt.web_dir),
                       .heartbeat_s = (int)opt.heartbeat_s,
                       .max_queue = (size_t)opt.max_queue,
                       .max_clients = (int)opt.max_clients,
                       /* Twice the threads: each runs one page while its next one waits. */
                       .max_replays = (int)(opt.max_replays ? opt.max_replays : 2 * opt.db_threads),
                       .metrics = metrics};
    server = ws_new(&wo, err, sizeof err);
    if (!server) {
        log_error("%s", err);
        exit_code = 2;
        goto done;
    }
    signals_wake(server);
    dbroute_options_t ro = {
        .urls = opt.read_url, .probe_ms = (int)opt.read_probe_ms, .metrics = metrics};
    route = dbroute_new(&ro, err, sizeof err);
    if (!route) {
        log_error("%s", err);
        exit_code = 2;
        goto done;
    }
    sub_options_t so = {.zctx = zctx,
                        .endpoints = opt.sub,
                        .rcvhwm = (int)opt.sub_hwm,
                        .curve_server = opt.curve_server,
                        .curve_cert = opt.curve_cert,
                        .silence_ms = opt.sub_silence_ms,
                        .conninfo = opt.database_url,
                        .wake = ws_wake,
                        .wake_arg = server,
                        .metrics = metrics,
                        .route = route};
    sub = sub_new(&so, err, sizeof err);
    if (!sub) {
        log_error("%s", err);
        exit_code = 2;
        goto done;
    }
    dbpool_options_t po = {.conninfo = opt.database_url,
                           .threads = (int)opt.db_threads,
                           .max_jobs = 10000,
                           .wake = ws_wake,
                           .wake_arg = server,
                           .route = route};
    pool = dbpool_new(&po, err, sizeof err);
    if (!pool || ws_attach(server, sub, pool)) {
        log_error("%s", pool ? "out of memory" : err);
        goto done;
    }
    log_info("listening: %s %s, sub %s, heartbeat %llds, max queue %lld bytes%s%s%s",
             opt.tls_cert && *opt.tls_cert ? "https" : "http", opt.http, opt.sub,
             (long long)opt.heartbeat_s, (long long)opt.max_queue,
             opt.token && *opt.token ? ", token required" : "",
             opt.read_tokens && *opt.read_tokens ? ", scoped read tokens" : "",
             opt.decide_tokens && *opt.decide_tokens ? ", decide tokens" : "");

    while (!atomic_load(&signalled))
        ws_service(server);

    log_info("shutting down: closing %zu clients", ws_clients(server));
    ws_shutdown(server);
    int64_t deadline = timefmt_mono_us() + opt.shutdown_timeout_ms * 1000;
    while (ws_clients(server) && timefmt_mono_us() < deadline)
        ws_service(server);
    if (ws_clients(server))
        log_warn("shutdown: %zu clients did not close in time", ws_clients(server));
    exit_code = 0;
done:
    sub_destroy(&sub);
    dbpool_destroy(&pool);
    dbroute_destroy(&route);
    signals_wake(NULL);
    ws_destroy(&server);
    if (zctx)
        zmq_ctx_term(zctx);
    metrics_destroy(&metrics);
    if (exit_code == 0)
        log_info("stopped");
    return exit_code;
}
