#include "load.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "adw_limits.h"
#include "client.h"
#include "config.h"
#include "fleet.h"
#include "log.h"
#include "timefmt.h"

typedef struct load_options_t {
    const char *gateways;
    int64_t clients;
    const char *query;
    const char *half_query;
    int64_t filtered;
    const char *sources;
    int64_t threads;
    int lws_client;
    client_flags_t net; /* --http, --zmq, --token, --curve-server, --curve-cert */
    int mixed;
    int64_t batch;
    int64_t concurrency;
    int64_t rate;
    int64_t count;
    int64_t duration_s;
    int64_t runs;
    int64_t warmup;
    int64_t drain_s;
    int64_t connect_timeout_s;
    int64_t replay_since;
    int resume;
    const char *pids;
    int json;
    int demo;
    const char *log_level;
} load_options_t;

#define OPT(f) offsetof(load_options_t, f)
static const config_option_t OPTIONS[] = {
    {.flag = "gateway",
     .env = "ADW_BENCH_GATEWAY",
     .type = CONFIG_STRING,
     .def = "ws://127.0.0.1:8080/ws/events",
     .offset = OPT(gateways),
     .doc = "gateway WebSocket URLs, comma-separated (clients spread over them)"},
    {.flag = "clients",
     .env = "ADW_BENCH_CLIENTS",
     .type = CONFIG_INT,
     .def = "100",
     .offset = OPT(clients),
     .max = 200000,
     .doc = "WebSocket clients to hold"},
    {.flag = "query",
     .env = "ADW_BENCH_QUERY",
     .type = CONFIG_STRING,
     .def = "",
     .offset = OPT(query),
     .doc = "query string every client adds to its URL (a filter, since=...)"},
    {.flag = "half-query",
     .env = "ADW_BENCH_HALF_QUERY",
     .type = CONFIG_STRING,
     .offset = OPT(half_query),
     .doc = "query string for every second client instead (e.g. adw_id=bench-0: half filtered)"},
    {.flag = "filtered",
     .env = "ADW_BENCH_FILTERED",
     .type = CONFIG_INT,
     .def = "0",
     .offset = OPT(filtered),
     .max = 200000,
     .doc = "with --half-query: this many clients use it, spread evenly (0: every second one)"},
    {.flag = "sources",
     .env = "ADW_BENCH_SOURCES",
     .type = CONFIG_STRING,
     .offset = OPT(sources),
     .doc = "local addresses for client connections: a,b,c or 127.0.0.2-127.0.0.9"},
    {.flag = "threads",
     .env = "ADW_BENCH_THREADS",
     .type = CONFIG_INT,
     .def = "1",
     .offset = OPT(threads),
     .min = 1,
     .max = 64,
     .doc = "client threads"},
    {.flag = "lws-client",
     .env = "ADW_BENCH_LWS_CLIENT",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(lws_client),
     .doc =
         "WebSocket clients are libwebsockets' client instead of adw-bench's own (a cross-check; "
         "about ten times the CPU per message)"},
    CLIENT_CONFIG_OPTIONS(OPT(net), "publish over HTTP to this ingest URL (default: ZeroMQ)"),
    {.flag = "mixed",
     .env = "ADW_BENCH_MIXED",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(mixed),
     .doc = "with --http: every second publishing connection uses ZeroMQ instead"},
    {.flag = "batch",
     .env = "ADW_BENCH_BATCH",
     .type = CONFIG_INT,
     .def = "1",
     .offset = OPT(batch),
     .min = 1,
     .max = ADW_BATCH_MAX,
     .doc = "events per request"},
    {.flag = "concurrency",
     .env = "ADW_BENCH_CONCURRENCY",
     .type = CONFIG_INT,
     .def = "1",
     .offset = OPT(concurrency),
     .min = 1,
     .max = 256,
     .doc = "publishing connections, each with one request in flight"},
    {.flag = "rate",
     .env = "ADW_BENCH_RATE",
     .type = CONFIG_INT,
     .def = "0",
     .offset = OPT(rate),
     .max = 10000000,
     .doc = "events per second in all (0: as fast as it goes)"},
    {.flag = "count",
     .env = "ADW_BENCH_COUNT",
     .type = CONFIG_INT,
     .def = "10000",
     .offset = OPT(count),
     .max = 100000000,
     .doc = "events to publish at most"},
    {.flag = "duration",
     .env = "ADW_BENCH_DURATION",
     .type = CONFIG_INT,
     .def = "60",
     .offset = OPT(duration_s),
     .min = 1,
     .max = 86400,
     .doc = "seconds to publish (or, with --count 0, to hold the clients) at most"},
    {.flag = "runs",
     .env = "ADW_BENCH_RUNS",
     .type = CONFIG_INT,
     .def = "4",
     .offset = OPT(runs),
     .min = 1,
     .max = 1000000,
     .doc = "adw_ids bench-0..bench-N-1 the events go to, in turn"},
    {.flag = "warmup",
     .env = "ADW_BENCH_WARMUP",
     .type = CONFIG_INT,
     .def = "0",
     .offset = OPT(warmup),
     .max = 100000000,
     .doc = "events whose latency is not recorded"},
    {.flag = "drain",
     .env = "ADW_BENCH_DRAIN",
     .type = CONFIG_INT,
     .def = "15",
     .offset = OPT(drain_s),
     .max = 3600,
     .doc = "seconds to wait for deliveries after the last publish"},
    {.flag = "connect-timeout",
     .env = "ADW_BENCH_CONNECT_TIMEOUT",
     .type = CONFIG_INT,
     .def = "60",
     .offset = OPT(connect_timeout_s),
     .min = 1,
     .max = 3600,
     .doc = "seconds to wait for every client to connect"},
    {.flag = "replay-since",
     .env = "ADW_BENCH_REPLAY_SINCE",
     .type = CONFIG_INT,
     .def = "-1",
     .offset = OPT(replay_since),
     .min = -1,
     .max = INT64_MAX,
     .doc = "connect one more client with since=N and time its replay (-1: none)"},
    {.flag = "resume",
     .env = "ADW_BENCH_RESUME",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(resume),
     .doc = "a client whose connection ends (a gateway killed, say) opens it again with since = "
            "the last id it received, as the dashboard does"},
    {.flag = "pids",
     .env = "ADW_BENCH_PIDS",
     .type = CONFIG_STRING,
     .offset = OPT(pids),
     .doc = "processes to measure: name=PID,name=PID (peak RSS, CPU seconds)"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(json),
     .doc = "print one JSON object"},
    {.flag = "demo",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(demo),
     .doc = "play simulated ADW runs instead of measuring (see --demo --help)"},
    {.flag = "log-level",
     .env = "ADW_LOG_LEVEL",
     .type = CONFIG_STRING,
     .def = "warn",
     .offset = OPT(log_level),
     .doc = "debug, info, warn or error"},
};

