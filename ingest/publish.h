/* publish: ingest's ZeroMQ PUB socket. Each stored event goes out as two frames (the adw_id as
 * topic, then the event as a msgpack map with id and received_at), only after its commit and
 * in id order; `$hb` heartbeats carry {"last_id":N,"epoch":E}.
 *
 * Loop thread only.
 */
#ifndef ADW_PUBLISH_H
#define ADW_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "zap.h"
#include "metrics.h"

/* The largest message a subscriber may send (a subscription, a CURVE handshake command):
 * topics are adw_ids of at most 64 bytes. A larger one disconnects the subscriber. */
#define PUBLISH_MAX_INBOUND 4096

typedef struct publish_t publish_t;

typedef struct publish_options_t {
    void *zctx;           /* the ZeroMQ context */
    const char *endpoint; /* where to bind, e.g. tcp://0.0.0.0:5556 */
    int64_t sndhwm;       /* messages queued per subscriber before it misses some */
    metrics_t *metrics;   /* may be NULL */
    const zap_t *auth;    /* CURVE; NULL: none */
} publish_options_t;

/* Binds the PUB socket. Returns NULL with a reason in err. */
publish_t *publish_new(const publish_options_t *o, char *err, size_t errlen);

/* Closes the socket; accepts NULL and sets *p to NULL. */
void publish_destroy(publish_t **p);

/* Sends one committed event. id must be the next after the last one published (unless the
 * publisher was just reset by publish_set_last). Returns 0 or -errno. */
int publish_event(publish_t *p, const char *adw_id, int64_t id, const void *frame, size_t len);

/* Sends a `$hb` heartbeat with the last published id and the epoch. */
int publish_heartbeat(publish_t *p, int64_t epoch);

/* Sets the last published id (at start-up, from the database). */
void publish_set_last(publish_t *p, int64_t last_id);

int64_t publish_last_id(const publish_t *p);

#endif
