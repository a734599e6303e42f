/* fleet_lws: the fleet's clients on libwebsockets' client (fleet_lws.c). */
#ifndef ADW_FLEET_LWS_H
#define ADW_FLEET_LWS_H

#include "fleet_client.h"

/* Prepares thread th for libwebsockets' client (its context). Returns 0 or -1. */
int fleet_lws_init(fleet_thread_t *th);

/* The thread body: connects th's clients and serves them until the fleet stops. */
void *fleet_lws_run(void *th);

/* Wakes th's service loop so that it sees the fleet stopping; from any thread. */
void fleet_lws_wake(fleet_thread_t *th);

/* Destroys th's context (closing its connections); for a stopped or never started thread. */
void fleet_lws_fini(fleet_thread_t *th);

#endif
