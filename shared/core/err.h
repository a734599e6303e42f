/* err: the one way a function fills its caller's reason buffer.
 *
 * Functions that can fail with a reason take (char *err, size_t errlen) and write one line
 * there for a person to read; set_err is how they write it, so that a NULL or empty buffer is
 * always allowed and the format is always checked by the compiler.
 */
#ifndef ADW_ERR_H
#define ADW_ERR_H

#include <stddef.h>

/* Formats fmt into err[0..errlen) (borrowed, always NUL-terminated when errlen > 0; the text
 * is cut at errlen - 1 bytes). Does nothing when err is NULL or errlen is 0. */
void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
