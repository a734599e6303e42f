/* wsclient: the client side of WebSocket (RFC 6455) as a codec. No I/O, no allocation.
 *
 * It writes the upgrade request (for a Sec-WebSocket-Key made from random bytes the caller
 * supplies), checks the server's answer (101, Upgrade, Connection, Sec-WebSocket-Accept), decodes
 * server frames where they lie in the caller's receive buffer and encodes masked client frames.
 * The caller owns the socket, the buffers and the state between frames (fragments, closing).
 * Used by adw-bench's own WebSocket clients (fleet_epoll.c).
 */
#ifndef ADW_WSCLIENT_H
#define ADW_WSCLIENT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WSCLIENT_NONCE_LEN 16      /* random bytes behind a Sec-WebSocket-Key */
#define WSCLIENT_KEY_SIZE 25       /* a Sec-WebSocket-Key: 24 base64 characters and a NUL */
#define WSCLIENT_ACCEPT_SIZE 29    /* a Sec-WebSocket-Accept: 28 base64 characters and a NUL */
#define WSCLIENT_HEAD_MAX 8192     /* bytes of the server's answer to the upgrade */
#define WSCLIENT_CONTROL_MAX 125   /* payload bytes of a control frame */
#define WSCLIENT_FRAME_HEAD_MAX 14 /* bytes of a client frame's header (with its mask) */

enum {
    WSCLIENT_OP_CONTINUATION = 0x0,
    WSCLIENT_OP_TEXT = 0x1,
    WSCLIENT_OP_BINARY = 0x2,
    WSCLIENT_OP_CLOSE = 0x8,
    WSCLIENT_OP_PING = 0x9,
    WSCLIENT_OP_PONG = 0xa,
};

/* One server frame, as wsclient_frame_decode found it. Plain data. */
typedef struct wsclient_frame_t {
    const unsigned char *payload; /* borrowed: points into the buffer given to the decoder */
    size_t len;                   /* payload bytes */
    size_t size;                  /* header and payload: the next frame starts this far on */
    int opcode;                   /* WSCLIENT_OP_* */
    int fin;                      /* 1 on the last frame of a message (always on control frames) */
} wsclient_frame_t;

/* Writes into key the Sec-WebSocket-Key for nonce (WSCLIENT_NONCE_LEN random bytes, which the
 * caller draws): their base64, NUL-terminated. Both buffers are the caller's. */
void wsclient_key(const unsigned char nonce[WSCLIENT_NONCE_LEN], char key[WSCLIENT_KEY_SIZE]);

/* Writes into accept the Sec-WebSocket-Accept a server must answer to key:
 * base64(SHA-1(key "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), NUL-terminated. Returns 0, or
 * -EINVAL when key is longer than a Sec-WebSocket-Key can be. Both buffers are the caller's. */
int wsclient_accept(const char *key, char accept[WSCLIENT_ACCEPT_SIZE]);

/* Writes into out[0..size) the upgrade request for ws://host:port path, with query (NULL or ""
 * for none) appended after '?' (or '&' when path has a query already) and key as
 * Sec-WebSocket-Key; Host and Origin name host:port. Returns the request's length (without the
 * NUL written after it), or -ENOSPC when it does not fit. Every pointer is borrowed. */
int wsclient_request(char *out, size_t size, const char *host, int port, const char *path,
                     const char *query, const char *key);

/* Checks the server's answer to the upgrade request that sent key, at the start of data[0..len).
 * Returns the length of the answer's head (> 0: the server's first frames start there) when the
 * server switched to WebSocket: status 101, "Upgrade: websocket", a Connection header with the
 * "upgrade" token, the Sec-WebSocket-Accept that key calls for and no extension. Returns -EAGAIN
 * when the head is not complete yet (call again with more bytes behind the same ones), -EPROTO
 * when the answer is refused (malformed, over WSCLIENT_HEAD_MAX, another status, a header
 * missing or wrong), with the reason in err. data and key are borrowed. */
int wsclient_handshake(const char *data, size_t len, const char *key, char *err, size_t errlen);

/* Writes into out[0..size) one masked client frame with FIN set: opcode (WSCLIENT_OP_*), payload
 * of len bytes (NULL when len is 0) masked with the 4 bytes of mask as they lie in memory.
 * Returns the frame's length, -EINVAL for a control frame over WSCLIENT_CONTROL_MAX or an
 * opcode that is not one, -ENOSPC when out is too small (WSCLIENT_FRAME_HEAD_MAX + len always
 * suffices). The buffers are the caller's. */
ssize_t wsclient_frame_encode(unsigned char *out, size_t size, int opcode, const void *payload,
                              size_t len, uint32_t mask);

/* Decodes the server frame at the start of p[0..n), whose payload may be at most max bytes.
 * Returns 1 with the frame in *f (its payload where it lies in p), 0 when more bytes are needed
 * (f untouched), -EPROTO when the frame breaks the protocol (masked, reserved bits set, a
 * reserved opcode, a control frame fragmented or over WSCLIENT_CONTROL_MAX), -EMSGSIZE when its
 * payload is over max (said as soon as the header is there). p is borrowed. Inline: this is the
 * per-message path of a client that receives millions of messages a second. */
static inline int wsclient_frame_decode(const unsigned char *p, size_t n, size_t max,
                                        wsclient_frame_t *f)
{
    if (n < 2)
        return 0;
    unsigned b0 = p[0], b1 = p[1];
    int op = (int)(b0 & 0x0f);
    if (b0 & 0x70 || b1 & 0x80) /* reserved bits (no extension was agreed); a masked frame */
        return -EPROTO;
    if (op >= WSCLIENT_OP_CLOSE ? op > WSCLIENT_OP_PONG || !(b0 & 0x80) || (b1 & 0x7f) > 125
                                : op > WSCLIENT_OP_BINARY)
        return -EPROTO;
    uint64_t len = b1 & 0x7f;
    size_t head = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        head = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        head = 10;
    }
    if (len > max)
        return -EMSGSIZE;
    if (n - head < len)
        return 0;
    f->payload = p + head;
    f->len = (size_t)len;
    f->size = head + (size_t)len;
    f->opcode = op;
    f->fin = (b0 & 0x80) != 0;
    return 1;
}

#endif
