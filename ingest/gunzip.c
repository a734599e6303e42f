#include "gunzip.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define ZLIB_CONST /* next_in is const: the input is never written */
#include <zlib.h>

#include "err.h"

#define CHUNK 65536

int gunzip_body(const char *in, size_t len, size_t max, buf_t *out, char *err, size_t errlen)
{
    unsigned char chunk[CHUNK];
    z_stream z;
    memset(&z, 0, sizeof z);
    buf_reset(out);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = 0;
    z.next_in = (const Bytef *)in;
    size_t left = len;
    int ended = 0;
    while (left > 0 || !ended) {
        if (ended) { /* another member follows */
            if (inflateReset(&z) != Z_OK) {
                rc = -ENOMEM;
                set_err(err, errlen, "out of memory");
                break;
            }
            ended = 0;
        }
        uInt feed = left > (1u << 30) ? (1u << 30) : (uInt)left;
        z.avail_in = feed;
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        int zr = inflate(&z, Z_NO_FLUSH);
        left -= feed - z.avail_in;
        size_t got = sizeof chunk - z.avail_out;
        if (got > max - out->len) {
            rc = -EFBIG;
            break;
        }
        if (got && buf_append(out, chunk, got)) {
            rc = -ENOMEM;
            set_err(err, errlen, "out of memory");
            break;
        }
        if (zr == Z_STREAM_END) {
            ended = 1;
            if (!left)
                break;
            continue;
        }
        if (zr == Z_MEM_ERROR) {
            rc = -ENOMEM;
            set_err(err, errlen, "out of memory");
            break;
        }
        if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR) {
            rc = -EINVAL;
            set_err(err, errlen, "corrupt gzip body: %s", z.msg ? z.msg : "bad data");
            break;
        }
        if (got == 0 && z.avail_in == feed) { /* no progress: the input ends inside a member */
            rc = -EINVAL;
            set_err(err, errlen, left ? "corrupt gzip body" : "truncated gzip body");
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}
