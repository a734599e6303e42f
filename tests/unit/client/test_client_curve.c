/* Unit tests for the client's CURVE (shared/client_curve.c): Z85, certificate files as zcert
 * and pyzmq write them, boxes that refuse tampering and replay, and the whole exchange against
 * an in-process libzmq ROUTER that is a CURVE server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "buf.h"
#include "client.h"
#include "client_wire.h"
#include "timefmt.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_z85_round_trip_and_refusals(void **state)
{
    (void)state;
    unsigned char key[32], back[32];
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)(i * 37 + 11);
    char txt[CLIENT_CURVE_Z85_LEN + 1];
    client_curve_z85_encode(txt, key);
    assert_int_equal(strlen(txt), 40);
    assert_int_equal(client_curve_z85_decode(back, txt, 40), 0);
    assert_memory_equal(key, back, 32);
    /* libzmq agrees */
    char theirs[41];
    assert_non_null(zmq_z85_encode(theirs, key, 32));
    assert_string_equal(txt, theirs);
    assert_int_equal(client_curve_z85_decode(back, txt, 39), -EINVAL);
    txt[7] = ' ';
    assert_int_equal(client_curve_z85_decode(back, txt, 40), -EINVAL);
    /* "#####" is 85^5 - 1, over 32 bits */
    memcpy(txt, "#####", 5);
    assert_int_equal(client_curve_z85_decode(back, txt, 40), -EINVAL);
}

static void test_certificates_as_zcert_and_pyzmq_write_them(void **state)
{
    (void)state;
    char dir[] = "/tmp/adw-curve-XXXXXX", path[256], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.cert", dir);
    assert_int_equal(client_curve_make_cert(path, err, sizeof err), 0);
    struct stat st;
    char secret[300];
    snprintf(secret, sizeof secret, "%s_secret", path);
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(client_curve_make_cert(path, err, sizeof err), -EEXIST);

    unsigned char pub[32], sec[32], pub2[32];
    assert_int_equal(client_curve_load(path, pub, sec, err, sizeof err), 0);
    /* The public file alone gives the same public key and no secret. */
    assert_int_equal(unlink(secret), 0);
    assert_int_equal(client_curve_load(path, pub2, NULL, err, sizeof err), 0);
    assert_memory_equal(pub, pub2, 32);
    assert_int_equal(client_curve_load(path, pub2, sec, err, sizeof err), -EINVAL);
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
    assert_int_equal(client_curve_load(path, pub, sec, err, sizeof err), 0);
    unsigned char want[32];
    zmq_z85_decode(want, pt);
    assert_memory_equal(pub, want, 32);
    zmq_z85_decode(want, st_);
    assert_memory_equal(sec, want, 32);

    snprintf(path, sizeof path, "%s/c.key", dir);
    write_file(path, "curve\n    public-key = \"short\"\n");
    assert_int_equal(client_curve_load(path, pub, NULL, err, sizeof err), -EINVAL);
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(client_curve_load(path, pub, NULL, err, sizeof err), -ENOENT);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Two ends sharing a session key, as after a handshake. */
static void test_boxes_refuse_tampering_and_replay(void **state)
{
    (void)state;
    assert_int_equal(client_curve_init(), 0);
    client_curve_t c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 32; i++)
        c.precom[i] = (unsigned char)i;
    c.nonce = 3;
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(client_curve_seal(&c, &b, "hello", 5, 1), 0);
    /* frame head (2) + "\x07MESSAGE" + nonce + MAC + flags + body */
    assert_int_equal(b.len, 2 + 8 + 8 + 16 + 1 + 5);
    assert_int_equal((unsigned char)b.data[0], 0x00);
    assert_memory_equal(b.data + 2, "\x07MESSAGE", 8);
    assert_int_equal(c.nonce, 4);
    buf_free(&b);

    /* A server's MESSAGE is sealed with the S nonce prefix: what we seal (C) never opens. */
    unsigned char msg[64];
    buf_init(&b, 0);
    c.nonce = 5;
    assert_int_equal(client_curve_seal(&c, &b, "x", 1, 0), 0);
    memcpy(msg, b.data + 2, b.len - 2);
    unsigned flags;
    const unsigned char *body;
    size_t bl;
    c.peer_nonce = 0;
    assert_int_equal(client_curve_open(&c, msg, b.len - 2, &flags, &body, &bl), -EPROTO);
    /* What the server seals: opens once; the same nonce again (a replay) or a flipped bit
     * does not. */
    unsigned char srv[8 + 8 + 16 + 1 + 3], nonce[24];
    memcpy(srv, "\x07MESSAGE", 8);
    memcpy(nonce, "CurveZMQMESSAGES", 16);
    memset(nonce + 16, 0, 8);
    nonce[23] = 7;
    memcpy(srv + 8, nonce + 16, 8);
    unsigned char plain[4] = {0x01, 'a', 'b', 'c'};
    assert_int_equal(crypto_box_easy_afternm(srv + 16, plain, 4, nonce, c.precom), 0);
    unsigned char copy[sizeof srv];
    memcpy(copy, srv, sizeof srv);
    c.peer_nonce = 6;
    assert_int_equal(client_curve_open(&c, srv, sizeof srv, &flags, &body, &bl), 0);
    assert_int_equal(flags, 1);
    assert_int_equal(bl, 3);
    assert_memory_equal(body, "abc", 3);
    assert_int_equal(c.peer_nonce, 7);
    memcpy(srv, copy, sizeof srv);
    assert_int_equal(client_curve_open(&c, srv, sizeof srv, &flags, &body, &bl), -EPROTO);
    c.peer_nonce = 6;
    copy[sizeof copy - 1] ^= 1;
    assert_int_equal(client_curve_open(&c, copy, sizeof copy, &flags, &body, &bl), -EPROTO);
    assert_int_equal(c.peer_nonce, 6);
    /* Malformed: too short, wrong name. */
    assert_int_equal(client_curve_open(&c, msg, 20, &flags, &body, &bl), -EPROTO);
    msg[1] = 'X';
    assert_int_equal(client_curve_open(&c, msg, b.len - 2, &flags, &body, &bl), -EPROTO);
    buf_free(&b);
}

