/* The HTTP transport of the client library (client_wire.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adw_limits.h"
#include "buf.h"
#include "client.h"
#include "client_wire.h"
#include "codec.h"
#include "http1.h"
#include "http1_chunked.h"
#include "jsonw.h"
#include "timefmt.h"

#define CLIENT_HTTP_HOST_MAX 256
#define CLIENT_HTTP_PATH_MAX 1024
#define CLIENT_HTTP_ANSWER_MAX (1 << 20) /* bytes of an answer's body */

struct client_http_t {
    char host[CLIENT_HTTP_HOST_MAX];         /* for getaddrinfo: no brackets */
    char hostport[CLIENT_HTTP_HOST_MAX + 8]; /* for the Host header, as in the URL */
    char port[8];
    char path[CLIENT_HTTP_PATH_MAX]; /* where events are posted */
    char *auth;                      /* "Authorization: Bearer <token>\r\n", or NULL */
    int fd;                          /* -1 while closed */
    int https;                       /* the URL is https:// */
    void *tls;                       /* TLS client context (https) */
    void *sess;                      /* TLS session on fd, or NULL */
    int used;                        /* fd has carried a request already */
    buf_t head, body, in, chunk;
};

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

/* Splits url into h's host, port and path. Returns 0 or -EINVAL with the reason in err. */
static int parse_url(client_http_t *h, const char *url, char *err, size_t errlen)
{
    size_t skip = 7;
    h->https = !strncasecmp(url, "https://", 8);
    if (h->https) {
        skip = 8;
    } else if (strncasecmp(url, "http://", 7)) {
        snprintf(err, errlen, "ingest URL '%s' must start with http:// or https://", url);
        return -EINVAL;
    }
    const char *p = url + skip, *host, *host_end, *auth_end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(auth_end - p))) {
        snprintf(err, errlen, "ingest URL must not hold user information (use --token)");
        return -EINVAL;
    }
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end) {
            snprintf(err, errlen, "ingest URL '%s': unclosed '['", url);
            return -EINVAL;
        }
        p = host_end + 1;
    } else {
        host = p;
        host_end = p + strcspn(p, ":/?#");
        p = host_end;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl >= sizeof h->host) {
        snprintf(err, errlen, "ingest URL '%s': no host", url);
        return -EINVAL;
    }
    memcpy(h->host, host, hl);
    h->host[hl] = '\0';
    snprintf(h->port, sizeof h->port, h->https ? "443" : "80");
    if (*p == ':') {
        p++;
        size_t pl = strspn(p, "0123456789");
        long port = pl && pl < 6 ? strtol(p, NULL, 10) : 0;
        if (port < 1 || port > 65535) {
            snprintf(err, errlen, "ingest URL '%s': bad port", url);
            return -EINVAL;
        }
        snprintf(h->port, sizeof h->port, "%ld", port);
        p += pl;
    }
    snprintf(h->hostport, sizeof h->hostport, "%.*s", (int)(p - (url + skip)), url + skip);
    if (*p && *p != '/') {
        snprintf(err, errlen, "ingest URL '%s': unexpected '%c' (no query or fragment)", url, *p);
        return -EINVAL;
    }
    size_t n = strlen(p);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') {
            snprintf(err, errlen,
                     "ingest URL '%s': the path may hold no query, fragment, "
                     "space or control character",
                     url);
            return -EINVAL;
        }
    }
    while (n && p[n - 1] == '/')
        n--;
    const char *add = "";
    if (!ends_with(p, n, "/api/events") && !ends_with(p, n, "/api/events/broadcast"))
        add = "/api/events";
    if (n + strlen(add) + 1 >= sizeof h->path) {
        snprintf(err, errlen, "ingest URL '%s': path too long", url);
        return -EINVAL;
    }
    snprintf(h->path, sizeof h->path, "%.*s%s", (int)n, p, add);
    if (!h->path[0])
        snprintf(h->path, sizeof h->path, "/");
    return 0;
}

client_http_t *client_http_new(const char *url, const char *token, const char *ca_file, char *err,
                               size_t errlen)
{
    int e = EINVAL;
    client_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    h->fd = -1;
    buf_init(&h->head, 0);
    buf_init(&h->body, ADW_BODY_MAX_DEFAULT);
    buf_init(&h->in, CLIENT_HTTP_ANSWER_MAX + HTTP1_HEAD_MAX_DEFAULT);
    buf_init(&h->chunk, CLIENT_HTTP_ANSWER_MAX);
    if (parse_url(h, url, err, errlen))
        goto fail;
    if (h->https && !(h->tls = client_tls_ctx_new(ca_file, err, errlen)))
        goto fail;
    if (token && *token) {
        for (const char *t = token; *t; t++) {
            if ((unsigned char)*t <= 0x20 || *t == 0x7f) {
                snprintf(err, errlen, "the token may hold no space or control character");
                goto fail;
            }
        }
        size_t n = strlen(token) + 32;
        h->auth = malloc(n);
        if (!h->auth) {
            snprintf(err, errlen, "out of memory");
            e = ENOMEM;
            goto fail;
        }
        snprintf(h->auth, n, "Authorization: Bearer %s\r\n", token);
    }
    return h;
fail:
    client_http_destroy(&h);
    errno = e;
    return NULL;
}