static const config_program_t PROGRAM = {
    .name = "adw-bench",
    .summary = "Measures the ADW pipeline: events stored/s, deliveries/s, publish-to-receipt "
               "latency, loss, memory and CPU.",
    .usage = "[options]   (adw-bench --demo --help for the demo)",
    .options = OPTIONS,
    .noptions = sizeof OPTIONS / sizeof OPTIONS[0],
};

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- measured processes ---- */

typedef struct proc_probe {
    char name[32];
    int pid;
    double cpu0, cpu1; /* seconds */
    long hwm_kb, rss0_kb, rss1_kb;
} proc_probe_t;

static double proc_cpu(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* After ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
     */
    // NOLINTNEXTLINE(cert-err34-c): the kernel's decimal fields; a short read fails the count
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_status_kb(int pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int parse_pids(const char *s, proc_probe_t *out, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (!eq)
            return -1;
        snprintf(out[n].name, sizeof out[n].name, "%.*s", (int)(eq - s), s);
        long pid = strtol(eq + 1, NULL, 10);
        if (pid <= 0 || pid > INT_MAX)
            return -1;
        out[n].pid = (int)pid;
        n++;
        s = c ? c + 1 : s + len;
    }
    return n;
}

/* ---- publishers ---- */

typedef struct shared_pub {
    const load_options_t *o;
    _Atomic int64_t next_seq;
    _Atomic int64_t acked;
    _Atomic int64_t acked_zmq; /* of those, over ZeroMQ */
    _Atomic int64_t failed;
    _Atomic int64_t retries;
    _Atomic int stop;
    int64_t t0_us;       /* monotonic start */
    int64_t deadline_us; /* monotonic */
    uint8_t *acked_bits; /* over bench_seq */
    pthread_mutex_t mu;
    hist_t ack_latency; /* request to acknowledgement */
    char err[CLIENT_ERR_LEN];
} shared_pub_t;

typedef struct pub_thread {
    shared_pub_t *sp;
    pthread_t tid;
    int zmq; /* this connection publishes over ZeroMQ */
} pub_thread_t;

static json_t *bench_event(const load_options_t *o, int64_t seq)
{
    char run[32];
    snprintf(run, sizeof run, "bench-%" PRId64, seq % o->runs);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:i}}", "type", "adw_event",
                           "adw_id", run, "step", "build", "event_type", "ToolUseBlock", "summary",
                           "Writing authentication middleware", "payload", "tool_name", "Write",
                           "file_path", "/src/middleware/auth.py", "duration_ms", 45);
    return ev;
}

