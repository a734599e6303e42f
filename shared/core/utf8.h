/* utf8: strict UTF-8 validation and boundary-safe truncation.
 *
 * Strict means RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF, no truncated sequences. NUL bytes are valid UTF-8 here; callers that forbid them
 * check separately. Both functions are pure and never read past s + len.
 */
#ifndef ADW_UTF8_H
#define ADW_UTF8_H

#include <stddef.h>

/* Checks that the len bytes at s (borrowed; may be NULL when len is 0) are strict UTF-8.
 * Returns 0 if they are, -EILSEQ if not. */
int utf8_validate(const char *s, size_t len);

/* Returns len if len <= max; otherwise the largest n <= max such that s[n] is not a
 * continuation byte, so the first n bytes end on a character boundary (for valid UTF-8 that
 * is at most 3 bytes short of max; for invalid input it never steps back more than 3).
 * s (borrowed) holds len bytes. */
size_t utf8_truncate(const char *s, size_t len, size_t max);

#endif
