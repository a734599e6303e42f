#include "http1.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http1_internal.h"

/* ---- characters ---- */

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static int eq_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

int http1_str_eq(http1_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

int http1_str_eq_nocase(http1_str_t s, const char *lit)
{
    return eq_nocase(s.p, s.len, lit, strlen(lit));
}

/* ---- heads ---- */

/* Scans data for the end of a head, from *scanned on, refusing bare CR, bare LF and control
 * characters. Returns 1 with *head_len, 0 when more bytes are needed (*scanned remembers how far
 * it got), or -EBADMSG. */
static int scan_head(const char *data, size_t len, size_t head_max, size_t *scanned,
                     size_t *head_len, http1_error_t *err)
{
    size_t lim = len < head_max ? len : head_max;
    size_t i = *scanned <= len ? *scanned : 0;

    for (; i < lim; i++) {
        unsigned char c = (unsigned char)data[i];
        if (i > 0 && data[i - 1] == '\r' && c != '\n')
            return http1__set_error(err, 400, "CR not followed by LF in head");
        if (c == '\n') {
            if (i == 0 || data[i - 1] != '\r')
                return http1__set_error(err, 400, "bare LF in head");
            if (i >= 3 && data[i - 2] == '\n' && data[i - 3] == '\r') {
                *head_len = i + 1;
                return 1;
            }
        } else if (c != '\r' && c != '\t' && (c < 0x20 || c == 0x7f)) {
            return http1__set_error(err, 400, "control character in head");
        }
    }
    *scanned = i;
    if (len >= head_max)
        return http1__set_error(err, 431, "head too large");
    return 0;
}

/* Returns the index of the CR that ends the line starting at pos (the scan guarantees one). */
static size_t line_end(const char *data, size_t pos, size_t end)
{
    const char *cr = memchr(data + pos, '\r', end - pos);
    return (size_t)(cr - data);
}

/* Parses "HTTP/x.y" at data[0..len): returns the minor version for 1.0 and 1.1, -1 for a
 * malformed version (400), -2 for a well-formed other version (505). */
static int parse_version(const char *p, size_t len)
{
    if (len != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.')
        return -1;
    if (p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return -1;
    if (p[5] == '1' && (p[7] == '0' || p[7] == '1'))
        return p[7] - '0';
    return -2;
}

/* Parses the header lines of data[pos..head_len) into h. */
static int parse_header_lines(const char *data, size_t pos, size_t head_len, http1_headers_t *h,
                              http1_error_t *err)
{
    size_t end = head_len - 2; /* the final empty line */

    h->count = 0;
    while (pos < end) {
        size_t le = line_end(data, pos, end);
        size_t k = pos;

        if (http1__is_ows((unsigned char)data[pos]))
            return http1__set_error(err, 400, "obsolete line folding in header");
        while (k < le && http1__is_tchar((unsigned char)data[k]))
            k++;
        if (k == le)
            return http1__set_error(err, 400, "header line without colon");
        if (data[k] != ':') {
            if (http1__is_ows((unsigned char)data[k]))
                return http1__set_error(err, 400, "whitespace between header name and colon");
            return http1__set_error(err, 400, "invalid character in header name");
        }
        if (k == pos)
            return http1__set_error(err, 400, "empty header name");
        if (h->count == HTTP1_HEADERS_MAX)
            return http1__set_error(err, 431, "too many headers");

        size_t vs = k + 1, ve = le;
        while (vs < ve && http1__is_ows((unsigned char)data[vs]))
            vs++;
        while (ve > vs && http1__is_ows((unsigned char)data[ve - 1]))
            ve--;
        http1_header_t *hd = &h->items[h->count++];
        hd->name = (http1_str_t){data + pos, k - pos};
        hd->value = (http1_str_t){data + vs, ve - vs};
        pos = le + 2;
    }
    return 0;
}

/* Content-Length: 1*DIGIT fitting in int64. Returns the value or -1. */
static int64_t parse_content_length(http1_str_t v)
{
    int64_t n = 0;
    if (v.len == 0)
        return -1;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < '0' || c > '9')
            return -1;
        if (n > (INT64_MAX - (c - '0')) / 10)
            return -1;
        n = n * 10 + (c - '0');
    }
    return n;
}

/* Scans a Connection value (a comma list of tokens) for close and keep-alive. */
static void scan_connection(http1_str_t v, int *close, int *keep)
{
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (http1__is_ows((unsigned char)v.p[i]) || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.len && v.p[i] != ',' && !http1__is_ows((unsigned char)v.p[i]))
            i++;
        if (eq_nocase(v.p + s, i - s, "close", 5))
            *close = 1;
        else if (eq_nocase(v.p + s, i - s, "keep-alive", 10))
            *keep = 1;
    }
}