static void hclose(client_http_t *h)
{
    client_tls_close(&h->sess);
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->used = 0;
}

void client_http_destroy(client_http_t **hp)
{
    if (!hp || !*hp)
        return;
    client_http_t *h = *hp;
    hclose(h);
    client_tls_ctx_destroy(&h->tls);
    if (h->auth) {
        explicit_bzero(h->auth, strlen(h->auth));
        free(h->auth);
    }
    buf_free(&h->head);
    buf_free(&h->body);
    buf_free(&h->in);
    buf_free(&h->chunk);
    free(h);
    *hp = NULL;
}

/* Opens a connection. Returns 0, -ECONNREFUSED or -ETIMEDOUT with the reason in err. */
static int hconnect(client_http_t *h, int64_t deadline_us, char *err, size_t errlen)
{
    char why[CLIENT_ERR_LEN];
    int fd = client_net_connect(h->host, h->port, deadline_us, why, sizeof why);
    if (fd < 0) {
        snprintf(err, errlen, "http: %s", why);
        return fd;
    }
    h->fd = fd;
    h->used = 0;
    if (h->tls) {
        int rc = client_tls_connect(h->tls, fd, h->host, deadline_us, &h->sess, why, sizeof why);
        if (rc) {
            snprintf(err, errlen, "https: %s", why);
            hclose(h);
            return rc == -ETIMEDOUT ? rc : -ECONNREFUSED;
        }
    }
    return 0;
}

/* Sends the request (head and body, one buffer). Returns 0, -ETIMEDOUT or -ECONNRESET. */
static int hsend(client_http_t *h, int64_t deadline_us)
{
    if (h->sess)
        return client_tls_write(h->sess, h->fd, h->head.data, h->head.len, deadline_us);
    return client_net_write(h->fd, h->head.data, h->head.len, deadline_us);
}

/* Reads one answer: its head into *res and its body into h->chunk. Returns 0, -ETIMEDOUT,
 * -ECONNRESET (the connection ended; *got says whether any byte came), -EPROTO or -ENOMEM. */
static int hrecv(client_http_t *h, http1_response_t *res, int64_t deadline_us, int *got,
                 int *reusable, char *err, size_t errlen)
{
    http1_error_t herr;
    buf_reset(&h->in);
    buf_reset(&h->chunk);
    http1_response_init(res);
    http1_chunked_t ch;
    int head_done = 0, eof = 0;
    size_t body_at = 0, used = 0;
    *got = 0;
    *reusable = 0;
    for (;;) {
        if (!head_done && h->in.len > 0) {
            int rc = http1_parse_response(res, h->in.data, h->in.len, 0, &herr);
            if (rc == 0 && res->status < 200) { /* 100 Continue and friends: skip */
                buf_consume(&h->in, res->head_len);
                http1_response_init(res);
                continue;
            }
            if (rc == 0) {
                head_done = 1;
                body_at = used = res->head_len;
                http1_chunked_init(&ch, 0);
            } else if (rc != -EAGAIN) {
                snprintf(err, errlen, "http: bad answer: %s", herr.reason);
                return -EPROTO;
            }
        }
        if (head_done) {
            if (res->chunked) {
                size_t consumed = 0;
                int rc = http1_chunked_feed(&ch, h->in.data + used, h->in.len - used, &consumed,
                                            &h->chunk, &herr);
                used += consumed;
                if (rc == 0) {
                    *reusable = res->keep_alive && used == h->in.len;
                    return 0;
                }
                if (rc != -EAGAIN) {
                    snprintf(err, errlen, "http: bad chunked answer: %s", herr.reason);
                    return rc == -ENOMEM ? -ENOMEM : -EPROTO;
                }
            } else if (res->content_length >= 0) {
                if (res->content_length > CLIENT_HTTP_ANSWER_MAX) {
                    snprintf(err, errlen, "http: answer over %d bytes", CLIENT_HTTP_ANSWER_MAX);
                    return -EPROTO;
                }
                size_t want = (size_t)res->content_length;
                if (h->in.len - body_at >= want) {
                    if (buf_append(&h->chunk, h->in.data + body_at, want))
                        return -ENOMEM;
                    *reusable = res->keep_alive && h->in.len - body_at == want;
                    return 0;
                }
            } else if (eof) {
                if (buf_append(&h->chunk, h->in.data + body_at, h->in.len - body_at))
                    return -ENOMEM;
                return 0;
            }
        }
        if (eof) {
            snprintf(err, errlen, "http: %s closed the connection before answering", h->hostport);
            return -ECONNRESET;
        }
        if (buf_reserve(&h->in, 16384)) {
            snprintf(err, errlen, "http: answer too big");
            return -EPROTO;
        }
        ssize_t r;
        if (h->sess) {
            r = client_tls_read(h->sess, h->fd, h->in.data + h->in.len, h->in.cap - h->in.len - 1,
                                deadline_us);
            if (r == -ETIMEDOUT) {
                snprintf(err, errlen, "http: no answer from %s in time", h->hostport);
                return -ETIMEDOUT;
            }
            if (r < 0) {
                snprintf(err, errlen, "https: %s: the connection failed", h->hostport);
                return -ECONNRESET;
            }
        } else {
            r = recv(h->fd, h->in.data + h->in.len, h->in.cap - h->in.len - 1, 0);
        }
        if (r > 0) {
            h->in.len += (size_t)r;
            h->in.data[h->in.len] = '\0';
            *got = 1;
            continue;
        }
        if (r == 0) {
            eof = 1;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            snprintf(err, errlen, "http: %s: %s", h->hostport, strerror(errno));
            return -ECONNRESET;
        }
        int rc = client_net_wait(h->fd, POLLIN, deadline_us);
        if (rc) {
            snprintf(err, errlen, "http: no answer from %s in time", h->hostport);
            return rc == -ETIMEDOUT ? rc : -ECONNRESET;
        }
    }
}

