/* Unit tests for bench/wsclient.c: the key and accept of RFC 6455's example, the upgrade request,
 * the server's answer accepted or refused for each header it must have, server frames of each
 * length class whole and split at every byte, what a server frame may not be, and masked client
 * frames. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wsclient.h"

/* RFC 6455 section 1.3: the nonce "the sample nonce", its key and the accept it calls for. */
#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* The answer libwebsockets' server gives, with the accept for RFC_KEY. */
#define GOOD_ANSWER                                                                                \
    "HTTP/1.1 101 Switching Protocols\r\n"                                                         \
    "Upgrade: WebSocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"                                                     \
    "\r\n"

static int handshake(const char *answer, char *err, size_t errlen)
{
    return wsclient_handshake(answer, strlen(answer), RFC_KEY, err, errlen);
}

/* Asserts that answer is refused with a reason containing what. */
static void refused(const char *answer, const char *what)
{
    char err[160] = "";
    int rc = handshake(answer, err, sizeof err);
    if (rc != -EPROTO || !strstr(err, what))
        fail_msg("answer %s: rc %d reason '%s', wanted -EPROTO '%s'", answer, rc, err, what);
}

/* Writes an unmasked server frame into out; returns its length. */
static size_t server_frame(unsigned char *out, unsigned b0, const unsigned char *payload,
                           uint64_t len)
{
    size_t h = 2;
    out[0] = (unsigned char)b0;
    if (len < 126) {
        out[1] = (unsigned char)len;
    } else if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        h = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        h = 10;
    }
    if (payload)
        memcpy(out + h, payload, (size_t)len);
    return h + (size_t)len;
}

/* ---- key, accept, request ---- */

static void key_and_accept_of_the_rfc(void **state)
{
    (void)state;
    char key[WSCLIENT_KEY_SIZE], accept[WSCLIENT_ACCEPT_SIZE];
    wsclient_key((const unsigned char *)"the sample nonce", key);
    assert_string_equal(key, RFC_KEY);
    assert_int_equal(wsclient_accept(key, accept), 0);
    assert_string_equal(accept, RFC_ACCEPT);

    unsigned char zero[WSCLIENT_NONCE_LEN] = {0};
    wsclient_key(zero, key);
    assert_string_equal(key, "AAAAAAAAAAAAAAAAAAAAAA==");
}

static void request_bytes(void **state)
{
    (void)state;
    char out[1024];
    int n = wsclient_request(out, sizeof out, "127.0.0.1", 8081, "/ws/events",
                             "since=0&types=adw_event", RFC_KEY);
    const char *want = "GET /ws/events?since=0&types=adw_event HTTP/1.1\r\n"
                       "Host: 127.0.0.1:8081\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " RFC_KEY "\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "Origin: http://127.0.0.1:8081\r\n"
                       "\r\n";
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);

    n = wsclient_request(out, sizeof out, "h", 80, "/ws/events?a=1", "b=2", RFC_KEY);
    assert_true(n > 0);
    assert_non_null(strstr(out, "GET /ws/events?a=1&b=2 HTTP/1.1\r\n"));
    n = wsclient_request(out, sizeof out, "h", 80, "/ws", "", RFC_KEY);
    assert_true(n > 0);
    assert_non_null(strstr(out, "GET /ws HTTP/1.1\r\n"));
    n = wsclient_request(out, sizeof out, "h", 80, "/ws", NULL, RFC_KEY);
    assert_true(n > 0);
    assert_non_null(strstr(out, "GET /ws HTTP/1.1\r\n"));

    assert_int_equal(wsclient_request(out, 40, "h", 80, "/ws", NULL, RFC_KEY), -ENOSPC);
}

/* ---- the server's answer ---- */

static void handshake_ok(void **state)
{
    (void)state;
    char err[160] = "";
    assert_int_equal(handshake(GOOD_ANSWER, err, sizeof err), strlen(GOOD_ANSWER));

    /* Other spellings a server may use; frames right behind the head are not part of it. */
    const char *other = "HTTP/1.1 101 \r\n"
                        "upgrade: websocket\r\n"
                        "connection: keep-alive, Upgrade\r\n"
                        "sec-websocket-accept: " RFC_ACCEPT "\r\n"
                        "Server: x\r\n"
                        "\r\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s\x81\x02hi", other);
    assert_int_equal(handshake(buf, err, sizeof err), strlen(other));
}

