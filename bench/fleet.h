/* fleet: many WebSocket clients of adw-gateway, spread over threads (one epoll set each; the
 * clients speak WebSocket themselves, or libwebsockets' client), gateway URLs and local source
 * addresses, recording what each receives: bench events (top-level "bench_seq" and "bench_t", the
 * publisher's wall clock in microseconds) are checked for loss, duplicates and order (by id) and
 * their publish-to-receipt latency is recorded.
 */
#ifndef ADW_FLEET_H
#define ADW_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

typedef struct fleet_options_t {
    const char *urls;       /* comma-separated ws://host:port/path gateway URLs */
    size_t clients;         /* connections to hold */
    const char *query;      /* query string every client adds ("since=0&types=adw_event") */
    const char *half_query; /* for `filtered` clients instead of query (NULL: none) */
    size_t filtered;        /* clients that use half_query, spread evenly (0: every second) */
    const char *sources;    /* comma-separated local addresses to bind, or a range
                               "127.0.0.2-127.0.0.9"; NULL: the kernel chooses */
    int threads;            /* client threads */
    int lws;                /* libwebsockets' client instead of the built-in one */
    int64_t max_seq;        /* bench_seq values are below this (sizes the loss bitsets); 0: no
                               per-client loss tracking */
    int resume;             /* a connection that ends is opened again, with since = the last
                               event id the client received (built-in client only) */
} fleet_options_t;

/* What the fleet saw. Plain data. */
typedef struct fleet_stats_t {
    size_t connected;      /* clients connected now */
    size_t ever_connected; /* clients that completed a handshake at least once */
    size_t failed;         /* connection attempts that failed */
    size_t closed;         /* connections the server closed */
    int last_close_code;
    uint64_t messages;          /* every text message received */
    uint64_t deliveries;        /* bench events received */
    uint64_t duplicates;        /* bench events a client had already received */
    uint64_t out_of_order;      /* events whose id was not above the client's previous one */
    uint64_t pings;             /* JSON pings answered */
    uint64_t replayed;          /* "replayed" messages received */
    int64_t replayed_events;    /* the count the last one announced */
    int64_t first_connect_us;   /* wall clock of the first handshake */
    int64_t last_replayed_us;   /* wall clock of the last "replayed" message */
    size_t reconnects;          /* connections opened again after one ended (resume) */
    int64_t first_reconnect_us; /* wall clock of the first of them */
    hist_t latency;             /* publish (bench_t) to receipt */
    hist_t arrival;             /* publish to the kernel's receipt (SO_TIMESTAMP): the rest of
                                   latency is the client's own delay in reading */
} fleet_stats_t;

typedef struct fleet_t fleet_t;

#define FLEET_RETRY_MS 250 /* with resume: the pause after a failed attempt */

/* Writes to out (size n) the query a resuming client sends: query without its since parameter,
 * then since=<since>. Returns the length, or -ENOSPC (out then holds an empty string) when it
 * does not fit. Pure; query is borrowed (NULL: empty). */
int fleet_resume_query(char *out, size_t n, const char *query, int64_t since);

/* Starts the client threads, which connect (gradually) and keep the connections up (without
 * reconnecting, unless o->resume). Returns NULL with a reason in err. */
fleet_t *fleet_new(const fleet_options_t *o, char *err, size_t errlen);

/* Stops the threads, closes every connection and frees the fleet; accepts NULL, sets *f NULL. */
void fleet_destroy(fleet_t **f);

/* Fills *st with a consistent snapshot (counters and the latency histogram so far). */
void fleet_stats(fleet_t *f, fleet_stats_t *st);

/* Forgets latency observations so far (after a warm-up). */
void fleet_reset_latency(fleet_t *f);

/* Counts, over the clients that use `query` (half == 0) or `half_query` (half == 1), the bench
 * events each is missing among those whose bit is set in want (a bitset over bench_seq; NULL:
 * every seq below n). Returns the total missing over those clients. */
uint64_t fleet_lost(fleet_t *f, int half, const uint8_t *want, int64_t n);

/* For each bench event with from <= bench_seq < to that some client received (needs max_seq):
 * adds to *first the publish-to-receipt latency of the first client to get it, and to *last
 * that of the last one (the spread between them is the fan-out's sweep plus the clients' own
 * delay). */
void fleet_spread(fleet_t *f, int64_t from, int64_t to, hist_t *first, hist_t *last);

#endif
