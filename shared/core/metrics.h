/* metrics: a Prometheus registry of counters, gauges and histograms.
 *
 * Series are registered at start-up (not thread-safe); updating them is lock-free and safe
 * from any thread. Rendering produces the Prometheus text exposition format.
 */
#ifndef ADW_METRICS_H
#define ADW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct metrics_t metrics_t;
typedef struct metric_t metric_t;

/* Returns a new empty registry, or NULL when out of memory. */
metrics_t *metrics_new(void);

/* Frees the registry and all its series; accepts NULL and sets *m to NULL. */
void metrics_destroy(metrics_t **m);

/* Registers a series and returns it (owned by the registry), or NULL when out of memory.
 * `labels` is the label text without braces (`reason="bad_json"`) or NULL, copied as given
 * (the caller escapes label values). Series of one name must share type and help; they are
 * rendered together, in registration order, under one HELP and TYPE. All strings are copied.
 * Histogram bounds are ascending upper bounds (+Inf is implied). */
metric_t *metrics_counter(metrics_t *m, const char *name, const char *labels, const char *help);
metric_t *metrics_gauge(metrics_t *m, const char *name, const char *labels, const char *help);
metric_t *metrics_histogram(metrics_t *m, const char *name, const char *labels, const char *help,
                            const double *bounds, size_t nbounds);

/* Adds n to a counter or gauge. Accepts NULL (does nothing). */
void metric_add(metric_t *s, int64_t n);
/* Sets a gauge. Accepts NULL. */
void metric_set(metric_t *s, int64_t v);
/* Reads a counter or gauge. */
int64_t metric_get(const metric_t *s);
/* Records one observation in a histogram: the first bucket whose bound is >= v, the count and
 * the sum (a double). Accepts NULL; ignores a NaN. */
void metric_observe(metric_t *s, double v);

/* Appends the text exposition (version 0.0.4) of every series to out: HELP (escaped) and TYPE
 * once per name, counters and gauges as integers, histograms as cumulative `_bucket` series
 * with `le` bounds and "+Inf", then `_sum` and `_count`; reals in the shortest form that reads
 * back exactly. Returns 0 or a negative errno (out's cap). */
int metrics_render(metrics_t *m, buf_t *out);

/* Standard latency buckets in seconds, 100 us to 10 s. */
extern const double METRICS_LATENCY_BOUNDS[];
extern const size_t METRICS_LATENCY_NBOUNDS;

#endif
