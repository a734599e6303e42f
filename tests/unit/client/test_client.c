/* Unit tests for the client library: event ids, CURVE certificate files, the spool, and both
 * transports against in-process peers (a libzmq ROUTER, plain or CURVE, a scripted HTTP
 * server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "adw_limits.h"
#include "client.h"
#include "client_wire.h"
#include "codec.h"
#include "spool.h"
#include "timefmt.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s: %s", text, jerr.text);
    return j;
}

static json_t *event(const char *summary)
{
    json_t *e = parse("{\"type\":\"adw_event\",\"adw_id\":\"u1\",\"event_type\":\"TextBlock\"}");
    json_object_set_new(e, "summary", json_string(summary));
    return e;
}

/* A fresh empty directory under /tmp; the caller removes it with rm_rf. */
static void temp_dir(char *out, size_t len)
{
    snprintf(out, len, "/tmp/adw-test-client-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- event ids ---- */

static void test_event_id_is_32_hex_and_unique(void **state)
{
    (void)state;
    char prev[CLIENT_EVENT_ID_LEN + 1] = "";
    for (int i = 0; i < 1000; i++) {
        char id[CLIENT_EVENT_ID_LEN + 1];
        client_event_id_new(id);
        assert_int_equal(strlen(id), 32);
        assert_int_equal(strspn(id, "0123456789abcdef"), 32);
        assert_string_not_equal(id, prev);
        memcpy(prev, id, sizeof id);
    }
}

static void test_prepare_adds_id_and_timestamp_and_keeps_given_ones(void **state)
{
    (void)state;
    json_t *e = event("x");
    assert_int_equal(client_event_prepare(e, 1767225600123456LL), 0);
    assert_int_equal(strlen(json_string_value(json_object_get(e, "event_id"))), 32);
    assert_string_equal(json_string_value(json_object_get(e, "timestamp")),
                        "2026-01-01T00:00:00.123456Z");
    json_decref(e);

    e = parse("{\"event_id\":\"mine\",\"timestamp\":\"2026-01-01T14:30:00Z\"}");
    assert_int_equal(client_event_prepare(e, 0), 0);
    assert_string_equal(json_string_value(json_object_get(e, "event_id")), "mine");
    assert_string_equal(json_string_value(json_object_get(e, "timestamp")), "2026-01-01T14:30:00Z");
    json_decref(e);

    e = parse("{\"event_id\":null}"); /* null means absent */
    assert_int_equal(client_event_prepare(e, 0), 0);
    assert_true(json_is_string(json_object_get(e, "event_id")));
    json_decref(e);

    e = parse("[1]");
    assert_int_equal(client_event_prepare(e, 0), -EINVAL);
    json_decref(e);
}

/* ---- answers ---- */

static void test_wire_ids(void **state)
{
    (void)state;
    int64_t ids[3];
    char err[128];
    json_t *a = parse("{\"ok\":true,\"ids\":[7,8,9]}");
    assert_int_equal(client_wire_ids(a, 3, ids, err, sizeof err), 0);
    assert_int_equal(ids[2], 9);
    assert_int_equal(client_wire_ids(a, 2, ids, err, sizeof err), -EPROTO);
    json_decref(a);
    a = parse("{\"status\":\"broadcasted\",\"id\":42}");
    assert_int_equal(client_wire_ids(a, 1, ids, err, sizeof err), 0);
    assert_int_equal(ids[0], 42);
    json_decref(a);
    a = parse("{\"ids\":[1,\"2\"]}");
    assert_int_equal(client_wire_ids(a, 2, ids, err, sizeof err), -EPROTO);
    json_decref(a);
}

static void test_client_new_checks_urls_and_endpoints(void **state)
{
    (void)state;
    static const char *bad_urls[] = {"https://",   "ftp://x",        "http://",     "http://:80",
                                     "http://h:0", "http://h:99999", "http://h:8a", "http://[::1",
                                     "http://u@h", "http://h/a?b",   "http://h/a b"};
    static const char *bad_eps[] = {"udp://h:1",     "tcp://h", "tcp://:5",   "tcp://h:x",
                                    "tcp://h:70000", "ipc://",  "inproc://x", "nothing"};
    char err[CLIENT_ERR_LEN];
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        client_options_t o = {.http_url = bad_urls[i]};
        err[0] = '\0';
        client_t *c = client_new(&o, NULL, err, sizeof err);
        if (c)
            fail_msg("accepted %s", bad_urls[i]);
        assert_true(err[0]);
    }
    /* https: OpenSSL loads at run time; a CA file that cannot be read is refused at once */
    client_options_t ho = {.http_url = "https://127.0.0.1:1", .ca_file = "/nonexistent/ca.pem"};
    err[0] = '\0';
    assert_null(client_new(&ho, NULL, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    ho.ca_file = NULL;
    client_t *hc = client_new(&ho, NULL, err, sizeof err);
    assert_non_null(hc);
    client_destroy(&hc);
    for (size_t i = 0; i < sizeof bad_eps / sizeof bad_eps[0]; i++) {
        client_options_t o = {.zmq_endpoint = bad_eps[i]};
        client_t *c = client_new(&o, NULL, err, sizeof err);
        if (c)
            fail_msg("accepted %s", bad_eps[i]);
    }
    static const char *good[] = {"tcp://127.0.0.1:5555",
                                 "tcp://[::1]:5555",
                                 "tcp://*:5555",
                                 "tcp://0.0.0.0:1",
                                 "tcp://localhost:80",
                                 "ipc:///tmp/x.sock",
                                 NULL};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        client_options_t o = {.zmq_endpoint = good[i]};
        client_t *c = client_new(&o, NULL, err, sizeof err);
        if (!c)
            fail_msg("refused %s: %s", good[i] ? good[i] : "(default)", err);
        client_destroy(&c);
        assert_null(c);
    }
    client_options_t o = {.http_url = "http://h:8000/base/", .token = "bad token"};
    client_err_t code = CLIENT_ERR_NONE;
    assert_null(client_new(&o, &code, err, sizeof err));
    assert_int_equal(code, CLIENT_ERR_CONFIG); /* a usage error, not out of memory */
    o.token = "good";
    client_t *c = client_new(&o, &code, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(code, CLIENT_ERR_NONE);
    client_destroy(&c);
    client_destroy(&c); /* NULL is fine */
    client_destroy(NULL);
}

/* ---- the spool ---- */

static void test_spool_orders_by_time_made_then_call_order(void **state)
{
    (void)state;
    char dir[64], sub[128], err[256];
    temp_dir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/a/b/spool", dir); /* created on the first put */
    spool_t *s = spool_open(sub, 0);
    assert_non_null(s);
    assert_int_equal(spool_pending(s), 0);
    assert_int_equal(spool_count(s), 0);
    static const int64_t made[] = {3000, 1000, 2000, 2000, 2000};
    static const char *sum[] = {"third", "first", "second-a", "second-b", "second-c"};
    for (int i = 0; i < 5; i++) {
        json_t *e = event(sum[i]);
        assert_int_equal(spool_put(s, e, made[i], err, sizeof err), 0);
        json_decref(e);
    }
    assert_int_equal(spool_pending(s), 1);
    assert_int_equal(spool_count(s), 5);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char(*names)[SPOOL_NAME_LEN] = NULL;
    size_t n = 0;
    assert_int_equal(spool_list(s, &names, &n), 0);
    assert_int_equal(n, 5);
    static const char *want[] = {"first", "second-a", "second-b", "second-c", "third"};
    for (size_t i = 0; i < n; i++) {
        json_t *e = NULL;
        assert_int_equal(spool_read(s, names[i], &e, err, sizeof err), 0);
        assert_string_equal(json_string_value(json_object_get(e, "summary")), want[i]);
        json_decref(e);
    }
    assert_int_equal(spool_remove(s, names[0]), 0);
    assert_int_equal(spool_remove(s, names[0]), 0); /* already gone: fine */
    json_t *gone = NULL;
    assert_int_equal(spool_read(s, names[0], &gone, err, sizeof err), -ENOENT);
    assert_int_equal(spool_reject(s, names[1]), 0);
    char rej[256];
    snprintf(rej, sizeof rej, "%s/rejected/%s", sub, names[1]);
    assert_int_equal(access(rej, F_OK), 0);
    assert_int_equal(spool_count(s), 3);
    free(names);
    spool_close(&s);
    assert_null(s);
    rm_rf(dir);
}

static void test_spool_bound_bad_files_and_stale_tmp(void **state)
{
    (void)state;
    char dir[64], path[256], err[256];
    temp_dir(dir, sizeof dir);
    spool_t *s = spool_open(dir, 2);
    json_t *e = event("x");
    assert_int_equal(spool_put(s, e, 1, err, sizeof err), 0);
    assert_int_equal(spool_put(s, e, 2, err, sizeof err), 0);
    assert_int_equal(spool_put(s, e, 3, err, sizeof err), -ENOSPC);
    assert_non_null(strstr(err, "full"));
    json_decref(e);

    snprintf(path, sizeof path, "%s/e-0000000000000000000-0000000000-00000000.json", dir);
    FILE *f = fopen(path, "w");
    fputs("[1,2]", f);
    fclose(f);
    json_t *v = NULL;
    assert_int_equal(
        spool_read(s, "e-0000000000000000000-0000000000-00000000.json", &v, err, sizeof err),
        -EINVAL);
    assert_null(v);

    /* A stale .tmp file goes when the lock holder lists; a fresh one stays. */
    char stale[256], fresh[256];
    snprintf(stale, sizeof stale, "%s/.tmp-1-1-1", dir);
    snprintf(fresh, sizeof fresh, "%s/.tmp-1-2-1", dir);
    fclose(fopen(stale, "w"));
    fclose(fopen(fresh, "w"));
    struct timeval old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    assert_int_equal(utimes(stale, old), 0);
    char(*names)[SPOOL_NAME_LEN] = NULL;
    size_t n = 0;
    assert_int_equal(spool_list(s, &names, &n), 0);
    free(names);
    assert_int_equal(access(stale, F_OK), 0); /* not locked: left alone */
    assert_int_equal(spool_lock(s, timefmt_mono_us() + 100000), 0);
    assert_true(spool_locked(s));
    assert_int_equal(spool_list(s, &names, &n), 0);
    assert_int_equal(n, 3);
    free(names);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(fresh, F_OK), 0);
    spool_close(&s); /* releases the lock */
    rm_rf(dir);
    assert_null(spool_open("", 0));
}

static void test_spool_lock_waits_until_the_deadline(void **state)
{
    (void)state;
    char dir[64], path[128];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/.lock", dir);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    if (pid == 0) { /* holds the lock for 300 ms */
        int fd = open(path, O_RDWR | O_CREAT, 0600);
        flock(fd, LOCK_EX);
        char c = 'x';
        (void)!write(pipefd[1], &c, 1);
        usleep(300000);
        _exit(0);
    }
    char c;
    assert_int_equal(read(pipefd[0], &c, 1), 1);
    spool_t *s = spool_open(dir, 0);
    int64_t t0 = timefmt_mono_us();
    assert_int_equal(spool_lock(s, t0 + 50000), -ETIMEDOUT);
    assert_true(timefmt_mono_us() - t0 >= 50000);
    assert_false(spool_locked(s));
    assert_int_equal(spool_lock(s, timefmt_mono_us() + 10000000), 0); /* once it lets go */
    assert_true(spool_locked(s));
    spool_unlock(s);
    assert_false(spool_locked(s));
    int status;
    waitpid(pid, &status, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    spool_close(&s);
    rm_rf(dir);
}

/* ---- the ZeroMQ transport against a libzmq ROUTER ---- */

/* One of these per scripted ROUTER: answers each request with the next reply (JSON text
 * packed as msgpack), "" meaning no answer at all. */
typedef struct router_t {
    void *ctx, *sock;
    char endpoint[128];
    const char *replies[8];
    int nreplies;
    int got;       /* requests received */
    json_t *first; /* the first request, decoded */
    json_t *last;  /* the last one */
    pthread_t thread;
} router_t;

static void *router_main(void *arg)
{
    router_t *r = arg;
    for (int i = 0; i < r->nreplies; i++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, r->sock, 0) < 0 || zmq_msg_recv(&body, r->sock, 0) < 0)
            break;
        json_decref(r->last);
        r->last = NULL;
        char err[128];
        codec_msgpack_decode(zmq_msg_data(&body), zmq_msg_size(&body), &r->last, err, sizeof err);
        if (!r->got++)
            r->first = json_incref(r->last);
        if (r->replies[i][0]) {
            json_t *j = parse(r->replies[i]);
            buf_t b;
            buf_init(&b, 0);
            codec_msgpack_to_buf(&b, j);
            zmq_msg_send(&id, r->sock, ZMQ_SNDMORE);
            zmq_send(r->sock, b.data, b.len, 0);
            buf_free(&b);
            json_decref(j);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    return NULL;
}

static void router_start(router_t *r)
{
    r->ctx = zmq_ctx_new();
    r->sock = zmq_socket(r->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(r->sock, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof r->endpoint;
    zmq_getsockopt(r->sock, ZMQ_LAST_ENDPOINT, r->endpoint, &len);
    pthread_create(&r->thread, NULL, router_main, r);
}

/* Joins the thread and closes the socket; r->last stays for the test to look at. */
static void router_stop(router_t *r)
{
    pthread_join(r->thread, NULL);
    zmq_close(r->sock);
    zmq_ctx_term(r->ctx);
}

static void test_zmq_send_and_every_kind_of_answer(void **state)
{
    (void)state;
    router_t r = {.replies = {"{\"ok\":true,\"ids\":[5,6]}",
                              "{\"ok\":false,\"error\":\"event 1: bad\",\"index\":1}",
                              "{\"ok\":false,\"error\":\"database unavailable\",\"retry\":true}",
                              "{\"ok\":true,\"ids\":[1]}", "", "{\"ok\":true}"},
                  .nreplies = 6};
    router_start(&r);
    client_options_t o = {.zmq_endpoint = r.endpoint};
    char err[CLIENT_ERR_LEN];
    client_t *c = client_new(&o, NULL, err, sizeof err);
    assert_non_null(c);
    json_t *two = json_array();
    json_array_append_new(two, event("a"));
    json_array_append_new(two, event("b"));
    int64_t ids[2] = {0, 0};
    long index = 99;
    assert_int_equal(client_send(c, two, 5000, ids, &index, err, sizeof err), 0);
    assert_int_equal(ids[0], 5);
    assert_int_equal(ids[1], 6);
    /* What the ROUTER got: the events with ids and timestamps added. */
    assert_int_equal(json_array_size(r.last), 2);
    assert_int_equal(
        strlen(json_string_value(json_object_get(json_array_get(r.last, 0), "event_id"))), 32);
    assert_int_equal(client_send(c, two, 5000, ids, &index, err, sizeof err), -EINVAL);
    assert_int_equal(index, 1);
    assert_non_null(strstr(err, "event 1: bad"));
    assert_int_equal(client_send(c, two, 5000, ids, &index, err, sizeof err), -EAGAIN);
    assert_int_equal(index, -1);
    /* The connection is kept across requests. */
    json_t *one = event("c");
    assert_int_equal(client_send(c, one, 5000, ids, NULL, err, sizeof err), 0);
    assert_int_equal(ids[0], 1);
    int64_t t0 = timefmt_mono_us();
    assert_int_equal(client_send(c, one, 200, ids, NULL, err, sizeof err), -ETIMEDOUT);
    int64_t took = timefmt_mono_us() - t0;
    assert_true(took >= 190000 && took < 10000000); /* never long past the timeout */
    /* A new connection after the timeout; an answer without ids is a protocol error. */
    assert_int_equal(client_send(c, one, 5000, ids, NULL, err, sizeof err), -EPROTO);
    assert_int_equal(r.got, 6);
    json_t *none = json_array();
    assert_int_equal(client_send(c, none, 100, ids, NULL, err, sizeof err), -EINVAL);
    json_decref(none);
    json_decref(one);
    json_decref(two);
    client_destroy(&c);
    router_stop(&r);
    json_decref(r.first);
    json_decref(r.last);
}

static void test_zmq_refused_at_once_and_not_a_zmq_peer(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    char ep[64], err[CLIENT_ERR_LEN];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    client_options_t o = {.zmq_endpoint = ep};
    client_t *c = client_new(&o, NULL, err, sizeof err);
    json_t *e = event("x");
    int64_t t0 = timefmt_mono_us();
    assert_int_equal(client_send(c, e, 20000, NULL, NULL, err, sizeof err), -ECONNREFUSED);
    assert_true(timefmt_mono_us() - t0 < 5000000); /* at once, not at the 20 s timeout */
    /* Something that speaks another protocol. */
    listen(ls, 4);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = accept(ls, NULL, NULL);
        const char junk[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
                            "..............................................................";
        (void)!write(fd, junk, sizeof junk - 1);
        usleep(500000);
        _exit(0);
    }
    assert_int_equal(client_send(c, e, 5000, NULL, NULL, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "ZMTP"));
    waitpid(pid, NULL, 0);
    close(ls);
    json_decref(e);
    client_destroy(&c);
}

static void test_zmq_oversize_answer_is_refused_and_the_next_request_works(void **state)
{
    (void)state;
    /* An answer of more than 1 MiB: the socket drops the connection rather than take it. */
    size_t big = (1u << 20) + 100;
    char *huge = malloc(big + 64);
    assert_non_null(huge);
    int n = snprintf(huge, 64, "{\"ok\":true,\"ids\":[1],\"pad\":\"");
    memset(huge + n, 'x', big);
    strcpy(huge + n + big, "\"}");
    router_t r = {.replies = {huge, "{\"ok\":true,\"ids\":[2]}"}, .nreplies = 2};
    router_start(&r);
    client_options_t o = {.zmq_endpoint = r.endpoint};
    char err[CLIENT_ERR_LEN];
    client_t *c = client_new(&o, NULL, err, sizeof err);
    json_t *e = event("x");
    int64_t id = 0;
    int64_t t0 = timefmt_mono_us();
    int rc = client_send(c, e, 3000, &id, NULL, err, sizeof err);
    if (rc != -ECONNRESET)
        fail_msg("rc %d: %s", rc, err);
    assert_true(timefmt_mono_us() - t0 < 2500000); /* at once, not at the timeout */
    assert_non_null(strstr(err, "closed the connection"));
    assert_int_equal(client_send(c, e, 3000, &id, NULL, err, sizeof err), 0);
    assert_int_equal(id, 2);
    router_stop(&r);
    json_decref(r.first);
    json_decref(r.last);
    json_decref(e);
    client_destroy(&c);
    free(huge);
}

/* ---- CURVE: certificate files and a libzmq CURVE server ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_certificates_as_zcert_and_pyzmq_write_them(void **state)
{
    (void)state;
    char dir[64], path[256], err[256];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.cert", dir);
    assert_int_equal(client_cert_make(path, err, sizeof err), 0);
    struct stat st;
    char secret[300];
    snprintf(secret, sizeof secret, "%s_secret", path);
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(client_cert_make(path, err, sizeof err), -EEXIST);

    char pub[41], sec[41], pub2[41];
    assert_int_equal(client_cert_load(path, pub, sec, err, sizeof err), 0);
    /* libzmq takes the pair: the public key is the secret key's. */
    char derived[41];
    assert_int_equal(zmq_curve_public(derived, sec), 0);
    assert_string_equal(derived, pub);
    /* The public file alone gives the same public key and no secret. */
    assert_int_equal(unlink(secret), 0);
    assert_int_equal(client_cert_load(path, pub2, NULL, err, sizeof err), 0);
    assert_string_equal(pub, pub2);
    assert_int_equal(client_cert_load(path, pub2, sec, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "secret"));

    /* Single quotes, no spaces, comments, a metadata section with look-alike names. */
    char pt[41], st_[41];
    assert_int_equal(zmq_curve_keypair(pt, st_), 0);
    char text[600];
    snprintf(text, sizeof text,
             "#   comment\n\nmetadata\n    public-key = \"not a key\"\ncurve\n"
             "    public-key = '%s'\n    secret-key=\"%s\" # a comment\n",
             pt, st_);
    snprintf(path, sizeof path, "%s/b.key", dir);
    write_file(path, text);
    assert_int_equal(client_cert_load(path, pub, sec, err, sizeof err), 0);
    assert_string_equal(pub, pt);
    assert_string_equal(sec, st_);

    /* Not Z85, or not 40 characters: no key. */
    snprintf(path, sizeof path, "%s/c.key", dir);
    write_file(path, "curve\n    public-key = \"short\"\n");
    assert_int_equal(client_cert_load(path, pub, NULL, err, sizeof err), -EINVAL);
    snprintf(text, sizeof text, "curve\n    public-key = \"%.35s#####\"\n", pt);
    write_file(path, text); /* "#####" is 85^5 - 1, over 32 bits */
    assert_int_equal(client_cert_load(path, pub, NULL, err, sizeof err), -EINVAL);
    snprintf(text, sizeof text, "curve\n    public-key = \"%.39s \"\n", pt);
    write_file(path, text);
    assert_int_equal(client_cert_load(path, pub, NULL, err, sizeof err), -EINVAL);
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(client_cert_load(path, pub, NULL, err, sizeof err), -ENOENT);
    rm_rf(dir);
}

/* One of these per CURVE server: a ROUTER answering every request with {"ok":true,"ids":[n]}
 * until its context shuts down. */
typedef struct curve_server_t {
    void *ctx, *sock;
    char endpoint[64];
    int replies;
    pthread_t thread;
} curve_server_t;

static void *curve_serve(void *arg)
{
    curve_server_t *s = arg;
    for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, s->sock, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            break;
        }
        zmq_msg_recv(&body, s->sock, 0);
        s->replies++;
        unsigned char ans[] = {
            0x82, 0xa2, 'o', 'k', 0xc3, 0xa3, 'i', 'd', 's', 0x91, (unsigned char)s->replies};
        zmq_msg_send(&id, s->sock, ZMQ_SNDMORE);
        zmq_send(s->sock, ans, sizeof ans, 0);
        zmq_msg_close(&body);
    }
    zmq_close(s->sock); /* ETERM: the context is shutting down */
    return NULL;
}

static void test_curve_with_a_libzmq_server_right_and_wrong_keys(void **state)
{
    (void)state;
    char dir[64], server[256], client[256], other[256], err[CLIENT_ERR_LEN];
    temp_dir(dir, sizeof dir);
    snprintf(server, sizeof server, "%s/server.cert", dir);
    snprintf(client, sizeof client, "%s/client.cert", dir);
    snprintf(other, sizeof other, "%s/other.cert", dir);
    assert_int_equal(client_cert_make(server, err, sizeof err), 0);
    assert_int_equal(client_cert_make(client, err, sizeof err), 0);
    assert_int_equal(client_cert_make(other, err, sizeof err), 0);
    char spub[41], ssec[41];
    assert_int_equal(client_cert_load(server, spub, ssec, err, sizeof err), 0);

    curve_server_t s = {0};
    s.ctx = zmq_ctx_new();
    s.sock = zmq_socket(s.ctx, ZMQ_ROUTER);
    int on = 1, zero = 0;
    zmq_setsockopt(s.sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s.sock, ZMQ_CURVE_SERVER, &on, sizeof on);
    zmq_setsockopt(s.sock, ZMQ_CURVE_SECRETKEY, ssec, 40);
    assert_int_equal(zmq_bind(s.sock, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof s.endpoint;
    zmq_getsockopt(s.sock, ZMQ_LAST_ENDPOINT, s.endpoint, &len);
    pthread_create(&s.thread, NULL, curve_serve, &s);

    /* The right keys: several requests on one connection, then a big one. */
    client_options_t o = {.zmq_endpoint = s.endpoint, .curve_server = server, .curve_cert = client};
    client_t *c = client_new(&o, NULL, err, sizeof err);
    assert_non_null(c);
    json_t *ev = event("a");
    int64_t id = 0;
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(client_send(c, ev, 3000, &id, NULL, err, sizeof err), 0);
        assert_int_equal(id, i);
    }
    char summary[2000];
    memset(summary, 'x', sizeof summary - 1);
    summary[sizeof summary - 1] = '\0';
    json_t *big = event(summary);
    assert_int_equal(client_send(c, big, 3000, &id, NULL, err, sizeof err), 0);
    assert_int_equal(id, 4);
    json_decref(big);
    client_destroy(&c);

    /* Holding another server key: the server cannot open our HELLO and hangs up; refused
     * well within the timeout. */
    o.curve_server = other;
    c = client_new(&o, NULL, err, sizeof err);
    int64_t t0 = timefmt_mono_us();
    int rc = client_send(c, ev, 2000, &id, NULL, err, sizeof err);
    assert_true(rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EPROTO);
    assert_true(timefmt_mono_us() - t0 < 2500000);
    client_destroy(&c);
    assert_int_equal(s.replies, 4);

    /* A plain client: refused as soon as the greetings' mechanisms differ, saying CURVE. */
    client_options_t plain = {.zmq_endpoint = s.endpoint};
    c = client_new(&plain, NULL, err, sizeof err);
    t0 = timefmt_mono_us();
    rc = client_send(c, ev, 2000, &id, NULL, err, sizeof err);
    assert_true(rc == -EPROTO || rc == -ECONNRESET);
    assert_non_null(strstr(err, "CURVE"));
    assert_true(timefmt_mono_us() - t0 < 1500000);
    client_destroy(&c);
    assert_int_equal(s.replies, 4);

    /* One certificate without the other, or a public one given as ours: refused at once. */
    client_err_t code;
    o.curve_server = NULL;
    assert_null(client_new(&o, &code, err, sizeof err));
    assert_int_equal(code, CLIENT_ERR_CONFIG);
    char pub_only[300];
    snprintf(pub_only, sizeof pub_only, "%s/pub-only.cert", dir);
    char spub_text[300];
    snprintf(spub_text, sizeof spub_text, "curve\n    public-key = \"%s\"\n", spub);
    write_file(pub_only, spub_text);
    o.curve_server = server;
    o.curve_cert = pub_only;
    assert_null(client_new(&o, &code, err, sizeof err));
    assert_int_equal(code, CLIENT_ERR_CONFIG);
    assert_non_null(strstr(err, "secret"));

    json_decref(ev);
    zmq_ctx_shutdown(s.ctx);
    pthread_join(s.thread, NULL);
    zmq_ctx_term(s.ctx);
    rm_rf(dir);
}

/* ---- the HTTP transport against a scripted server ---- */

/* One of these per scripted server: for each accepted connection and request in turn,
 * writes the next canned answer ("" closes the connection without one). */
typedef struct httpd_t {
    int ls, port;
    const char *answers[8];
    int nanswers;
    int close_after[8]; /* close the connection after this answer */
    char last_request[8192];
    int requests;
    pthread_t thread;
} httpd_t;

static int read_request(int fd, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, out + n, cap - n - 1);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        out[n] = '\0';
        char *end = strstr(out, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strstr(out, "Content-Length: ");
        size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
        if (n >= (size_t)(end + 4 - out) + body)
            return 0;
    }
}

static void *httpd_main(void *arg)
{
    httpd_t *h = arg;
    int fd = -1;
    for (int i = 0; i < h->nanswers; i++) {
        if (fd < 0)
            fd = accept(h->ls, NULL, NULL);
        if (read_request(fd, h->last_request, sizeof h->last_request)) {
            close(fd);
            fd = -1;
            i--; /* the client gave up on this connection; the answer is for the next */
            continue;
        }
        h->requests++;
        if (h->answers[i][0])
            (void)!write(fd, h->answers[i], strlen(h->answers[i]));
        if (!h->answers[i][0] || h->close_after[i]) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void httpd_start(httpd_t *h)
{
    h->ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(h->ls, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(h->ls, (struct sockaddr *)&a, &al);
    h->port = ntohs(a.sin_port);
    listen(h->ls, 8);
    pthread_create(&h->thread, NULL, httpd_main, h);
}

static void httpd_stop(httpd_t *h)
{
    pthread_join(h->thread, NULL);
    close(h->ls);
}

#define JSON_200(body)                                                                             \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " body "\r\n\r\n"

static void test_http_send_answers_keep_alive_and_reconnect(void **state)
{
    (void)state;
    httpd_t h = {
        .answers =
            {
                JSON_200("34") "{\"status\":\"broadcasted\",\"ids\":[3]}",
                /* chunked, after a 100 Continue */
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                "\r\n10\r\n{\"status\":\"broad\r\n12\r\ncasted\",\"ids\":[4]}\r\n0\r\n\r\n",
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 29\r\n\r\n"
                "{\"error\":\"bad one\",\"index\":0}",
                "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 2\r\n"
                "\r\n{}",
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                JSON_200("12") "{\"status\":1}",
            },
        .nanswers = 8,
        .close_after = {0, 1, 0, 0, 1, 0, 0, 0},
    };
    httpd_start(&h);
    char url[64], err[CLIENT_ERR_LEN];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/prefix/", h.port);
    client_options_t o = {.http_url = url, .token = "tok"};
    client_t *c = client_new(&o, NULL, err, sizeof err);
    assert_non_null(c);
    json_t *e = event("x");
    int64_t id = 0;
    long index = 7;
    assert_int_equal(client_send(c, e, 5000, &id, &index, err, sizeof err), 0);
    assert_int_equal(id, 3);
    assert_non_null(strstr(h.last_request, "POST /prefix/api/events HTTP/1.1\r\n"));
    assert_non_null(strstr(h.last_request, "Authorization: Bearer tok\r\n"));
    assert_non_null(strstr(h.last_request, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(h.last_request, "\r\n\r\n[{\"type\":\"adw_event\""));
    assert_int_equal(client_send(c, e, 5000, &id, &index, err, sizeof err), 0);
    assert_int_equal(id, 4);
    /* The server closed that connection: the next request opens another. */
    assert_int_equal(client_send(c, e, 5000, &id, &index, err, sizeof err), -EINVAL);
    assert_int_equal(index, 0);
    assert_non_null(strstr(err, "bad one"));
    assert_int_equal(client_send(c, e, 5000, &id, &index, err, sizeof err), -EAGAIN);
    assert_int_equal(client_send(c, e, 5000, &id, &index, err, sizeof err), -EACCES);
    assert_int_equal(client_send(c, e, 5000, &id, &index, err, sizeof err), -E2BIG);
    assert_int_equal(client_send(c, e, 5000, &id, &index, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "404"));
    assert_int_equal(client_send(c, e, 5000, &id, &index, err, sizeof err), -EPROTO);
    assert_int_equal(h.requests, 8);
    json_decref(e);
    client_destroy(&c);
    httpd_stop(&h);
}

static void test_http_idle_connection_closed_by_the_server_is_retried_once(void **state)
{
    (void)state;
    httpd_t h = {.answers = {JSON_200("34") "{\"status\":\"broadcasted\",\"ids\":[1]}", "",
                             JSON_200("34") "{\"status\":\"broadcasted\",\"ids\":[2]}"},
                 .nanswers = 3};
    httpd_start(&h);
    char url[64], err[CLIENT_ERR_LEN];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", h.port);
    client_options_t o = {.http_url = url};
    client_t *c = client_new(&o, NULL, err, sizeof err);
    json_t *e = event("x");
    int64_t id = 0;
    assert_int_equal(client_send(c, e, 5000, &id, NULL, err, sizeof err), 0);
    assert_int_equal(id, 1);
    assert_int_equal(client_send(c, e, 5000, &id, NULL, err, sizeof err), 0);
    assert_int_equal(id, 2);
    assert_int_equal(h.requests, 3);
    json_decref(e);
    client_destroy(&c);
    httpd_stop(&h);
}

/* ---- client_submit: validation, spool, backoff ---- */

static void test_submit_spools_when_down_and_drains_in_order_when_up(void **state)
{
    (void)state;
    char dir[64], err[CLIENT_ERR_LEN];
    temp_dir(dir, sizeof dir);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    close(ls); /* nothing listens there now */

    client_options_t o = {.zmq_endpoint = ep, .spool_dir = dir};
    client_t *c = client_new(&o, NULL, err, sizeof err);
    json_t *evs = json_array();
    json_array_append_new(evs, event("one"));
    json_array_append_new(evs, parse("{\"type\":\"adw_event\"}")); /* invalid: no adw_id */
    json_array_append_new(evs, json_integer(3));                   /* not an object */
    json_array_append_new(evs, event("two"));
    client_report_t rep;
    assert_int_equal(client_submit(c, evs, 1000, &rep), 1);
    assert_int_equal(rep.spooled, 2);
    assert_int_equal(rep.invalid, 2);
    assert_int_equal(rep.sent, 0);
    assert_int_equal(rep.error, -ECONNREFUSED);
    assert_non_null(strstr(rep.invalid_err, "event 1"));
    assert_int_equal(rep.pending, 2);
    /* Backing off now: the next event goes straight to the spool. */
    assert_true(client_backing_off(c));
    json_t *three = event("three");
    assert_int_equal(client_submit(c, three, 1000, &rep), 1);
    assert_int_equal(rep.spooled, 1);
    assert_int_equal(rep.error, -EAGAIN);
    json_decref(three);
    client_destroy(&c);

    /* Ingest up: the spool first, in order, then the new event. */
    router_t r = {.replies = {"{\"ok\":true,\"ids\":[1,2,3]}", "{\"ok\":true,\"ids\":[4]}"},
                  .nreplies = 2};
    router_start(&r);
    o.zmq_endpoint = r.endpoint;
    c = client_new(&o, NULL, err, sizeof err);
    json_t *four = event("four");
    assert_int_equal(client_submit(c, four, 5000, &rep), 0);
    router_stop(&r);
    assert_int_equal(rep.drained, 3);
    assert_int_equal(rep.sent, 1);
    assert_int_equal(rep.pending, 0);
    assert_int_equal(r.got, 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.first, 0), "summary")),
                        "one");
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.first, 2), "summary")),
                        "three");
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.last, 0), "summary")),
                        "four");
    json_decref(r.first);
    json_decref(r.last);
    json_decref(four);
    json_decref(evs);
    client_destroy(&c);
    rm_rf(dir);
}