static void handshake_split_at_every_byte(void **state)
{
    (void)state;
    const char *a = GOOD_ANSWER;
    size_t n = strlen(a);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(wsclient_handshake(a, k, RFC_KEY, NULL, 0), -EAGAIN);
    assert_int_equal(wsclient_handshake(a, n, RFC_KEY, NULL, 0), n);
}

static void wrong_or_missing_accept_refused(void **state)
{
    (void)state;
    refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOO=\r\n\r\n",
            "not the one the key calls for");
    refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: \r\n\r\n",
            "not the one the key calls for");
    refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "\r\n",
            "no Sec-WebSocket-Accept");
    refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
            "more than one");
    /* The accept of another key. */
    char err[160];
    assert_int_equal(wsclient_handshake(GOOD_ANSWER, strlen(GOOD_ANSWER),
                                        "AAAAAAAAAAAAAAAAAAAAAA==", err, sizeof err),
                     -EPROTO);
}

static void non_101_refused(void **state)
{
    (void)state;
    refused("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "with 200, not 101");
    refused("HTTP/1.1 403 Forbidden\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\nContent-Length: 2\r\n\r\nno",
            "with 403, not 101");
    refused("HTTP/1.1 503 Service Unavailable\r\n\r\n", "with 503");
    refused("HTTP/1.0 100 Continue\r\n\r\n", "with 100");
}

static void upgrade_and_connection_checked(void **state)
{
    (void)state;
    refused("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
            "Upgrade: websocket");
    refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
            "Upgrade: websocket");
    refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
            "Connection: upgrade");
    refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgraded\r\n"
            "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
            "Connection: upgrade");
    refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
            "extension");
    /* Two Connection lines: the token may be on the second. */
    char err[160] = "";
    assert_true(handshake("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: keep-alive\r\nConnection: upgrade\r\n"
                          "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                          err, sizeof err) > 0);
}

static void malformed_or_oversize_answer_refused(void **state)
{
    (void)state;
    refused("HTTP/1.1 101\r\nUpgrade websocket\r\n\r\n", "upgrade");
    refused("SSH-2.0-OpenSSH\r\n\r\n", "upgrade");
    size_t n = WSCLIENT_HEAD_MAX + 100;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memcpy(big, "HTTP/1.1 101 Switching Protocols\r\nX: ", 37);
    memset(big + 37, 'a', n - 37);
    big[n] = '\0';
    char err[160] = "";
    assert_int_equal(wsclient_handshake(big, n, RFC_KEY, err, sizeof err), -EPROTO);
    free(big);
}

/* ---- server frames ---- */

/* Decodes a frame of each length class whole, and every prefix of it as incomplete. */
static void frames_of_each_length_class(void **state)
{
    (void)state;
    static const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 1 << 20};
    size_t cap = (1 << 20) + 16;
    unsigned char *buf = malloc(cap), *payload = malloc(1 << 20);
    assert_non_null(buf);
    assert_non_null(payload);
    for (size_t i = 0; i < (1 << 20); i++)
        payload[i] = (unsigned char)(i * 7 + 3);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = server_frame(buf, 0x81, payload, lens[k]);
        size_t head = lens[k] < 126 ? 2 : lens[k] <= 0xffff ? 4 : 10;
        assert_int_equal(n, head + lens[k]);
        wsclient_frame_t f;
        assert_int_equal(wsclient_frame_decode(buf, n, 1 << 20, &f), 1);
        assert_int_equal(f.opcode, WSCLIENT_OP_TEXT);
        assert_int_equal(f.fin, 1);
        assert_int_equal(f.len, lens[k]);
        assert_int_equal(f.size, n);
        assert_ptr_equal(f.payload, buf + head);
        if (lens[k])
            assert_memory_equal(f.payload, payload, lens[k]);
        /* Every prefix is incomplete (each byte around the header, then a stride, the last). */
        for (size_t cut = 0; cut < n; cut += cut < 16 ? 1 : 4093)
            assert_int_equal(wsclient_frame_decode(buf, cut, 1 << 20, &f), 0);
        assert_int_equal(wsclient_frame_decode(buf, n - 1, 1 << 20, &f), 0);
    }
    free(buf);
    free(payload);
}

