/* Unit tests for gateway/rxguard through recv(2) on a socket pair, as libwebsockets reads:
 * request heads (with and without Upgrade, keep-alive), masked frames of every length form in
 * pieces of any size, and the first unmasked frame: the bytes before it are given, the rest are
 * withheld, and the violation is reported once. And that the guard is built, and interposed,
 * for the libwebsockets installed (before 5.0.0, which takes unmasked frames: see rxguard.h). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <lws_config.h>

#include "rxguard.h"

static int violations;
static void *violation_user;

static void on_violation(void *user)
{
    violations++;
    violation_user = user;
}

#if LWS_LIBRARY_VERSION_MAJOR < 5 /* the guard's behaviour, where it is built */

typedef struct pair {
    int rd, wr;
} pair_t;

static int setup(void **state)
{
    static pair_t p;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
        return -1;
    p.rd = sv[0];
    p.wr = sv[1];
    violations = 0;
    violation_user = NULL;
    if (rxguard_init(on_violation))
        return -1;
    rxguard_watch(p.rd);
    *state = &p;
    return 0;
}

static int teardown(void **state)
{
    pair_t *p = *state;
    close(p->rd);
    close(p->wr);
    rxguard_shutdown();
    return 0;
}

/* Writes the bytes, then reads what the guard lets through: the count (-1 with EAGAIN when
 * nothing) and the bytes in out. */
static ssize_t feed(pair_t *p, const void *data, size_t len, unsigned char *out, size_t cap)
{
    assert_int_equal(write(p->wr, data, len), (ssize_t)len);
    return recv(p->rd, out, cap, 0);
}

