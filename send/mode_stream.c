/* mode_stream: --stream-json, `claude -p --output-format stream-json --verbose` output read
 * line by line as it arrives; each line is mapped (shared/claude/streamjson.c) and its
 * events sent at once, so the dashboard follows the agent live. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "mode.h"
#include "streamjson.h"

#define SEND_LINE_MAX (16 << 20) /* longest stream-json line taken */

/* Maps and sends one stream-json line. */
static void stream_line(run_t *s, streamjson_t *sj, const char *line, size_t len, size_t no)
{
    json_t *events = NULL;
    char why[256];
    if (streamjson_line(sj, line, len, &events, why, sizeof why)) {
        log_error("stream line %zu: %s; not sent", no, why);
        s->tally.invalid++;
        return;
    }
    char what[32];
    snprintf(what, sizeof what, "stream line %zu event", no);
    json_t *ok = run_valid_events(s, events, what, 0);
    run_deliver(s, ok, (int)s->opt.timeout_ms);
    json_decref(ok);
    json_decref(events);
}

int mode_stream_send(run_t *s)
{
    streamjson_t *sj = streamjson_new(s->opt.adw_id, s->opt.step);
    if (!sj) {
        /* Read on anyway: closing the pipe early could kill the agent writing into it. */
        log_error("--stream-json: %s; nothing from this stream is sent",
                  errno == EINVAL ? "--adw-id must be 1-64 of [A-Za-z0-9._:-] and --step at "
                                    "most 64 bytes"
                                  : "out of memory");
        s->tally.invalid++;
        char chunk[65536];
        ssize_t r;
        while (!run_stopping &&
               ((r = read(STDIN_FILENO, chunk, sizeof chunk)) > 0 || (r < 0 && errno == EINTR)))
            if (r > 0 && s->opt.tee && fwrite(chunk, 1, (size_t)r, stdout) == (size_t)r)
                fflush(stdout);
        return 0;
    }
    buf_t b;
    buf_init(&b, SEND_LINE_MAX + 1);
    size_t no = 0, scan = 0;
    int eof = 0, skipping = 0;
    while (!eof || b.len) {
        char *nl = b.len > scan ? memchr(b.data + scan, '\n', b.len - scan) : NULL;
        if (nl || (eof && b.len)) {
            size_t n = nl ? (size_t)(nl - b.data) + 1 : b.len;
            if (skipping) {
                skipping = 0;
            } else {
                no++;
                if (s->opt.tee && fwrite(b.data, 1, n, stdout) == n)
                    fflush(stdout);
                stream_line(s, sj, b.data, n, no);
            }
            buf_consume(&b, n);
            scan = 0;
            continue;
        }
        scan = b.len;
        if (eof || run_stopping)
            break;
        if (b.len >= SEND_LINE_MAX) {
            no++;
            log_error("stream line %zu: longer than %d bytes; not sent", no, SEND_LINE_MAX);
            s->tally.invalid++;
            skipping = 1;
            buf_reset(&b);
            scan = 0;
        }
        if (buf_reserve(&b, 65536) && buf_reserve(&b, SEND_LINE_MAX - b.len)) {
            log_error("out of memory");
            break;
        }
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        int pr = poll(&p, 1, 250); /* wakes to notice a signal */
        if (pr <= 0)
            continue;
        ssize_t r = read(STDIN_FILENO, b.data + b.len, b.cap - b.len - 1);
        if (r == 0) {
            eof = 1;
        } else if (r < 0) {
            if (errno != EINTR && errno != EAGAIN) {
                log_error("stdin: %s", strerror(errno));
                eof = 1;
            }
        } else {
            b.len += (size_t)r;
            b.data[b.len] = '\0';
        }
    }
    buf_free(&b);
    streamjson_destroy(&sj);
    /* At the end: one more try for whatever waits in the spool. */
    client_report_t rep;
    if (s->tally.spooled && client_drain(s->client, (int)s->opt.timeout_ms, &rep) >= 0 &&
        rep.drained)
        log_info("spool: %zu event(s) delivered at the end, %zu left", rep.drained, rep.pending);
    return 0;
}
