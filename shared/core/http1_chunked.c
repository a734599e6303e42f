/* http1_chunked: the decoder of a chunked body (http1_chunked.h). */
#include "http1_chunked.h"

#include <errno.h>
#include <string.h>

#include "http1_internal.h"

enum {
    CH_SIZE_FIRST, /* the first hex digit of a chunk-size */
    CH_SIZE,       /* more hex digits, or what ends them */
    CH_SIZE_WS,    /* whitespace after the size: only ';' may follow */
    CH_EXT,        /* chunk extensions, ignored up to CR */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START, /* start of a trailer line, or the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
    CH_DONE,
    CH_ERROR,
};

void http1_chunked_init(http1_chunked_t *c, size_t trailer_max)
{
    memset(c, 0, sizeof *c);
    c->state = CH_SIZE_FIRST;
    c->trailer_max = trailer_max ? trailer_max : HTTP1_HEAD_MAX_DEFAULT;
}

int http1_chunked_done(const http1_chunked_t *c)
{
    return c->state == CH_DONE;
}

static int chunk_error(http1_chunked_t *c, http1_error_t *err, int status, const char *reason)
{
    c->state = CH_ERROR;
    return http1__set_error(err, status, reason);
}

/* Takes one byte of a chunk-size line, the CRLFs around data, or the trailers. Returns -EAGAIN
 * to go on, or an error (the decoder is then spent). */
static int chunked_byte(http1_chunked_t *c, unsigned char ch, const buf_t *out, http1_error_t *err)
{
    if (c->state >= CH_TRAILER_START && c->state <= CH_FINAL_LF &&
        ++c->trailer_len > c->trailer_max)
        return chunk_error(c, err, 431, "trailers too large");
    if (c->state <= CH_EXT && ++c->line_len > HTTP1_CHUNK_LINE_MAX)
        return chunk_error(c, err, 400, "chunk-size line too long");

    switch (c->state) {
    case CH_SIZE_FIRST:
    case CH_SIZE: {
        int d = http1__hex_value(ch);
        if (d >= 0) {
            if (c->remaining > (uint64_t)(INT64_MAX - d) / 16)
                return chunk_error(c, err, 400, "chunk size overflows");
            c->remaining = c->remaining * 16 + (uint64_t)d;
            c->state = CH_SIZE;
        } else if (c->state == CH_SIZE_FIRST) {
            return chunk_error(c, err, 400, "chunk size is not hex");
        } else if (ch == '\r') {
            c->state = CH_SIZE_LF;
        } else if (ch == ';') {
            c->state = CH_EXT;
        } else if (http1__is_ows(ch)) {
            c->state = CH_SIZE_WS;
        } else {
            return chunk_error(c, err, 400, "invalid character after chunk size");
        }
        return -EAGAIN;
    }
    case CH_SIZE_WS:
        if (ch == ';')
            c->state = CH_EXT;
        else if (!http1__is_ows(ch))
            return chunk_error(c, err, 400, "invalid character after chunk size");
        return -EAGAIN;
    case CH_EXT:
        if (ch == '\r')
            c->state = CH_SIZE_LF;
        else if (!http1__is_field_char(ch))
            return chunk_error(c, err, 400, "control character in chunk extension");
        return -EAGAIN;
    case CH_SIZE_LF:
        if (ch != '\n')
            return chunk_error(c, err, 400, "chunk-size line not ended by CRLF");
        c->line_len = 0;
        if (c->remaining == 0) {
            c->state = CH_TRAILER_START;
        } else if (out->max &&
                   (out->len > out->max || c->remaining > (uint64_t)(out->max - out->len))) {
            chunk_error(c, err, 413, "body too large");
            return -E2BIG;
        } else {
            c->state = CH_DATA;
        }
        return -EAGAIN;
    case CH_DATA_CR:
        if (ch != '\r')
            return chunk_error(c, err, 400, "chunk data not followed by CRLF");
        c->state = CH_DATA_LF;
        return -EAGAIN;
    case CH_DATA_LF:
        if (ch != '\n')
            return chunk_error(c, err, 400, "chunk data not followed by CRLF");
        c->state = CH_SIZE_FIRST;
        return -EAGAIN;
    case CH_TRAILER_START:
        if (ch == '\r')
            c->state = CH_FINAL_LF;
        else if (ch == '\n')
            return chunk_error(c, err, 400, "bare LF in trailers");
        else if (http1__is_ows(ch))
            return chunk_error(c, err, 400, "obsolete line folding in trailer");
        else if (http1__is_tchar(ch))
            c->state = CH_TRAILER_NAME;
        else
            return chunk_error(c, err, 400, "invalid character in trailer name");
        return -EAGAIN;
    case CH_TRAILER_NAME:
        if (ch == ':')
            c->state = CH_TRAILER_VALUE;
        else if (http1__is_ows(ch))
            return chunk_error(c, err, 400, "whitespace between trailer name and colon");
        else if (ch == '\r')
            return chunk_error(c, err, 400, "trailer line without colon");
        else if (!http1__is_tchar(ch))
            return chunk_error(c, err, 400, "invalid character in trailer name");
        return -EAGAIN;
    case CH_TRAILER_VALUE:
        if (ch == '\r')
            c->state = CH_TRAILER_LF;
        else if (!http1__is_field_char(ch))
            return chunk_error(c, err, 400, "control character in trailer");
        return -EAGAIN;
    case CH_TRAILER_LF:
        if (ch != '\n')
            return chunk_error(c, err, 400, "trailer line not ended by CRLF");
        c->state = CH_TRAILER_START;
        return -EAGAIN;
    case CH_FINAL_LF:
        if (ch != '\n')
            return chunk_error(c, err, 400, "chunked body not ended by CRLF");
        c->state = CH_DONE;
        return -EAGAIN;
    default:
        return chunk_error(c, err, 400, "chunked body already refused");
    }
}

int http1_chunked_feed(http1_chunked_t *c, const char *data, size_t len, size_t *consumed,
                       buf_t *out, http1_error_t *err)
{
    size_t i = 0;
    int rc = -EAGAIN;

    if (c->state == CH_ERROR)
        rc = http1__set_error(err, 400, "chunked body already refused");
    while (rc == -EAGAIN && c->state != CH_DONE && i < len) {
        if (c->state == CH_DATA) {
            size_t n = len - i;
            if ((uint64_t)n > c->remaining)
                n = (size_t)c->remaining;
            rc = buf_append(out, data + i, n);
            if (rc == -E2BIG) {
                chunk_error(c, err, 413, "body too large");
                break;
            }
            if (rc) {
                chunk_error(c, err, 500, "out of memory");
                break;
            }
            rc = -EAGAIN;
            c->remaining -= n;
            i += n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        rc = chunked_byte(c, (unsigned char)data[i], out, err);
        if (rc == -EAGAIN)
            i++;
    }
    if (rc == -EAGAIN && c->state == CH_DONE)
        rc = 0;
    if (consumed)
        *consumed = i;
    return rc;
}
