/* hist: a latency histogram with logarithmic buckets (16 per power of two, ~4% wide) from 1 us
 * to about 67 s. Plain data; merge per-thread histograms with hist_merge. */
#ifndef ADW_HIST_H
#define ADW_HIST_H

#include <stdint.h>

#define HIST_SUB 16
#define HIST_OCTAVES 27
#define HIST_BUCKETS (HIST_SUB * HIST_OCTAVES)

typedef struct hist_t {
    uint64_t count;
    uint64_t buckets[HIST_BUCKETS];
    int64_t max_us;
    int64_t min_us;
    double sum_us;
} hist_t;

void hist_init(hist_t *h);
/* Records one value in microseconds (negative values count as 0). */
void hist_add(hist_t *h, int64_t us);
/* Adds every observation of src to dst. */
void hist_merge(hist_t *dst, const hist_t *src);
/* The value at quantile q (0..1) in microseconds: the upper edge of its bucket (exact for max). */
double hist_quantile(const hist_t *h, double q);

#endif
