#include "fleet_query.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int fleet_resume_query(char *out, size_t n, const char *query, int64_t since)
{
    size_t len = 0;
    const char *p = query ? query : "";
    if (*p == '?')
        p++;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t k = amp ? (size_t)(amp - p) : strlen(p);
        int is_since = k >= 5 && !memcmp(p, "since", 5) && (k == 5 || p[5] == '=');
        if (k && !is_since) {
            if (len + (len ? 1 : 0) + k >= n)
                goto full;
            if (len)
                out[len++] = '&';
            memcpy(out + len, p, k);
            len += k;
        }
        p += k + (amp ? 1 : 0);
    }
    int w = snprintf(out + len, n - len, "%ssince=%" PRId64, len ? "&" : "", since);
    if (w < 0 || (size_t)w >= n - len)
        goto full;
    return (int)(len + (size_t)w);
full:
    if (n)
        out[0] = '\0';
    return -ENOSPC;
}
