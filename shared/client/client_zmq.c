/* The ZeroMQ transport of the client library (client_wire.h): a DEALER speaking ZMTP 3.0
 * (RFC 23) on a plain socket, with the NULL mechanism or CURVE (RFC 25, client_curve.c). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adw_limits.h"
#include "buf.h"
#include "client.h"
#include "client_wire.h"
#include "codec.h"
#include "timefmt.h"

#define CLIENT_ZMQ_ANSWER_MAX (1 << 20) /* bytes of one answer frame */

struct client_zmq_t {
    char endpoint[512];
    char host[256]; /* tcp: host without brackets; "" for ipc */
    char port[256]; /* tcp: the port; ipc: the socket path */
    int ipc;
    int fd;            /* -1 while closed */
    int greeted;       /* the peer's greeting has been read */
    int ready;         /* the peer's READY has been read */
    int curve;         /* CURVE security (else NULL) */
    int welcomed;      /* CURVE: the WELCOME has been read and INITIATE sent */
    client_curve_t cv; /* CURVE: the keys and this connection's state */
    buf_t out;         /* bytes to write */
    buf_t in;          /* bytes read and not yet parsed */
    buf_t body;        /* the request, msgpack */
};

/* ---- framing ---- */

/* Our ZMTP properties: the READY command's body after its name, INITIATE's metadata. */
static const char ZMTP_PROPERTIES[] = "\x0bSocket-Type\x00\x00\x00\x06"
                                      "DEALER";

int client_zmtp_greeting(buf_t *out, const char *mechanism)
{
    unsigned char g[CLIENT_ZMTP_GREETING] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0};
    /* mechanism, 20 bytes NUL-padded; as-server 0; filler */
    memcpy(g + 12, mechanism, strnlen(mechanism, 20));
    return buf_append(out, g, sizeof g) ? -ENOMEM : 0;
}

int client_zmtp_hello(buf_t *out)
{
    unsigned char head[2] = {0x04, (unsigned char)(6 + sizeof ZMTP_PROPERTIES - 1)};
    if (client_zmtp_greeting(out, "NULL") || buf_append(out, head, sizeof head) ||
        buf_append(out, "\x05READY", 6) ||
        buf_append(out, ZMTP_PROPERTIES, sizeof ZMTP_PROPERTIES - 1))
        return -ENOMEM;
    return 0;
}

