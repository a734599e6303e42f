/* respond: a prepared plain HTTP response and its writing (respond.h). */
#include "respond.h"

#include <stdlib.h>
#include <string.h>

void respond_prepare(struct lws *wsi, ws_session_t *ss, int status, const char *ctype, char *body,
                     size_t len)
{
    free(ss->body);
    ss->responding = 1;
    ss->headers_sent = 0;
    ss->status = status;
    ss->ctype = ctype;
    ss->body = body;
    ss->len = body ? len : 0;
    ss->off = 0;
    lws_callback_on_writable(wsi);
}

void respond_error(struct lws *wsi, ws_session_t *ss, int status, const char *msg)
{
    size_t len = 0;
    char *body = api_error_body(msg, &len);
    respond_prepare(wsi, ss, body ? status : 500, "application/json", body, len);
}

int respond_write(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    if (!ss->responding)
        return 0;
    if (!ss->headers_sent) {
        unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                           *end = buf + sizeof buf - 1;
        if (lws_add_http_common_headers(wsi, (unsigned)ss->status, ss->ctype, ss->len, &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end) ||
            (ss->extra_header &&
             lws_add_http_header_by_name(wsi, (const unsigned char *)ss->extra_header,
                                         (const unsigned char *)ss->extra_value,
                                         (int)strlen(ss->extra_value), &p, end)) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        ss->headers_sent = 1;
        if (ss->len && !ss->head) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        size_t n = ss->len - ss->off;
        if (n > RESPOND_CHUNK)
            n = RESPOND_CHUNK;
        memcpy(s->wbuf + LWS_PRE, ss->body + ss->off, n);
        int final = ss->off + n == ss->len;
        if (lws_write(wsi, s->wbuf + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
            (int)n)
            return -1;
        ss->off += n;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    ss->responding = 0;
    free(ss->body);
    ss->body = NULL;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}