static void test_submit_drops_what_ingest_refuses_and_sends_the_rest(void **state)
{
    (void)state;
    char err[CLIENT_ERR_LEN];
    router_t r = {.replies = {"{\"ok\":false,\"error\":\"event 1: nope\",\"index\":1}",
                              "{\"ok\":true,\"ids\":[1,3]}"},
                  .nreplies = 2};
    router_start(&r);
    client_options_t o = {.zmq_endpoint = r.endpoint};
    client_t *c = client_new(&o, NULL, err, sizeof err);
    json_t *evs = json_array();
    json_array_append_new(evs, event("a"));
    json_array_append_new(evs, event("b"));
    json_array_append_new(evs, event("c"));
    client_report_t rep;
    int src = client_submit(c, evs, 5000, &rep);
    router_stop(&r);
    if (src != 0 || rep.sent != 2)
        fail_msg("rc %d sent %zu invalid %zu spooled %zu lost %zu err %s", src, rep.sent,
                 rep.invalid, rep.spooled, rep.lost, rep.err);
    assert_int_equal(rep.invalid, 1);
    assert_int_equal(rep.lost, 0);
    assert_non_null(strstr(rep.invalid_err, "nope"));
    assert_int_equal(json_array_size(r.last), 2);
    json_decref(r.first);
    json_decref(r.last);
    json_decref(evs);
    client_destroy(&c);
}

