/* sub: the subscription to ingest, on a thread of its own.
 *
 * The thread receives from a ZeroMQ SUB socket connected to every endpoint given (all topics:
 * events under their adw_id, heartbeats under "$hb"), decodes each event once into a shared
 * frame, and hands frames to the event loop strictly in id order through a bounded inbox. When
 * an id is missing (a hole in the ids, a heartbeat ahead of it, or a start after events were
 * published), it reads the missing events from PostgreSQL and hands them over first, so the
 * loop sees every id once, in order. Only this thread touches the SUB socket and its
 * connection.
 *
 * The inbox holds at most SUB_INBOX_MAX_BYTES of frames; when it is full the thread waits, the
 * SUB socket's own queue fills, ZeroMQ drops what passes its high-water mark, and the next
 * event or heartbeat reveals the hole, which is filled from PostgreSQL: nothing is lost, only
 * delayed.
 *
 * With a dbroute (read replicas), the thread tells it each id it hands over and the epoch
 * (dbroute_seen), and reads a hole from a standby that reaches its end, else from the primary.
 */
#ifndef ADW_GATEWAY_SUB_H
#define ADW_GATEWAY_SUB_H

#include <stddef.h>
#include <stdint.h>

#include "dbroute.h"
#include "frame.h"
#include "metrics.h"

#define SUB_INBOX_MAX_BYTES (32u << 20)
#define SUB_FILL_PAGE 500 /* events per query while filling a hole */

typedef struct sub_t sub_t;

typedef struct sub_options_t {
    void *zctx;               /* ZeroMQ context (borrowed) */
    const char *endpoints;    /* comma-separated endpoints to connect to (copied) */
    int rcvhwm;               /* SUB receive high-water mark, in messages */
    int64_t silence_ms;       /* nothing received for this long while listening: the socket is
                                 made anew (0: 3000) */
    const char *curve_server; /* CURVE: ingest's public certificate file; NULL or "": none */
    const char *curve_cert;   /* CURVE: our certificate (secret half in PATH_secret) */
    const char *conninfo;     /* PostgreSQL (copied) */
    void (*wake)(void *arg);  /* called from the thread after it adds to the inbox */
    void *wake_arg;
    metrics_t *metrics; /* borrowed; NULL for none */
    dbroute_t *route;   /* borrowed; NULL: holes are read from conninfo only */
} sub_options_t;

typedef enum sub_item_kind {
    SUB_ITEM_EVENT,    /* .frame: the next event in id order */
    SUB_ITEM_POSITION, /* .last_id, .epoch: the position is known or the epoch learnt */
    SUB_ITEM_RESET,    /* .epoch: the database changed; ids start over after .last_id (0) */
} sub_item_kind_t;

typedef struct sub_item_t {
    sub_item_kind_t kind;
    frame_t *frame; /* SUB_ITEM_EVENT: one reference, owned by the item */
    int64_t last_id;
    int64_t epoch;
    struct sub_item_t *next;
} sub_item_t;

/* Connects the SUB socket and starts the thread. Returns NULL with the reason in err for a bad
 * endpoint, one CURVE certificate without the other or one that cannot be read (or lacks its
 * secret key), or when out of resources. */
sub_t *sub_new(const sub_options_t *o, char *err, size_t errlen);

/* Stops and joins the thread, frees what the inbox still holds. Accepts NULL; nulls *s. */
void sub_destroy(sub_t **s);

/* Takes everything in the inbox, oldest first, as a list the caller owns (free each item with
 * sub_item_free). Returns NULL when empty. Any thread. */
sub_item_t *sub_take(sub_t *s);

/* Frees an item and the frame reference it still holds. Accepts NULL. */
void sub_item_free(sub_item_t *it);

/* 1 when a message (event or heartbeat) arrived in the last few seconds. Any thread. */
int sub_receiving(const sub_t *s);

/* 1 when the thread's last use of PostgreSQL succeeded. Any thread. */
int sub_db_ok(const sub_t *s);

#endif
