/* libFuzzer driver for the client's ZMTP 3.0 parsing (shared/client_wire.h): any bytes as a
 * peer's greeting, then as a stream of frames, and the answer-id reader on any JSON.
 *
 * Aborts when a parsed frame points outside the input, claims more than the input holds, or is
 * over the body bound; when a frame we write does not parse back to the same body.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "client_wire.h"
#include "codec.h"

#define MAX_BODY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (size >= CLIENT_ZMTP_GREETING)
        client_zmtp_check_greeting(data, err, sizeof err);

    /* A stream of frames: walk it as the client does. */
    size_t off = 0;
    while (off < size) {
        unsigned flags = 0;
        const unsigned char *body = NULL;
        size_t body_len = 0, frame_len = 0;
        int rc = client_zmtp_parse_frame(data + off, size - off, MAX_BODY, &flags, &body, &body_len,
                                         &frame_len);
        if (rc)
            break;
        if (frame_len == 0 || frame_len > size - off || body_len > MAX_BODY || body < data + off ||
            body + body_len > data + off + frame_len)
            abort();
        off += frame_len;
    }

    /* What we write parses back to the same body. */
    buf_t b;
    buf_init(&b, 0);
    size_t n = size < MAX_BODY ? size : MAX_BODY;
    if (client_zmtp_frame(&b, data, n) == 0) {
        unsigned flags = 0;
        const unsigned char *body = NULL;
        size_t body_len = 0, frame_len = 0;
        if (client_zmtp_parse_frame((const unsigned char *)b.data, b.len, MAX_BODY, &flags, &body,
                                    &body_len, &frame_len) != 0 ||
            body_len != n || frame_len != b.len || (n && memcmp(body, data, n)))
            abort();
    }
    buf_free(&b);

    /* Answers: any JSON through the id reader. */
    json_t *answer = NULL;
    if (codec_json_parse((const char *)data, size, &answer, err, sizeof err) == 0) {
        int64_t ids[8];
        for (size_t k = 1; k <= 8; k++)
            client_wire_ids(answer, k, ids, err, sizeof err);
        json_decref(answer);
    }
    return 0;
}
