#include "auth.h"

#include <string.h>
#include <strings.h>

int auth_token_equal(const char *got, size_t glen, const char *want)
{
    size_t wlen = strlen(want);
    volatile unsigned char d = glen != wlen;
    for (size_t i = 0; i < wlen; i++)
        d |= (unsigned char)((unsigned char)(i < glen ? got[i] : 0) ^ (unsigned char)want[i]);
    return d == 0;
}

int auth_bearer(const char *h, size_t hlen, const char **tok, size_t *tlen)
{
    if (hlen < 7 || strncasecmp(h, "Bearer ", 7))
        return -1;
    size_t b = 7, e = hlen;
    while (b < e && h[b] == ' ')
        b++;
    while (e > b && h[e - 1] == ' ')
        e--;
    *tok = h + b;
    *tlen = e - b;
    return 0;
}
