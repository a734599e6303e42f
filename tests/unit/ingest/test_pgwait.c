/* Unit tests for shared/server/pgwait (linked through adw_ingest_core): the bounded wait for
 * PostgreSQL, against a fake server on a loopback port that speaks just enough of the
 * protocol (startup, then a scripted answer to one simple query). Covers: PQexec's choice of
 * result (the first error, else the last), the deadline per result or per query, and a silent
 * server dropped past the bound. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pgwait.h"
#include "timefmt.h"

/* One message the fake server sends, after a pause. */
typedef struct step_t {
    int delay_ms;
    char type;        /* 'C' CommandComplete, 'E' ErrorResponse, 'Z' ReadyForQuery */
    const char *text; /* C: the tag; E: the message */
} step_t;

/* One of these per test: the listening socket and the script of the answer. */
typedef struct fake_t {
    int lfd;
    int port;
    pthread_t thread;
    const step_t *steps;
    size_t nsteps;
} fake_t;

static int read_full(int fd, void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Sends a message of type t with body[0..len). A client gone is not an error here (it may have
 * dropped the connection at its bound). */
static void send_msg(int fd, char t, const void *body, size_t len)
{
    unsigned char msg[512] = {(unsigned char)t};
    put32(msg + 1, (uint32_t)(len + 4));
    memcpy(msg + 5, body, len);
    ssize_t rc = send(fd, msg, len + 5, MSG_NOSIGNAL);
    (void)rc;
}

static void send_step(int fd, const step_t *s)
{
    char body[256];
    size_t n = 0;
    switch (s->type) {
    case 'C':
        n = (size_t)snprintf(body, sizeof body, "%s", s->text) + 1;
        break;
    case 'E':
        n = (size_t)snprintf(body, sizeof body, "SERROR%cVERROR%cC22000%cM%s%c", 0, 0, 0, s->text,
                             0) +
            1;
        body[n - 1] = '\0';
        break;
    case 'Z':
        body[0] = 'I';
        n = 1;
        break;
    }
    send_msg(fd, s->type, body, n);
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    unsigned char len[4], buf[1024];
    /* The startup packet: its length, then the rest. */
    if (read_full(fd, len, 4))
        goto done;
    uint32_t n = (uint32_t)len[0] << 24 | (uint32_t)len[1] << 16 | (uint32_t)len[2] << 8 | len[3];
    if (n < 8 || n - 4 > sizeof buf || read_full(fd, buf, n - 4))
        goto done;
    unsigned char auth_ok[4] = {0};
    send_msg(fd, 'R', auth_ok, 4);
    send_msg(fd, 'Z', "I", 1);
    /* The query: type, length, body. */
    if (read_full(fd, buf, 5))
        goto done;
    n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
    if (n < 4 || n - 4 > sizeof buf || read_full(fd, buf, n - 4))
        goto done;
    for (size_t i = 0; i < f->nsteps; i++) {
        struct timespec ts = {0, (long)f->steps[i].delay_ms * 1000000L};
        nanosleep(&ts, NULL);
        send_step(fd, &f->steps[i]);
    }
    /* Then silence until the client goes. */
    while (read(fd, buf, sizeof buf) > 0)
        ;
done:
    close(fd);
    return NULL;
}

static void fake_start(fake_t *f, const step_t *steps, size_t nsteps)
{
    f->steps = steps;
    f->nsteps = nsteps;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 1), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static PGconn *fake_connect(const fake_t *f)
{
    char conninfo[200];
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%d user=t dbname=t sslmode=disable gssencmode=disable "
             "connect_timeout=5",
             f->port);
    PGconn *c = PQconnectdb(conninfo);
    assert_non_null(c);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connecting to the fake server: %s", PQerrorMessage(c));
    return c;
}

static void fake_stop(fake_t *f, PGconn *c)
{
    PQfinish(c);
    pthread_join(f->thread, NULL);
    close(f->lfd);
}

