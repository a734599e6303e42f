/* zmq_in: ingest's ZeroMQ ROUTER socket for submissions from DEALER and REQ clients.
 *
 * A request is one frame (after the envelope): a msgpack map (one event) or an array of maps
 * (1..1000 events). The reply, sent after commit and in request order, is a msgpack map
 * {"ok":true,"ids":[...]} or {"ok":false,"error":"...","index":i}. Frames over the body limit
 * are refused by the socket itself (ZMQ_MAXMSGSIZE: the peer is disconnected). With an zap_t,
 * the socket is a CURVE server admitting the keys of the "submit" domain.
 *
 * Loop thread only. The socket's ZMQ_FD is edge-triggered, so the loop hook re-checks
 * ZMQ_EVENTS every turn and drains until EAGAIN.
 */
#ifndef ADW_ZMQ_IN_H
#define ADW_ZMQ_IN_H

#include <stddef.h>
#include <stdint.h>

#include "zap.h"
#include "loop.h"
#include "pipeline.h"

typedef struct zmq_in_t zmq_in_t;

typedef struct zmq_in_options_t {
    void *zctx;
    const char *endpoint; /* where to bind, e.g. tcp://0.0.0.0:5555 */
    int64_t max_msg;      /* ZMQ_MAXMSGSIZE: the largest request body */
    const zap_t *auth;    /* CURVE; NULL: none */
    loop_t *loop;
    pipeline_t *pipeline;
} zmq_in_options_t;

/* Binds the ROUTER socket and joins the loop. Returns NULL with a reason in err. */
zmq_in_t *zmq_in_new(const zmq_in_options_t *o, char *err, size_t errlen);

/* Leaves the loop and closes the socket; replies still pending are dropped.
 * Accepts NULL and sets *z to NULL. */
void zmq_in_destroy(zmq_in_t **z);

/* Stops reading new requests (replies still go out). */
void zmq_in_pause(zmq_in_t *z);

#endif
