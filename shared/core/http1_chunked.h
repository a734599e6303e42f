/* http1_chunked: the incremental decoder of an HTTP/1.1 chunked body (RFC 9112, 7.1), for a
 * message whose head http1_parse_request or http1_parse_response found chunked. No I/O: the
 * caller feeds the bytes it received and gets the decoded data appended to a buffer.
 */
#ifndef ADW_HTTP1_CHUNKED_H
#define ADW_HTTP1_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http1.h"

/* Incremental decoder of a chunked body. One of these per body; plain data, no resources. */
typedef struct http1_chunked_t {
    int state;          /* internal */
    uint64_t remaining; /* bytes left in the current chunk */
    size_t line_len;    /* bytes of the current chunk-size or trailer line so far */
    size_t trailer_len; /* bytes of trailer section so far */
    size_t trailer_max; /* bound on the trailer section */
} http1_chunked_t;

/* Prepares a chunked-body decoder. trailer_max bounds the trailer section (0:
 * HTTP1_HEAD_MAX_DEFAULT), normally the head limit. */
void http1_chunked_init(http1_chunked_t *c, size_t trailer_max);

/* Feeds the next len bytes of a chunked body; the decoded data is appended to out, whose max
 * bounds the body. *consumed says how many bytes of data were used, also on error.
 * Returns 0 when the last chunk and the trailers are done (bytes after *consumed belong to the
 * next message; further calls consume nothing and return 0), -EAGAIN when every byte was used
 * and more are needed, -EBADMSG on a malformed body (err->status 400; 431 when the trailers pass
 * trailer_max), -E2BIG when the body would pass out->max (err->status 413, said as soon as a
 * chunk-size announces it), -ENOMEM (err->status 500). After an error the decoder is spent.
 * data is borrowed; out is the caller's. */
int http1_chunked_feed(http1_chunked_t *c, const char *data, size_t len, size_t *consumed,
                       buf_t *out, http1_error_t *err);

/* Returns 1 when the decoder has seen the end of the body, else 0. */
int http1_chunked_done(const http1_chunked_t *c);

#endif
