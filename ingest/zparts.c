#include "zparts.h"

#include <errno.h>

int zparts_recv(void *sock, zmq_msg_t *parts, size_t cap, size_t *nparts)
{
    *nparts = 0;
    int events = 0;
    size_t sz = sizeof events;
    if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &sz) || !(events & ZMQ_POLLIN))
        return -EAGAIN;
    int rc = 0;
    for (int more = 1; more;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return -EIO;
        }
        more = zmq_msg_more(&m);
        if (*nparts < cap) {
            parts[(*nparts)++] = m;
        } else {
            zmq_msg_close(&m);
            rc = -EMSGSIZE;
        }
    }
    return rc;
}

void zparts_close(zmq_msg_t *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
}
