/* Unit tests for ingest/zparts over a real inproc ZeroMQ pair: a whole message comes back frame
 * by frame, nothing waiting is -EAGAIN, frames past the bound are read and closed (-EMSGSIZE)
 * without spilling into the next message, and the next message is read whole after that. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "zparts.h"

typedef struct pair {
    void *ctx, *tx, *rx;
} pair_t;

static int setup(void **state)
{
    static pair_t p;
    p.ctx = zmq_ctx_new();
    p.rx = zmq_socket(p.ctx, ZMQ_PAIR);
    p.tx = zmq_socket(p.ctx, ZMQ_PAIR);
    if (!p.ctx || !p.rx || !p.tx || zmq_bind(p.rx, "inproc://zparts") ||
        zmq_connect(p.tx, "inproc://zparts"))
        return -1;
    *state = &p;
    return 0;
}

static int teardown(void **state)
{
    pair_t *p = *state;
    int linger = 0;
    zmq_setsockopt(p->tx, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->rx, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(p->tx);
    zmq_close(p->rx);
    zmq_ctx_term(p->ctx);
    return 0;
}

/* Sends frames "f0".."f<n-1>" as one message. */
static void send_frames(void *sock, int n)
{
    for (int i = 0; i < n; i++) {
        char f[8];
        int len = snprintf(f, sizeof f, "f%d", i);
        assert_int_equal(zmq_send(sock, f, (size_t)len, i + 1 < n ? ZMQ_SNDMORE : 0), len);
    }
}

static void assert_frame(zmq_msg_t *m, const char *text)
{
    assert_int_equal(zmq_msg_size(m), strlen(text));
    assert_memory_equal(zmq_msg_data(m), text, strlen(text));
}

static void test_nothing_waiting(void **state)
{
    pair_t *p = *state;
    zmq_msg_t parts[4];
    size_t n = 99;
    assert_int_equal(zparts_recv(p->rx, parts, 4, &n), -EAGAIN);
    assert_int_equal(n, 0);
}

static void test_whole_message(void **state)
{
    pair_t *p = *state;
    send_frames(p->tx, 3);
    zmq_msg_t parts[4];
    size_t n;
    assert_int_equal(zparts_recv(p->rx, parts, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_frame(&parts[0], "f0");
    assert_frame(&parts[2], "f2");
    zparts_close(parts, n);
    assert_int_equal(zparts_recv(p->rx, parts, 4, &n), -EAGAIN);
}

static void test_over_the_bound(void **state)
{
    pair_t *p = *state;
    send_frames(p->tx, 6); /* two over the bound of four */
    send_frames(p->tx, 4); /* exactly the bound */
    zmq_msg_t parts[4];
    size_t n;
    assert_int_equal(zparts_recv(p->rx, parts, 4, &n), -EMSGSIZE);
    assert_int_equal(n, 4);
    assert_frame(&parts[3], "f3");
    zparts_close(parts, n);
    assert_int_equal(zparts_recv(p->rx, parts, 4, &n), 0);
    assert_int_equal(n, 4);
    assert_frame(&parts[0], "f0");
    assert_frame(&parts[3], "f3");
    zparts_close(parts, n);
    assert_int_equal(zparts_recv(p->rx, parts, 4, &n), -EAGAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_waiting),
        cmocka_unit_test(test_whole_message),
        cmocka_unit_test(test_over_the_bound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
