/* timefmt: RFC 3339 timestamps <-> microseconds since the Unix epoch (UTC). */
#ifndef ADW_TIMEFMT_H
#define ADW_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define TIMEFMT_LEN 28 /* "2026-11-26T06:00:00.123456Z" plus NUL */

/* Parses an RFC 3339 date-time (`T`, `t` or a space between date and time; fraction of any
 * length, kept to the microsecond; `Z` or a numeric offset). Returns 0 with *us set, or -EINVAL
 * for anything else, including impossible dates like February 30. */
int timefmt_parse(const char *s, size_t len, int64_t *us);

/* Writes us as "YYYY-MM-DDTHH:MM:SS.ffffffZ" into out (at least TIMEFMT_LEN bytes).
 * Returns the length written (27). */
size_t timefmt_format(int64_t us, char *out);

/* Returns the current wall-clock time in microseconds. */
int64_t timefmt_now_us(void);

/* Returns a monotonic clock reading in microseconds. */
int64_t timefmt_mono_us(void);

#endif
