/* Unit tests for shared/utf8: strict validation (checked exhaustively for short sequences
 * against a decoder written the slow way) and boundary-safe truncation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "utf8.h"

/* The slow reference: decode one scalar value, then judge it by its value. */
static int ref_validate(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return -EILSEQ;
        }
        if (len - i < n)
            return -EILSEQ;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return -EILSEQ;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -EILSEQ;
        i += n;
    }
    return 0;
}

static void expect_valid(const char *s, size_t len)
{
    assert_int_equal(utf8_validate(s, len), 0);
}

static void expect_invalid(const char *s, size_t len)
{
    assert_int_equal(utf8_validate(s, len), -EILSEQ);
}

#define VALID(lit) expect_valid(lit, sizeof(lit) - 1)
#define INVALID(lit) expect_invalid(lit, sizeof(lit) - 1)

static void test_boundaries(void **state)
{
    (void)state;
    expect_valid(NULL, 0);
    VALID("");
    VALID("plain ascii");
    VALID("a\0b");                                       /* NUL is valid UTF-8 */
    VALID("\x7F");                                       /* U+007F */
    VALID("\xC2\x80");                                   /* U+0080 */
    VALID("\xDF\xBF");                                   /* U+07FF */
    VALID("\xE0\xA0\x80");                               /* U+0800 */
    VALID("\xED\x9F\xBF");                               /* U+D7FF */
    VALID("\xEE\x80\x80");                               /* U+E000 */
    VALID("\xEF\xBF\xBF");                               /* U+FFFF */
    VALID("\xF0\x90\x80\x80");                           /* U+10000 */
    VALID("\xF4\x8F\xBF\xBF");                           /* U+10FFFF */
    VALID("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"); /* héllo € 😀 */

    INVALID("\x80"); /* stray continuation */
    INVALID("\xBF");
    INVALID("\xC0\x80");                 /* overlong NUL */
    INVALID("\xC1\xBF");                 /* overlong */
    INVALID("\xE0\x80\x80");             /* overlong */
    INVALID("\xE0\x9F\xBF");             /* overlong U+07FF */
    INVALID("\xF0\x80\x80\x80");         /* overlong */
    INVALID("\xF0\x8F\xBF\xBF");         /* overlong U+FFFF */
    INVALID("\xED\xA0\x80");             /* U+D800 */
    INVALID("\xED\xBF\xBF");             /* U+DFFF */
    INVALID("\xED\xA0\x80\xED\xB0\x80"); /* CESU-8 surrogate pair */
    INVALID("\xF4\x90\x80\x80");         /* U+110000 */
    INVALID("\xF5\x80\x80\x80");
    INVALID("\xF8\x88\x80\x80\x80");
    INVALID("\xFE");
    INVALID("\xFF");
    INVALID("\xC2"); /* truncated */
    INVALID("\xE0\xA0");
    INVALID("\xF0\x90\x80");
    INVALID("\xC2\x41"); /* bad continuation */
    INVALID("\xE2\x82\x41");
    INVALID("\xF0\x9F\x98\x41");
    INVALID("\xE2\x82\xAC\xAC"); /* one continuation too many */
}

/* Every position of the fast ASCII path: a bad byte after 0..40 ASCII bytes, and a valid
 * multi-byte character there instead. */
static void test_ascii_runs(void **state)
{
    (void)state;
    char s[64];
    for (size_t at = 0; at <= 40; at++) {
        memset(s, 'x', sizeof s);
        s[at] = (char)0xFF;
        expect_invalid(s, sizeof s);
        expect_invalid(s, at + 1);
        expect_valid(s, at);

        memset(s, 'x', sizeof s);
        memcpy(s + at, "\xE2\x82\xAC", 3);
        expect_valid(s, sizeof s);
        expect_invalid(s, at + 2); /* cut inside the character */
    }
}

static void test_exhaustive_short(void **state)
{
    (void)state;
    unsigned char b[4];
    for (unsigned a = 0; a < 256; a++) {
        b[0] = (unsigned char)a;
        assert_int_equal(utf8_validate((char *)b, 1), ref_validate(b, 1));
        for (unsigned c = 0; c < 256; c++) {
            b[1] = (unsigned char)c;
            assert_int_equal(utf8_validate((char *)b, 2), ref_validate(b, 2));
        }
    }
    /* Every 3-byte sequence with a 3-byte lead. */
    for (unsigned a = 0xE0; a <= 0xEF; a++)
        for (unsigned c = 0; c < 256; c++)
            for (unsigned d = 0; d < 256; d++) {
                b[0] = (unsigned char)a;
                b[1] = (unsigned char)c;
                b[2] = (unsigned char)d;
                assert_int_equal(utf8_validate((char *)b, 3), ref_validate(b, 3));
            }
    /* 4-byte leads with every second byte and every third, and a few last bytes. */
    static const unsigned char last[] = {0x00, 0x41, 0x7F, 0x80, 0x9F, 0xBF, 0xC0, 0xFF};
    for (unsigned a = 0xF0; a <= 0xFF; a++)
        for (unsigned c = 0; c < 256; c++)
            for (unsigned d = 0; d < 256; d++)
                for (size_t k = 0; k < sizeof last; k++) {
                    b[0] = (unsigned char)a;
                    b[1] = (unsigned char)c;
                    b[2] = (unsigned char)d;
                    b[3] = last[k];
                    assert_int_equal(utf8_validate((char *)b, 4), ref_validate(b, 4));
                }
}

