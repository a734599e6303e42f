/* gunzip: a gzip body (Content-Encoding: gzip) inflated into a buffer, with a cap on the size
 * it inflates to, so that a small body cannot grow past the body limit (a gzip bomb).
 *
 * Pure: no I/O; safe from any thread.
 */
#ifndef ADW_GUNZIP_H
#define ADW_GUNZIP_H

#include <stddef.h>

#include "buf.h"

/* Inflates the len bytes at in (borrowed; one gzip member or several back to back) into out
 * (emptied first), never letting it pass max bytes. Returns 0; -EFBIG when the data inflates
 * to more than max bytes (out holds a prefix); -EINVAL when in is not gzip, is corrupt or is
 * cut short (reason in err, NUL-terminated when errlen > 0); -ENOMEM. */
int gunzip_body(const char *in, size_t len, size_t max, buf_t *out, char *err, size_t errlen);

#endif
