/* session: one WebSocket client's side of the conversation (ws.h's contract): the hello, the
 * client's messages (subscribe with filters and since, ping, pong), {"type":"error"} for a
 * message it cannot take, with an allowance of SESSION_BAD_BURST at once and SESSION_BAD_PER_S a
 * second after that before 1008, and the closes decided on receipt (1009 too big, 1007 not UTF-8,
 * 1002 unmasked). Messages go out through the client's fanout queue.
 *
 * Threads: the loop thread only.
 */
#ifndef ADW_GATEWAY_SESSION_H
#define ADW_GATEWAY_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "wsstate.h"

#define SESSION_BAD_BURST 30 /* client messages answered with an error, at once, before 1008 */
#define SESSION_BAD_PER_S 1  /* ... and the rate at which that allowance comes back */

/* LWS_CALLBACK_ESTABLISHED: ss (on wsi) joins the fanout with the filter admission gave it,
 * gets its hello, and its replay starts when it asked for one with since; a client that sent
 * an unmasked frame along with the upgrade, or arrives while shutting down, is told to close. */
void session_open(ws_server_t *s, struct lws *wsi, ws_session_t *ss);

/* LWS_CALLBACK_RECEIVE: takes a piece (in, len bytes, borrowed) of a client message and handles
 * the message once whole. Returns 0, or -1 to close the connection (the close reason set). */
int session_receive(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const void *in, size_t len);

/* LWS_CALLBACK_CLOSED: ss leaves the fanout, its replay is cancelled and its buffers freed. */
void session_close(ws_server_t *s, ws_session_t *ss);

/* Queues a text message (text, len bytes, copied) for ss; closes it with 1011 when out of
 * memory. */
void session_send_text(ws_server_t *s, ws_session_t *ss, const char *text, size_t len);

/* The rxguard violation callback (rxguard.h), user being the session: closes it with 1002 and
 * counts it in adw_gateway_drops_total{reason="unmasked_frame"}. */
void session_unmasked(void *user);

/* Charges one bad message at now_us (monotonic) against allowance a (pure): SESSION_BAD_BURST at
 * once, coming back at SESSION_BAD_PER_S a second. Returns 1 when the client is past it (each
 * time it is), else 0. */
int session_allowance_charge(session_allowance_t *a, int64_t now_us);

#endif
