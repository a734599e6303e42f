/* respond: a plain HTTP response of the gateway, prepared on a session (wsstate.h) and
 * written from the HTTP writeable callback: headers first (with cache-control: no-store and
 * ss->extra_header when set), then the body in chunks of at most RESPOND_CHUNK bytes, one write
 * per callback. Used by routes.c and approve.c.
 *
 * Threads: the loop thread only.
 */
#ifndef ADW_GATEWAY_RESPOND_H
#define ADW_GATEWAY_RESPOND_H

#include <stddef.h>

#include "wsstate.h"

#define RESPOND_CHUNK 32768 /* bytes of a response body per write */

/* Prepares a response for the HTTP writeable callback: status, ctype (static), body (taken:
 * malloc'd, or NULL) of len bytes, plus ss->extra_header when set; frees a response ss still
 * held and asks lws for a writeable callback on wsi. */
void respond_prepare(struct lws *wsi, ws_session_t *ss, int status, const char *ctype, char *body,
                     size_t len);

/* The same with the body {"error":msg} (msg borrowed); 500 with no body when out of memory. */
void respond_error(struct lws *wsi, ws_session_t *ss, int status, const char *msg);

/* LWS_CALLBACK_HTTP_WRITEABLE for a prepared response: writes its next piece through s->wbuf
 * (borrowed); once the body is written, frees it and completes the transaction. Does nothing
 * when ss has no response prepared. Returns 0, or -1 to close the connection. */
int respond_write(ws_server_t *s, struct lws *wsi, ws_session_t *ss);

#endif
