/* timefmt: RFC 3339 timestamps <-> microseconds since the Unix epoch (UTC). */
#ifndef ADW_TIMEFMT_H
#define ADW_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define TIMEFMT_LEN 28 /* "2026-11-26T06:00:00.123456Z" plus NUL */

/* The instants timefmt_parse accepts, in UTC: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z
 * (four-digit years, which PostgreSQL and every RFC 3339 reader take). */
#define TIMEFMT_MIN_US (-62135596800LL * 1000000)
#define TIMEFMT_MAX_US (253402300800LL * 1000000 - 1)

/* Parses an RFC 3339 date-time (`T`, `t` or a space between date and time; fraction of any
 * length, truncated to the microsecond; `Z`, `z` or a numeric offset `+hh:mm`). A leap second
 * (`:60`) is the last microsecond of its minute. Returns 0 with *us set, or -EINVAL for
 * anything else, including impossible dates like February 30 and instants outside
 * [TIMEFMT_MIN_US, TIMEFMT_MAX_US]. Reads exactly len bytes of s (borrowed); no NUL needed. */
int timefmt_parse(const char *s, size_t len, int64_t *us);

/* Writes us as "YYYY-MM-DDTHH:MM:SS.ffffffZ" into out (at least TIMEFMT_LEN bytes), NUL
 * terminated. Returns the length written: 27 for any us in [TIMEFMT_MIN_US, TIMEFMT_MAX_US];
 * outside it the text is cut to fit. */
size_t timefmt_format(int64_t us, char *out);

/* Returns the current wall-clock time in microseconds. */
int64_t timefmt_now_us(void);

/* Returns a monotonic clock reading in microseconds. */
int64_t timefmt_mono_us(void);

#endif
