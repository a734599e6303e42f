#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

/* One of these per series (a name plus a label set). */
struct metric_t {
    struct metric_t *next;
    kind_t kind;
    char *name;
    char *labels; /* NULL or label text without braces */
    char *help;
    _Atomic int64_t value; /* counter or gauge */
    double *bounds;        /* histogram upper bounds */
    size_t nbounds;
    _Atomic uint64_t *buckets; /* nbounds + 1 counts (last is +Inf), not cumulative */
    _Atomic uint64_t sum_bits; /* the sum of observations: a double's bits */
    _Atomic uint64_t count;
};

struct metrics_t {
    metric_t *head;
    metric_t *tail;
};

const double METRICS_LATENCY_BOUNDS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const size_t METRICS_LATENCY_NBOUNDS = sizeof METRICS_LATENCY_BOUNDS / sizeof(double);

metrics_t *metrics_new(void)
{
    return calloc(1, sizeof(metrics_t));
}

void metrics_destroy(metrics_t **mp)
{
    if (!mp || !*mp)
        return;
    metric_t *s = (*mp)->head;
    while (s) {
        metric_t *next = s->next;
        free(s->name);
        free(s->labels);
        free(s->help);
        free(s->bounds);
        free((void *)s->buckets);
        free(s);
        s = next;
    }
    free(*mp);
    *mp = NULL;
}

static metric_t *add_series(metrics_t *m, kind_t kind, const char *name, const char *labels,
                            const char *help)
{
    metric_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->kind = kind;
    s->name = strdup(name);
    s->labels = labels ? strdup(labels) : NULL;
    s->help = strdup(help ? help : "");
    if (!s->name || !s->help || (labels && !s->labels))
        goto fail;
    /* Keep series of one name together so rendering emits HELP/TYPE once. */
    metric_t *after = NULL;
    for (metric_t *p = m->head; p; p = p->next)
        if (!strcmp(p->name, name))
            after = p;
    if (after) {
        s->next = after->next;
        after->next = s;
        if (m->tail == after)
            m->tail = s;
    } else {
        if (m->tail)
            m->tail->next = s;
        else
            m->head = s;
        m->tail = s;
    }
    return s;
fail:
    free(s->name);
    free(s->labels);
    free(s->help);
    free(s);
    return NULL;
}

metric_t *metrics_counter(metrics_t *m, const char *name, const char *labels, const char *help)
{
    return add_series(m, KIND_COUNTER, name, labels, help);
}

metric_t *metrics_gauge(metrics_t *m, const char *name, const char *labels, const char *help)
{
    return add_series(m, KIND_GAUGE, name, labels, help);
}

metric_t *metrics_histogram(metrics_t *m, const char *name, const char *labels, const char *help,
                            const double *bounds, size_t nbounds)
{
    double *b = malloc(nbounds * sizeof *b);
    _Atomic uint64_t *buckets = calloc(nbounds + 1, sizeof *buckets);
    if (!b || !buckets) {
        free(b);
        free((void *)buckets);
        return NULL;
    }
    memcpy(b, bounds, nbounds * sizeof *b);
    metric_t *s = add_series(m, KIND_HISTOGRAM, name, labels, help);
    if (!s) {
        free(b);
        free((void *)buckets);
        return NULL;
    }
    s->bounds = b;
    s->nbounds = nbounds;
    s->buckets = buckets;
    return s;
}

void metric_add(metric_t *s, int64_t n)
{
    if (s)
        atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void metric_set(metric_t *s, int64_t v)
{
    if (s)
        atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

int64_t metric_get(const metric_t *s)
{
    return s ? atomic_load_explicit(&((metric_t *)s)->value, memory_order_relaxed) : 0;
}

void metric_observe(metric_t *s, double v)
{
    if (!s || s->kind != KIND_HISTOGRAM || isnan(v))
        return;
    size_t i = 0;
    while (i < s->nbounds && v > s->bounds[i])
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed), next;
    do {
        double sum;
        memcpy(&sum, &old, sizeof sum);
        sum += v;
        memcpy(&next, &sum, sizeof next);
    } while (!atomic_compare_exchange_weak_explicit(&s->sum_bits, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

/* Writes v in the shortest of %.15g, %.16g and %.17g that reads back as v ("+Inf", "-Inf" and
 * "NaN" as Prometheus spells them). */
static void format_double(char *out, size_t outlen, double v)
{
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* Appends help text escaped as the exposition format wants (backslash and newline). */
static int put_help(buf_t *out, const char *help)
{
    int rc = 0;
    for (const char *p = help; *p && !rc; p++) {
        if (*p == '\\')
            rc = buf_puts(out, "\\\\");
        else if (*p == '\n')
            rc = buf_puts(out, "\\n");
        else
            rc = buf_putc(out, *p);
    }
    return rc;
}

static int render_labels(buf_t *out, const char *labels, const char *extra)
{
    if (!labels && !extra)
        return 0;
    int rc = buf_putc(out, '{');
    if (!rc && labels)
        rc = buf_puts(out, labels);
    if (!rc && labels && extra)
        rc = buf_putc(out, ',');
    if (!rc && extra)
        rc = buf_puts(out, extra);
    if (!rc)
        rc = buf_putc(out, '}');
    return rc;
}

int metrics_render(metrics_t *m, buf_t *out)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    const char *last = NULL;
    int rc = 0;
    for (metric_t *s = m->head; s && !rc; s = s->next) {
        if (!last || strcmp(last, s->name)) {
            rc = buf_printf(out, "# HELP %s ", s->name);
            if (!rc)
                rc = put_help(out, s->help);
            if (!rc)
                rc = buf_printf(out, "\n# TYPE %s %s\n", s->name, kinds[s->kind]);
        }
        last = s->name;
        if (rc)
            break;
        if (s->kind != KIND_HISTOGRAM) {
            rc = buf_puts(out, s->name);
            if (!rc)
                rc = render_labels(out, s->labels, NULL);
            if (!rc)
                rc = buf_printf(out, " %lld\n", (long long)metric_get(s));
            continue;
        }
        uint64_t cum = 0;
        for (size_t i = 0; i <= s->nbounds && !rc; i++) {
            cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
            char num[32], le[48];
            format_double(num, sizeof num, i < s->nbounds ? s->bounds[i] : INFINITY);
            snprintf(le, sizeof le, "le=\"%s\"", num);
            rc = buf_printf(out, "%s_bucket", s->name);
            if (!rc)
                rc = render_labels(out, s->labels, le);
            if (!rc)
                rc = buf_printf(out, " %llu\n", (unsigned long long)cum);
        }
        if (!rc)
            rc = buf_printf(out, "%s_sum", s->name);
        if (!rc)
            rc = render_labels(out, s->labels, NULL);
        if (!rc) {
            uint64_t bits = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
            double sum;
            memcpy(&sum, &bits, sizeof sum);
            char num[32];
            format_double(num, sizeof num, sum);
            rc = buf_printf(out, " %s\n", num);
        }
        if (!rc)
            rc = buf_printf(out, "%s_count", s->name);
        if (!rc)
            rc = render_labels(out, s->labels, NULL);
        if (!rc)
            rc = buf_printf(out, " %llu\n", (unsigned long long)atomic_load(&s->count));
    }
    return rc;
}
