/* fleet_epoll: the fleet's own WebSocket client, over epoll (fleet_epoll.c). */
#ifndef ADW_FLEET_EPOLL_H
#define ADW_FLEET_EPOLL_H

#include "fleet_client.h"

/* Prepares thread th for the own client (epoll set, read buffer). Returns 0 or -1. */
int fleet_epoll_init(fleet_thread_t *th);

/* The thread body: connects th's clients and serves them until the fleet stops. */
void *fleet_epoll_run(void *th);

/* Closes th's sockets and epoll set and frees what fleet_epoll_init and the connections took;
 * for a thread that has stopped or never started (fields never set are ignored). */
void fleet_epoll_fini(fleet_thread_t *th);

#endif