/* Several frames in one buffer, as one recv brings them, then fed in two reads at every cut. */
static void frames_split_across_reads(void **state)
{
    (void)state;
    unsigned char buf[1024], big[300];
    memset(big, 'x', sizeof big);
    size_t n = 0;
    n += server_frame(buf + n, 0x81, (const unsigned char *)"{\"id\":1}", 8);
    n += server_frame(buf + n, 0x01, (const unsigned char *)"{\"id\"", 5); /* first fragment */
    n += server_frame(buf + n, 0x89, (const unsigned char *)"p", 1);       /* ping between */
    n += server_frame(buf + n, 0x80, (const unsigned char *)":2}", 3);     /* last fragment */
    n += server_frame(buf + n, 0x81, big, sizeof big);
    n += server_frame(buf + n, 0x88, (const unsigned char *)"\x03\xe8", 2); /* close 1000 */
    static const struct {
        int op, fin;
        size_t len;
    } want[] = {{1, 1, 8}, {1, 0, 5}, {9, 1, 1}, {0, 1, 3}, {1, 1, 300}, {8, 1, 2}};

    for (size_t cut = 0; cut <= n; cut++) {
        /* The reader's way: decode what is there, keep the rest, append the next read. */
        unsigned char rbuf[1024];
        size_t have = 0, got = 0, fed = 0;
        for (int read = 0; read < 2; read++) {
            size_t more = read == 0 ? cut : n - cut;
            memcpy(rbuf + have, buf + fed, more);
            fed += more;
            have += more;
            size_t used = 0;
            wsclient_frame_t f;
            int rc;
            while ((rc = wsclient_frame_decode(rbuf + used, have - used, 1 << 20, &f)) == 1) {
                assert_true(got < 6);
                assert_int_equal(f.opcode, want[got].op);
                assert_int_equal(f.fin, want[got].fin);
                assert_int_equal(f.len, want[got].len);
                got++;
                used += f.size;
            }
            assert_int_equal(rc, 0);
            memmove(rbuf, rbuf + used, have - used);
            have -= used;
        }
        assert_int_equal(got, 6);
        assert_int_equal(have, 0);
    }
}

static void masked_server_frame_refused(void **state)
{
    (void)state;
    unsigned char f[16] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    wsclient_frame_t fr;
    assert_int_equal(wsclient_frame_decode(f, 8, 1 << 20, &fr), -EPROTO);
    /* Refused as soon as the first two bytes are there. */
    assert_int_equal(wsclient_frame_decode(f, 2, 1 << 20, &fr), -EPROTO);
}

static void reserved_bits_and_opcodes_refused(void **state)
{
    (void)state;
    wsclient_frame_t fr;
    unsigned char f[8];
    for (unsigned rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
        server_frame(f, 0x81 | rsv, (const unsigned char *)"hi", 2);
        assert_int_equal(wsclient_frame_decode(f, 4, 1 << 20, &fr), -EPROTO);
    }
    for (unsigned op = 0; op < 16; op++) {
        server_frame(f, 0x80 | op, (const unsigned char *)"hi", 2);
        int known = op <= 2 || (op >= 8 && op <= 10);
        assert_int_equal(wsclient_frame_decode(f, 4, 1 << 20, &fr), known ? 1 : -EPROTO);
    }
}

static void control_frames_checked(void **state)
{
    (void)state;
    wsclient_frame_t fr;
    unsigned char f[256], p[126] = {0};
    /* A control frame of 125 bytes is fine, of 126 (16-bit length) is not. */
    size_t n = server_frame(f, 0x89, p, 125);
    assert_int_equal(wsclient_frame_decode(f, n, 1 << 20, &fr), 1);
    assert_int_equal(fr.opcode, WSCLIENT_OP_PING);
    n = server_frame(f, 0x89, p, 126);
    assert_int_equal(wsclient_frame_decode(f, n, 1 << 20, &fr), -EPROTO);
    assert_int_equal(wsclient_frame_decode(f, 2, 1 << 20, &fr), -EPROTO);
    /* Fragmented control frames. */
    for (unsigned op = 8; op <= 10; op++) {
        n = server_frame(f, op, p, 2);
        assert_int_equal(wsclient_frame_decode(f, n, 1 << 20, &fr), -EPROTO);
    }
}

