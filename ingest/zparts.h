/* zparts: reading one whole ZeroMQ multipart message, without blocking, into a bounded array of
 * frames (zmq_in's ROUTER, zap's ZAP handler). Loop thread only, like the sockets it reads.
 */
#ifndef ADW_INGEST_ZPARTS_H
#define ADW_INGEST_ZPARTS_H

#include <stddef.h>
#include <zmq.h>

/* Reads the next message waiting on sock (borrowed) to its last frame, keeping the first cap
 * frames in parts[0..*nparts) (owned by the caller: zparts_close them whatever the answer) and
 * closing the others. Returns 0 for a whole message kept; -EAGAIN when ZMQ_EVENTS says none is
 * waiting (*nparts 0); -EMSGSIZE when it had more than cap frames; -EIO when a receive failed
 * before its last frame (what came before it is kept). */
int zparts_recv(void *sock, zmq_msg_t *parts, size_t cap, size_t *nparts);

/* Closes parts[0..n). */
void zparts_close(zmq_msg_t *parts, size_t n);

#endif
