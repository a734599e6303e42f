/* libFuzzer driver for the client's CurveZMQ commands (shared/client_curve.c): any bytes as the
 * server's WELCOME, READY and MESSAGE, each opened in place on a copy, and a MESSAGE we seal.
 *
 * Aborts when an opened body points outside the input or is longer than it, when a refused
 * command still changed the peer nonce, or when a sealed frame has the wrong length.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "client_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static client_curve_t base;
    static int ready;
    if (!ready) {
        if (client_curve_init())
            abort();
        for (int i = 0; i < CLIENT_CURVE_KEY; i++) {
            base.server[i] = (unsigned char)(i + 1);
            base.pub[i] = (unsigned char)(i * 3);
            base.sec[i] = (unsigned char)(i * 7 + 5);
        }
        ready = 1;
    }
    unsigned char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    client_curve_t c = base;
    char err[256];
    buf_t out;
    buf_init(&out, 0);

    if (client_curve_hello(&c, &out) || out.len != 2 + 200)
        abort();
    buf_reset(&out);
    memcpy(p, data, size);
    client_curve_welcome(&c, p, size,
                         (const unsigned char *)"\x0bSocket-Type\0\0\0\x06"
                                                "DEALER",
                         28, &out, err, sizeof err);

    memcpy(p, data, size);
    uint64_t before = c.peer_nonce;
    if (client_curve_ready(&c, p, size, err, sizeof err) && c.peer_nonce != before)
        abort();

    memcpy(p, data, size);
    unsigned flags = 0;
    const unsigned char *body = NULL;
    size_t bl = 0;
    before = c.peer_nonce;
    if (client_curve_open(&c, p, size, &flags, &body, &bl) == 0) {
        if (body < p || bl > size || body + bl > p + size || flags > 3)
            abort();
    } else if (c.peer_nonce != before) {
        abort();
    }

    buf_reset(&out);
    if (client_curve_seal(&c, &out, data, size, 1) == 0 &&
        out.len != (size + 33 <= 255 ? 2 : 9) + size + 33)
        abort();
    buf_free(&out);
    free(p);
    return 0;
}
