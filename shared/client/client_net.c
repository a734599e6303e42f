/* Sockets with deadlines, for the client library's transports (client_wire.h). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client_wire.h"
#include "timefmt.h"

static int ms_left(int64_t deadline_us)
{
    int64_t left = deadline_us - timefmt_mono_us();
    if (left <= 0)
        return 0;
    return (int)((left + 999) / 1000);
}

int client_net_wait(int fd, short events, int64_t deadline_us)
{
    for (;;) {
        int wait = ms_left(deadline_us);
        if (wait == 0)
            return -ETIMEDOUT;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, wait);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int client_net_write(int fd, const void *p, size_t len, int64_t deadline_us)
{
    const char *c = p;
    while (len) {
        ssize_t w = send(fd, c, len, MSG_NOSIGNAL);
        if (w >= 0) {
            c += w;
            len -= (size_t)w;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -ECONNRESET;
        int rc = client_net_wait(fd, POLLOUT, deadline_us);
        if (rc)
            return rc == -ETIMEDOUT ? rc : -ECONNRESET;
    }
    return 0;
}

/* Connects fd to addr by the deadline. Returns 0 or a negative errno. */
static int connect_one(int fd, const struct sockaddr *addr, socklen_t alen, int64_t deadline_us)
{
    if (connect(fd, addr, alen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EAGAIN)
        return -errno;
    int rc = client_net_wait(fd, POLLOUT, deadline_us);
    if (rc)
        return rc;
    int e = 0;
    socklen_t sl = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl))
        return -errno;
    return -e;
}

int client_net_connect(const char *host, const char *port, int64_t deadline_us, char *err,
                       size_t errlen)
{
    if (!host) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        if (strlen(port) >= sizeof sun.sun_path) {
            snprintf(err, errlen, "socket path %s is too long", port);
            return -ECONNREFUSED;
        }
        memcpy(sun.sun_path, port, strlen(port) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return -ECONNREFUSED;
        }
        int rc = connect_one(fd, (struct sockaddr *)&sun, sizeof sun, deadline_us);
        if (rc == 0)
            return fd;
        close(fd);
        snprintf(err, errlen, "cannot connect to %s: %s", port, strerror(-rc));
        return rc == -ETIMEDOUT ? rc : -ECONNREFUSED;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int grc = getaddrinfo(host, port, &hints, &res);
    if (grc) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(grc));
        return -ECONNREFUSED;
    }
    int rc = -ECONNREFUSED;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        rc = connect_one(fd, a->ai_addr, a->ai_addrlen, deadline_us);
        if (rc == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            freeaddrinfo(res);
            return fd;
        }
        close(fd);
        if (rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(-rc));
    return rc == -ETIMEDOUT ? rc : -ECONNREFUSED;
}
