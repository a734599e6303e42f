/* ws: the gateway's network side on libwebsockets: one event loop thread, one protocol callback
 * serving the WebSocket endpoint /ws/events, the REST API (api.h), /healthz, /readyz,
 * /metrics and the dashboard's static files.
 *
 * Threads: everything here runs on the thread that calls ws_service, except ws_wake, which any
 * thread may call (the subscriber and the database workers do, after adding work for the loop).
 *
 * WebSocket behaviour (the contract's "adw-gateway" section): a hello first; the filter from
 * the query string or a subscribe message; replay with since; {"type":"ping"} and a protocol
 * ping every heartbeat_s; a client silent for 3 x heartbeat_s is closed with 4000; a client
 * whose backlog passes max_queue is closed with 4008 (fanout.h); a client message over 64 KiB
 * is closed with 1009, an unmasked one with 1002 (rxguard.h); bad messages get
 * {"type":"error"} and the connection stays, up to 30 at once and one a second after that (then
 * 1008); on shutdown
 * every client is closed with 1001. Upgrades are refused before they complete: 404 off
 * /ws/events, 401 without the token, 403 from an origin not allowed or for an adw_id outside a
 * read token's scope, 400 for bad parameters, 503 when full, not ready or shutting down.
 *
 * A read token (tokens.h) confines its client to its scope: live events, replays and the REST
 * API see only the runs whose adw_id starts with one of its prefixes, whatever filter the
 * client asks for; naming an adw_id outside it is refused.
 *
 * With tls_cert and tls_key set, the one port speaks only TLS (https and wss).
 */
#ifndef ADW_GATEWAY_WS_H
#define ADW_GATEWAY_WS_H

#include <stddef.h>
#include <stdint.h>

#include "dbpool.h"
#include "sub.h"
#include "wsopts.h"
#include "wsproto.h"

typedef struct ws_server_t ws_server_t;

/* Binds the listener and creates the loop. Returns NULL with a one-line reason in err (the
 * address in use, a bad address, no resources). Nothing is served until ws_attach. */
ws_server_t *ws_new(const ws_options_t *o, char *err, size_t errlen);

/* Connects the event source and the database workers (both borrowed; they must outlive the
 * server's service calls and call ws_wake with the server as argument). Returns 0 or -ENOMEM. */
int ws_attach(ws_server_t *s, sub_t *sub, dbpool_t *pool);

/* Runs the loop once: waits for network activity, timers or a wake-up and handles it. */
void ws_service(ws_server_t *s);

/* Wakes the loop from any thread (and from a signal handler). arg is the ws_server_t. */
void ws_wake(void *arg);

/* Starts shutting down: new requests are refused and every client is closed with 1001. */
void ws_shutdown(ws_server_t *s);

/* WebSocket clients still connected. */
size_t ws_clients(const ws_server_t *s);

/* Closes every connection and frees the server. Accepts NULL; nulls *s. */
void ws_destroy(ws_server_t **s);

#endif
