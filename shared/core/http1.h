/* http1: a strict HTTP/1.1 message parser and a response-head writer. No I/O, no allocation.
 *
 * Used by adw-ingest's HTTP server and by the client of adw-send and adw-bench. The caller owns
 * the socket and keeps the bytes received so far in one buffer; the parsers answer "need more",
 * "complete" or "error" and point into that buffer. Anything the framing rules of RFC 9112 leave
 * ambiguous (request smuggling material) is refused, each rule with its own reason text and the
 * status a server answers with. A chunked body is decoded by http1_chunked.h, a request-target's
 * query and path by http1_query.h.
 */
#ifndef ADW_HTTP1_H
#define ADW_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HTTP1_HEADERS_MAX 64        /* header lines in one head; more answers 431 */
#define HTTP1_HEAD_MAX_DEFAULT 8192 /* head bytes (request line to the empty line included) */
#define HTTP1_CHUNK_LINE_MAX 4096   /* bytes of one chunk-size line, extensions included */
#define HTTP1_REASON_MAX 128        /* bytes of an error reason, NUL included */

/* A byte range inside the caller's buffer; not NUL-terminated. */
typedef struct http1_str_t {
    const char *p; /* borrowed from the buffer given to the parser; NULL when absent */
    size_t len;
} http1_str_t;

/* Why a message was refused: the status a server answers with, and a fixed text. */
typedef struct http1_error_t {
    int status; /* 400, 413, 431, 500, 501 or 505; for a response it only classifies */
    char reason[HTTP1_REASON_MAX];
} http1_error_t;

typedef struct http1_header_t {
    http1_str_t name;  /* a token, as received (compare case-insensitively) */
    http1_str_t value; /* surrounding spaces and tabs trimmed; may be empty */
} http1_header_t;

/* The header lines of one head, in the order received. */
typedef struct http1_headers_t {
    size_t count;
    http1_header_t items[HTTP1_HEADERS_MAX];
} http1_headers_t;

/* One of these per request being received. Every http1_str_t points into the caller's buffer
 * and is valid while those bytes stay where they are. */
typedef struct http1_request_t {
    size_t head_len;    /* bytes of the head, the final CRLF CRLF included */
    http1_str_t method; /* a token, case-sensitive */
    http1_str_t target; /* the whole request-target: "/path?query" or "*" */
    http1_str_t path;   /* target up to '?' (still percent-encoded) */
    http1_str_t query;  /* after '?' (still encoded); p == NULL when there is no '?' */
    int version_minor;  /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    http1_headers_t headers;
    int64_t content_length; /* -1 when there is no Content-Length */
    int chunked;            /* Transfer-Encoding: chunked */
    int keep_alive;         /* the connection may carry another request after this one */
    int expect_continue;    /* HTTP/1.1 with Expect: 100-continue */
    size_t scanned;         /* the parser's progress between calls; see http1_parse_request */
} http1_request_t;

/* One of these per response being received (client side). Same lifetime rules. */
typedef struct http1_response_t {
    size_t head_len;    /* bytes of the head, the final CRLF CRLF included */
    int version_minor;  /* 0 or 1 */
    int status;         /* 100..599 */
    http1_str_t reason; /* may be empty */
    http1_headers_t headers;
    int64_t content_length; /* -1 when there is no Content-Length */
    int chunked;            /* Transfer-Encoding: chunked */
    int keep_alive;         /* 0 also when the body is delimited by the connection closing */
    size_t scanned;         /* the parser's progress between calls */
} http1_response_t;

/* Resets a request before the first call for a new message. http1_parse_request also resets
 * the progress itself after answering "complete" or "error", so a connection can reuse one
 * struct for pipelined requests; call this when the buffer is replaced (a new connection). */
void http1_request_init(http1_request_t *req);

/* Parses the request head at the start of data[0..len). Call it again with the same req and the
 * same bytes followed by new ones after -EAGAIN: the scan resumes where it stopped.
 * head_max bounds the head (0: HTTP1_HEAD_MAX_DEFAULT).
 * Returns 0 when the head is complete: req is filled, req->head_len says where the body (or the
 * next pipelined request) starts. Returns -EAGAIN when more bytes are needed and none seen so far
 * is wrong. Returns -EBADMSG when the request is refused: err->status is 400 (malformed, framing
 * ambiguous, no Host on 1.1), 431 (head over head_max, already when len passes head_max without a
 * complete head; or more than HTTP1_HEADERS_MAX headers), 501 (a Transfer-Encoding other than
 * "chunked") or 505 (a version other than 1.0 and 1.1); the connection must then be closed.
 * data is borrowed; req's strings point into it. */
int http1_parse_request(http1_request_t *req, const char *data, size_t len, size_t head_max,
                        http1_error_t *err);

/* Resets a response before the first call for a new message, as http1_request_init. */
void http1_response_init(http1_response_t *res);

/* Parses a response head, with the returns and strictness of http1_parse_request (no Host rule).
 * The body: none for 1xx, 204 and 304 and for an answer to HEAD (the caller knows); else chunked
 * when res->chunked; else res->content_length bytes when >= 0; else up to the connection's close
 * (res->keep_alive is then 0). After a 1xx the caller parses the next head. */
int http1_parse_response(http1_response_t *res, const char *data, size_t len, size_t head_max,
                         http1_error_t *err);

/* Returns the value of the first header called name (ASCII case-insensitive), or NULL. The
 * pointer is into h. */
const http1_str_t *http1_header_get(const http1_headers_t *h, const char *name);

/* Iterates over every header called name: start with *pos = 0; returns the next value and moves
 * *pos past it, or NULL when there are no more. */
const http1_str_t *http1_header_next(const http1_headers_t *h, const char *name, size_t *pos);

/* Returns 1 when s equals the NUL-terminated lit exactly, else 0. */
int http1_str_eq(http1_str_t s, const char *lit);

/* Returns 1 when s equals lit ignoring ASCII case, else 0. */
int http1_str_eq_nocase(http1_str_t s, const char *lit);

/* Returns the standard reason phrase of status ("OK", "Payload Too Large"), or "" for a status
 * the project does not use. The project's one status-text table: every status line written
 * (http1_write_response_head, adw-ingest's canned answers, adw-gateway's) takes its phrase
 * from here. Static storage. */
const char *http1_status_reason(int status);

/* Appends an HTTP/1.1 response head to b: the status line, Content-Type when content_type is
 * not NULL, Content-Length (not for 1xx and 204, which must have content_length 0),
 * "Connection: keep-alive" or "Connection: close", then extra_headers verbatim when not NULL
 * (complete lines, each ending in CRLF, e.g. "Retry-After: 1\r\n"), then the empty line.
 * Returns 0, -EINVAL (status outside 100..599, a control character in content_type, malformed
 * extra_headers, a body on 1xx/204), -E2BIG or -ENOMEM; on error b is unchanged. */
int http1_write_response_head(buf_t *b, int status, const char *content_type, size_t content_length,
                              int keep_alive, const char *extra_headers);

#endif