/* Runs "SELECT 1" against a server answering with steps; returns the result and the time it
 * took in ms. */
static PGresult *run(const step_t *steps, size_t nsteps, const pgwait_t *w, int64_t *ms,
                     ConnStatusType *status)
{
    fake_t f;
    fake_start(&f, steps, nsteps);
    PGconn *c = fake_connect(&f);
    int64_t t0 = timefmt_mono_us();
    PGresult *r = pgwait_exec(c, w, "SELECT 1");
    *ms = (timefmt_mono_us() - t0) / 1000;
    *status = PQstatus(c);
    fake_stop(&f, c);
    return r;
}

static void test_last_result(void **state)
{
    (void)state;
    static const step_t steps[] = {{0, 'C', "SET"}, {0, 'C', "SELECT 1"}, {0, 'Z', NULL}};
    const pgwait_t w = {.who = "test", .timeout_ms = 2000, .each_result = 1};
    int64_t ms;
    ConnStatusType st;
    PGresult *r = run(steps, 3, &w, &ms, &st);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "SELECT 1");
    assert_int_equal(st, CONNECTION_OK);
    PQclear(r);
}

static void test_first_error(void **state)
{
    (void)state;
    static const step_t steps[] = {
        {0, 'C', "SET"}, {0, 'E', "first"}, {0, 'E', "second"}, {0, 'C', "SET"}, {0, 'Z', NULL}};
    const pgwait_t w = {.who = "test", .timeout_ms = 2000, .each_result = 0};
    int64_t ms;
    ConnStatusType st;
    PGresult *r = run(steps, 5, &w, &ms, &st);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), "first");
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22000");
    assert_int_equal(st, CONNECTION_OK);
    PQclear(r);
}

/* Two results 400 ms apart, bound 700 ms: each in time, the whole not. */
static const step_t SLOW[] = {{400, 'C', "SET"}, {400, 'C', "SELECT 1"}, {0, 'Z', NULL}};

static void test_bound_each_result(void **state)
{
    (void)state;
    const pgwait_t w = {.who = "test", .timeout_ms = 700, .each_result = 1};
    int64_t ms;
    ConnStatusType st;
    PGresult *r = run(SLOW, 3, &w, &ms, &st);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "SELECT 1");
    assert_int_equal(st, CONNECTION_OK);
    assert_true(ms >= 750);
    PQclear(r);
}

static void test_bound_whole_query(void **state)
{
    (void)state;
    const pgwait_t w = {.who = "test", .timeout_ms = 700, .each_result = 0};
    int64_t ms;
    ConnStatusType st;
    PGresult *r = run(SLOW, 3, &w, &ms, &st);
    /* Dropped at the bound: libpq's error for the lost connection (no SQLSTATE) comes after
     * the first result, and is kept. */
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_null(PQresultErrorField(r, PG_DIAG_SQLSTATE));
    assert_int_equal(st, CONNECTION_BAD);
    assert_true(ms >= 650 && ms < 3000);
    PQclear(r);
}

static void test_silent_server(void **state)
{
    (void)state;
    const pgwait_t w = {.who = "test", .timeout_ms = 300, .each_result = 1};
    int64_t ms;
    ConnStatusType st;
    PGresult *r = run(NULL, 0, &w, &ms, &st);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR); /* libpq's: connection lost */
    assert_null(PQresultErrorField(r, PG_DIAG_SQLSTATE));
    assert_int_equal(st, CONNECTION_BAD);
    assert_true(ms >= 250 && ms < 3000);
    PQclear(r);
}

static void test_not_sent(void **state)
{
    (void)state;
    const pgwait_t w = {.who = "test", .timeout_ms = 300, .each_result = 1};
    assert_null(pgwait_collect(NULL, 0, &w));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_result),       cmocka_unit_test(test_first_error),
        cmocka_unit_test(test_bound_each_result), cmocka_unit_test(test_bound_whole_query),
        cmocka_unit_test(test_silent_server),     cmocka_unit_test(test_not_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
