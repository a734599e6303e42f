/* sock: one accepted TCP connection's byte stream, plain or TLS, never blocking. sock_recv and
 * sock_send follow recv(2) and send(2)'s convention for both; with TLS they remember what
 * OpenSSL waits for (a read may need the socket writable, a write readable: WANT_READ /
 * WANT_WRITE), so that the caller watches the socket for that.
 *
 * Loop thread only.
 */
#ifndef ADW_SOCK_H
#define ADW_SOCK_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* One of these per connection; plain data, embedded in the connection. */
typedef struct sock_t {
    int fd;
    SSL *ssl;        /* the TLS session (owned), or NULL on a plain connection */
    int handshaking; /* the TLS handshake is not done yet */
    int rd_want;     /* what the last TLS read waits for (LOOP_READ | LOOP_WRITE), or 0 */
    int wr_want;     /* what the last TLS write waits for, or 0 */
} sock_t;

/* Takes fd (a connected, non-blocking socket) into k; with tls (borrowed) a TLS session is
 * started, its handshake still to do. Returns 0, or -ENOMEM (k holds nothing, fd stays the
 * caller's to close). */
int sock_init(sock_t *k, int fd, SSL_CTX *tls);

/* Moves the TLS handshake on. Returns 1 when it is done, 0 while it waits (*want says for
 * what: LOOP_READ or LOOP_WRITE), -1 when it failed (errno says why; the caller closes). */
int sock_handshake(sock_t *k, int *want);

/* recv(2) for plain and TLS connections alike: bytes, 0 at the peer's end, or -1 with errno
 * (EAGAIN while it would block). */
ssize_t sock_recv(sock_t *k, char *p, size_t len);

/* send(2) for plain and TLS connections alike (never SIGPIPE). */
ssize_t sock_send(sock_t *k, const char *p, size_t len);

/* What TLS needs watched beyond the caller's own wishes: LOOP_WRITE when a read waits for the
 * socket to take bytes, LOOP_READ when a write waits for bytes to come; 0 on plain sockets. */
int sock_wants(const sock_t *k);

/* Sends a TLS close_notify when the socket takes it (never waits; none during a handshake),
 * frees the session and closes the fd. */
void sock_close(sock_t *k);

#endif