/* ---- against libzmq ---- */

typedef struct server_t {
    void *ctx, *sock;
    char endpoint[64];
    int replies;
} server_t;

/* Answers every request with {"ok":true,"ids":[n]} until the socket closes. */
static void *serve(void *arg)
{
    server_t *s = arg;
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

static void test_exchange_with_a_libzmq_curve_server(void **state)
{
    (void)state;
    char spub[41], ssec[41], cpub[41], csec[41], opub[41], osec[41];
    assert_int_equal(zmq_curve_keypair(spub, ssec), 0);
    assert_int_equal(zmq_curve_keypair(cpub, csec), 0);
    assert_int_equal(zmq_curve_keypair(opub, osec), 0);
    server_t s = {0};
    s.ctx = zmq_ctx_new();
    s.sock = zmq_socket(s.ctx, ZMQ_ROUTER);
    int on = 1;
    zmq_setsockopt(s.sock, ZMQ_CURVE_SERVER, &on, sizeof on);
    zmq_setsockopt(s.sock, ZMQ_CURVE_SECRETKEY, ssec, 40);
    assert_int_equal(zmq_bind(s.sock, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof s.endpoint;
    zmq_getsockopt(s.sock, ZMQ_LAST_ENDPOINT, s.endpoint, &len);
    pthread_t t;
    pthread_create(&t, NULL, serve, &s);

    client_curve_t keys;
    memset(&keys, 0, sizeof keys);
    zmq_z85_decode(keys.server, spub);
    zmq_z85_decode(keys.pub, cpub);
    zmq_z85_decode(keys.sec, csec);
    char err[256];
    client_zmq_t *z = client_zmq_new(s.endpoint, &keys, err, sizeof err);
    assert_non_null(z);
    json_t *ev = json_pack("[{s:s}]", "adw_id", "a");
    int64_t ids[1];
    long index;
    for (int i = 1; i <= 3; i++) { /* several requests on one connection: nonces go up */
        assert_int_equal(
            client_zmq_request(z, ev, timefmt_mono_us() + 3000000, ids, &index, err, sizeof err),
            0);
        assert_int_equal(ids[0], i);
    }
    /* A big request: a long frame inside the box. */
    json_t *big = json_pack("[{s:s, s:s%}]", "adw_id", "a", "summary",
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                            (size_t)272);
    assert_int_equal(
        client_zmq_request(z, big, timefmt_mono_us() + 3000000, ids, &index, err, sizeof err), 0);
    assert_int_equal(ids[0], 4);
    json_decref(big);
    client_zmq_destroy(&z);
    assert_null(z);

    /* Holding another server key: the server cannot open our HELLO and hangs up. */
    zmq_z85_decode(keys.server, opub);
    z = client_zmq_new(s.endpoint, &keys, err, sizeof err);
    int64_t t0 = timefmt_mono_us();
    int rc = client_zmq_request(z, ev, t0 + 2000000, ids, &index, err, sizeof err);
    assert_true(rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EPROTO);
    client_zmq_destroy(&z);
    assert_int_equal(s.replies, 4);

    /* A plain client: refused as soon as the greeting says CURVE (or the server hangs up). */
    z = client_zmq_new(s.endpoint, NULL, err, sizeof err);
    rc = client_zmq_request(z, ev, timefmt_mono_us() + 2000000, ids, &index, err, sizeof err);
    assert_true(rc == -EPROTO || rc == -ECONNRESET);
    assert_non_null(strstr(err, "CURVE"));
    client_zmq_destroy(&z);
    assert_int_equal(s.replies, 4);

    json_decref(ev);
    zmq_ctx_shutdown(s.ctx);
    pthread_join(t, NULL);
    zmq_ctx_term(s.ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_z85_round_trip_and_refusals),
        cmocka_unit_test(test_certificates_as_zcert_and_pyzmq_write_them),
        cmocka_unit_test(test_boxes_refuse_tampering_and_replay),
        cmocka_unit_test(test_exchange_with_a_libzmq_curve_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
