/* Unit test for replay.c's admission when the database workers' queue is full (the REST API
 * filled it): a replay that cannot queue its page waits for its turn, its client neither refused
 * nor closed (today's 1011 "too many database requests waiting" was a storm amplifier), and
 * replay_cancel takes it out of the line. The pool is real; its one worker is held in connecting
 * to a loopback listener that never answers, and the one queue slot is taken by another job. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "dbpool.h"
#include "fanout.h"
#include "metrics.h"
#include "replay.h"

static int completed;

static void job_run(dbjob_t *job, PGconn *conn)
{
    (void)job;
    (void)conn;
}

static void job_done(dbjob_t *job)
{
    (void)job;
    completed++;
}

static void wake_none(void *user)
{
    (void)user;
}

/* The value of a gauge in the rendered metrics, or -1. */
static long gauge(metrics_t *m, const char *name)
{
    buf_t b;
    buf_init(&b, 0);
    long v = -1;
    if (!metrics_render(m, &b)) {
        char key[128];
        snprintf(key, sizeof key, "\n%s ", name);
        const char *p = strstr(b.data, key);
        if (p)
            v = strtol(p + strlen(key), NULL, 10);
    }
    buf_free(&b);
    return v;
}

static void test_a_full_pool_queue_makes_a_replay_wait_not_close(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 8), 0); /* connections complete in the backlog, never answered */
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    char conninfo[128], err[256];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d connect_timeout=60",
             ntohs(a.sin_port));

    metrics_t *m = metrics_new();
    dbpool_options_t po = {.conninfo = conninfo, .threads = 1, .max_jobs = 1};
    dbpool_t *pool = dbpool_new(&po, err, sizeof err);
    assert_non_null(pool);
    dbjob_t blocker = {.run = job_run, .done = job_done};
    dbjob_t filler = {.run = job_run, .done = job_done};
    assert_int_equal(dbpool_submit(pool, &blocker), 0);
    /* The filler fits once the worker has taken the blocker (and hangs connecting). */
    for (int i = 0; dbpool_submit(pool, &filler); i++) {
        assert_true(i < 10000);
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }

    fanout_options_t fo = {.max_queue = 1 << 20, .wake = wake_none, .metrics = m};
    fanout_t *f = fanout_new(&fo);
    fanout_position(f, 100, 1);
    replayer_options_t ro = {
        .fanout = f, .pool = pool, .max_queue = 1 << 20, .max_active = 2, .metrics = m};
    replayer_t *rp = replayer_new(&ro);
    fanout_client_t c;
    memset(&c, 0, sizeof c);
    fanout_add(f, &c, NULL);
    replay_t *slot = NULL;
    assert_int_equal(replay_start(rp, &c, &c.filter, 10, &slot), 0);
    assert_non_null(slot);             /* still replaying */
    assert_int_equal(c.close_code, 0); /* not closed */
    assert_int_equal(gauge(m, "adw_gateway_replays_waiting"), 1);
    assert_int_equal(gauge(m, "adw_gateway_replays_active"), 0);
    replayer_pump(rp); /* the queue is still full: it keeps its place */
    assert_int_equal(gauge(m, "adw_gateway_replays_waiting"), 1);
    assert_int_equal(c.close_code, 0);

    /* A client at the position needs no read, whatever the queue. */
    fanout_client_t d;
    memset(&d, 0, sizeof d);
    fanout_add(f, &d, NULL);
    replay_t *dslot = NULL;
    assert_int_equal(replay_start(rp, &d, &d.filter, 100, &dslot), 0);
    assert_null(dslot);
    assert_int_equal(d.close_code, 0);
    assert_non_null(fanout_peek(&d)); /* its "replayed" message */

    replay_cancel(&slot);
    assert_null(slot);
    assert_int_equal(gauge(m, "adw_gateway_replays_waiting"), 0);

    close(ls); /* the hanging connection is reset: the worker lets go */
    dbpool_destroy(&pool);
    assert_int_equal(completed, 2);
    fanout_remove(f, &c);
    fanout_remove(f, &d);
    replayer_destroy(&rp);
    fanout_destroy(&f);
    metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_full_pool_queue_makes_a_replay_wait_not_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
