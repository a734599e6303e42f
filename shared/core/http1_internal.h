/* http1_internal: what the HTTP/1.1 parser's files share (http1.c, http1_chunked.c,
 * http1_query.c): the character classes of RFC 9110 and the refusal of a message. Private to
 * them; not part of the library's interface.
 */
#ifndef ADW_HTTP1_INTERNAL_H
#define ADW_HTTP1_INTERNAL_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http1.h"

/* tchar of RFC 9110: the characters of a method, a header name, a token. */
static inline int http1__is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value octets: VCHAR, obs-text, SP, HTAB. */
static inline int http1__is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static inline int http1__is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static inline int http1__hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Fills err (when not NULL) with status and reason; returns -EBADMSG. */
static inline int http1__set_error(http1_error_t *err, int status, const char *reason)
{
    if (err) {
        err->status = status;
        snprintf(err->reason, sizeof err->reason, "%s", reason);
    }
    return -EBADMSG;
}

/* A raw byte of a request-target: printable ASCII but '#'. */
static inline int http1__is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '#';
}

#endif
