#include "sock.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

int sock_init(sock_t *k, int fd, SSL_CTX *tls)
{
    *k = (sock_t){.fd = fd};
    if (!tls)
        return 0;
    k->ssl = SSL_new(tls);
    if (!k->ssl || !SSL_set_fd(k->ssl, fd)) {
        ERR_clear_error();
        SSL_free(k->ssl);
        k->ssl = NULL;
        return -ENOMEM;
    }
    k->handshaking = 1;
    return 0;
}

/* Turns a failed SSL call's result into the socket convention: -1 with errno EAGAIN (and
 * *want set to what it waits for), 0 at a clean end, or -1 with another errno. */
static ssize_t tls_result(sock_t *k, int rc, int *want)
{
    int e = SSL_get_error(k->ssl, rc);
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = LOOP_READ;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *want = LOOP_WRITE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (!errno)
            errno = ECONNRESET;
        return -1;
    default:
        errno = EPROTO;
        return -1;
    }
}

int sock_handshake(sock_t *k, int *want)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_accept(k->ssl);
    if (rc == 1) {
        k->handshaking = 0;
        return 1;
    }
    *want = 0;
    if (tls_result(k, rc, want) < 0 && errno == EAGAIN)
        return 0;
    return -1;
}

ssize_t sock_recv(sock_t *k, char *p, size_t len)
{
    if (!k->ssl)
        return recv(k->fd, p, len, 0);
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(k->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
    k->rd_want = 0;
    return n > 0 ? n : tls_result(k, n, &k->rd_want);
}

ssize_t sock_send(sock_t *k, const char *p, size_t len)
{
    if (!k->ssl)
        return send(k->fd, p, len, MSG_NOSIGNAL);
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(k->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
    k->wr_want = 0;
    return n > 0 ? n : tls_result(k, n, &k->wr_want);
}

int sock_wants(const sock_t *k)
{
    return (k->rd_want & LOOP_WRITE) | (k->wr_want & LOOP_READ);
}

void sock_close(sock_t *k)
{
    if (k->ssl) {
        if (!k->handshaking) { /* a close_notify if the socket takes it; never waits */
            ERR_clear_error();
            SSL_shutdown(k->ssl);
        }
        ERR_clear_error();
        SSL_free(k->ssl);
        k->ssl = NULL;
    }
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
}
