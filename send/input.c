/* input: reads the whole of stdin for --json and --hook, within --max-input bytes and the
 * run's deadline. */
#include "input.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Reads all of stdin into b (whose max bounds it) until EOF or the deadline. Returns 0,
 * -E2BIG, -ETIMEDOUT or a negative errno. */
static int read_stdin(buf_t *b, int64_t deadline_us)
{
    for (;;) {
        int rc = buf_reserve(b, 65536);
        if (rc == -E2BIG)
            rc = buf_reserve(b, b->max - b->len);
        if (rc == -E2BIG || (rc == 0 && b->cap - b->len <= 1)) {
            /* Full: one more byte means too much. */
            char c;
            struct pollfd p = {STDIN_FILENO, POLLIN, 0};
            if (poll(&p, 1, run_ms_left(deadline_us)) > 0 && read(STDIN_FILENO, &c, 1) == 0)
                return 0;
            return -E2BIG;
        }
        if (rc)
            return rc;
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        int pr = poll(&p, 1, run_ms_left(deadline_us));
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        ssize_t r = read(STDIN_FILENO, b->data + b->len, b->cap - b->len - 1);
        if (r == 0)
            return 0;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        b->len += (size_t)r;
        b->data[b->len] = '\0';
    }
}

int input_read(run_t *s, buf_t *in)
{
    buf_init(in, (size_t)s->opt.max_input);
    int rc = read_stdin(in, s->deadline_us);
    if (rc == -E2BIG)
        log_error("stdin: input over %lld bytes (--max-input); not sent",
                  (long long)s->opt.max_input);
    else if (rc == -ETIMEDOUT)
        log_error("stdin: input did not end within --timeout-ms (%lld ms); not sent",
                  (long long)s->opt.timeout_ms);
    else if (rc)
        log_error("stdin: %s; not sent", strerror(-rc));
    else if (in->len == 0)
        log_error("stdin is empty: expected %s; not sent",
                  s->opt.hook ? "a hook's JSON" : "events as JSON");
    if (rc || in->len == 0) {
        s->tally.invalid++;
        return -EINVAL;
    }
    return 0;
}
