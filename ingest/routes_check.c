/* routes_check: the checks of a request's head that more than one route makes
 * (routes_check.h).
 */
#include "routes_check.h"

#include <strings.h>

#include "auth.h"

int routes_token_ok(const routes_t *r, const http1_request_t *req)
{
    const char *tok = r->o.token;
    if (!tok || !*tok)
        return 1;
    const http1_str_t *h = http1_header_get(&req->headers, "Authorization");
    const char *given;
    size_t glen;
    if (!h || auth_bearer(h->p, h->len, &given, &glen))
        return 0;
    return auth_token_equal(given, glen, tok);
}

int routes_content_type_ok(session_t *ss, const http1_request_t *req)
{
    const http1_str_t *ct = http1_header_get(&req->headers, "Content-Type");
    ss->ndjson = 0;
    if (!ct || ct->len == 0)
        return 1; /* taken as JSON */
    size_t n = 0;
    while (n < ct->len && ct->p[n] != ';' && ct->p[n] != ' ')
        n++;
    http1_str_t mt = {ct->p, n};
    if (http1_str_eq_nocase(mt, "application/json") || http1_str_eq_nocase(mt, "text/json"))
        return 1;
    if (n > 5 && !strncasecmp(mt.p + n - 5, "+json", 5))
        return 1;
    if (ss->route == ROUTE_EVENTS && (http1_str_eq_nocase(mt, "application/x-ndjson") ||
                                      http1_str_eq_nocase(mt, "application/ndjson") ||
                                      http1_str_eq_nocase(mt, "application/jsonl") ||
                                      http1_str_eq_nocase(mt, "application/x-jsonlines"))) {
        ss->ndjson = 1;
        return 1;
    }
    return 0;
}