/* One client frame: FIN, opcode, masked with key k unless k is NULL, payload of n bytes 'x'. */
static size_t frame(unsigned char *out, int opcode, size_t n, const unsigned char *k)
{
    size_t h = 0;
    out[h++] = (unsigned char)(0x80 | opcode);
    unsigned char m = k ? 0x80 : 0;
    if (n < 126) {
        out[h++] = (unsigned char)(m | n);
    } else if (n < 65536) {
        out[h++] = m | 126;
        out[h++] = (unsigned char)(n >> 8);
        out[h++] = (unsigned char)n;
    } else {
        out[h++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    if (k) {
        memcpy(out + h, k, 4);
        h += 4;
    }
    memset(out + h, 'x', n);
    return h + n;
}

static const char HEAD[] = "GET /ws/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\n\r\n";
static const unsigned char KEY[4] = {1, 2, 3, 4};
static unsigned char buf[300000], out[300000];

static void test_masked_frames_pass_in_any_pieces(void **state)
{
    pair_t *p = *state;
    size_t n = 0;
    memcpy(buf, HEAD, sizeof HEAD - 1);
    n += sizeof HEAD - 1;
    size_t sizes[] = {0, 5, 125, 126, 300, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        n += frame(buf + n, 1, sizes[i], KEY);
    n += frame(buf + n, 9, 3, (const unsigned char *)"\0\0\0\0"); /* zero key: still masked */
    for (size_t step = 1; step <= 4099; step += 1366) {
        rxguard_watch(p->rd);
        size_t got = 0;
        for (size_t off = 0; off < n; off += step) {
            size_t len = off + step <= n ? step : n - off;
            ssize_t r = feed(p, buf + off, len, out + got, sizeof out - got);
            assert_int_equal(r, (ssize_t)len);
            got += (size_t)r;
        }
        assert_int_equal(got, n);
        assert_memory_equal(out, buf, n);
    }
    assert_int_equal(violations, 0);
}

static void test_unmasked_frame_is_cut_off(void **state)
{
    pair_t *p = *state;
    int user;
    size_t n = 0, before;
    memcpy(buf, HEAD, sizeof HEAD - 1);
    n += sizeof HEAD - 1;
    n += frame(buf + n, 1, 200, KEY);
    before = n;
    n += frame(buf + n, 1, 10, NULL);
    n += frame(buf + n, 1, 10, KEY);
    assert_int_equal(rxguard_attach(p->rd, &user), 0);
    ssize_t r = feed(p, buf, n, out, sizeof out);
    assert_int_equal(r, (ssize_t)before);
    assert_memory_equal(out, buf, before);
    assert_int_equal(violations, 1);
    assert_ptr_equal(violation_user, &user);
    /* Whatever follows is withheld, without another report. */
    r = feed(p, buf, 50, out, sizeof out);
    assert_int_equal(r, -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(violations, 1);
    assert_int_equal(rxguard_attach(p->rd, &user), 1);
    /* A new connection on the same descriptor starts afresh. */
    rxguard_watch(p->rd);
    r = feed(p, HEAD, sizeof HEAD - 1, out, sizeof out);
    assert_int_equal(r, (ssize_t)(sizeof HEAD - 1));
}

static void test_mask_bit_in_a_later_read(void **state)
{
    pair_t *p = *state;
    size_t n = frame(buf, 1, 10, NULL);
    assert_int_equal(feed(p, HEAD, sizeof HEAD - 1, out, sizeof out), (ssize_t)(sizeof HEAD - 1));
    assert_int_equal(feed(p, buf, 1, out, sizeof out), 1); /* not known yet */
    assert_int_equal(feed(p, buf + 1, n - 1, out, sizeof out), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(violations, 0); /* no user attached: reported through rxguard_attach */
    int user;
    assert_int_equal(rxguard_attach(p->rd, &user), 1);
}

static void test_heads_without_upgrade_are_not_frames(void **state)
{
    pair_t *p = *state;
    static const char two[] = "GET /healthz HTTP/1.1\r\nX-Upgrade: websocket\r\n\r\n"
                              "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    /* The second head starts "GE": as a frame header, unmasked; as a head it passes. */
    assert_int_equal(feed(p, two, sizeof two - 1, out, sizeof out), (ssize_t)(sizeof two - 1));
    /* Then an upgrade whose first frame comes in the same read, unmasked. */
    size_t n = sizeof HEAD - 1;
    memcpy(buf, HEAD, n);
    size_t f = frame(buf + n, 8, 2, NULL);
    assert_int_equal(feed(p, buf, n + f, out, sizeof out), (ssize_t)n);
    int user;
    assert_int_equal(rxguard_attach(p->rd, &user), 1);
}

static void test_unwatched_and_peeking_reads_pass(void **state)
{
    pair_t *p = *state;
    unsigned char bad[16];
    size_t n = frame(bad, 1, 3, NULL);
    int other[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, other), 0);
    assert_int_equal(write(other[1], bad, n), (ssize_t)n);
    assert_int_equal(recv(other[0], out, sizeof out, 0), (ssize_t)n); /* not watched */
    close(other[0]);
    close(other[1]);
    assert_int_equal(feed(p, HEAD, sizeof HEAD - 1, out, sizeof out), (ssize_t)(sizeof HEAD - 1));
    assert_int_equal(write(p->wr, bad, n), (ssize_t)n);
    assert_int_equal(recv(p->rd, out, sizeof out, MSG_PEEK), (ssize_t)n); /* flags: as is */
    assert_int_equal(violations, 0);
}

#endif

/* The guard is built exactly for the libwebsockets that accept unmasked client frames (every
 * release before 5.0.0, the one this test was compiled against included), and there its recv
 * and SSL_read are the ones shared libraries call. */
static void test_built_for_this_libwebsockets(void **state)
{
    (void)state;
#if LWS_LIBRARY_VERSION_MAJOR < 5
    assert_int_equal(rxguard_active(), 1);
    assert_int_equal(rxguard_init(on_violation), 0); /* -ENOTSUP when not interposed */
    rxguard_shutdown();
#else
    assert_int_equal(rxguard_active(), 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_built_for_this_libwebsockets),
#if LWS_LIBRARY_VERSION_MAJOR < 5
        cmocka_unit_test_setup_teardown(test_masked_frames_pass_in_any_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmasked_frame_is_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mask_bit_in_a_later_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heads_without_upgrade_are_not_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwatched_and_peeking_reads_pass, setup, teardown),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
