#include "hist.h"

#include <math.h>
#include <string.h>

void hist_init(hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min_us = INT64_MAX;
}

static int bucket_of(int64_t us)
{
    if (us < 1)
        return 0;
    int b = (int)(log2((double)us) * HIST_SUB);
    return b >= HIST_BUCKETS ? HIST_BUCKETS - 1 : b;
}

void hist_add(hist_t *h, int64_t us)
{
    if (us < 0)
        us = 0;
    h->buckets[bucket_of(us)]++;
    h->count++;
    h->sum_us += (double)us;
    if (us > h->max_us)
        h->max_us = us;
    if (us < h->min_us)
        h->min_us = us;
}

void hist_merge(hist_t *dst, const hist_t *src)
{
    for (int i = 0; i < HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
    if (src->min_us < dst->min_us)
        dst->min_us = src->min_us;
}

double hist_quantile(const hist_t *h, double q)
{
    if (!h->count)
        return 0;
    if (q >= 1)
        return (double)h->max_us;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            double edge = exp2((double)(i + 1) / HIST_SUB);
            return edge > (double)h->max_us ? (double)h->max_us : edge;
        }
    }
    return (double)h->max_us;
}