static void *pub_main(void *arg)
{
    pub_thread_t *pt = arg;
    shared_pub_t *sp = pt->sp;
    const load_options_t *o = sp->o;
    char err[CLIENT_ERR_LEN];
    client_options_t co = {.http_url = pt->zmq ? NULL : o->net.http,
                           .zmq_endpoint = o->net.zmq,
                           .token = o->net.token,
                           .curve_server = o->net.curve_server,
                           .curve_cert = o->net.curve_cert};
    client_t *c = client_new(&co, NULL, err, sizeof err);
    if (!c) {
        pthread_mutex_lock(&sp->mu);
        snprintf(sp->err, sizeof sp->err, "%s", err);
        pthread_mutex_unlock(&sp->mu);
        atomic_store(&sp->stop, 1);
        return NULL;
    }
    int64_t *ids = calloc((size_t)o->batch, sizeof *ids);
    int64_t *seqs = calloc((size_t)o->batch, sizeof *seqs);
    while (ids && seqs && !atomic_load(&sp->stop) && !interrupted) {
        int64_t first = atomic_fetch_add(&sp->next_seq, o->batch);
        if (first >= o->count)
            break;
        int64_t n = first + o->batch <= o->count ? o->batch : o->count - first;
        if (o->rate > 0) {
            int64_t due = sp->t0_us + first * 1000000 / o->rate;
            int64_t now = timefmt_mono_us();
            if (due > now) {
                struct timespec ts = {.tv_sec = (due - now) / 1000000,
                                      .tv_nsec = ((due - now) % 1000000) * 1000};
                nanosleep(&ts, NULL);
            }
        }
        if (timefmt_mono_us() > sp->deadline_us)
            break;
        json_t *arr = json_array();
        int64_t t = timefmt_now_us();
        for (int64_t k = 0; k < n; k++) {
            json_t *ev = bench_event(o, first + k);
            json_object_set_new(ev, "bench_seq", json_integer(first + k));
            json_object_set_new(ev, "bench_t", json_integer(t));
            json_array_append_new(arr, ev);
            seqs[k] = first + k;
        }
        int rc;
        int tries = 0;
        do {
            int64_t t1 = timefmt_mono_us();
            rc = client_send(c, arr, 10000, ids, NULL, err, sizeof err);
            if (!rc) {
                pthread_mutex_lock(&sp->mu);
                hist_add(&sp->ack_latency, timefmt_mono_us() - t1);
                pthread_mutex_unlock(&sp->mu);
            } else if (rc == -EAGAIN || rc == -ETIMEDOUT || rc == -ECONNRESET) {
                atomic_fetch_add(&sp->retries, 1);
                struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
                nanosleep(&ts, NULL);
            }
        } while (rc && (rc == -EAGAIN || rc == -ETIMEDOUT || rc == -ECONNRESET) && ++tries < 50 &&
                 !interrupted);
        json_decref(arr);
        if (rc) {
            atomic_fetch_add(&sp->failed, n);
            pthread_mutex_lock(&sp->mu);
            snprintf(sp->err, sizeof sp->err, "%s", err);
            pthread_mutex_unlock(&sp->mu);
            continue;
        }
        atomic_fetch_add(&sp->acked, n);
        if (pt->zmq)
            atomic_fetch_add(&sp->acked_zmq, n);
        pthread_mutex_lock(&sp->mu);
        for (int64_t k = 0; k < n; k++)
            sp->acked_bits[seqs[k] >> 3] |= (uint8_t)(1u << (seqs[k] & 7));
        pthread_mutex_unlock(&sp->mu);
    }
    free(ids);
    free(seqs);
    client_destroy(&c);
    return NULL;
}