static void test_submit_without_spool_counts_lost_and_drain_is_a_no_op(void **state)
{
    (void)state;
    char err[CLIENT_ERR_LEN];
    client_options_t o = {.zmq_endpoint = "tcp://127.0.0.1:1"};
    client_t *c = client_new(&o, NULL, err, sizeof err);
    json_t *e = event("x");
    client_report_t rep;
    assert_int_equal(client_submit(c, e, 500, &rep), 1);
    assert_int_equal(rep.lost, 1);
    assert_int_equal(client_drain(c, 500, &rep), 0);
    json_decref(e);
    client_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_id_is_32_hex_and_unique),
        cmocka_unit_test(test_prepare_adds_id_and_timestamp_and_keeps_given_ones),
        cmocka_unit_test(test_wire_ids),
        cmocka_unit_test(test_client_new_checks_urls_and_endpoints),
        cmocka_unit_test(test_spool_orders_by_time_made_then_call_order),
        cmocka_unit_test(test_spool_bound_bad_files_and_stale_tmp),
        cmocka_unit_test(test_spool_lock_waits_until_the_deadline),
        cmocka_unit_test(test_zmq_send_and_every_kind_of_answer),
        cmocka_unit_test(test_zmq_refused_at_once_and_not_a_zmq_peer),
        cmocka_unit_test(test_zmq_oversize_answer_is_refused_and_the_next_request_works),
        cmocka_unit_test(test_certificates_as_zcert_and_pyzmq_write_them),
        cmocka_unit_test(test_curve_with_a_libzmq_server_right_and_wrong_keys),
        cmocka_unit_test(test_http_send_answers_keep_alive_and_reconnect),
        cmocka_unit_test(test_http_idle_connection_closed_by_the_server_is_retried_once),
        cmocka_unit_test(test_submit_spools_when_down_and_drains_in_order_when_up),
        cmocka_unit_test(test_submit_drops_what_ingest_refuses_and_sends_the_rest),
        cmocka_unit_test(test_submit_without_spool_counts_lost_and_drain_is_a_no_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
