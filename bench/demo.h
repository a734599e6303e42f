/* demo: plays realistic ADW runs through the client library, at a pace a person can watch.
 *
 * Several runs at once, each a workflow of steps (plan, build, review, fix, document) with
 * adw_start / step_start / step_complete / adw_complete or adw_failed system events (status,
 * duration_ms), and between them what an agent does: ThinkingBlock and TextBlock events with
 * plausible summaries, tool uses (Read, Grep, Edit, Write, Bash "npm test", ...) each as
 * PreToolUse, ToolUseBlock and PostToolUse events, payloads carrying token usage and cost so a
 * run's totals rise, and now and then a failing step. A new run starts as one finishes.
 */
#ifndef ADW_BENCH_DEMO_H
#define ADW_BENCH_DEMO_H

#include <signal.h>
#include <stdint.h>

/* How to play. Plain data; strings are borrowed for the duration of demo_run. */
typedef struct demo_options_t {
    const char *http_url;     /* ingest over HTTP; NULL or "": ZeroMQ */
    const char *zmq_endpoint; /* ingest over ZeroMQ; NULL or "": the client's default */
    const char *token;        /* HTTP bearer token, or NULL */
    const char *curve_server; /* ZeroMQ with CURVE: ingest's public certificate, or NULL */
    const char *curve_cert;   /* ZeroMQ with CURVE: our certificate, or NULL */
    int64_t runs;             /* runs to play in all; 0: no end */
    int64_t concurrency;      /* runs at once */
    double speed;             /* 1: a few events per second per run; 2: twice as fast */
    int64_t duration_s;       /* stop after this long; 0: no end */
    uint64_t seed;            /* 0: from the clock */
    int64_t timeout_ms;       /* per send */
} demo_options_t;

/* Plays until the runs are done, the duration is over, or *stop becomes non-zero (a signal
 * handler sets it). Events ingest does not take are logged and dropped (the demo keeps no
 * spool). Returns 0, or -EINVAL (options) / -ENOMEM with a reason logged. */
int demo_run(const demo_options_t *o, volatile sig_atomic_t *stop);

#endif
