/* fleet_types: the fleet's options and statistics (plain data), shared by its public API
 * (fleet.h) and its clients' internals (fleet_client.h). */
#ifndef ADW_FLEET_TYPES_H
#define ADW_FLEET_TYPES_H

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

#endif
