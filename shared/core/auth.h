/* auth: the one comparison of a presented secret (bearer token) with a configured one.
 *
 * Every entry point that checks a token (ingest's HTTP, the gateway's WebSocket upgrade and
 * REST API) goes through auth_token_equal, so the comparison is constant-time everywhere.
 * Tokens are never logged: callers pass them here and nowhere else.
 */
#ifndef ADW_AUTH_H
#define ADW_AUTH_H

#include <stddef.h>

/* Returns 1 when got[0..glen) (borrowed, need not be NUL-terminated) equals want (borrowed,
 * NUL-terminated), else 0. Takes time that depends only on want's length: every byte of want
 * is compared whatever the outcome, and a length mismatch is folded into the result. */
int auth_token_equal(const char *got, size_t glen, const char *want);

/* Finds the token in an Authorization header value h[0..hlen) (borrowed) of the form
 * "Bearer <token>" (scheme case-insensitive, spaces around the token ignored). Returns 0 with
 * *tok pointing into h and *tlen set, or -1 when h is not a bearer credential. */
int auth_bearer(const char *h, size_t hlen, const char **tok, size_t *tlen);

#endif
