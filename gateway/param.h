/* param: a request's query parameters, as the routes hand them to the parsers of each endpoint
 * (api.h, search.h, admit.h), and the reading of an integer they share. Pure: no I/O. */
#ifndef ADW_GW_PARAM_H
#define ADW_GW_PARAM_H

#include <stdint.h>

/* One query parameter, already percent-decoded; both borrowed. */
typedef struct param_t {
    const char *name;
    const char *value;
} param_t;

/* Parses s (borrowed, a parameter's value) as a decimal integer in [min, max] (min >= 0) that
 * fills the whole string, into *out. Returns 0, or -EINVAL (*out untouched) for anything else,
 * a value past INT64_MAX included. */
int param_int(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
