/* Unit tests for shared/metrics: the exact text exposition of counters, gauges and histograms,
 * grouping of series by name, escaping, and updates from several threads at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(metrics_t *m)
{
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(metrics_render(m, &b), 0);
    char *s = buf_steal(&b, NULL);
    return s ? s : strdup("");
}

static void test_empty(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    assert_non_null(m);
    char *t = render(m);
    assert_string_equal(t, "");
    free(t);
    metrics_destroy(&m);
    assert_null(m);
    metrics_destroy(&m);
    metrics_destroy(NULL);
}

static void test_counters_and_gauges(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    metric_t *a = metrics_counter(m, "adw_x_total", "reason=\"a\"", "Things, by reason");
    metric_t *g = metrics_gauge(m, "adw_level", NULL, "A level");
    metric_t *b = metrics_counter(m, "adw_x_total", "reason=\"b\"", "Things, by reason");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(g);
    metric_add(a, 3);
    metric_add(a, 4);
    metric_add(b, 1);
    metric_set(g, 42);
    metric_add(g, -50);
    metric_add(NULL, 1); /* accepted, no effect */
    metric_set(NULL, 1);
    assert_int_equal(metric_get(a), 7);
    assert_int_equal(metric_get(g), -8);
    assert_int_equal(metric_get(NULL), 0);
    char *t = render(m);
    /* Series of one name together under one HELP/TYPE, in registration order. */
    assert_string_equal(t, "# HELP adw_x_total Things, by reason\n"
                           "# TYPE adw_x_total counter\n"
                           "adw_x_total{reason=\"a\"} 7\n"
                           "adw_x_total{reason=\"b\"} 1\n"
                           "# HELP adw_level A level\n"
                           "# TYPE adw_level gauge\n"
                           "adw_level -8\n");
    free(t);
    metrics_destroy(&m);
}

static void test_histogram(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    static const double bounds[] = {0.001, 0.25, 1, 10};
    metric_t *h = metrics_histogram(m, "adw_lat_seconds", NULL, "Latency", bounds, 4);
    metric_t *h2 = metrics_histogram(m, "adw_size", "kind=\"x\"", "Size", bounds, 4);
    assert_non_null(h);
    metric_observe(h, 0.0005); /* first bucket */
    metric_observe(h, 0.001);  /* a bound is inclusive */
    metric_observe(h, 0.25);
    metric_observe(h, 2);
    metric_observe(h, 100); /* +Inf only */
    metric_observe(h, NAN); /* ignored */
    metric_observe(NULL, 1);
    metric_observe(h2, 5000);
    char *t = render(m);
    assert_string_equal(t, "# HELP adw_lat_seconds Latency\n"
                           "# TYPE adw_lat_seconds histogram\n"
                           "adw_lat_seconds_bucket{le=\"0.001\"} 2\n"
                           "adw_lat_seconds_bucket{le=\"0.25\"} 3\n"
                           "adw_lat_seconds_bucket{le=\"1\"} 3\n"
                           "adw_lat_seconds_bucket{le=\"10\"} 4\n"
                           "adw_lat_seconds_bucket{le=\"+Inf\"} 5\n"
                           "adw_lat_seconds_sum 102.2515\n"
                           "adw_lat_seconds_count 5\n"
                           "# HELP adw_size Size\n"
                           "# TYPE adw_size histogram\n"
                           "adw_size_bucket{kind=\"x\",le=\"0.001\"} 0\n"
                           "adw_size_bucket{kind=\"x\",le=\"0.25\"} 0\n"
                           "adw_size_bucket{kind=\"x\",le=\"1\"} 0\n"
                           "adw_size_bucket{kind=\"x\",le=\"10\"} 0\n"
                           "adw_size_bucket{kind=\"x\",le=\"+Inf\"} 1\n"
                           "adw_size_sum{kind=\"x\"} 5000\n"
                           "adw_size_count{kind=\"x\"} 1\n");
    free(t);
    /* Large sums stay exact (events per batch x millions of batches). */
    for (int i = 0; i < 4000; i++)
        metric_observe(h2, 5e12);
    t = render(m);
    assert_non_null(strstr(t, "adw_size_sum{kind=\"x\"} 2.0000000000005e+16\n"));
    free(t);
    metrics_destroy(&m);
}

static void test_latency_bounds(void **state)
{
    (void)state;
    assert_int_equal(METRICS_LATENCY_NBOUNDS, 16);
    assert_true(METRICS_LATENCY_BOUNDS[0] == 0.0001);
    assert_true(METRICS_LATENCY_BOUNDS[METRICS_LATENCY_NBOUNDS - 1] == 10);
    for (size_t i = 1; i < METRICS_LATENCY_NBOUNDS; i++)
        assert_true(METRICS_LATENCY_BOUNDS[i] > METRICS_LATENCY_BOUNDS[i - 1]);
    metrics_t *m = metrics_new();
    metric_t *h = metrics_histogram(m, "adw_commit_seconds", NULL, "Commit", METRICS_LATENCY_BOUNDS,
                                    METRICS_LATENCY_NBOUNDS);
    metric_observe(h, 0.0003);
    char *t = render(m);
    assert_non_null(strstr(t, "adw_commit_seconds_bucket{le=\"0.0001\"} 0\n"
                              "adw_commit_seconds_bucket{le=\"0.00025\"} 0\n"
                              "adw_commit_seconds_bucket{le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(t, "adw_commit_seconds_sum 0.0003\n"));
    free(t);
    metrics_destroy(&m);
}

static void test_help_escaped(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    metric_t *c = metrics_counter(m, "adw_odd", NULL, "Two\nlines \\ and a slash");
    metric_add(c, 1);
    char *t = render(m);
    assert_string_equal(t, "# HELP adw_odd Two\\nlines \\\\ and a slash\n"
                           "# TYPE adw_odd counter\n"
                           "adw_odd 1\n");
    free(t);
    metrics_destroy(&m);
}

static void test_render_cap(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    metrics_counter(m, "adw_a_rather_long_metric_name_total", NULL, "Help text");
    buf_t b;
    buf_init(&b, 16);
    assert_int_equal(metrics_render(m, &b), -E2BIG);
    buf_free(&b);
    metrics_destroy(&m);
}

/* Updates from several threads lose nothing. */
static metric_t *shared_counter, *shared_hist;

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        metric_add(shared_counter, 1);
        metric_observe(shared_hist, 0.5);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    shared_counter = metrics_counter(m, "adw_c_total", NULL, "c");
    static const double bounds[] = {1};
    shared_hist = metrics_histogram(m, "adw_h", NULL, "h", bounds, 1);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(metric_get(shared_counter), 400000);
    char *t = render(m);
    assert_non_null(strstr(t, "adw_h_bucket{le=\"1\"} 400000\n"));
    assert_non_null(strstr(t, "adw_h_sum 200000\n"));
    assert_non_null(strstr(t, "adw_h_count 400000\n"));
    free(t);
    metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),        cmocka_unit_test(test_counters_and_gauges),
        cmocka_unit_test(test_histogram),    cmocka_unit_test(test_latency_bounds),
        cmocka_unit_test(test_help_escaped), cmocka_unit_test(test_render_cap),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
