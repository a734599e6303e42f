#include "rxguard.h"

#if RXGUARD_BUILT

#include <dlfcn.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#define RXGUARD_MAX_FDS (1u << 20) /* descriptors above the soft limit, or this, pass through */
#define RXGUARD_TLS_DISCARD 256    /* TLS reads discarded in one call after a violation */

enum {
    RXG_OFF = 0, /* not a connection the guard follows */
    RXG_HEAD,    /* in an HTTP request head */
    RXG_HEADER,  /* in a WebSocket frame header */
    RXG_PAYLOAD, /* in a frame's payload */
    RXG_FAILED,  /* an unmasked frame was seen: the rest of the stream is discarded */
};

/* One of these per descriptor number. */
typedef struct rxguard_conn_t {
    void *user;    /* from rxguard_attach */
    uint64_t left; /* RXG_HEADER: the extended length so far; RXG_PAYLOAD: bytes to skip */
    uint8_t state;
    uint8_t hpos;    /* bytes of the frame header seen */
    uint8_t hlen;    /* the header's length, once its second byte is known */
    uint8_t line;    /* characters on the current head line (saturating) */
    uint8_t match;   /* characters of "upgrade:" matched at the start of the line */
    uint8_t upgrade; /* the current head has an Upgrade header */
} rxguard_conn_t;

static atomic_int g_armed;
static pthread_t g_thread;
static rxguard_conn_t *g_conns;
static size_t g_nconns;
static rxguard_violation_fn g_violation;

/* Follows a request head up to its empty line. Returns the bytes of buf it took; switches to
 * frames after a head with an Upgrade header (the bytes after an upgrade are frames, and a
 * refused upgrade closes the connection), else stays on heads (keep-alive). */
static size_t scan_head(rxguard_conn_t *c, const unsigned char *buf, size_t n)
{
    static const char UPGRADE[] = "upgrade:";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = buf[i];
        if (ch == '\n') {
            if (!c->line) {
                int upgrade = c->upgrade;
                c->upgrade = 0;
                if (upgrade) {
                    c->state = RXG_HEADER;
                    c->hpos = 0;
                    return i + 1;
                }
            }
            c->line = 0;
            c->match = 0;
            continue;
        }
        if (ch == '\r')
            continue;
        if (c->line < sizeof UPGRADE - 1 && c->match == c->line &&
            (ch | 0x20) == (unsigned char)UPGRADE[c->line]) {
            if (++c->match == sizeof UPGRADE - 1)
                c->upgrade = 1;
        }
        if (c->line < UINT8_MAX)
            c->line++;
    }
    return n;
}

/* Follows frames through buf. Returns n when every frame header in it is masked; else the
 * offset at which the first unmasked frame starts (0 when it started in an earlier read),
 * with the connection marked failed. */
static size_t scan_frames(rxguard_conn_t *c, const unsigned char *buf, size_t n)
{
    size_t i = 0, start = 0;
    while (i < n) {
        if (c->state == RXG_PAYLOAD) {
            uint64_t take = n - i < c->left ? n - i : c->left;
            i += (size_t)take;
            c->left -= take;
            if (!c->left) {
                c->state = RXG_HEADER;
                c->hpos = 0;
            }
            continue;
        }
        unsigned char ch = buf[i];
        if (c->hpos == 0) {
            start = i;
            c->left = 0;
        } else if (c->hpos == 1) {
            if (!(ch & 0x80)) {
                c->state = RXG_FAILED;
                return start;
            }
            unsigned len7 = ch & 0x7f;
            c->hlen = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
            c->left = len7 < 126 ? len7 : 0;
        } else if (c->hpos < c->hlen - 4) {
            c->left = (c->left << 8) | ch;
        }
        c->hpos++;
        i++;
        if (c->hpos >= 2 && c->hpos == c->hlen) {
            c->hpos = 0;
            if (c->left)
                c->state = RXG_PAYLOAD;
        }
    }
    return n;
}

/* The bytes of buf (n read) lws may see; -1 when it may see none of them. */
static ssize_t guard(int fd, rxguard_conn_t *c, const unsigned char *buf, size_t n)
{
    size_t i = 0;
    while (i < n && c->state != RXG_FAILED) {
        if (c->state == RXG_HEAD) {
            i += scan_head(c, buf + i, n - i);
            continue;
        }
        size_t ok = scan_frames(c, buf + i, n - i);
        i += ok;
        if (c->state == RXG_FAILED) {
            (void)fd;
            if (c->user && g_violation)
                g_violation(c->user);
            return i ? (ssize_t)i : -1;
        }
    }
    if (c->state == RXG_FAILED && !i)
        return -1;
    return (ssize_t)i;
}

