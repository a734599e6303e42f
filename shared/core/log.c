#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "adw";
static log_level_t log_min = LOG_LEVEL_INFO;
static int log_json;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_init(const char *program, const char *level, const char *format)
{
    int lvl = -1;
    for (int i = 0; i < 4; i++)
        if (level && !strcasecmp(level, level_names[i]))
            lvl = i;
    if (level && !strcasecmp(level, "warning"))
        lvl = LOG_LEVEL_WARN;
    if (lvl < 0 && level)
        return -EINVAL;
    int json;
    if (!format || !strcasecmp(format, "text"))
        json = 0;
    else if (!strcasecmp(format, "json"))
        json = 1;
    else
        return -EINVAL;
    if (program)
        log_program = program;
    if (lvl >= 0)
        log_min = (log_level_t)lvl;
    log_json = json;
    return 0;
}

int log_enabled(log_level_t level)
{
    return level >= log_min;
}

/* Appends s to out (capacity cap, position *pos) escaped for a JSON string, or with control
 * characters shown as \n, \t, \xNN in text mode. Never overflows; truncates silently at cap. */
static void put_escaped(char *out, size_t cap, size_t *pos, const char *s, int json)
{
    for (; *s && *pos + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = 'n';
        } else if (c == '\t') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = 't';
        } else if (json && (c == '"' || c == '\\')) {
            out[(*pos)++] = '\\';
            out[(*pos)++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            *pos += (size_t)snprintf(out + *pos, cap - *pos, json ? "\\u%04x" : "\\x%02x", c);
        } else {
            out[(*pos)++] = (char)c;
        }
    }
}

void log_write(log_level_t level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    /* clang-tidy 14 loses track of va_start when it analyses log.c after another file in the
     * same run (log.c alone is clean): */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): ap is va_start'ed on the line above
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%06ldZ", ts.tv_nsec / 1000);

    char line[4200];
    size_t pos = 0;
    if (log_json) {
        pos = (size_t)snprintf(line, sizeof line,
                               "{\"ts\":\"%s\",\"level\":\"%s\",\"program\":\"%s\",\"msg\":\"",
                               when, level_names[level], log_program);
        put_escaped(line, sizeof line - 4, &pos, msg, 1);
        line[pos++] = '"';
        line[pos++] = '}';
    } else {
        pos = (size_t)snprintf(line, sizeof line, "%s %-5s %s: ", when, level_names[level],
                               log_program);
        put_escaped(line, sizeof line - 2, &pos, msg, 0);
    }
    line[pos++] = '\n';
    ssize_t rc = write(STDERR_FILENO, line, pos);
    (void)rc;
}

int log_every(log_every_t *e, unsigned long long *held)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1; /* never 0 */
    if (e->last_ms && now - e->last_ms < e->period_ms) {
        e->held++;
        return 0;
    }
    *held = e->held;
    e->held = 0;
    e->last_ms = now;
    return 1;
}