/* What the headers say about framing and the connection. */
typedef struct framing_t {
    int64_t content_length;
    int chunked;
    int keep_alive;
    int expect_continue;
    int host_count;
} framing_t;

static int derive_framing(const http1_headers_t *h, int version_minor, framing_t *f,
                          http1_error_t *err)
{
    int cl_seen = 0, te_count = 0, close = 0, keep = 0;
    const http1_str_t *te = NULL;

    f->content_length = -1;
    f->chunked = 0;
    f->expect_continue = 0;
    f->host_count = 0;
    for (size_t i = 0; i < h->count; i++) {
        const http1_header_t *hd = &h->items[i];
        if (http1_str_eq_nocase(hd->name, "content-length")) {
            if (cl_seen)
                return http1__set_error(err, 400, "more than one Content-Length");
            cl_seen = 1;
            f->content_length = parse_content_length(hd->value);
            if (f->content_length < 0)
                return http1__set_error(err, 400, "invalid Content-Length");
        } else if (http1_str_eq_nocase(hd->name, "transfer-encoding")) {
            te_count++;
            te = &hd->value;
        } else if (http1_str_eq_nocase(hd->name, "connection")) {
            scan_connection(hd->value, &close, &keep);
        } else if (http1_str_eq_nocase(hd->name, "host")) {
            f->host_count++;
        } else if (http1_str_eq_nocase(hd->name, "expect")) {
            if (version_minor == 1 && http1_str_eq_nocase(hd->value, "100-continue"))
                f->expect_continue = 1;
        }
    }
    if (te_count) {
        if (cl_seen)
            return http1__set_error(err, 400, "both Content-Length and Transfer-Encoding");
        if (version_minor == 0)
            return http1__set_error(err, 400, "Transfer-Encoding in HTTP/1.0");
        if (te_count > 1 || !http1_str_eq_nocase(*te, "chunked"))
            return http1__set_error(err, 501, "Transfer-Encoding other than chunked");
        f->chunked = 1;
    }
    f->keep_alive = version_minor == 1 ? !close : (keep && !close);
    return 0;
}

/* Request-target: origin-form, or "*" for OPTIONS; printable ASCII without '#', every '%'
 * followed by two hex digits. */
static int check_target(http1_str_t method, http1_str_t t, http1_error_t *err)
{
    if (http1_str_eq(t, "*")) {
        if (!http1_str_eq(method, "OPTIONS"))
            return http1__set_error(err, 400, "asterisk target with a method other than OPTIONS");
        return 0;
    }
    if (t.p[0] != '/')
        return http1__set_error(err, 400, "request target not in origin-form");
    for (size_t i = 0; i < t.len; i++) {
        unsigned char c = (unsigned char)t.p[i];
        if (!http1__is_target_char(c))
            return http1__set_error(err, 400, "invalid character in request target");
        if (c == '%') {
            if (i + 2 >= t.len || http1__hex_value((unsigned char)t.p[i + 1]) < 0 ||
                http1__hex_value((unsigned char)t.p[i + 2]) < 0)
                return http1__set_error(err, 400, "invalid percent-escape in request target");
        }
    }
    return 0;
}

