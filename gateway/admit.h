/* admit: whether a request may have what it asks for. For a WebSocket upgrade (ws.h's
 * contract): the path, the token (tokens.h, auth.h), the Origin allow-list, the filter and
 * since from the query, the scope of a read token, readiness and the client budget, decided
 * once per upgrade and refused with a whole HTTP response before the upgrade completes. For
 * plain HTTP (routes.h): the query parameters and the token.
 *
 * Threads: the loop thread only.
 */
#ifndef ADW_GATEWAY_ADMIT_H
#define ADW_GATEWAY_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "param.h"
#include "filter.h"
#include "tokens.h"
#include "wsstate.h"

/* Decodes the request's query parameters into s->args (they stay valid until the next call).
 * Returns 0, or -E2BIG when there are too many or they are too long. */
int admit_read_args(ws_server_t *s, struct lws *wsi);

/* What the request's token grants for reading: the query parameter token (admit_read_args
 * first), else an Authorization Bearer header; a decide token (decide.h) reads its scope. On
 * TOKENS_SCOPED sets *scope (owned by the server), else NULL. */
tokens_access_t admit_token(ws_server_t *s, struct lws *wsi, const filter_list_t **scope);

/* The Origin policy (admit_origin_allowed) applied to the request's Origin and Host headers:
 * 1 when allowed (no Origin: not a browser, allowed), else 0. */
int admit_origin_ok(ws_server_t *s, struct lws *wsi);

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: decides whether the upgrade (the Upgrade header's value,
 * borrowed; NULL: none) may proceed, counting each refusal in its rejected_total metric.
 * Returns 0 to accept, the decision kept in s->admitted for admit_take; 1 after writing the
 * refusal (admit_refuse); -1 to hang up. */
int admit_upgrade(ws_server_t *s, struct lws *wsi, const char *upgrade);

/* LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: gives the new WebSocket session ss the scope of the
 * decision admit_upgrade kept for wsi; the rest of it (the query's filter and since) stays
 * in s->admitted for admit_claim (the session has no room for it: lws runs ESTABLISHED for the
 * same connection right after, with nothing of another connection between). An upgrade that
 * did not come through admit_upgrade (WebSocket over HTTP/2, which has no such callback) is
 * checked here instead and its decision kept likewise: the token, the query's filter and
 * since, the scope. Returns 0 to accept, -1 to refuse (lws then drops the connection). */
int admit_take(ws_server_t *s, struct lws *wsi, ws_session_t *ss);

/* LWS_CALLBACK_ESTABLISHED: moves the query's filter kept for wsi into *filter (its old lists
 * freed) and sets *has_since and *since, dropping the decision. Returns 0, or -ENOENT when
 * nothing is kept for wsi (*filter untouched). */
int admit_claim(ws_server_t *s, struct lws *wsi, filter_t *filter, int *has_since, int64_t *since);

/* Drops the decision kept for wsi (NULL: whatever is kept), if any: the connection is gone
 * (LWS_CALLBACK_WSI_DESTROY) or the server is. */
void admit_forget(ws_server_t *s, struct lws *wsi);

/* Writes a whole response with "connection: close" in one write, for refusals that cannot wait
 * for a writeable callback: during the upgrade (lws has not taken the request's HTTP version
 * yet, so the status line is written here) and for requests with a body we will not read.
 * msg (borrowed) becomes the JSON error body; hname/hvalue (borrowed, hname NULL: none) one
 * more header. Returns 1 (the transaction is complete) or -1 to hang up. */
int admit_refuse(struct lws *wsi, int status, const char *msg, const char *hname,
                 const char *hvalue);

/* The descriptors kept for HTTP requests and upgrades being answered when the limit leaves
 * avail (pure): a thirty-second of it, at least 16 and at most 1,024. */
unsigned admit_http_spare(unsigned avail);

/* How many descriptors libwebsockets may use: max_clients plus room for HTTP, within the
 * process's descriptor limit (the soft limit raised toward the hard one first) less a reserve
 * for ZeroMQ, PostgreSQL and the rest. libwebsockets stops accepting at this count (its
 * listener is left alone until a connection closes); without a bound below the real limit,
 * accept() fails with EMFILE and the listener, still readable, spins the loop. Lowers
 * s->o.max_clients (with a warning) so that the upgrades past it are answered 503 and closed
 * while there are descriptors to do so. */
unsigned admit_fd_budget(ws_server_t *s);

/* The Origin policy (ws_options_t.origins; pure). origins: the configured list (borrowed;
 * NULL: same origin and http or https on localhost, 127.0.0.1 or ::1, any port; "*": any);
 * origin_hdr: the request's Origin header (borrowed; NULL: none, not a browser); host_hdr: its
 * Host header (borrowed; NULL: none). Same-origin requests (the authority equals the Host
 * header) always pass. Returns 1 when allowed, else 0. */
int admit_origin_allowed(const char *origins, const char *origin_hdr, const char *host_hdr);

/* Parses the filter and since of a query (args: n decoded parameters, borrowed; pure): the
 * filter keys' comma-separated values (filter.h) and since, an event id >= 0. Unknown
 * parameters are ignored. Returns 0 with *dst's old lists replaced, *has_since and *since set;
 * or -EINVAL with the reason in err, *dst unchanged. */
int admit_query_filter(const param_t *args, size_t n, filter_t *dst, int *has_since, int64_t *since,
                       char *err, size_t errlen);

#endif