/* ---- report ---- */

typedef struct report {
    double publish_s, events_per_s, deliveries_per_s, delivery_s;
    int64_t acked, acked_zmq, failed, retries;
    uint64_t expected, lost;
    fleet_stats_t fs;
    hist_t ack;
    hist_t first, last; /* per event: latency to its first and to its last receiving client */
    proc_probe_t probes[16];
    int nprobes;
    long self_hwm_kb;
    double self_cpu;
    double replay_ms;
} report_t;

static void print_report(const load_options_t *o, const report_t *r)
{
    const hist_t *h = &r->fs.latency;
    double gw_cpu = 0;
    for (int i = 0; i < r->nprobes; i++)
        if (!strncmp(r->probes[i].name, "gateway", 7))
            gw_cpu += r->probes[i].cpu1 - r->probes[i].cpu0;
    double us_per_delivery = r->fs.deliveries ? gw_cpu * 1e6 / (double)r->fs.deliveries : 0;
    if (o->json) {
        printf("{\"transport\":\"%s\",\"ws_client\":\"%s\",\"clients\":%" PRId64
               ",\"connected\":%zu,\"batch\":%" PRId64 ",\"concurrency\":%" PRId64
               ",\"rate\":%" PRId64 ",\"published\":%" PRId64 ",\"published_zmq\":%" PRId64
               ",\"failed\":%" PRId64 ",\"retries\":%" PRId64 ",\"publish_s\":%.3f"
               ",\"events_per_s\":%.1f,\"deliveries\":%" PRIu64 ",\"deliveries_per_s\":%.1f"
               ",\"expected_deliveries\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicated\":%" PRIu64
               ",\"out_of_order\":%" PRIu64 ",\"latency_us\":{\"p50\":%.0f,\"p99\":%.0f,"
               "\"p999\":%.0f,\"max\":%" PRId64 ",\"count\":%" PRIu64 "},\"ack_latency_us\":{"
               "\"p50\":%.0f,\"p99\":%.0f},\"first_receipt_us\":{\"p50\":%.0f,\"p99\":%.0f},"
               "\"last_receipt_us\":{\"p50\":%.0f,\"p99\":%.0f},\"arrival_us\":{\"p50\":%.0f,"
               "\"p99\":%.0f},\"gateway_cpu_us_per_delivery\":%.3f,"
               "\"replay_ms\":%.1f,\"replayed\":%" PRId64 ",\"closed\":%zu,\"last_close_code\":%d,"
               "\"reconnects\":%zu,\"failed_connects\":%zu,\"last_replayed_us\":%" PRId64
               ",\"first_reconnect_us\":%" PRId64 ","
               "\"processes\":{",
               o->net.http ? (o->mixed ? "http+zmq" : "http") : "zmq",
               o->lws_client ? "libwebsockets" : "adw-bench", o->clients, r->fs.connected, o->batch,
               o->concurrency, o->rate, r->acked, r->acked_zmq, r->failed, r->retries, r->publish_s,
               r->events_per_s, r->fs.deliveries, r->deliveries_per_s, r->expected, r->lost,
               r->fs.duplicates, r->fs.out_of_order, hist_quantile(h, 0.5), hist_quantile(h, 0.99),
               hist_quantile(h, 0.999), h->max_us, h->count, hist_quantile(&r->ack, 0.5),
               hist_quantile(&r->ack, 0.99), hist_quantile(&r->first, 0.5),
               hist_quantile(&r->first, 0.99), hist_quantile(&r->last, 0.5),
               hist_quantile(&r->last, 0.99), hist_quantile(&r->fs.arrival, 0.5),
               hist_quantile(&r->fs.arrival, 0.99), us_per_delivery, r->replay_ms,
               r->fs.replayed_events, r->fs.closed, r->fs.last_close_code, r->fs.reconnects,
               r->fs.failed, r->fs.last_replayed_us, r->fs.first_reconnect_us);
        for (int i = 0; i < r->nprobes; i++) {
            const proc_probe_t *p = &r->probes[i];
            printf("%s\"%s\":{\"pid\":%d,\"peak_rss_kb\":%ld,\"rss_kb\":%ld,"
                   "\"rss_start_kb\":%ld,\"cpu_s\":%.3f}",
                   i ? "," : "", p->name, p->pid, p->hwm_kb, p->rss1_kb, p->rss0_kb,
                   p->cpu1 - p->cpu0);
        }
        printf("%s\"adw-bench\":{\"peak_rss_kb\":%ld,\"cpu_s\":%.3f}}}\n", r->nprobes ? "," : "",
               r->self_hwm_kb, r->self_cpu);
        return;
    }
    printf("adw-bench: %s, batch %" PRId64 ", concurrency %" PRId64 ", rate %s, %" PRId64
           " clients (%zu connected)\n",
           o->net.http ? (o->mixed ? "HTTP and ZeroMQ" : "HTTP") : "ZeroMQ", o->batch,
           o->concurrency, o->rate ? "fixed" : "max", o->clients, r->fs.connected);
    printf("  %-34s %" PRId64 " acknowledged (%" PRId64 " over ZeroMQ), %" PRId64
           " failed, %" PRId64 " retries\n",
           "published", r->acked, r->acked_zmq, r->failed, r->retries);
    printf("  %-34s %.0f events/s over %.2f s\n", "stored (acknowledged after commit)",
           r->events_per_s, r->publish_s);
    printf("  %-34s p50 %.2f ms, p99 %.2f ms\n", "acknowledgement latency",
           hist_quantile(&r->ack, 0.5) / 1000, hist_quantile(&r->ack, 0.99) / 1000);
    printf("  %-34s %" PRIu64 " of %" PRIu64 " expected, %.0f/s\n", "deliveries", r->fs.deliveries,
           r->expected, r->deliveries_per_s);
    printf("  %-34s p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
           "publish-to-receipt latency", hist_quantile(h, 0.5) / 1000,
           hist_quantile(h, 0.99) / 1000, hist_quantile(h, 0.999) / 1000, (double)h->max_us / 1000);
    if (r->fs.arrival.count)
        printf("  %-34s p50 %.2f ms, p99 %.2f ms\n", "publish to the clients' kernel",
               hist_quantile(&r->fs.arrival, 0.5) / 1000,
               hist_quantile(&r->fs.arrival, 0.99) / 1000);
    if (r->first.count)
        printf("  %-34s first client p50 %.2f ms, p99 %.2f ms; last p50 %.2f ms, p99 %.2f ms\n",
               "per event, receipt by", hist_quantile(&r->first, 0.5) / 1000,
               hist_quantile(&r->first, 0.99) / 1000, hist_quantile(&r->last, 0.5) / 1000,
               hist_quantile(&r->last, 0.99) / 1000);
    printf("  %-34s lost %" PRIu64 ", duplicated %" PRIu64 ", out of order %" PRIu64 "\n",
           "integrity", r->lost, r->fs.duplicates, r->fs.out_of_order);
    if (r->fs.closed)
        printf("  %-34s %zu (last code %d)\n", "connections closed by the server", r->fs.closed,
               r->fs.last_close_code);
    if (o->resume)
        printf("  %-34s %zu (%zu attempts failed)\n", "connections opened again", r->fs.reconnects,
               r->fs.failed);
    if (o->replay_since >= 0)
        printf("  %-34s %" PRId64 " events in %.1f ms\n", "replay", r->fs.replayed_events,
               r->replay_ms);
    if (us_per_delivery > 0)
        printf("  %-34s %.3f us\n", "gateway CPU per delivery", us_per_delivery);
    for (int i = 0; i < r->nprobes; i++) {
        const proc_probe_t *p = &r->probes[i];
        printf("  %-34s peak RSS %.1f MB, RSS %.1f MB (start %.1f), CPU %.2f s\n", p->name,
               (double)p->hwm_kb / 1024, (double)p->rss1_kb / 1024, (double)p->rss0_kb / 1024,
               p->cpu1 - p->cpu0);
    }
    printf("  %-34s peak RSS %.1f MB, CPU %.2f s\n", "adw-bench", (double)r->self_hwm_kb / 1024,
           r->self_cpu);
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int load_main(int argc, char **argv)
{
    load_options_t o;
    memset(&o, 0, sizeof o);
    char err[512];
    int rc = config_start(&PROGRAM, &o, argc, argv, &o.log_level, NULL);
    if (rc)
        return rc == CONFIG_EXIT ? 0 : 2;
    if (o.net.http && !*o.net.http)
        o.net.http = NULL;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    report_t r;
    memset(&r, 0, sizeof r);
    hist_init(&r.ack);
    r.nprobes = parse_pids(o.pids, r.probes, 16);
    if (r.nprobes < 0) {
        fprintf(stderr, "adw-bench: --pids must be name=PID,name=PID\n");
        return 2;
    }
    fleet_t *fleet = NULL, *replay = NULL;
    if (o.clients > 0) {
        fleet_options_t fo = {
            .urls = o.gateways,
            .clients = (size_t)o.clients,
            .query = o.query,
            .half_query = o.half_query,
            .filtered = (size_t)(o.filtered < o.clients ? o.filtered : o.clients),
            .sources = o.sources,
            .threads = (int)o.threads,
            .lws = o.lws_client,
            .resume = o.resume,
            .max_seq = (uint64_t)o.clients * (uint64_t)o.count / 8 < (512u << 20) ? o.count : 0};
        fleet = fleet_new(&fo, err, sizeof err);
        if (!fleet) {
            fprintf(stderr, "adw-bench: %s\n", err);
            return 2;
        }
        int64_t until = timefmt_mono_us() + o.connect_timeout_s * 1000000;
        fleet_stats_t st;
        for (;;) {
            fleet_stats(fleet, &st);
            if ((int64_t)st.connected >= o.clients || interrupted || timefmt_mono_us() > until)
                break;
            sleep_ms(50);
        }
        if ((int64_t)st.connected < o.clients)
            fprintf(stderr, "adw-bench: only %zu of %" PRId64 " clients connected (%zu failed)\n",
                    st.connected, o.clients, st.failed);
    }
    for (int i = 0; i < r.nprobes; i++) {
        r.probes[i].cpu0 = proc_cpu(r.probes[i].pid);
        r.probes[i].rss0_kb = proc_status_kb(r.probes[i].pid, "VmRSS");
    }
    double cpu0 = self_cpu();
    char replay_query[64]; /* the fleet keeps a pointer to it: it lives as long as main */
    if (o.replay_since >= 0) {
        char *q = replay_query;
        snprintf(q, sizeof replay_query, "since=%" PRId64, o.replay_since);
        fleet_options_t ro = {
            .urls = o.gateways, .clients = 1, .query = q, .threads = 1, .lws = o.lws_client};
        replay = fleet_new(&ro, err, sizeof err);
        if (!replay) {
            fprintf(stderr, "adw-bench: %s\n", err);
            fleet_destroy(&fleet);
            return 2;
        }
    }

    shared_pub_t sp;
    memset(&sp, 0, sizeof sp);
    sp.o = &o;
    pthread_mutex_init(&sp.mu, NULL);
    hist_init(&sp.ack_latency);
    sp.acked_bits = calloc((size_t)(o.count + 8) / 8 + 1, 1);
    sp.t0_us = timefmt_mono_us();
    sp.deadline_us = sp.t0_us + o.duration_s * 1000000;
    pub_thread_t *pts = calloc((size_t)o.concurrency, sizeof *pts);
    int started = 0;
    if (o.count > 0 && pts && sp.acked_bits) {
        for (int i = 0; i < o.concurrency; i++) {
            pts[i].sp = &sp;
            pts[i].zmq = !o.net.http || (o.mixed && i % 2);
            if (!pthread_create(&pts[i].tid, NULL, pub_main, &pts[i]))
                started++;
        }
    }
    /* Warm-up: forget latency until `warmup` events are acknowledged. */
    int warm = o.warmup == 0;
    while (!warm && !interrupted && atomic_load(&sp.acked) < o.warmup &&
           timefmt_mono_us() < sp.deadline_us)
        sleep_ms(10);
    if (!warm && fleet)
        fleet_reset_latency(fleet);
    for (int i = 0; i < started; i++)
        pthread_join(pts[i].tid, NULL);
    int64_t t_end = timefmt_mono_us();
    if (o.count == 0) {
        /* Hold the clients for the duration (idle connections with heartbeats). */
        while (!interrupted && timefmt_mono_us() < sp.deadline_us)
            sleep_ms(100);
        t_end = timefmt_mono_us();
    }
    r.publish_s = (double)(t_end - sp.t0_us) / 1e6;
    r.acked = atomic_load(&sp.acked);
    r.acked_zmq = atomic_load(&sp.acked_zmq);
    r.failed = atomic_load(&sp.failed);
    r.retries = atomic_load(&sp.retries);
    r.events_per_s = r.publish_s > 0 ? (double)r.acked / r.publish_s : 0;
    r.ack = sp.ack_latency;

    /* Which events each kind of client should get. */
    uint8_t *half_want = NULL;
    uint64_t acked_half = 0;
    if (o.half_query && o.count > 0) {
        /* The half filter is taken to be adw_id=bench-0: every runs-th event. */
        half_want = calloc((size_t)(o.count + 8) / 8 + 1, 1);
        for (int64_t s = 0; half_want && s < o.count; s += o.runs)
            if (sp.acked_bits[s >> 3] & (1u << (s & 7))) {
                half_want[s >> 3] |= (uint8_t)(1u << (s & 7));
                acked_half++;
            }
    }
    if (fleet) {
        fleet_stats_t st;
        fleet_stats(fleet, &st);
        uint64_t n_half = !o.half_query ? 0
                          : o.filtered ? (uint64_t)(o.filtered < o.clients ? o.filtered : o.clients)
                                       : (uint64_t)o.clients / 2;
        uint64_t n_full = (uint64_t)o.clients - n_half;
        r.expected = n_full * (uint64_t)r.acked + n_half * acked_half;
        int64_t until = timefmt_mono_us() + o.drain_s * 1000000;
        while (!interrupted && st.deliveries < r.expected && timefmt_mono_us() < until) {
            sleep_ms(20);
            fleet_stats(fleet, &st);
        }
        int64_t t_last = timefmt_mono_us();
        r.delivery_s = (double)(t_last - sp.t0_us) / 1e6;
        fleet_stats(fleet, &r.fs);
        r.deliveries_per_s = r.delivery_s > 0 ? (double)r.fs.deliveries / r.delivery_s : 0;
        r.lost = fleet_lost(fleet, 0, sp.acked_bits, o.count);
        if (half_want)
            r.lost += fleet_lost(fleet, 1, half_want, o.count);
        fleet_spread(fleet, o.warmup, o.count, &r.first, &r.last);
    }
    if (replay) {
        int64_t until = timefmt_mono_us() + o.drain_s * 1000000;
        fleet_stats_t rs;
        do {
            fleet_stats(replay, &rs);
            if (rs.replayed)
                break;
            sleep_ms(10);
        } while (!interrupted && timefmt_mono_us() < until);
        r.replay_ms = rs.replayed ? (double)(rs.last_replayed_us - rs.first_connect_us) / 1000 : -1;
        r.fs.replayed_events = rs.replayed_events;
    }
    for (int i = 0; i < r.nprobes; i++) {
        r.probes[i].cpu1 = proc_cpu(r.probes[i].pid);
        r.probes[i].hwm_kb = proc_status_kb(r.probes[i].pid, "VmHWM");
        r.probes[i].rss1_kb = proc_status_kb(r.probes[i].pid, "VmRSS");
    }
    r.self_cpu = self_cpu() - cpu0;
    r.self_hwm_kb = proc_status_kb(getpid(), "VmHWM");
    print_report(&o, &r);
    if (sp.err[0] && r.failed)
        fprintf(stderr, "adw-bench: last publish error: %s\n", sp.err);

    int bad = r.lost || r.fs.duplicates || r.fs.out_of_order || r.failed;
    fleet_destroy(&replay);
    fleet_destroy(&fleet);
    free(half_want);
    free(sp.acked_bits);
    free(pts);
    pthread_mutex_destroy(&sp.mu);
    return bad ? 1 : 0;
}
