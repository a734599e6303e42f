#include "param.h"

#include <errno.h>
#include <string.h>

int param_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!*s || strlen(s) > 19)
        return -EINVAL;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        if (v > (INT64_MAX - (*p - '0')) / 10) /* 19 digits may pass INT64_MAX */
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}
