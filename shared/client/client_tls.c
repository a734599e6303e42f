/* TLS for the client library's HTTP transport (client_wire.h), with OpenSSL loaded at run time.
 *
 * adw-send runs on every hook of an agent, so it links only what it calls into. libssl is
 * opened with dlopen the first time an https:// URL is used, and only then; its functions are
 * called through the table below. The headers give the types and constants only.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_wire.h"

/* The OpenSSL functions used, resolved once per process. */
static struct {
    const SSL_METHOD *(*TLS_client_method)(void);
    SSL_CTX *(*SSL_CTX_new)(const SSL_METHOD *);
    void (*SSL_CTX_free)(SSL_CTX *);
    long (*SSL_CTX_ctrl)(SSL_CTX *, int, long, void *);
    int (*SSL_CTX_set_default_verify_paths)(SSL_CTX *);
    int (*SSL_CTX_load_verify_locations)(SSL_CTX *, const char *, const char *);
    void (*SSL_CTX_set_verify)(SSL_CTX *, int, SSL_verify_cb);
    SSL *(*SSL_new)(SSL_CTX *);
    void (*SSL_free)(SSL *);
    int (*SSL_set_fd)(SSL *, int);
    long (*SSL_ctrl)(SSL *, int, long, void *);
    int (*SSL_set1_host)(SSL *, const char *);
    int (*SSL_connect)(SSL *);
    int (*SSL_read)(SSL *, void *, int);
    int (*SSL_write)(SSL *, const void *, int);
    int (*SSL_get_error)(const SSL *, int);
    int (*SSL_shutdown)(SSL *);
    long (*SSL_get_verify_result)(const SSL *);
    const char *(*X509_verify_cert_error_string)(long);
    unsigned long (*ERR_get_error)(void);
    void (*ERR_error_string_n)(unsigned long, char *, size_t);
    void (*ERR_clear_error)(void);
} ossl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[200] = "OpenSSL not loaded"; /* "" once loaded */

#define LOAD(h, name)                                                                              \
    do {                                                                                           \
        *(void **)&ossl.name = dlsym(h, #name);                                                    \
        if (!ossl.name) {                                                                          \
            snprintf(load_err, sizeof load_err, "libssl.so.3 has no %s", #name);                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void load(void)
{
    void *h = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_err, sizeof load_err, "https needs OpenSSL 3 (libssl.so.3): %s", dlerror());
        return;
    }
    LOAD(h, TLS_client_method);
    LOAD(h, SSL_CTX_new);
    LOAD(h, SSL_CTX_free);
    LOAD(h, SSL_CTX_ctrl);
    LOAD(h, SSL_CTX_set_default_verify_paths);
    LOAD(h, SSL_CTX_load_verify_locations);
    LOAD(h, SSL_CTX_set_verify);
    LOAD(h, SSL_new);
    LOAD(h, SSL_free);
    LOAD(h, SSL_set_fd);
    LOAD(h, SSL_ctrl);
    LOAD(h, SSL_set1_host);
    LOAD(h, SSL_connect);
    LOAD(h, SSL_read);
    LOAD(h, SSL_write);
    LOAD(h, SSL_get_error);
    LOAD(h, SSL_shutdown);
    LOAD(h, SSL_get_verify_result);
    LOAD(h, X509_verify_cert_error_string);
    LOAD(h, ERR_get_error);
    LOAD(h, ERR_error_string_n);
    LOAD(h, ERR_clear_error);
    load_err[0] = '\0';
}

/* Writes OpenSSL's first queued error into buf and clears the queue. */
static const char *last_error(char *buf, size_t len)
{
    unsigned long e = ossl.ERR_get_error();
    if (e)
        ossl.ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "connection closed");
    ossl.ERR_clear_error();
    return buf;
}

void *client_tls_ctx_new(const char *ca_file, char *err, size_t errlen)
{
    pthread_once(&load_once, load);
    if (load_err[0]) {
        snprintf(err, errlen, "%s", load_err);
        return NULL;
    }
    ossl.ERR_clear_error();
    SSL_CTX *ctx = ossl.SSL_CTX_new(ossl.TLS_client_method());
    char why[200];
    if (!ctx) {
        snprintf(err, errlen, "TLS: %s", last_error(why, sizeof why));
        return NULL;
    }
    ossl.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
    ossl.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE,
                      SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, NULL);
    int ok = ca_file && *ca_file ? ossl.SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                                 : ossl.SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        snprintf(err, errlen, "CA file %s: %s", ca_file && *ca_file ? ca_file : "(system)",
                 last_error(why, sizeof why));
        ossl.SSL_CTX_free(ctx);
        return NULL;
    }
    ossl.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