/* The connection the guard follows on fd, if this thread is the loop's and fd is one. */
static rxguard_conn_t *followed(int fd)
{
    if (!atomic_load_explicit(&g_armed, memory_order_acquire) || fd < 0 || (size_t)fd >= g_nconns ||
        !pthread_equal(pthread_self(), g_thread))
        return NULL;
    return g_conns[fd].state == RXG_OFF ? NULL : &g_conns[fd];
}

/* Replaces libc's recv for the whole process (see rxguard.h); recv(2) is recvfrom(2) without
 * an address, which is what other descriptors and threads get. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    ssize_t n = recvfrom(fd, buf, len, flags, NULL, NULL);
    rxguard_conn_t *c;
    if (n <= 0 || flags || !(c = followed(fd)))
        return n;
    ssize_t keep = guard(fd, c, buf, (size_t)n);
    if (keep < 0)
        errno = EAGAIN;
    return keep;
}

typedef int (*ssl_read_fn)(SSL *, void *, int);
static _Atomic(ssl_read_fn) g_ssl_read;

/* OpenSSL's SSL_read, found once. */
static ssl_read_fn real_ssl_read(void)
{
    ssl_read_fn f = atomic_load_explicit(&g_ssl_read, memory_order_acquire);
    if (!f) {
        void *sym = dlsym(RTLD_NEXT, "SSL_read");
        memcpy(&f, &sym, sizeof f);
        atomic_store_explicit(&g_ssl_read, f, memory_order_release);
    }
    return f;
}

/* Replaces OpenSSL's SSL_read likewise, for wss: lws reads TLS connections with it, and the
 * frames are only visible once decrypted. When nothing of what was read may be given, the
 * connection is read until OpenSSL itself has nothing more (so that lws sees its usual "want
 * read"), or, after RXGUARD_TLS_DISCARD reads, 0 (lws drops the connection). */
int SSL_read(SSL *ssl, void *buf, int num)
{
    ssl_read_fn real = real_ssl_read();
    if (!real)
        return -1;
    int n = real(ssl, buf, num);
    rxguard_conn_t *c;
    if (n <= 0 || !(c = followed(SSL_get_fd(ssl))))
        return n;
    ssize_t keep = guard(SSL_get_fd(ssl), c, buf, (size_t)n);
    for (int i = 0; keep < 0 && i < RXGUARD_TLS_DISCARD; i++) {
        n = real(ssl, buf, num);
        if (n <= 0)
            return n;
    }
    return keep < 0 ? 0 : (int)keep;
}

int rxguard_init(rxguard_violation_fn on_violation)
{
    if (dlsym(RTLD_DEFAULT, "recv") != (void *)recv ||
        dlsym(RTLD_DEFAULT, "SSL_read") != (void *)SSL_read || !real_ssl_read())
        return -ENOTSUP;
    struct rlimit rl;
    size_t max = 65536;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY)
        max = rl.rlim_cur;
    if (max > RXGUARD_MAX_FDS)
        max = RXGUARD_MAX_FDS;
    rxguard_conn_t *conns = calloc(max, sizeof *conns);
    if (!conns)
        return -ENOMEM;
    rxguard_shutdown();
    g_conns = conns;
    g_nconns = max;
    g_thread = pthread_self();
    g_violation = on_violation;
    atomic_store_explicit(&g_armed, 1, memory_order_release);
    return 0;
}

void rxguard_watch(int fd)
{
    if (!atomic_load_explicit(&g_armed, memory_order_relaxed) || fd < 0 || (size_t)fd >= g_nconns)
        return;
    g_conns[fd] = (rxguard_conn_t){.state = RXG_HEAD};
}

int rxguard_attach(int fd, void *user)
{
    if (!atomic_load_explicit(&g_armed, memory_order_relaxed) || fd < 0 || (size_t)fd >= g_nconns)
        return 0;
    g_conns[fd].user = user;
    return g_conns[fd].state == RXG_FAILED;
}

void rxguard_shutdown(void)
{
    atomic_store_explicit(&g_armed, 0, memory_order_release);
    free(g_conns);
    g_conns = NULL;
    g_nconns = 0;
}

int rxguard_active(void)
{
    return 1;
}

#else /* !RXGUARD_BUILT: libwebsockets closes unmasked client frames itself (rxguard.h) */

int rxguard_init(rxguard_violation_fn on_violation)
{
    (void)on_violation;
    return 0;
}

void rxguard_watch(int fd)
{
    (void)fd;
}

int rxguard_attach(int fd, void *user)
{
    (void)fd;
    (void)user;
    return 0;
}

void rxguard_shutdown(void)
{
}

int rxguard_active(void)
{
    return 0;
}

#endif