static void test_truncate(void **state)
{
    (void)state;
    assert_int_equal(utf8_truncate("", 0, 0), 0);
    assert_int_equal(utf8_truncate("abc", 3, 10), 3);
    assert_int_equal(utf8_truncate("abc", 3, 3), 3);
    assert_int_equal(utf8_truncate("abc", 3, 2), 2);
    assert_int_equal(utf8_truncate("abc", 3, 0), 0);
    /* "a€b": a at 0, € at 1..3, b at 4 */
    const char *s = "a\xE2\x82\xAC"
                    "b";
    assert_int_equal(utf8_truncate(s, 5, 1), 1);
    assert_int_equal(utf8_truncate(s, 5, 2), 1);
    assert_int_equal(utf8_truncate(s, 5, 3), 1);
    assert_int_equal(utf8_truncate(s, 5, 4), 4);
    assert_int_equal(utf8_truncate(s, 5, 5), 5);
    /* A 4-byte character cut at each of its bytes. */
    const char *e = "\xF0\x9F\x98\x80\xF0\x9F\x98\x80";
    for (size_t max = 0; max <= 8; max++)
        assert_int_equal(utf8_truncate(e, 8, max), max / 4 * 4);
    /* Invalid input: it never steps back more than 3 bytes. */
    const char *bad = "\x80\x80\x80\x80\x80\x80";
    assert_int_equal(utf8_truncate(bad, 6, 5), 2);
    assert_int_equal(utf8_truncate(bad, 6, 2), 0);
}

/* The slow reference for one character: the lead byte's length when those bytes decode. */
static size_t ref_char_len(const unsigned char *p, size_t len)
{
    if (len == 0)
        return 0;
    size_t n = p[0] < 0x80             ? 1
               : (p[0] & 0xE0) == 0xC0 ? 2
               : (p[0] & 0xF0) == 0xE0 ? 3
               : (p[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (n == 0 || n > len)
        return 0;
    return ref_validate(p, n) == 0 ? n : 0;
}

static void test_char_len(void **state)
{
    (void)state;
    assert_int_equal(utf8_char_len("", 0), 0);
    assert_int_equal(utf8_char_len("a", 1), 1);
    assert_int_equal(utf8_char_len("\0", 1), 1);
    assert_int_equal(utf8_char_len("\xC3\xA9", 2), 2);
    assert_int_equal(utf8_char_len("\xE2\x82\xAC", 3), 3);
    assert_int_equal(utf8_char_len("\xF0\x9F\x98\x80", 4), 4);
    assert_int_equal(utf8_char_len("\xF0\x9F\x98\x80", 3), 0); /* cut short */
    assert_int_equal(utf8_char_len("\xED\xA0\x80", 3), 0);     /* U+D800 */
    assert_int_equal(utf8_char_len("\x80", 1), 0);
    /* Every lead byte with every second byte, and the 3- and 4-byte forms as in
     * test_exhaustive_short, each against the reference and at every shorter length. */
    unsigned char b[4];
    for (unsigned a = 0; a < 256; a++)
        for (unsigned c = 0; c < 256; c++)
            for (unsigned d = 0; d < 256; d += (a >= 0xE0 ? 1 : 255)) {
                b[0] = (unsigned char)a;
                b[1] = (unsigned char)c;
                b[2] = (unsigned char)d;
                b[3] = 0xBF;
                for (size_t len = 0; len <= 4; len++)
                    assert_int_equal(utf8_char_len((char *)b, len), ref_char_len(b, len));
            }
    /* Walking a string by characters accepts exactly what utf8_validate accepts. */
    const char *s = "a\xC3\xA9\xF0\x9F\x98\x80\xE2\x82";
    size_t len = strlen(s), i = 0;
    while (i < len && utf8_char_len(s + i, len - i) > 0)
        i += utf8_char_len(s + i, len - i);
    assert_int_equal(i, 7);
    assert_int_equal(utf8_validate(s, i), 0);
    assert_int_not_equal(utf8_validate(s, i + 1), 0);
}

/* For every cut of a mixed string, the result is the longest valid prefix within max. */
static void test_truncate_every_cut(void **state)
{
    (void)state;
    const char *s = "a\xC3\xA9"
                    "b\xE2\x82\xAC"
                    "c\xF0\x9F\x98\x80"
                    "d\xF4\x8F\xBF\xBF";
    size_t len = strlen(s);
    for (size_t max = 0; max <= len + 1; max++) {
        size_t n = utf8_truncate(s, len, max);
        assert_true(n <= max && n <= len);
        assert_int_equal(utf8_validate(s, n), 0);
        for (size_t m = n + 1; m <= max && m <= len; m++)
            assert_int_not_equal(utf8_validate(s, m), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundaries),         cmocka_unit_test(test_ascii_runs),
        cmocka_unit_test(test_exhaustive_short),   cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_truncate_every_cut), cmocka_unit_test(test_char_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
