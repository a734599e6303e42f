#include "utf8.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define UTF8_HIGH_BITS 0x8080808080808080ULL

/* Number of leading bytes that are all ASCII, checked eight at a time. */
static size_t utf8__ascii_prefix(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (len - i >= 16) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        if ((a | b) & UTF8_HIGH_BITS)
            break;
        i += 16;
    }
    while (len - i >= 8) {
        uint64_t a;
        memcpy(&a, p + i, 8);
        if (a & UTF8_HIGH_BITS)
            break;
        i += 8;
    }
    while (i < len && p[i] < 0x80)
        i++;
    return i;
}

static inline int utf8__cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

int utf8_validate(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        if (p[i] < 0x80) {
            i += utf8__ascii_prefix(p + i, len - i);
            continue;
        }
        unsigned char c = p[i];
        size_t left = len - i;
        if (c >= 0xC2 && c <= 0xDF) {
            if (left < 2 || !utf8__cont(p[i + 1]))
                return -EILSEQ;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (left < 3)
                return -EILSEQ;
            unsigned char c1 = p[i + 1];
            /* E0: no overlongs (A0..BF); ED: no surrogates (80..9F). */
            unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
            unsigned char hi = c == 0xED ? 0x9F : 0xBF;
            if (c1 < lo || c1 > hi || !utf8__cont(p[i + 2]))
                return -EILSEQ;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (left < 4)
                return -EILSEQ;
            unsigned char c1 = p[i + 1];
            /* F0: no overlongs (90..BF); F4: nothing above U+10FFFF (80..8F). */
            unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
            unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
            if (c1 < lo || c1 > hi || !utf8__cont(p[i + 2]) || !utf8__cont(p[i + 3]))
                return -EILSEQ;
            i += 4;
        } else {
            /* 80..BF (stray continuation), C0/C1 (overlong), F5..FF. */
            return -EILSEQ;
        }
    }
    return 0;
}

size_t utf8_char_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* E0: no overlongs */
        hi = c == 0xED ? 0x9F : 0xBF; /* ED: no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80; /* F0: no overlongs */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* F4: nothing above U+10FFFF */
    } else {
        return 0; /* 80..BF (stray continuation), C0/C1 (overlong), F5..FF */
    }
    if (len < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (!utf8__cont(p[i]))
            return 0;
    return n;
}

size_t utf8_truncate(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = max;
    /* A character is at most 4 bytes, so a boundary is at most 3 steps back. */
    for (int step = 0; step < 3 && n > 0 && utf8__cont(p[n]); step++)
        n--;
    return n;
}