int client_zmtp_frame(buf_t *out, const void *body, size_t len)
{
    unsigned char head[9];
    size_t hl;
    if (len <= 255) {
        head[0] = 0x00;
        head[1] = (unsigned char)len;
        hl = 2;
    } else {
        head[0] = 0x02;
        for (int i = 0; i < 8; i++)
            head[1 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 9;
    }
    size_t at = out->len;
    int rc = buf_append(out, head, hl);
    if (rc == 0)
        rc = buf_append(out, body, len);
    if (rc)
        out->len = at;
    return rc;
}

int client_zmtp_check_greeting(const unsigned char *p, char *err, size_t errlen)
{
    return client_zmtp_check_greeting_for(p, "NULL", err, errlen);
}

int client_zmtp_check_greeting_for(const unsigned char *p, const char *mechanism, char *err,
                                   size_t errlen)
{
    unsigned char mech[20] = {0};
    memcpy(mech, mechanism, strnlen(mechanism, 20));
    if (p[0] != 0xff || !(p[9] & 1)) {
        snprintf(err, errlen, "zmq: the peer does not speak ZMTP 3 (not adw-ingest?)");
        return -EPROTO;
    }
    if (p[10] < 3) {
        snprintf(err, errlen, "zmq: the peer speaks ZMTP %u, not 3", p[10]);
        return -EPROTO;
    }
    if (memcmp(p + 12, mech, sizeof mech)) {
        char theirs[21];
        size_t k = 0;
        for (; k < 20 && p[12 + k] >= 0x21 && p[12 + k] < 0x7f; k++)
            theirs[k] = (char)p[12 + k];
        theirs[k] = '\0';
        if (!strcmp(mechanism, "NULL"))
            snprintf(err, errlen,
                     "zmq: the peer wants %s security (give --curve-server and --curve-cert)",
                     theirs);
        else
            snprintf(err, errlen, "zmq: the peer offers %s security, not %s", theirs, mechanism);
        return -EPROTO;
    }
    return 0;
}

int client_zmtp_parse_frame(const unsigned char *p, size_t len, size_t max, unsigned *flags,
                            const unsigned char **body, size_t *body_len, size_t *frame_len)
{
    if (len < 2)
        return -EAGAIN;
    if (p[0] & ~0x07u)
        return -EPROTO;
    size_t hl, n;
    if (p[0] & 0x02) {
        if (len < 9)
            return -EAGAIN;
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | p[1 + i];
        if (v > max)
            return -EPROTO;
        n = (size_t)v;
        hl = 9;
    } else {
        n = p[1];
        hl = 2;
        if (n > max)
            return -EPROTO;
    }
    if (len - hl < n)
        return -EAGAIN;
    *flags = p[0] & 0x05u;
    *body = p + hl;
    *body_len = n;
    *frame_len = hl + n;
    return 0;
}

/* ---- the transport ---- */

client_zmq_t *client_zmq_new(const char *endpoint, const client_curve_t *curve, char *err,
                             size_t errlen)
{
    client_zmq_t *z = calloc(1, sizeof *z);
    if (!z) {
        snprintf(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    z->fd = -1;
    buf_init(&z->out, 0);
    buf_init(&z->in, CLIENT_ZMQ_ANSWER_MAX + 64);
    buf_init(&z->body, ADW_BODY_MAX_DEFAULT);
    if (curve) {
        if (client_curve_init()) {
            snprintf(err, errlen, "libsodium cannot start");
            client_zmq_destroy(&z);
            errno = EIO;
            return NULL;
        }
        z->curve = 1;
        memcpy(z->cv.server, curve->server, sizeof z->cv.server);
        memcpy(z->cv.pub, curve->pub, sizeof z->cv.pub);
        memcpy(z->cv.sec, curve->sec, sizeof z->cv.sec);
    }
    if (strlen(endpoint) >= sizeof z->endpoint)
        goto bad;
    snprintf(z->endpoint, sizeof z->endpoint, "%s", endpoint);
    if (!strncmp(endpoint, "ipc://", 6)) {
        const char *path = endpoint + 6;
        if (!*path || strlen(path) >= sizeof z->port)
            goto bad;
        z->ipc = 1;
        snprintf(z->port, sizeof z->port, "%s", path);
        return z;
    }
    if (strncmp(endpoint, "tcp://", 6))
        goto bad;
    const char *h = endpoint + 6, *colon = strrchr(h, ':');
    if (!colon || colon == h || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        goto bad;
    size_t hl = (size_t)(colon - h);
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    long port = strtol(colon + 1, NULL, 10);
    if (hl >= sizeof z->host || port < 1 || port > 65535)
        goto bad;
    memcpy(z->host, h, hl);
    z->host[hl] = '\0';
    snprintf(z->port, sizeof z->port, "%ld", port);
    return z;
bad:
    snprintf(err, errlen, "ZeroMQ endpoint '%s' must be tcp://host:port or ipc:///path", endpoint);
    client_zmq_destroy(&z);
    errno = EINVAL;
    return NULL;
}

static void zclose(client_zmq_t *z)
{
    if (z->fd >= 0)
        close(z->fd);
    z->fd = -1;
    z->greeted = z->ready = z->welcomed = 0;
    buf_reset(&z->in);
    if (z->curve)
        client_curve_wipe(&z->cv);
}

void client_zmq_destroy(client_zmq_t **zp)
{
    if (!zp || !*zp)
        return;
    client_zmq_t *z = *zp;
    zclose(z);
    if (z->curve)
        explicit_bzero(&z->cv, sizeof z->cv);
    buf_free(&z->out);
    buf_free(&z->in);
    buf_free(&z->body);
    free(z);
    *zp = NULL;
}

/* Interprets an answer frame. */
static int read_answer(const unsigned char *p, size_t len, size_t n, int64_t *ids, long *index,
                       char *err, size_t errlen)
{
    json_t *ans = NULL;
    char why[200];
    if (codec_msgpack_decode(p, len, &ans, why, sizeof why)) {
        snprintf(err, errlen, "zmq: unreadable answer: %s", why);
        return -EPROTO;
    }
    int rc;
    json_t *ok = json_object_get(ans, "ok");
    if (json_is_true(ok)) {
        rc = client_wire_ids(ans, n, ids, err, errlen);
    } else if (json_is_false(ok)) {
        const char *e = json_string_value(json_object_get(ans, "error"));
        json_t *ix = json_object_get(ans, "index");
        int retry = json_is_true(json_object_get(ans, "retry"));
        snprintf(err, errlen, "ingest refused: %s", e ? e : "(no reason)");
        if (index && json_is_integer(ix) && json_integer_value(ix) >= 0 &&
            (size_t)json_integer_value(ix) < n)
            *index = (long)json_integer_value(ix);
        rc = retry ? -EAGAIN : -EINVAL;
    } else {
        snprintf(err, errlen, "zmq: answer without \"ok\"");
        rc = -EPROTO;
    }
    json_decref(ans);
    return rc;
}

/* Handles a command frame's body b[0..bl) (decrypted in place when it is CURVE's READY).
 * Returns 0, or -EPROTO / -ECONNRESET / -ETIMEDOUT / -ENOMEM with the reason in err. */
static int on_command(client_zmq_t *z, unsigned char *b, size_t bl, int64_t deadline_us, char *err,
                      size_t errlen)
{
    size_t nl = bl ? b[0] : 0;
    if (bl < 1 + nl) {
        snprintf(err, errlen, "zmq: malformed command from %s", z->endpoint);
        return -EPROTO;
    }
    char why[160];
    if (nl == 5 && !memcmp(b + 1, "ERROR", 5)) {
        size_t rl = bl > 6 ? b[6] : 0;
        if (rl > bl - 7)
            rl = bl - 7;
        snprintf(err, errlen, "zmq: %s refused the handshake: %.*s%s", z->endpoint, (int)rl,
                 (const char *)b + 7,
                 z->curve ? " (is our public key among ingest's ADW_INGEST_CURVE_CLIENTS?)" : "");
        return -EPROTO;
    }
    if (z->ready)
        return 0; /* PING and other commands of later versions: nothing to do */
    if (nl == 5 && !memcmp(b + 1, "READY", 5) && (!z->curve || z->welcomed)) {
        if (z->curve && client_curve_ready(&z->cv, b, bl, why, sizeof why)) {
            snprintf(err, errlen, "zmq: %s: %s", z->endpoint, why);
            return -EPROTO;
        }
        z->ready = 1;
        return 0;
    }
    if (z->curve && !z->welcomed && nl == 7 && !memcmp(b + 1, "WELCOME", 7)) {
        z->welcomed = 1;
        buf_reset(&z->out);
        int rc = client_curve_welcome(&z->cv, b, bl, (const unsigned char *)ZMTP_PROPERTIES,
                                      sizeof ZMTP_PROPERTIES - 1, &z->out, why, sizeof why);
        if (rc) {
            snprintf(err, errlen, "zmq: %s: %s", z->endpoint, rc == -EPROTO ? why : strerror(-rc));
            return rc;
        }
        rc = client_net_write(z->fd, z->out.data, z->out.len, deadline_us);
        buf_reset(&z->out);
        if (rc)
            snprintf(err, errlen, "zmq: %s: handshake not sent in time", z->endpoint);
        return rc;
    }
    if (!z->curve)
        return 0; /* commands of later versions: nothing to do */
    snprintf(err, errlen, "zmq: an unexpected command from %s during the handshake", z->endpoint);
    return -EPROTO;
}

/* Reads until the answer to the request just written (body not NULL), or until the peer's
 * greeting and READY (body NULL). Returns 0 with the answer frame at *body (into z->in;
 * consume *used bytes after use), or -ECONNRESET (*got: whether any byte came), -ETIMEDOUT,
 * -EPROTO. */
static int read_until_answer(client_zmq_t *z, int64_t deadline_us, const unsigned char **body,
                             size_t *body_len, size_t *used, int *got, char *err, size_t errlen)
{
    size_t pos = 0;
    *got = 0;
    for (;;) {
        unsigned char *p = (unsigned char *)z->in.data;
        if (!body && z->ready) {
            buf_consume(&z->in, pos);
            return 0;
        }
        if (!z->greeted && z->in.len >= CLIENT_ZMTP_GREETING) {
            int rc = client_zmtp_check_greeting_for(p, z->curve ? "CURVE" : "NULL", err, errlen);
            if (rc)
                return rc;
            buf_consume(&z->in, CLIENT_ZMTP_GREETING);
            z->greeted = 1;
            continue;
        }
        while (z->greeted && pos < z->in.len) {
            unsigned flags;
            const unsigned char *cb;
            size_t bl, fl;
            int rc = client_zmtp_parse_frame(p + pos, z->in.len - pos, CLIENT_ZMQ_ANSWER_MAX,
                                             &flags, &cb, &bl, &fl);
            if (rc == -EAGAIN)
                break;
            if (rc) {
                snprintf(err, errlen, "zmq: malformed frame from %s", z->endpoint);
                return -EPROTO;
            }
            unsigned char *b = p + (cb - p); /* ours to decrypt in place */
            pos += fl;
            if (z->curve && z->ready && bl >= 8 && !memcmp(b, "\x07MESSAGE", 8)) {
                if (client_curve_open(&z->cv, b, bl, &flags, &cb, &bl)) {
                    snprintf(err, errlen, "zmq: a MESSAGE from %s that does not open", z->endpoint);
                    return -EPROTO;
                }
                if (flags & 0x02)
                    continue;          /* a command inside the box (PING): nothing to do */
            } else if (flags & 0x04) { /* a command */
                rc = on_command(z, b, bl, deadline_us, err, errlen);
                if (rc)
                    return rc;
                if (z->ready && !body)
                    break;
                continue;
            } else if (z->curve) {
                snprintf(err, errlen, "zmq: an unencrypted message from %s", z->endpoint);
                return -EPROTO;
            }
            if (!z->ready || !body) {
                snprintf(err, errlen, "zmq: an unexpected message from %s", z->endpoint);
                return -EPROTO;
            }
            if (flags & 0x01)
                continue; /* envelope frames before the body */
            *body = cb;
            *body_len = bl;
            *used = pos;
            return 0;
        }
        if (!body && z->ready)
            continue;
        if (buf_reserve(&z->in, 16384)) {
            snprintf(err, errlen, "zmq: answer too big");
            return -EPROTO;
        }
        ssize_t r = recv(z->fd, z->in.data + z->in.len, z->in.cap - z->in.len - 1, 0);
        if (r > 0) {
            z->in.len += (size_t)r;
            *got = 1;
            continue;
        }
        if (r == 0) {
            snprintf(err, errlen, "zmq: %s closed the connection %s", z->endpoint,
                     z->ready   ? "before answering"
                     : z->curve ? "during the CURVE handshake (our key refused, or not its "
                                  "server key?)"
                                : "during the handshake (does it require CURVE? give "
                                  "--curve-server and --curve-cert)");
            return -ECONNRESET;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            snprintf(err, errlen, "zmq: %s: %s%s", z->endpoint, strerror(errno),
                     z->ready || z->curve ? ""
                                          : " during the handshake (does it require CURVE? "
                                            "give --curve-server and --curve-cert)");
            return -ECONNRESET;
        }
        int rc = client_net_wait(z->fd, POLLIN, deadline_us);
        if (rc) {
            snprintf(err, errlen, "zmq: no answer from %s in time", z->endpoint);
            return rc == -ETIMEDOUT ? rc : -ECONNRESET;
        }
    }
}

int client_zmq_request(client_zmq_t *z, const json_t *events, int64_t deadline_us, int64_t *ids,
                       long *index, char *err, size_t errlen)
{
    size_t n = json_array_size(events);
    if (index)
        *index = -1;
    buf_reset(&z->body);
    int rc = codec_msgpack_to_buf(&z->body, events);
    if (rc) {
        snprintf(err, errlen, "zmq: cannot encode the request: %s",
                 rc == -E2BIG ? "over the body limit" : strerror(-rc));
        return rc == -E2BIG ? -E2BIG : rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    for (int attempt = 0;; attempt++) {
        int reused = z->fd >= 0, got = 0;
        buf_reset(&z->out);
        if (!reused) {
            /* libzmq takes messages only once both READY commands crossed: one round trip. */
            char why[CLIENT_ERR_LEN];
            int fd =
                client_net_connect(z->ipc ? NULL : z->host, z->port, deadline_us, why, sizeof why);
            if (fd < 0) {
                snprintf(err, errlen, "zmq: %s", why);
                return fd;
            }
            z->fd = fd;
            if (z->curve
                    ? client_zmtp_greeting(&z->out, "CURVE") || client_curve_hello(&z->cv, &z->out)
                    : client_zmtp_hello(&z->out)) {
                zclose(z);
                return -ENOMEM;
            }
            rc = client_net_write(z->fd, z->out.data, z->out.len, deadline_us);
            if (rc == 0)
                rc = read_until_answer(z, deadline_us, NULL, NULL, NULL, &got, err, errlen);
            else
                snprintf(err, errlen, "zmq: %s: handshake not sent in time", z->endpoint);
            if (rc) {
                zclose(z);
                return rc;
            }
            buf_reset(&z->out);
        }
        if (z->curve ? client_curve_seal(&z->cv, &z->out, z->body.data, z->body.len, 0)
                     : client_zmtp_frame(&z->out, z->body.data, z->body.len)) {
            zclose(z);
            return -ENOMEM;
        }
        rc = client_net_write(z->fd, z->out.data, z->out.len, deadline_us);
        const unsigned char *body = NULL;
        size_t body_len = 0, used = 0;
        if (rc == 0)
            rc = read_until_answer(z, deadline_us, &body, &body_len, &used, &got, err, errlen);
        else
            snprintf(err, errlen, "zmq: %s: %s", z->endpoint,
                     rc == -ETIMEDOUT ? "request not sent in time" : "connection lost");
        if (rc == -ECONNRESET && reused && !got && attempt == 0) {
            zclose(z); /* the peer went away while idle (a restart): once more, afresh */
            continue;
        }
        if (rc) {
            zclose(z);
            return rc;
        }
        rc = read_answer(body, body_len, n, ids, index, err, errlen);
        buf_consume(&z->in, used);
        if (rc && rc != -EINVAL && rc != -EAGAIN)
            zclose(z);
        return rc;
    }
}
