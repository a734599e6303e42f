/* adw-bench: load generator and measurer for the whole pipeline (load.c), and with --demo a
 * stream of simulated ADW runs to watch on the dashboard (demo.c). */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "demo.h"
#include "load.h"
#include "log.h"

typedef struct bench_options_t {
    int demo;
    client_flags_t net; /* --http, --zmq, --token, --curve-server, --curve-cert */
    int64_t runs;
    int64_t concurrency;
    const char *speed;
    int64_t duration_s;
    int64_t seed;
    int64_t timeout_ms;
    const char *log_level;
    const char *log_format;
} bench_options_t;

#define OPT(f) offsetof(bench_options_t, f)
static const config_option_t OPTIONS[] = {
    {.flag = "demo",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(demo),
     .doc = "play simulated ADW runs at a watchable pace"},
    CLIENT_CONFIG_OPTIONS(OPT(net), "send over HTTP to this ingest URL (http://host:port)"),
    {.flag = "runs",
     .env = "ADW_DEMO_RUNS",
     .type = CONFIG_INT,
     .def = "0",
     .offset = OPT(runs),
     .max = 1000000,
     .doc = "--demo: runs to play in all (0: no end)"},
    {.flag = "concurrency",
     .env = "ADW_DEMO_CONCURRENCY",
     .type = CONFIG_INT,
     .def = "3",
     .offset = OPT(concurrency),
     .min = 1,
     .max = 64,
     .doc = "--demo: runs at once"},
    {.flag = "speed",
     .env = "ADW_DEMO_SPEED",
     .type = CONFIG_STRING,
     .def = "1",
     .offset = OPT(speed),
     .doc = "--demo: pace factor (1: a few events per second per run; 10: ten times faster)"},
    {.flag = "duration",
     .env = "ADW_DEMO_DURATION",
     .type = CONFIG_INT,
     .def = "0",
     .offset = OPT(duration_s),
     .max = 31536000,
     .doc = "--demo: stop after this many seconds (0: no end)"},
    {.flag = "seed",
     .type = CONFIG_INT,
     .def = "0",
     .offset = OPT(seed),
     .max = INT64_MAX,
     .doc = "--demo: random seed, for a repeatable show (0: from the clock)"},
    {.flag = "timeout-ms",
     .type = CONFIG_INT,
     .def = "2000",
     .offset = OPT(timeout_ms),
     .min = 1,
     .max = 600000,
     .doc = "the longest one send may take"},
    {.flag = "log-level",
     .env = "ADW_LOG_LEVEL",
     .type = CONFIG_STRING,
     .def = "info",
     .offset = OPT(log_level),
     .doc = "debug (one line per event), info, warn or error"},
    {.flag = "log-format",
     .env = "ADW_LOG_FORMAT",
     .type = CONFIG_STRING,
     .def = "text",
     .offset = OPT(log_format),
     .doc = "text or json"},
};

static const config_program_t PROGRAM = {
    .name = "adw-bench",
    .summary = "adw-bench --demo: plays simulated ADW runs through ingest, at a watchable pace.",
    .usage = "--demo [options]",
    .options = OPTIONS,
    .noptions = sizeof OPTIONS / sizeof OPTIONS[0],
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* The --demo command line. */
static int demo_cli(int argc, char **argv)
{
    bench_options_t opt = {0};
    int rc = config_start(&PROGRAM, &opt, argc, argv, &opt.log_level, &opt.log_format);
    if (rc)
        return rc == CONFIG_EXIT ? 0 : 64;
    char *end = NULL;
    double speed = strtod(opt.speed, &end);
    if (!end || *end || !(speed > 0.0) || speed > 1000.0) {
        fprintf(stderr, "adw-bench: --speed: expected a number in (0, 1000], got '%s'\n",
                opt.speed);
        return 64;
    }
    int given_http = 0, given_zmq = 0;
    for (int i = 1; i < argc; i++) {
        given_http |= !strncmp(argv[i], "--http", 6) && (!argv[i][6] || argv[i][6] == '=');
        given_zmq |= !strncmp(argv[i], "--zmq", 5) && (!argv[i][5] || argv[i][5] == '=');
    }
    if (given_http && given_zmq) {
        fprintf(stderr, "adw-bench: give --http or --zmq, not both\n");
        return 64;
    }
    int use_http = given_http || (!given_zmq && opt.net.http && *opt.net.http);
    demo_options_t d = {
        .http_url = use_http ? opt.net.http : NULL,
        .zmq_endpoint = use_http ? NULL : opt.net.zmq,
        .token = opt.net.token,
        .curve_server = opt.net.curve_server,
        .curve_cert = opt.net.curve_cert,
        .runs = opt.runs,
        .concurrency = opt.concurrency,
        .speed = speed,
        .duration_s = opt.duration_s,
        .seed = (uint64_t)opt.seed,
        .timeout_ms = opt.timeout_ms,
    };
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = demo_run(&d, &stopping);
    return rc == 0 ? 0 : rc == -EINVAL ? 64 : 1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--demo") || !strncmp(argv[i], "--demo=", 7))
            return demo_cli(argc, argv);
    return load_main(argc, argv);
}
