/* routes: the gateway's plain HTTP side (ws.h's contract): /healthz, /readyz, /metrics, the
 * REST API under /api (api.h, run on the database workers), POST /api/approvals/{id}
 * (approve.h), the dashboard's static files
 * (webdir.h) and 426 on /ws/events without an upgrade; each response is prepared and written
 * from the HTTP writeable callback by respond.h, a download by export.h.
 *
 * Threads: the loop thread only.
 */
#ifndef ADW_GATEWAY_ROUTES_H
#define ADW_GATEWAY_ROUTES_H

#include "wsstate.h"

/* LWS_CALLBACK_HTTP: answers the request for path (borrowed) on wsi, with ss its session:
 * prepares the response and asks for a writeable callback, submits an API query (its reply
 * comes back on the loop), or hands a file to lws. Returns 0, or -1 to close the connection. */
int routes_serve(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const char *path);

/* LWS_CALLBACK_HTTP_WRITEABLE: writes the next piece of ss's response. Returns 0, or -1 to
 * close the connection. */
int routes_writeable(ws_server_t *s, struct lws *wsi, ws_session_t *ss);

/* LWS_CALLBACK_CLOSED_HTTP and LWS_CALLBACK_HTTP_DROP_PROTOCOL: cancels ss's API query, if any,
 * and frees its response. Accepts NULL. */
void routes_closed(ws_session_t *ss);

#endif