static void oversize_refused(void **state)
{
    (void)state;
    wsclient_frame_t fr;
    unsigned char f[16];
    /* Said from the header alone, before the payload arrives. */
    server_frame(f, 0x81, NULL, 1001);
    assert_int_equal(wsclient_frame_decode(f, 4, 1000, &fr), -EMSGSIZE);
    server_frame(f, 0x81, NULL, 1000);
    assert_int_equal(wsclient_frame_decode(f, 4, 1000, &fr), 0);
    server_frame(f, 0x81, NULL, (uint64_t)1 << 40);
    assert_int_equal(wsclient_frame_decode(f, 10, 1 << 20, &fr), -EMSGSIZE);
    server_frame(f, 0x81, NULL, UINT64_MAX);
    assert_int_equal(wsclient_frame_decode(f, 10, 1 << 20, &fr), -EMSGSIZE);
    server_frame(f, 0x81, NULL, 126);
    assert_int_equal(wsclient_frame_decode(f, 4, 125, &fr), -EMSGSIZE);
}

/* ---- client frames ---- */

static void client_frames_masked(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 17, 125, 126, 65535, 65536};
    unsigned char *payload = malloc(65536), *out = malloc(65536 + WSCLIENT_FRAME_HEAD_MAX);
    assert_non_null(payload);
    assert_non_null(out);
    for (size_t i = 0; i < 65536; i++)
        payload[i] = (unsigned char)(i * 13);
    uint32_t mask;
    memcpy(&mask, "\x11\x22\x33\x44", 4);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t len = lens[k];
        ssize_t n = wsclient_frame_encode(out, 65536 + WSCLIENT_FRAME_HEAD_MAX, WSCLIENT_OP_TEXT,
                                          payload, len, mask);
        size_t head = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
        assert_int_equal(n, head + 4 + len);
        assert_int_equal(out[0], 0x81);
        assert_int_equal(out[1] & 0x80, 0x80);
        assert_int_equal(out[1] & 0x7f, len < 126 ? len : len <= 0xffff ? 126 : 127);
        uint64_t l = len < 126 ? len : 0;
        for (size_t i = 2; i < head; i++)
            l = l << 8 | out[i];
        assert_int_equal(l, len);
        assert_memory_equal(out + head, "\x11\x22\x33\x44", 4);
        for (size_t i = 0; i < len; i++)
            assert_int_equal(out[head + 4 + i] ^ out[head + (i & 3)], payload[i]);
        /* One byte short. */
        assert_int_equal(
            wsclient_frame_encode(out, (size_t)n - 1, WSCLIENT_OP_TEXT, payload, len, mask),
            -ENOSPC);
    }
    /* A pong, a close with its code. */
    assert_int_equal(wsclient_frame_encode(out, 64, WSCLIENT_OP_PONG, "p", 1, mask), 7);
    assert_int_equal(out[0], 0x8a);
    assert_int_equal(wsclient_frame_encode(out, 64, WSCLIENT_OP_CLOSE, "\x03\xe8", 2, mask), 8);
    assert_int_equal(out[0], 0x88);
    assert_int_equal(out[1], 0x82);
    assert_int_equal(wsclient_frame_encode(out, 64, WSCLIENT_OP_CLOSE, NULL, 0, mask), 6);
    /* A control frame over 125 bytes, or an opcode that is not one. */
    assert_int_equal(wsclient_frame_encode(out, 1024, WSCLIENT_OP_PING, payload, 126, mask),
                     -EINVAL);
    assert_int_equal(wsclient_frame_encode(out, 1024, 3, payload, 1, mask), -EINVAL);
    assert_int_equal(wsclient_frame_encode(out, 1024, 11, payload, 1, mask), -EINVAL);
    free(payload);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_and_accept_of_the_rfc),
        cmocka_unit_test(request_bytes),
        cmocka_unit_test(handshake_ok),
        cmocka_unit_test(handshake_split_at_every_byte),
        cmocka_unit_test(wrong_or_missing_accept_refused),
        cmocka_unit_test(non_101_refused),
        cmocka_unit_test(upgrade_and_connection_checked),
        cmocka_unit_test(malformed_or_oversize_answer_refused),
        cmocka_unit_test(frames_of_each_length_class),
        cmocka_unit_test(frames_split_across_reads),
        cmocka_unit_test(masked_server_frame_refused),
        cmocka_unit_test(reserved_bits_and_opcodes_refused),
        cmocka_unit_test(control_frames_checked),
        cmocka_unit_test(oversize_refused),
        cmocka_unit_test(client_frames_masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
