/* loop: a single-threaded epoll event loop with file handlers, periodic timers and
 * before-sleep hooks (where ZeroMQ sockets re-check ZMQ_EVENTS, as their ZMQ_FD is
 * edge-triggered).
 *
 * Only the thread that runs the loop may call these functions, except loop_wake().
 */
#ifndef ADW_LOOP_H
#define ADW_LOOP_H

#include <stdint.h>

typedef struct loop_t loop_t;

#define LOOP_READ 1
#define LOOP_WRITE 2

/* Called when fd is readable and/or writable (mask of LOOP_READ | LOOP_WRITE). */
typedef void (*loop_fd_fn)(loop_t *loop, int fd, int mask, void *arg);
/* Called when a timer fires; it stays armed with the same period. */
typedef void (*loop_timer_fn)(loop_t *loop, void *arg);
/* Called once per loop turn before waiting. Returns 1 when it did work (the loop then waits
 * with a zero timeout), else 0. */
typedef int (*loop_hook_fn)(loop_t *loop, void *arg);

/* Returns a new loop, or NULL with errno set. */
loop_t *loop_new(void);

/* Frees the loop (not the fds it watched); accepts NULL and sets *l to NULL. */
void loop_destroy(loop_t **l);

/* Watches fd for mask; replaces a previous registration of fd. Returns 0 or -errno. */
int loop_watch(loop_t *l, int fd, int mask, loop_fd_fn fn, void *arg);

/* Watches a ZeroMQ socket's ZMQ_FD: drain runs when fd is readable and also before every
 * wait (the fd is edge-triggered, so messages can be waiting without it firing again); drain
 * returns 1 when it may have left messages. Returns 0 or -errno. */
int loop_watch_zmq(loop_t *l, int fd, loop_hook_fn drain, void *arg);

/* Stops watching fd (no error when it was not watched). Call before closing fd. */
void loop_unwatch(loop_t *l, int fd);

/* Adds a periodic timer every period_ms. Returns its id (> 0) or -errno. */
int loop_timer(loop_t *l, int64_t period_ms, loop_timer_fn fn, void *arg);

/* Adds a hook run before every wait. Returns 0 or -errno. */
int loop_hook(loop_t *l, loop_hook_fn fn, void *arg);

/* Runs until *stop becomes non-zero (checked every turn, before the wait and after it). */
void loop_run(loop_t *l, volatile int *stop);

/* Runs one turn, waiting at most 100 ms. */
void loop_run_once(loop_t *l);

/* Wakes the loop from another thread (one write to an eventfd: async-signal-safe too). */
void loop_wake(loop_t *l);

/* Milliseconds on the monotonic clock, as of the start of the current turn. */
int64_t loop_now_ms(const loop_t *l);

#endif
