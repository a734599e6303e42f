#include "wsclient.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "http1.h"

#define WSCLIENT_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 section 1.3 */

/* Writes the base64 of in[0..len) into out[0..size), NUL-terminated; -ENOSPC when it is longer. */
static int base64(const void *in, size_t len, char *out, size_t size)
{
    char b64[32]; /* lws_b64_encode_string wants a byte beyond the NUL */
    int n = lws_b64_encode_string(in, (int)len, b64, sizeof b64);
    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    memcpy(out, b64, (size_t)n + 1);
    return 0;
}

void wsclient_key(const unsigned char nonce[WSCLIENT_NONCE_LEN], char key[WSCLIENT_KEY_SIZE])
{
    base64(nonce, WSCLIENT_NONCE_LEN, key, WSCLIENT_KEY_SIZE);
}

int wsclient_accept(const char *key, char accept[WSCLIENT_ACCEPT_SIZE])
{
    char in[64 + sizeof WSCLIENT_GUID];
    size_t kl = strlen(key);
    if (kl > 64)
        return -EINVAL;
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result): SHA-1 input, its length is passed
    memcpy(in, key, kl);
    memcpy(in + kl, WSCLIENT_GUID, sizeof WSCLIENT_GUID - 1);
    unsigned char md[20];
    lws_SHA1((const unsigned char *)in, kl + sizeof WSCLIENT_GUID - 1, md);
    return base64(md, sizeof md, accept, WSCLIENT_ACCEPT_SIZE) ? -EINVAL : 0;
}

int wsclient_request(char *out, size_t size, const char *host, int port, const char *path,
                     const char *query, const char *key)
{
    int has_q = query && *query;
    int n = snprintf(out, size,
                     "GET %s%s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: http://%s:%d\r\n\r\n",
                     path, has_q ? (strchr(path, '?') ? "&" : "?") : "", has_q ? query : "", host,
                     port, key, host, port);
    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    return n;
}

/* Whether the comma-separated list s holds token (ASCII case-insensitive). */
static int has_token(http1_str_t s, const char *token)
{
    size_t i = 0;
    while (i < s.len) {
        while (i < s.len && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == ','))
            i++;
        size_t start = i;
        while (i < s.len && s.p[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (s.p[end - 1] == ' ' || s.p[end - 1] == '\t'))
            end--;
        http1_str_t t = {s.p + start, end - start};
        if (end > start && http1_str_eq_nocase(t, token))
            return 1;
    }
    return 0;
}

int wsclient_handshake(const char *data, size_t len, const char *key, char *err, size_t errlen)
{
    http1_response_t res;
    http1_error_t e;
    http1_response_init(&res);
    int rc = http1_parse_response(&res, data, len, WSCLIENT_HEAD_MAX, &e);
    if (rc == -EAGAIN)
        return -EAGAIN;
    if (rc) {
        set_err(err, errlen, "the server's answer to the upgrade: %s", e.reason);
        return -EPROTO;
    }
    if (res.status != 101) {
        set_err(err, errlen, "the server answered the upgrade with %d, not 101", res.status);
        return -EPROTO;
    }
    const http1_str_t *v = http1_header_get(&res.headers, "upgrade");
    if (!v || !http1_str_eq_nocase(*v, "websocket")) {
        set_err(err, errlen, "the server's answer has no \"Upgrade: websocket\"");
        return -EPROTO;
    }
    size_t pos = 0;
    int upgrade = 0;
    while (!upgrade && (v = http1_header_next(&res.headers, "connection", &pos)))
        upgrade = has_token(*v, "upgrade");
    if (!upgrade) {
        set_err(err, errlen, "the server's answer has no \"Connection: upgrade\"");
        return -EPROTO;
    }
    char want[WSCLIENT_ACCEPT_SIZE];
    pos = 0;
    v = http1_header_next(&res.headers, "sec-websocket-accept", &pos);
    if (!v || http1_header_next(&res.headers, "sec-websocket-accept", &pos)) {
        set_err(err, errlen, "the server's answer has %s Sec-WebSocket-Accept",
                v ? "more than one" : "no");
        return -EPROTO;
    }
    if (wsclient_accept(key, want) || !http1_str_eq(*v, want)) {
        set_err(err, errlen, "the server's Sec-WebSocket-Accept is not the one the key calls for");
        return -EPROTO;
    }
    if (http1_header_get(&res.headers, "sec-websocket-extensions")) {
        set_err(err, errlen, "the server's answer names an extension that was not asked for");
        return -EPROTO;
    }
    return (int)res.head_len;
}

ssize_t wsclient_frame_encode(unsigned char *out, size_t size, int opcode, const void *payload,
                              size_t len, uint32_t mask)
{
    int control = opcode >= WSCLIENT_OP_CLOSE;
    if (opcode < 0 || (control ? opcode > WSCLIENT_OP_PONG || len > WSCLIENT_CONTROL_MAX
                               : opcode > WSCLIENT_OP_BINARY))
        return -EINVAL;
    size_t head = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
    if (size < head + 4 || size - head - 4 < len)
        return -ENOSPC;
    out[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        out[1] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    unsigned char *m = out + head;
    memcpy(m, &mask, 4);
    const unsigned char *in = payload;
    for (size_t i = 0; i < len; i++)
        m[4 + i] = in[i] ^ m[i & 3];
    return (ssize_t)(head + 4 + len);
}