void http1_request_init(http1_request_t *req)
{
    memset(req, 0, sizeof *req);
    req->content_length = -1;
}

int http1_parse_request(http1_request_t *req, const char *data, size_t len, size_t head_max,
                        http1_error_t *err)
{
    size_t head_len = 0;
    int rc = scan_head(data, len, head_max ? head_max : HTTP1_HEAD_MAX_DEFAULT, &req->scanned,
                       &head_len, err);
    if (rc == 0)
        return -EAGAIN;
    req->scanned = 0;
    if (rc < 0)
        return rc;

    /* request-line = method SP request-target SP HTTP-version CRLF */
    size_t e = line_end(data, 0, head_len);
    size_t i = 0, j;
    if (e == 0)
        return http1__set_error(err, 400, "empty request line");
    while (i < e && http1__is_tchar((unsigned char)data[i]))
        i++;
    if (i == 0 || i == e || data[i] != ' ')
        return http1__set_error(err, 400, "invalid method");
    j = i + 1;
    while (j < e && data[j] != ' ')
        j++;
    if (j == i + 1)
        return http1__set_error(err, 400, "empty request target");
    if (j == e)
        return http1__set_error(err, 400, "request line without version");
    int minor = parse_version(data + j + 1, e - j - 1);
    if (minor == -1)
        return http1__set_error(err, 400, "malformed HTTP version");
    if (minor == -2)
        return http1__set_error(err, 505, "HTTP version not supported");

    req->head_len = head_len;
    req->method = (http1_str_t){data, i};
    req->target = (http1_str_t){data + i + 1, j - i - 1};
    req->version_minor = minor;
    rc = check_target(req->method, req->target, err);
    if (rc)
        return rc;
    const char *q = memchr(req->target.p, '?', req->target.len);
    if (q) {
        req->path = (http1_str_t){req->target.p, (size_t)(q - req->target.p)};
        req->query = (http1_str_t){q + 1, req->target.len - req->path.len - 1};
    } else {
        req->path = req->target;
        req->query = (http1_str_t){NULL, 0};
    }

    rc = parse_header_lines(data, e + 2, head_len, &req->headers, err);
    if (rc)
        return rc;
    framing_t f;
    rc = derive_framing(&req->headers, minor, &f, err);
    if (rc)
        return rc;
    if (f.host_count > 1)
        return http1__set_error(err, 400, "more than one Host");
    if (minor == 1 && f.host_count == 0)
        return http1__set_error(err, 400, "missing Host");
    req->content_length = f.content_length;
    req->chunked = f.chunked;
    req->keep_alive = f.keep_alive;
    req->expect_continue = f.expect_continue;
    return 0;
}

void http1_response_init(http1_response_t *res)
{
    memset(res, 0, sizeof *res);
    res->content_length = -1;
}

int http1_parse_response(http1_response_t *res, const char *data, size_t len, size_t head_max,
                         http1_error_t *err)
{
    size_t head_len = 0;
    int rc = scan_head(data, len, head_max ? head_max : HTTP1_HEAD_MAX_DEFAULT, &res->scanned,
                       &head_len, err);
    if (rc == 0)
        return -EAGAIN;
    res->scanned = 0;
    if (rc < 0)
        return rc;

    /* status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF; the last SP may be
     * missing when the reason is empty. */
    size_t e = line_end(data, 0, head_len);
    if (e < 12 || data[8] != ' ')
        return http1__set_error(err, 400, "malformed status line");
    int minor = parse_version(data, 8);
    if (minor == -1)
        return http1__set_error(err, 400, "malformed HTTP version");
    if (minor == -2)
        return http1__set_error(err, 505, "HTTP version not supported");
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (data[i] < '0' || data[i] > '9')
            return http1__set_error(err, 400, "malformed status code");
        status = status * 10 + (data[i] - '0');
    }
    if (status < 100 || status > 599)
        return http1__set_error(err, 400, "status code out of range");
    if (e > 12 && data[12] != ' ')
        return http1__set_error(err, 400, "malformed status line");

    res->head_len = head_len;
    res->version_minor = minor;
    res->status = status;
    res->reason = e > 12 ? (http1_str_t){data + 13, e - 13} : (http1_str_t){data + e, 0};
    rc = parse_header_lines(data, e + 2, head_len, &res->headers, err);
    if (rc)
        return rc;
    framing_t f;
    rc = derive_framing(&res->headers, minor, &f, err);
    if (rc)
        return rc;
    res->content_length = f.content_length;
    res->chunked = f.chunked;
    res->keep_alive = f.keep_alive;
    int bodyless = status < 200 || status == 204 || status == 304;
    if (!bodyless && !f.chunked && f.content_length < 0)
        res->keep_alive = 0;
    return 0;
}