/* Interprets a complete answer. */
static int read_answer(client_http_t *h, const http1_response_t *res, size_t n, int64_t *ids,
                       long *index, char *err, size_t errlen)
{
    json_t *ans = NULL;
    char why[200];
    int parsed = h->chunk.len > 0 &&
                 codec_json_parse(h->chunk.data, h->chunk.len, &ans, why, sizeof why) == 0;
    const char *e = parsed ? json_string_value(json_object_get(ans, "error")) : NULL;
    int rc;
    if (res->status == 200) {
        if (!parsed) {
            snprintf(err, errlen, "http: answer 200 without a JSON body");
            rc = -EPROTO;
        } else {
            rc = client_wire_ids(ans, n, ids, err, errlen);
        }
    } else {
        snprintf(err, errlen, "ingest answered %d%s%s", res->status, e ? ": " : "", e ? e : "");
        switch (res->status) {
        case 400:
        case 422: {
            json_t *ix = parsed ? json_object_get(ans, "index") : NULL;
            if (index && json_is_integer(ix) && json_integer_value(ix) >= 0 &&
                (size_t)json_integer_value(ix) < n)
                *index = (long)json_integer_value(ix);
            rc = -EINVAL;
            break;
        }
        case 401:
        case 403:
            rc = -EACCES;
            break;
        case 413:
            rc = -E2BIG;
            break;
        case 429:
        case 502:
        case 503:
        case 504:
            rc = -EAGAIN;
            break;
        default:
            rc = -EPROTO;
            break;
        }
    }
    json_decref(ans);
    return rc;
}

int client_http_request(client_http_t *h, const json_t *events, int64_t deadline_us, int64_t *ids,
                        long *index, char *err, size_t errlen)
{
    size_t n = json_array_size(events);
    if (index)
        *index = -1;
    buf_reset(&h->body);
    int rc = jsonw_value(&h->body, events);
    if (rc) {
        snprintf(err, errlen, "http: cannot encode the request: %s",
                 rc == -E2BIG ? "over the body limit" : strerror(-rc));
        return rc == -E2BIG ? -E2BIG : rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    buf_reset(&h->head);
    rc = buf_printf(&h->head,
                    "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: adw-client/%s\r\n"
                    "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
                    h->path, h->hostport, ADW_VERSION, h->body.len, h->auth ? h->auth : "");
    if (rc == 0)
        rc = buf_append(&h->head, h->body.data, h->body.len);
    if (rc)
        return -ENOMEM;
    for (int attempt = 0;; attempt++) {
        int reused = h->fd >= 0 && h->used;
        if (h->fd < 0 && (rc = hconnect(h, deadline_us, err, errlen)))
            return rc;
        h->used = 1;
        rc = hsend(h, deadline_us);
        http1_response_t res;
        int got = 0, reusable = 0;
        if (rc == 0)
            rc = hrecv(h, &res, deadline_us, &got, &reusable, err, errlen);
        else
            snprintf(err, errlen, "http: %s: %s", h->hostport,
                     rc == -ETIMEDOUT ? "request not sent in time" : "connection lost");
        if (rc == -ECONNRESET && reused && !got && attempt == 0) {
            hclose(h); /* the server closed the idle connection: once more on a new one */
            continue;
        }
        if (rc) {
            hclose(h);
            return rc;
        }
        if (!reusable)
            hclose(h);
        return read_answer(h, &res, n, ids, index, err, errlen);
    }
}

int client_wire_ids(const json_t *answer, size_t n, int64_t *ids, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(answer, "ids");
    const json_t *one = json_object_get(answer, "id");
    if (json_is_array(arr) && json_array_size(arr) == n) {
        for (size_t i = 0; i < n; i++) {
            const json_t *v = json_array_get(arr, i);
            if (!json_is_integer(v)) {
                snprintf(err, errlen, "answer: ids[%zu] is not an integer", i);
                return -EPROTO;
            }
            if (ids)
                ids[i] = json_integer_value(v);
        }
        return 0;
    }
    if (n == 1 && json_is_integer(one)) {
        if (ids)
            ids[0] = json_integer_value(one);
        return 0;
    }
    snprintf(err, errlen, "answer: expected %zu ids", n);
    return -EPROTO;
}
