#include "partplan.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define RETENTION_MAX_S (10LL * 366 * 86400)

int partplan_parse_retention(const char *s, int64_t *seconds, char *err, size_t errlen)
{
    if (!s || !*s) {
        *seconds = 0;
        return 0;
    }
    const char *p = s;
    int64_t n = 0;
    if (!isdigit((unsigned char)*p))
        goto bad;
    for (; isdigit((unsigned char)*p); p++) {
        n = n * 10 + (*p - '0');
        if (n > RETENTION_MAX_S)
            goto too_long;
    }
    int64_t unit = 1;
    switch (*p) {
    case '\0':
        break;
    case 'd':
        unit = 86400;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'm':
        unit = 60;
        break;
    case 's':
        break;
    default:
        goto bad;
    }
    if (*p && p[1])
        goto bad;
    if (n > RETENTION_MAX_S / unit)
        goto too_long;
    *seconds = n * unit;
    return 0;
too_long:
    set_err(err, errlen, "retention '%.40s' is longer than ten years", s);
    return -EINVAL;
bad:
    set_err(err, errlen,
            "retention '%.40s' is not a duration: give 30d, 12h, 90m, 3600s or seconds (0: keep "
            "everything)",
            s);
    return -EINVAL;
}

int partplan_next(int64_t top, int64_t last_id, int64_t batch_max, int64_t size, int64_t *from,
                  int64_t *to)
{
    if (last_id < 0 || batch_max < 0 || size <= 0)
        return 0;
    if (last_id > INT64_MAX - 1 - batch_max - size)
        return 0;
    int64_t need = last_id + 1 + batch_max + size;
    int64_t lo = top > 0 ? top : 1;
    if (top > 0 && top >= need)
        return 0;
    if (lo > INT64_MAX - size)
        return 0;
    *from = lo;
    *to = lo + size;
    return 1;
}

/* Reads "('N')" or "(N)" at *p into *v, advancing *p. Returns 0 or -EINVAL. */
static int bound_value(const char **p, int64_t *v)
{
    const char *s = *p;
    if (*s++ != '(')
        return -EINVAL;
    int quoted = *s == '\'';
    s += quoted;
    if (!isdigit((unsigned char)*s) && *s != '-')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    s = end;
    if (quoted && *s++ != '\'')
        return -EINVAL;
    if (*s++ != ')')
        return -EINVAL;
    *v = x;
    *p = s;
    return 0;
}

int partplan_parse_bound(const char *expr, int64_t *from, int64_t *to)
{
    static const char pre[] = "FOR VALUES FROM ", mid[] = " TO ";
    if (!expr || strncmp(expr, pre, sizeof pre - 1))
        return -EINVAL;
    const char *p = expr + sizeof pre - 1;
    int64_t a, b;
    if (bound_value(&p, &a) || strncmp(p, mid, sizeof mid - 1))
        return -EINVAL;
    p += sizeof mid - 1;
    if (bound_value(&p, &b) || *p || b <= a)
        return -EINVAL;
    *from = a;
    *to = b;
    return 0;
}

int partplan_droppable(int64_t to, int64_t last_id, int64_t newest_us, int64_t now_us,
                       int64_t retention_s)
{
    if (retention_s <= 0 || to > last_id)
        return 0;
    if (newest_us == 0)
        return 1; /* empty, and below the last id: nothing to keep */
    return newest_us < now_us - retention_s * 1000000;
}
