/* fleet_client: what the fleet's common part (fleet.c) shares with its two kinds of client,
 * adw-bench's own over epoll (fleet_epoll.c) and libwebsockets' (fleet_lws.c): the fleet's
 * state and what each client does with a message (fleet_client.c). Not a public API: load.c and
 * main.c use fleet.h.
 *
 * A fleet is threads; each thread holds its share of the clients and one lock that guards its
 * statistics and its clients' records (stats, seen, first, last), which fleet_stats and the other
 * readers take from the outside.
 */
#ifndef ADW_FLEET_CLIENT_H
#define ADW_FLEET_CLIENT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet_types.h"
#include "wsclient.h"

#define FLEET_CONNECTS_IN_FLIGHT 256 /* handshakes under way per thread */
#define FLEET_MSG_MAX (1 << 20)      /* bytes of a message, more than any the gateway sends */

typedef struct fleet_thread fleet_thread_t;

enum { FC_IDLE, FC_CONNECTING, FC_HANDSHAKE, FC_OPEN, FC_DONE };

/* One of these per client connection. */
typedef struct fclient {
    fleet_thread_t *th;
    struct lws *wsi; /* with libwebsockets' client */
    int pong_due;    /* the same: a pong to write when writable */
    int fd;          /* with the own client: its socket, or -1 */
    int state;       /* FC_* */
    int half;        /* uses half_query */
    int url;         /* index into the URL list */
    int connected;
    int ever;
    int64_t last_id;       /* the last event id received (resume's since) */
    int64_t retry_at_us;   /* with resume: not before this (monotonic) */
    struct fclient *again; /* with resume: the next in its thread's reconnect line */
    uint8_t *seen;         /* bitset over bench_seq, or NULL */
    char *frag;            /* a message arriving in fragments */
    size_t frag_len;
    unsigned char *rest; /* bytes read but not yet a whole frame (or handshake) */
    size_t rest_len;
    unsigned char *out; /* bytes to send that the socket did not take yet */
    size_t out_len;
    char key[WSCLIENT_KEY_SIZE]; /* the Sec-WebSocket-Key sent, to check the answer against */
} fclient_t;

/* One of these per gateway URL. */
typedef struct url {
    char host[128];
    int port;
    char path[512];
    struct sockaddr_in addr;
} url_t;

/* One of these per client thread. */
struct fleet_thread {
    fleet_t *f;
    pthread_t tid;
    int ep;                  /* epoll, with the own client; else -1 */
    struct lws_context *ctx; /* instead, with libwebsockets' client */
    fclient_t *clients;
    size_t nclients;
    size_t next_connect;                /* clients below this have been started */
    fclient_t *again_head, *again_tail; /* with resume: clients to connect again, in order */
    int in_flight;
    uint64_t rng;
    unsigned char *rbuf; /* the own client's read buffer */
    int64_t now_us;      /* wall clock of the last recv: the receipt time of what it brought */
    int64_t arrived_us;  /* when the kernel received the last of it (SO_TIMESTAMP), or 0 */
    pthread_mutex_t mu;  /* guards stats, first and last */
    fleet_stats_t st;
    int32_t *first, *last; /* per bench_seq: the least and greatest latency (us) seen here */
};

struct fleet_t {
    fleet_options_t o;
    url_t urls[32];
    int nurls;
    char sources[64][64];
    int nsources;
    fleet_thread_t *threads;
    int nthreads;
    _Atomic int stop;
};

/* fleet_client.c: what both kinds of client use. */

/* The JSON pong a client answers the gateway's JSON ping with, and its length. */
#define FLEET_PONG "{\"action\":\"pong\"}"
#define FLEET_PONG_LEN (sizeof FLEET_PONG - 1)

/* Records one whole text message m[0..n) that client c received at th->now_us: counts, latency,
 * loss bitset, order, replay and ping counters. Returns 1 when it is a JSON ping the client must
 * answer with FLEET_PONG, else 0. The thread's lock is held; m is borrowed. */
int fleet_client_message(fclient_t *c, const char *m, size_t n);

/* Appends a piece of c's current message (final: its last); whole messages go to
 * fleet_client_message, whose answer is returned (a piece that is not the last: 0). Pieces
 * beyond FLEET_MSG_MAX are dropped. The thread's lock is held; in is borrowed. */
int fleet_client_piece(fclient_t *c, const char *in, size_t len, int final);

/* The query string c adds to its URL (options' query or half_query); borrowed from the options. */
const char *fleet_client_query(const fclient_t *c);

/* The local address c binds (borrowed from the fleet), or NULL when the kernel chooses. */
const char *fleet_client_source(const fclient_t *c);

#endif