void client_tls_ctx_destroy(void **ctx)
{
    if (!ctx || !*ctx)
        return;
    ossl.SSL_CTX_free(*ctx);
    *ctx = NULL;
}

/* Waits for what the last SSL call asked for. Returns 0, or a negative error: -EAGAIN never. */
static int wait_for(SSL *ssl, int fd, int rc, int64_t deadline_us)
{
    int e = ossl.SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return client_net_wait(fd, POLLIN, deadline_us);
    if (e == SSL_ERROR_WANT_WRITE)
        return client_net_wait(fd, POLLOUT, deadline_us);
    return e == SSL_ERROR_ZERO_RETURN ? -EPIPE : -ECONNRESET;
}

int client_tls_connect(void *ctx, int fd, const char *host, int64_t deadline_us, void **sess,
                       char *err, size_t errlen)
{
    *sess = NULL;
    ossl.ERR_clear_error();
    SSL *ssl = ossl.SSL_new(ctx);
    char why[200];
    if (!ssl || !ossl.SSL_set_fd(ssl, fd)) {
        snprintf(err, errlen, "TLS: %s", last_error(why, sizeof why));
        ossl.SSL_free(ssl);
        return -ENOMEM;
    }
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (!is_ip) /* server name indication is for names only */
        ossl.SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)host);
    ossl.SSL_set1_host(ssl, host);
    for (;;) {
        ossl.ERR_clear_error();
        int rc = ossl.SSL_connect(ssl);
        if (rc == 1)
            break;
        int w = wait_for(ssl, fd, rc, deadline_us);
        if (w == 0)
            continue;
        if (w == -ETIMEDOUT) {
            snprintf(err, errlen, "TLS handshake with %s not done in time", host);
        } else {
            long v = ossl.SSL_get_verify_result(ssl);
            if (v != X509_V_OK)
                snprintf(err, errlen, "TLS: the certificate of %s is not trusted: %s", host,
                         ossl.X509_verify_cert_error_string(v));
            else
                snprintf(err, errlen, "TLS handshake with %s failed: %s", host,
                         last_error(why, sizeof why));
        }
        ossl.ERR_clear_error();
        ossl.SSL_free(ssl);
        return w == -ETIMEDOUT ? w : -ECONNREFUSED;
    }
    *sess = ssl;
    return 0;
}

int client_tls_write(void *sess, int fd, const void *p, size_t len, int64_t deadline_us)
{
    const char *c = p;
    while (len) {
        ossl.ERR_clear_error();
        int n = ossl.SSL_write(sess, c, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n > 0) {
            c += n;
            len -= (size_t)n;
            continue;
        }
        int w = wait_for(sess, fd, n, deadline_us);
        if (w)
            return w == -ETIMEDOUT ? w : -ECONNRESET;
    }
    return 0;
}

long client_tls_read(void *sess, int fd, void *p, size_t len, int64_t deadline_us)
{
    for (;;) {
        ossl.ERR_clear_error();
        int n = ossl.SSL_read(sess, p, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n > 0)
            return n;
        int w = wait_for(sess, fd, n, deadline_us);
        if (w == -EPIPE)
            return 0; /* close_notify: the end of the stream */
        if (w)
            return w;
    }
}

void client_tls_close(void **sess)
{
    if (!sess || !*sess)
        return;
    ossl.ERR_clear_error();
    ossl.SSL_shutdown(*sess); /* one close_notify if the socket takes it; never waits */
    ossl.SSL_free(*sess);
    ossl.ERR_clear_error();
    *sess = NULL;
}