const http1_str_t *http1_header_next(const http1_headers_t *h, const char *name, size_t *pos)
{
    size_t n = strlen(name);
    for (size_t i = *pos; i < h->count; i++) {
        if (eq_nocase(h->items[i].name.p, h->items[i].name.len, name, n)) {
            *pos = i + 1;
            return &h->items[i].value;
        }
    }
    *pos = h->count;
    return NULL;
}

const http1_str_t *http1_header_get(const http1_headers_t *h, const char *name)
{
    size_t pos = 0;
    return http1_header_next(h, name, &pos);
}

/* ---- the response writer ---- */

/* The one table of reason phrases: every status a program of the project sends. */
static const struct {
    int status;
    const char *text;
} STATUS_TEXT[] = {
    {100, "Continue"},
    {200, "OK"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {411, "Length Required"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
    {508, "Loop Detected"},
};

const char *http1_status_reason(int status)
{
    for (size_t i = 0; i < sizeof STATUS_TEXT / sizeof STATUS_TEXT[0]; i++)
        if (STATUS_TEXT[i].status == status)
            return STATUS_TEXT[i].text;
    return "";
}

/* A field value a caller gives: non-empty, no control characters but HTAB. */
static int field_value_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!http1__is_field_char((unsigned char)*s))
            return 0;
    return 1;
}

/* Complete header lines "name: value\r\n", none empty. */
static int header_lines_ok(const char *s)
{
    while (*s) {
        const char *p = s;
        while (http1__is_tchar((unsigned char)*p))
            p++;
        if (p == s || *p != ':')
            return 0;
        p++;
        while (*p && http1__is_field_char((unsigned char)*p))
            p++;
        if (p[0] != '\r' || p[1] != '\n')
            return 0;
        s = p + 2;
    }
    return 1;
}

int http1_write_response_head(buf_t *b, int status, const char *content_type, size_t content_length,
                              int keep_alive, const char *extra_headers)
{
    if (status < 100 || status > 599)
        return -EINVAL;
    int bodyless = status < 200 || status == 204;
    if (bodyless && content_length)
        return -EINVAL;
    if (content_type && !field_value_ok(content_type))
        return -EINVAL;
    if (extra_headers && !header_lines_ok(extra_headers))
        return -EINVAL;

    size_t old = b->len;
    int rc = buf_printf(b, "HTTP/1.1 %d %s\r\n", status, http1_status_reason(status));
    if (!rc && content_type)
        rc = buf_printf(b, "Content-Type: %s\r\n", content_type);
    if (!rc && !bodyless)
        rc = buf_printf(b, "Content-Length: %zu\r\n", content_length);
    if (!rc)
        rc = buf_puts(b, keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (!rc && extra_headers)
        rc = buf_puts(b, extra_headers);
    if (!rc)
        rc = buf_puts(b, "\r\n");
    if (rc) {
        b->len = old;
        if (b->data)
            b->data[old] = '\0';
    }
    return rc;
}
