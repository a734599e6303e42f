/* libFuzzer driver for bench/wsclient: the server's answer to the upgrade, then server frames.
 *
 * Input: one control byte, one cut byte, then the bytes a client receives. Bit 0 of the control
 * byte: they start with the answer to an upgrade that sent RFC 6455's example key (else they are
 * frames only); bits 1-2 pick the payload limit. Beyond memory safety it checks properties: an
 * answer fed in two pieces gets the one-shot verdict; frames decoded from one buffer and from two
 * reads (the rest of the first kept and the second appended, as the fleet's reader does) are the
 * same frames; each frame obeys the rules the decoder promises; a payload encoded as a masked
 * client frame unmasks to itself. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsclient.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* What one frame was, kept to compare the two ways of decoding. */
typedef struct seen_t {
    int opcode, fin;
    size_t len;
    uint64_t sum; /* of the payload's bytes, weighted by position */
} seen_t;

#define SEEN_MAX 256

static uint64_t sum(const unsigned char *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

static void check_frame(const wsclient_frame_t *f, const unsigned char *p, size_t n, size_t max)
{
    CHECK(f->size <= n);
    CHECK(f->len <= max && f->len <= f->size);
    CHECK(f->payload == p + f->size - f->len);
    CHECK(f->size - f->len == 2 || f->size - f->len == 4 || f->size - f->len == 10);
    CHECK(f->opcode <= WSCLIENT_OP_BINARY ||
          (f->opcode >= WSCLIENT_OP_CLOSE && f->opcode <= WSCLIENT_OP_PONG));
    if (f->opcode >= WSCLIENT_OP_CLOSE)
        CHECK(f->fin && f->len <= WSCLIENT_CONTROL_MAX);

    /* As a masked client frame, the payload unmasks to itself. */
    static unsigned char out[WSCLIENT_FRAME_HEAD_MAX + 65536];
    if (f->len > 65536)
        return;
    uint32_t mask = (uint32_t)f->len * 2654435761u;
    ssize_t k = wsclient_frame_encode(out, sizeof out, f->opcode, f->payload, f->len, mask);
    CHECK(k > 0 && (size_t)k >= f->len + 6 && (size_t)k <= f->len + WSCLIENT_FRAME_HEAD_MAX);
    const unsigned char *m = out + (size_t)k - f->len - 4;
    CHECK((out[0] & 0x0f) == f->opcode && (out[0] & 0x80) && (out[1] & 0x80));
    for (size_t i = 0; i < f->len; i++)
        CHECK((m[4 + i] ^ m[i & 3]) == f->payload[i]);
}

/* Decodes p[0..n) whole; returns the frames seen (at most SEEN_MAX) and the verdict at the end. */
static size_t decode_whole(const unsigned char *p, size_t n, size_t max, seen_t *seen, int *end)
{
    size_t used = 0, count = 0;
    wsclient_frame_t f;
    int rc;
    while (count < SEEN_MAX && (rc = wsclient_frame_decode(p + used, n - used, max, &f)) == 1) {
        check_frame(&f, p + used, n - used, max);
        seen[count++] = (seen_t){f.opcode, f.fin, f.len, sum(f.payload, f.len)};
        used += f.size;
    }
    if (count == SEEN_MAX)
        rc = 1;
    CHECK(rc == 1 || rc == 0 || rc == -EPROTO || rc == -EMSGSIZE);
    *end = rc;
    return count;
}

/* The same bytes in two reads, the fleet's way; the frames and the verdict must be the same. */
static void decode_split(const unsigned char *p, size_t n, size_t cut, size_t max,
                         const seen_t *seen, size_t count, int end)
{
    unsigned char *buf = malloc(n ? n : 1);
    CHECK(buf);
    size_t have = 0, fed = 0, got = 0;
    int rc = 0;
    for (int read = 0; read < 2 && rc >= 0; read++) {
        size_t more = read == 0 ? cut : n - cut;
        memcpy(buf + have, p + fed, more);
        fed += more;
        have += more;
        size_t used = 0;
        wsclient_frame_t f;
        while (got < count && (rc = wsclient_frame_decode(buf + used, have - used, max, &f)) == 1) {
            CHECK(f.opcode == seen[got].opcode && f.fin == seen[got].fin);
            CHECK(f.len == seen[got].len && sum(f.payload, f.len) == seen[got].sum);
            got++;
            used += f.size;
        }
        if (got == count && end != 1)
            rc = wsclient_frame_decode(buf + used, have - used, max, &f);
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    CHECK(got == count);
    if (end != 1)
        CHECK(rc == end);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t ctl = data[0];
    size_t cut = data[1] * 5u;
    const unsigned char *p = data + 2;
    size_t n = size - 2;
    static const size_t maxes[] = {1 << 20, 125, 126, 65536};
    size_t max = maxes[(ctl >> 1) & 3];

    if (ctl & 1) {
        char err[160];
        int rc = wsclient_handshake((const char *)p, n, RFC_KEY, err, sizeof err);
        CHECK(rc > 0 || rc == -EAGAIN || rc == -EPROTO);
        size_t c = n ? cut % (n + 1) : 0;
        int rc2 = wsclient_handshake((const char *)p, c, RFC_KEY, NULL, 0);
        CHECK(rc2 == -EAGAIN || rc2 == rc || (rc2 == -EPROTO && rc == -EPROTO));
        if (rc2 == -EAGAIN)
            CHECK(wsclient_handshake((const char *)p, n, RFC_KEY, NULL, 0) == rc);
        if (rc <= 0)
            return 0;
        CHECK((size_t)rc <= n && rc <= WSCLIENT_HEAD_MAX && rc >= 4);
        CHECK(!memcmp(p + rc - 4, "\r\n\r\n", 4));
        p += rc;
        n -= (size_t)rc;
    }
    seen_t seen[SEEN_MAX];
    int end;
    size_t count = decode_whole(p, n, max, seen, &end);
    decode_split(p, n, n ? cut % (n + 1) : 0, max, seen, count, end);
    return 0;
}
