#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* One of these per watched file descriptor, indexed by fd. */
typedef struct watch {
    loop_fd_fn fn;
    void *arg;
    int mask;
    loop_hook_fn drain; /* a ZeroMQ socket's (loop_watch_zmq) */
} watch_t;

/* One of these per periodic timer. */
typedef struct timer {
    int64_t period_ms;
    int64_t next_ms;
    loop_timer_fn fn;
    void *arg;
} timer_t_;

typedef struct hook {
    loop_hook_fn fn;
    void *arg;
} hook_t;

struct loop_t {
    int epfd;
    int wakefd;
    watch_t *watches; /* indexed by fd */
    int nwatches;
    timer_t_ *timers;
    int ntimers;
    hook_t *hooks;
    int nhooks;
    int64_t now_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

loop_t *loop_new(void)
{
    loop_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wakefd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->wakefd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev))
        goto fail;
    l->now_ms = mono_ms();
    return l;
fail:
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    free(l);
    return NULL;
}

void loop_destroy(loop_t **lp)
{
    if (!lp || !*lp)
        return;
    loop_t *l = *lp;
    close(l->epfd);
    close(l->wakefd);
    free(l->watches);
    free(l->timers);
    free(l->hooks);
    free(l);
    *lp = NULL;
}

int loop_watch(loop_t *l, int fd, int mask, loop_fd_fn fn, void *arg)
{
    if (fd < 0)
        return -EBADF;
    if (fd >= l->nwatches) {
        int n = l->nwatches ? l->nwatches : 64;
        while (n <= fd)
            n *= 2;
        watch_t *w = realloc(l->watches, (size_t)n * sizeof *w);
        if (!w)
            return -ENOMEM;
        memset(w + l->nwatches, 0, (size_t)(n - l->nwatches) * sizeof *w);
        l->watches = w;
        l->nwatches = n;
    }
    struct epoll_event ev = {.data.fd = fd};
    if (mask & LOOP_READ)
        ev.events |= EPOLLIN | EPOLLRDHUP;
    if (mask & LOOP_WRITE)
        ev.events |= EPOLLOUT;
    int op = l->watches[fd].fn ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, fd, &ev))
        return -errno;
    l->watches[fd] = (watch_t){.fn = fn, .arg = arg, .mask = mask};
    return 0;
}

static void drain_fd(loop_t *l, int fd, int mask, void *arg)
{
    (void)mask;
    l->watches[fd].drain(l, arg);
}

int loop_watch_zmq(loop_t *l, int fd, loop_hook_fn drain, void *arg)
{
    int rc = loop_watch(l, fd, LOOP_READ, drain_fd, arg);
    if (rc)
        return rc;
    l->watches[fd].drain = drain;
    rc = loop_hook(l, drain, arg);
    if (rc)
        loop_unwatch(l, fd);
    return rc;
}

void loop_unwatch(loop_t *l, int fd)
{
    if (fd < 0 || fd >= l->nwatches || !l->watches[fd].fn)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->watches[fd] = (watch_t){0};
}

int loop_timer(loop_t *l, int64_t period_ms, loop_timer_fn fn, void *arg)
{
    timer_t_ *t = realloc(l->timers, (size_t)(l->ntimers + 1) * sizeof *t);
    if (!t)
        return -ENOMEM;
    l->timers = t;
    t[l->ntimers] = (timer_t_){.period_ms = period_ms > 0 ? period_ms : 1,
                               .next_ms = mono_ms() + period_ms,
                               .fn = fn,
                               .arg = arg};
    return ++l->ntimers;
}

int loop_hook(loop_t *l, loop_hook_fn fn, void *arg)
{
    hook_t *h = realloc(l->hooks, (size_t)(l->nhooks + 1) * sizeof *h);
    if (!h)
        return -ENOMEM;
    l->hooks = h;
    h[l->nhooks++] = (hook_t){.fn = fn, .arg = arg};
    return 0;
}

void loop_wake(loop_t *l)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is full: the loop is woken already. */
    while (write(l->wakefd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

int64_t loop_now_ms(const loop_t *l)
{
    return l->now_ms;
}

/* One turn: timers, hooks, then a wait of at most max_wait_ms and the handlers. */
static void loop_turn(loop_t *l, int max_wait_ms, volatile int *stop)
{
    struct epoll_event events[256];
    {
        l->now_ms = mono_ms();
        for (int i = 0; i < l->ntimers; i++) {
            timer_t_ *t = &l->timers[i];
            if (l->now_ms >= t->next_ms) {
                t->next_ms = l->now_ms + t->period_ms;
                t->fn(l, t->arg);
            }
        }
        int busy = 0;
        for (int i = 0; i < l->nhooks; i++)
            busy |= l->hooks[i].fn(l, l->hooks[i].arg);
        if (stop && *stop)
            return;
        int timeout = max_wait_ms;
        if (busy) {
            timeout = 0;
        } else {
            for (int i = 0; i < l->ntimers; i++) {
                int64_t d = l->timers[i].next_ms - l->now_ms;
                if (d < timeout)
                    timeout = d < 0 ? 0 : (int)d;
            }
        }
        int n = epoll_wait(l->epfd, events, 256, timeout);
        if (n < 0)
            return;
        l->now_ms = mono_ms();
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == l->wakefd) {
                uint64_t v;
                ssize_t rc = read(l->wakefd, &v, sizeof v);
                (void)rc;
                continue;
            }
            if (fd >= l->nwatches || !l->watches[fd].fn)
                continue;
            int mask = 0;
            uint32_t e = events[i].events;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                mask |= LOOP_READ;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                mask |= LOOP_WRITE;
            mask &= l->watches[fd].mask | ((e & (EPOLLHUP | EPOLLERR)) ? LOOP_READ : 0);
            if (mask)
                l->watches[fd].fn(l, fd, mask, l->watches[fd].arg);
        }
    }
}

void loop_run(loop_t *l, volatile int *stop)
{
    while (!*stop)
        loop_turn(l, 1000, stop);
}

void loop_run_once(loop_t *l)
{
    loop_turn(l, 100, NULL);
}
