#include "dbchoice.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int dbchoice_usable(const dbchoice_standby_t *s, int64_t primary_epoch)
{
    return s->up && primary_epoch != 0 && s->epoch == primary_epoch;
}

dbchoice_t dbchoice_pick(const dbchoice_standby_t *s, size_t n, int64_t primary_epoch, int64_t need,
                         unsigned turn, int64_t now_us, int64_t recheck_us)
{
    dbchoice_t c = {.standby = -1, .look = 0};
    if (!n)
        return c;
    for (size_t k = 0; k < n; k++) {
        size_t i = (turn + k) % n;
        if (dbchoice_usable(&s[i], primary_epoch) && s[i].reach >= need) {
            c.standby = (int)i;
            return c;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!dbchoice_usable(&s[i], primary_epoch) || now_us - s[i].looked_us < recheck_us)
            continue;
        if (c.standby < 0 || s[i].reach > s[c.standby].reach)
            c.standby = (int)i;
    }
    c.look = c.standby >= 0;
    return c;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The length of the scheme prefix at p (postgresql:// or postgres://), 0 when none. */
static size_t scheme_len(const char *p)
{
    static const char *const schemes[] = {"postgresql://", "postgres://"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t len = strlen(schemes[i]);
        if (!strncmp(p, schemes[i], len))
            return len;
    }
    return 0;
}

/* 1 when the comma at p separates entries: only whitespace, or a scheme, follows it. */
static int separating_comma(const char *p)
{
    p++;
    while (is_space(*p) || *p == ',')
        p++;
    return !*p || scheme_len(p) > 0;
}

int dbchoice_parse(const char *list, dbchoice_span_t *spans, size_t max, size_t *n, char *err,
                   size_t errlen)
{
    *n = 0;
    if (!list)
        return 0;
    const char *p = list;
    for (;;) {
        while (is_space(*p) || (*p == ',' && separating_comma(p)))
            p++;
        if (!*p)
            return 0;
        const char *start = p;
        while (*p && !is_space(*p) && !(*p == ',' && separating_comma(p)))
            p++;
        size_t len = (size_t)(p - start);
        if (*n == max) {
            snprintf(err, errlen, "ADW_GATEWAY_READ_URL: more than %zu standbys", max);
            return -EINVAL;
        }
        if (!scheme_len(start) || scheme_len(start) == len) {
            /* The entry is not echoed: it may hold a password. */
            snprintf(err, errlen,
                     "ADW_GATEWAY_READ_URL: entry %zu is not a postgresql:// or postgres:// URI",
                     *n + 1);
            return -EINVAL;
        }
        spans[*n].off = (size_t)(start - list);
        spans[*n].len = len;
        ++*n;
    }
}
