/* utf8: strict UTF-8 validation (a whole string or one character) and boundary-safe truncation.
 *
 * Strict means RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF, no truncated sequences. NUL bytes are valid UTF-8 here; callers that forbid them
 * check separately. Every function is pure and never reads past s + len.
 */
#ifndef ADW_UTF8_H
#define ADW_UTF8_H

#include <stddef.h>

/* Checks that the len bytes at s (borrowed; may be NULL when len is 0) are strict UTF-8.
 * Returns 0 if they are, -EILSEQ if not. */
int utf8_validate(const char *s, size_t len);

/* Returns the length (1..4) of the strict UTF-8 character that starts at s, or 0 when none
 * does: a stray continuation byte, an overlong form, a surrogate, a value above U+10FFFF, or
 * a character cut short by len (len 0 included). s (borrowed) holds len bytes. Walking a
 * string with it and skipping one byte on 0 drops exactly the bytes utf8_validate refuses. */
size_t utf8_char_len(const char *s, size_t len);

/* Returns len if len <= max; otherwise the largest n <= max such that s[n] is not a
 * continuation byte, so the first n bytes end on a character boundary (for valid UTF-8 that
 * is at most 3 bytes short of max; for invalid input it never steps back more than 3).
 * s (borrowed) holds len bytes. */
size_t utf8_truncate(const char *s, size_t len, size_t max);

#endif
