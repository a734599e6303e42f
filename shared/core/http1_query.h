/* http1_query: the query string and the path of a request-target (http1_request_t's query and
 * path), percent-decoded into the caller's buffers. No I/O, no allocation.
 */
#ifndef ADW_HTTP1_QUERY_H
#define ADW_HTTP1_QUERY_H

#include <stddef.h>

#include "http1.h"

/* Walks the key=value pairs of a query string (the part after '?'). Plain data. */
typedef struct http1_query_iter_t {
    http1_str_t query; /* borrowed */
    size_t pos;
} http1_query_iter_t;

/* Starts iterating over query (its bytes stay the caller's and must outlive the iterator). */
void http1_query_iter_init(http1_query_iter_t *it, http1_str_t query);

/* Decodes the next pair into key and val: pairs split on '&', key and value on the first '=',
 * '+' is a space, %XX a byte; empty pairs are skipped, a pair without '=' has an empty value.
 * Both outputs are NUL-terminated; their lengths go to *key_len and *val_len (either may be
 * NULL). Returns 0 with a pair, -ENOENT at the end, -EINVAL on a malformed or %00 escape or a
 * raw byte that a request-target cannot hold (controls, space, '#', non-ASCII), -ENOSPC when a
 * key or value (plus its NUL) does not fit its buffer. On an error the iterator has still moved
 * past the pair. The buffers are the caller's. */
int http1_query_next(http1_query_iter_t *it, char *key, size_t key_size, size_t *key_len, char *val,
                     size_t val_size, size_t *val_len);

/* Decodes into val the value of the first pair whose decoded key equals key. Returns 0, -ENOENT
 * when no pair has that key, or the errors of http1_query_next for the pairs up to the match. */
int http1_query_get(http1_str_t query, const char *key, char *val, size_t val_size,
                    size_t *val_len);

/* Percent-decodes a path into out (NUL-terminated, length to *out_len when not NULL); '+' stays
 * itself, %2F becomes '/'. Returns 0, -EINVAL on a malformed or %00 escape or a raw byte that
 * a request-target cannot hold, -ENOSPC when the result plus its NUL does not fit out_size. out
 * is the caller's. */
int http1_path_decode(http1_str_t path, char *out, size_t out_size, size_t *out_len);

#endif
