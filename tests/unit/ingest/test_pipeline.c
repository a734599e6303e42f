/* Unit tests for ingest/pipeline: what pipeline.h promises, run on the real loop against a fake
 * store and a fake publisher defined here (the linker takes these instead of store.c and
 * publish.c, which are then never pulled from the library, so no database and no socket).
 *
 * Checked: a submission is answered once, never inside submit; answers keep each channel's
 * submission order while other channels do not wait; committed events are published in the
 * order the store completes them (id order) before their submitter is answered, fresh ones
 * only, then a heartbeat once nothing is pending; admission (unavailable until the publisher
 * has read the last id, overloaded at max_pending, stopping); the store's failures; cancel;
 * pipeline_build's validation; the reject reasons' labels. Ids themselves are the store's
 * (contiguous, in commit order: store.h), so here they are whatever the fake assigns.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "adw_limits.h"
#include "codec.h"
#include "loop.h"
#include "metrics.h"
#include "pipeline.h"
#include "publish.h"
#include "store.h"

/* ---- the fake store: requests wait until a test completes them ---- */

struct store_t {
    int efd; /* readable while completed requests wait */
    store_state_t state;
    int64_t pending; /* events submitted and not completed */
    int64_t last_id, epoch;
    store_req_t *submitted[64]; /* in submission order */
    size_t nsubmitted;
    store_req_t *done, *done_tail; /* completed, not yet collected */
};

store_req_t *store_req_new(size_t n)
{
    store_req_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->events = calloc(n ? n : 1, sizeof *r->events);
    r->ids = calloc(n ? n : 1, sizeof *r->ids);
    r->fresh = calloc(n ? n : 1, 1);
    r->frame_end = calloc(n ? n : 1, sizeof *r->frame_end);
    buf_init(&r->frames, 0);
    r->nevents = n;
    return r;
}

void store_req_destroy(store_req_t **rp)
{
    if (!rp || !*rp)
        return;
    store_req_t *r = *rp;
    for (size_t i = 0; i < r->nevents; i++)
        event_clear(&r->events[i]);
    free(r->events);
    free(r->ids);
    free(r->fresh);
    free(r->frame_end);
    buf_free(&r->frames);
    free(r);
    *rp = NULL;
}

int store_fd(const store_t *s)
{
    return s->efd;
}

void store_submit(store_t *s, store_req_t *r)
{
    assert_true(s->nsubmitted < 64);
    s->submitted[s->nsubmitted++] = r;
    s->pending += (int64_t)r->nevents;
}

store_req_t *store_completed(store_t *s)
{
    uint64_t n;
    ssize_t rc = read(s->efd, &n, sizeof n);
    (void)rc;
    store_req_t *r = s->done;
    s->done = s->done_tail = NULL;
    return r;
}

store_state_t store_state(const store_t *s)
{
    return s->state;
}

int64_t store_last_id(const store_t *s)
{
    return s->last_id;
}

int64_t store_epoch(const store_t *s)
{
    return s->epoch;
}

int64_t store_pending_events(const store_t *s)
{
    return s->pending;
}

/* Completes the request submitted k-th (0-based) with status; OK assigns the next ids, each
 * event fresh unless its bit in stale is set, each with a one-byte frame. */
static store_req_t *complete(store_t *s, size_t k, store_status_t status, unsigned stale)
{
    assert_true(k < s->nsubmitted && s->submitted[k]);
    store_req_t *r = s->submitted[k];
    s->submitted[k] = NULL;
    r->status = status;
    if (status == STORE_STATUS_OK) {
        for (size_t i = 0; i < r->nevents; i++) {
            r->ids[i] = ++s->last_id;
            r->fresh[i] = !(stale & (1u << i));
            if (r->fresh[i]) {
                buf_putc(&r->frames, (char)('a' + i));
                r->frame_end[i] = r->frames.len;
            }
        }
    } else {
        snprintf(r->err, sizeof r->err, "%s",
                 status == STORE_STATUS_UNAVAILABLE ? "connection lost" : "value too long");
    }
    s->pending -= (int64_t)r->nevents;
    r->next = NULL;
    if (s->done_tail)
        s->done_tail->next = r;
    else
        s->done = r;
    s->done_tail = r;
    uint64_t one = 1;
    ssize_t rc = write(s->efd, &one, sizeof one);
    (void)rc;
    return r;
}

/* ---- the fake publisher: a record of what went out ---- */

struct publish_t {
    int64_t ids[64];
    char adw_ids[64][16];
    size_t nevents;
    int heartbeats;
    int64_t last_set; /* -1 until publish_set_last */
};

int publish_event(publish_t *p, const char *adw_id, int64_t id, const void *frame, size_t len)
{
    assert_true(p->nevents < 64);
    assert_int_equal(len, 1);
    assert_non_null(frame);
    p->ids[p->nevents] = id;
    snprintf(p->adw_ids[p->nevents], sizeof p->adw_ids[0], "%s", adw_id);
    p->nevents++;
    return 0;
}

int publish_heartbeat(publish_t *p, int64_t epoch)
{
    assert_int_equal(epoch, 7);
    p->heartbeats++;
    return 0;
}

void publish_set_last(publish_t *p, int64_t last_id)
{
    p->last_set = last_id;
}

/* ---- fixture ---- */

/* One of these per answer received. */
typedef struct answer_t {
    int tag; /* the submission's, from ctx */
    pipeline_status_t status;
    char error[160];
    long index;
    int64_t ids[8];
    size_t nids;
} answer_t;

typedef struct fixture_t {
    loop_t *loop;
    metrics_t *metrics;
    store_t store;
    publish_t publish;
    pipeline_t *p;
    answer_t answers[64];
    size_t nanswers;
    int tags[64]; /* ctx of each submission */
    int in_submit;
} fixture_t;

static fixture_t *F;

static void on_done(void *ctx, const pipeline_outcome_t *o)
{
    assert_false(F->in_submit); /* never inside submit */
    assert_true(F->nanswers < 64);
    answer_t *a = &F->answers[F->nanswers++];
    a->tag = *(int *)ctx;
    a->status = o->status;
    snprintf(a->error, sizeof a->error, "%s", o->error ? o->error : "");
    a->index = o->index;
    a->nids = o->status == PIPELINE_OK ? o->nids : 0;
    for (size_t i = 0; i < a->nids && i < 8; i++)
        a->ids[i] = o->ids[i];
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->loop = loop_new();
    f->metrics = metrics_new();
    f->store.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    f->store.state = STORE_READY;
    f->store.last_id = 100;
    f->store.epoch = 7;
    f->publish.last_set = -1;
    assert_true(f->loop && f->metrics && f->store.efd >= 0);
    for (int i = 0; i < 64; i++)
        f->tags[i] = i;
    pipeline_options_t o = {.loop = f->loop,
                            .store = &f->store,
                            .publish = &f->publish,
                            .max_pending = 5,
                            .metrics = f->metrics};
    f->p = pipeline_new(&o);
    assert_non_null(f->p);
    F = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    pipeline_destroy(&f->p);
    assert_null(f->p);
    for (size_t i = 0; i < f->store.nsubmitted; i++) /* the store frees what it still holds */
        store_req_destroy(&f->store.submitted[i]);
    store_req_t *r = f->store.done;
    while (r) {
        store_req_t *next = r->next;
        store_req_destroy(&r);
        r = next;
    }
    close(f->store.efd);
    metrics_destroy(&f->metrics);
    loop_destroy(&f->loop);
    free(f);
    return 0;
}

/* Runs loop turns until nothing more happens at once (each turn waits at most 100 ms). */
static void turn(fixture_t *f, int n)
{
    for (int i = 0; i < n; i++)
        loop_run_once(f->loop);
}

/* Builds a request of n events with adw_id "c<tag>-<i>". */
static store_req_t *request(int tag, size_t n)
{
    char text[4096] = "[";
    for (size_t i = 0; i < n; i++) {
        char one[200];
        snprintf(one, sizeof one,
                 "%s{\"type\":\"adw_event\",\"adw_id\":\"c%d-%zu\",\"event_type\":\"Text\"}",
                 i ? "," : "", tag, i);
        strcat(text, one);
    }
    strcat(text, "]");
    json_t *v = NULL;
    char err[200];
    assert_int_equal(codec_json_parse(text, strlen(text), &v, err, sizeof err), 0);
    store_req_t *r = NULL;
    int is_batch = 0;
    long index = 0;
    assert_int_equal(pipeline_build(v, 1, &r, &is_batch, err, sizeof err, &index), 0);
    json_decref(v);
    return r;
}

static pipeline_entry_t *submit(fixture_t *f, uint64_t channel, int tag, size_t n)
{
    f->in_submit = 1;
    pipeline_entry_t *e = pipeline_submit(f->p, channel, request(tag, n), on_done, &f->tags[tag]);
    f->in_submit = 0;
    assert_non_null(e);
    return e;
}

static pipeline_entry_t *refuse(fixture_t *f, uint64_t channel, int tag)
{
    f->in_submit = 1;
    pipeline_entry_t *e =
        pipeline_refuse(f->p, channel, PIPELINE_INVALID, "bad", 3, on_done, &f->tags[tag]);
    f->in_submit = 0;
    assert_non_null(e);
    return e;
}

/* The value of one series in the /metrics text. */
static long long series(fixture_t *f, const char *name)
{
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(metrics_render(f->metrics, &b), 0);
    const char *p = b.data;
    long long v = -1;
    size_t n = strlen(name);
    while ((p = strstr(p, name))) {
        if ((p == b.data || p[-1] == '\n') && p[n] == ' ') {
            char *end;
            v = strtoll(p + n + 1, &end, 10);
            assert_ptr_not_equal(end, p + n + 1);
            break;
        }
        p += n;
    }
    buf_free(&b);
    return v;
}

/* ---- tests ---- */

static void test_synced_before_admitting(void **state)
{
    fixture_t *f = *state;
    /* Ready store, but the publisher has not read the last id yet. */
    assert_int_equal(pipeline_admission(f->p), PIPELINE_UNAVAILABLE);
    assert_false(pipeline_synced(f->p));
    turn(f, 1);
    assert_int_equal(f->publish.last_set, 100);
    assert_true(pipeline_synced(f->p));
    assert_int_equal(pipeline_admission(f->p), PIPELINE_OK);
    /* The store goes away: unsynced again, and read again once it is back. */
    f->store.state = STORE_CONNECTING;
    turn(f, 1);
    assert_false(pipeline_synced(f->p));
    assert_int_equal(pipeline_admission(f->p), PIPELINE_UNAVAILABLE);
    f->store.last_id = 120;
    f->store.state = STORE_READY;
    turn(f, 1);
    assert_int_equal(f->publish.last_set, 120);
    assert_int_equal(pipeline_admission(f->p), PIPELINE_OK);
}

static void test_refused_while_unavailable(void **state)
{
    fixture_t *f = *state;
    f->store.state = STORE_STANDBY;
    submit(f, 1, 0, 1);
    assert_int_equal(f->nanswers, 0); /* answered on the next turn, not inside submit */
    assert_int_equal(f->store.nsubmitted, 0);
    assert_int_equal(pipeline_waiting(f->p), 1);
    turn(f, 1);
    assert_int_equal(f->nanswers, 1);
    assert_int_equal(f->answers[0].status, PIPELINE_UNAVAILABLE);
    assert_string_equal(f->answers[0].error, "database unavailable, retry later");
    assert_int_equal(f->answers[0].index, -1);
    assert_int_equal(pipeline_waiting(f->p), 0);
    assert_int_equal(series(f, "adw_ingest_rejected_total{reason=\"unavailable\"}"), 1);
}

static void test_overloaded_and_stopping(void **state)
{
    fixture_t *f = *state;
    turn(f, 1);
    submit(f, 1, 0, 5); /* max_pending is 5 */
    assert_int_equal(pipeline_admission(f->p), PIPELINE_OVERLOADED);
    submit(f, 2, 1, 1);
    turn(f, 1);
    assert_int_equal(f->nanswers, 1);
    assert_int_equal(f->answers[0].tag, 1);
    assert_int_equal(f->answers[0].status, PIPELINE_OVERLOADED);
    assert_string_equal(f->answers[0].error,
                        "overloaded: too many events waiting for commit, retry later");
    pipeline_stop(f->p);
    assert_int_equal(pipeline_admission(f->p), PIPELINE_STOPPING);
    submit(f, 3, 2, 1);
    turn(f, 1);
    assert_int_equal(f->nanswers, 2);
    assert_int_equal(f->answers[1].status, PIPELINE_STOPPING);
    assert_string_equal(f->answers[1].error, "shutting down, retry later");
    assert_int_equal(series(f, "adw_ingest_rejected_total{reason=\"overloaded\"}"), 2);
    /* What was admitted before the stop still completes and is answered. */
    complete(&f->store, 0, STORE_STATUS_OK, 0);
    turn(f, 1);
    assert_int_equal(f->nanswers, 3);
    assert_int_equal(f->answers[2].tag, 0);
    assert_int_equal(f->answers[2].status, PIPELINE_OK);
    assert_int_equal(pipeline_waiting(f->p), 0);
}

static void test_order_within_a_channel(void **state)
{
    fixture_t *f = *state;
    turn(f, 1);
    submit(f, 1, 0, 1); /* channel 1: a submission, then a refusal behind it */
    refuse(f, 1, 1);
    refuse(f, 2, 2); /* channel 2 waits for no one */
    turn(f, 2);
    assert_int_equal(f->nanswers, 1);
    assert_int_equal(f->answers[0].tag, 2);
    assert_int_equal(f->answers[0].status, PIPELINE_INVALID);
    assert_string_equal(f->answers[0].error, "bad");
    assert_int_equal(f->answers[0].index, 3);
    assert_int_equal(pipeline_waiting(f->p), 2);
    complete(&f->store, 0, STORE_STATUS_OK, 0);
    turn(f, 1);
    assert_int_equal(f->nanswers, 3);
    assert_int_equal(f->answers[1].tag, 0);
    assert_int_equal(f->answers[1].status, PIPELINE_OK);
    assert_int_equal(f->answers[1].nids, 1);
    assert_int_equal(f->answers[1].ids[0], 101);
    assert_int_equal(f->answers[2].tag, 1);
    assert_int_equal(f->answers[2].status, PIPELINE_INVALID);
    assert_int_equal(pipeline_waiting(f->p), 0);
}

static void test_channels_do_not_wait(void **state)
{
    fixture_t *f = *state;
    turn(f, 1);
    submit(f, 1, 0, 1);
    submit(f, 2, 1, 1);
    submit(f, 1, 2, 1);
    complete(&f->store, 1, STORE_STATUS_OK, 0); /* channel 2's, before channel 1's first */
    turn(f, 1);
    assert_int_equal(f->nanswers, 1);
    assert_int_equal(f->answers[0].tag, 1);
    complete(&f->store, 2, STORE_STATUS_OK, 0); /* channel 1's second: waits for its first */
    turn(f, 1);
    assert_int_equal(f->nanswers, 1);
    complete(&f->store, 0, STORE_STATUS_OK, 0);
    turn(f, 1);
    assert_int_equal(f->nanswers, 3);
    assert_int_equal(f->answers[1].tag, 0);
    assert_int_equal(f->answers[2].tag, 2);
}

static void test_published_in_order_then_answered(void **state)
{
    fixture_t *f = *state;
    turn(f, 1);
    submit(f, 1, 0, 2);
    submit(f, 2, 1, 1);
    complete(&f->store, 0, STORE_STATUS_OK, 0);
    complete(&f->store, 1, STORE_STATUS_OK, 0);
    turn(f, 1);
    assert_int_equal(f->publish.nevents, 3);
    assert_int_equal(f->publish.ids[0], 101);
    assert_int_equal(f->publish.ids[1], 102);
    assert_int_equal(f->publish.ids[2], 103);
    assert_string_equal(f->publish.adw_ids[0], "c0-0");
    assert_string_equal(f->publish.adw_ids[1], "c0-1");
    assert_string_equal(f->publish.adw_ids[2], "c1-0");
    assert_int_equal(f->publish.heartbeats, 1); /* nothing pending any more */
    assert_int_equal(f->nanswers, 2);
    assert_int_equal(f->answers[0].nids, 2);
    assert_int_equal(f->answers[0].ids[0], 101);
    assert_int_equal(f->answers[0].ids[1], 102);
    assert_int_equal(f->answers[1].ids[0], 103);
}

static void test_stored_before_not_published(void **state)
{
    fixture_t *f = *state;
    turn(f, 1);
    submit(f, 1, 0, 3);
    submit(f, 1, 1, 1);
    complete(&f->store, 0, STORE_STATUS_OK, 1u << 1); /* the second was stored earlier */
    turn(f, 1);
    assert_int_equal(f->publish.nevents, 2);
    assert_int_equal(f->publish.ids[0], 101);
    assert_int_equal(f->publish.ids[1], 103);
    assert_int_equal(f->publish.heartbeats, 0); /* one request still pending */
    assert_int_equal(f->nanswers, 1);
    assert_int_equal(f->answers[0].nids, 3); /* every event has its id */
    assert_int_equal(f->answers[0].ids[1], 102);
}

static void test_cancelled_still_published(void **state)
{
    fixture_t *f = *state;
    turn(f, 1);
    pipeline_entry_t *e = submit(f, 1, 0, 1);
    submit(f, 1, 1, 1);
    pipeline_cancel(e);
    pipeline_cancel(NULL);
    complete(&f->store, 0, STORE_STATUS_OK, 0);
    complete(&f->store, 1, STORE_STATUS_OK, 0);
    turn(f, 1);
    assert_int_equal(f->publish.nevents, 2);
    assert_int_equal(f->nanswers, 1);
    assert_int_equal(f->answers[0].tag, 1);
    assert_int_equal(pipeline_waiting(f->p), 0);
}

static void test_store_failures(void **state)
{
    fixture_t *f = *state;
    turn(f, 1);
    submit(f, 1, 0, 1);
    submit(f, 2, 1, 2);
    complete(&f->store, 0, STORE_STATUS_UNAVAILABLE, 0);
    complete(&f->store, 1, STORE_STATUS_REJECTED, 0);
    turn(f, 1);
    assert_int_equal(f->nanswers, 2);
    assert_int_equal(f->answers[0].status, PIPELINE_UNAVAILABLE);
    assert_string_equal(f->answers[0].error, "connection lost");
    assert_int_equal(f->answers[0].nids, 0);
    assert_int_equal(f->answers[1].status, PIPELINE_INVALID);
    assert_string_equal(f->answers[1].error, "value too long");
    assert_int_equal(f->publish.nevents, 0);
    assert_int_equal(f->publish.heartbeats, 0);
    assert_int_equal(series(f, "adw_ingest_rejected_total{reason=\"unavailable\"}"), 1);
    assert_int_equal(series(f, "adw_ingest_rejected_total{reason=\"database\"}"), 1);
}

static void build_fails(const char *text, int rc, long index, const char *err_start)
{
    json_t *v = NULL;
    char err[256];
    assert_int_equal(codec_json_parse(text, strlen(text), &v, err, sizeof err), 0);
    store_req_t *r = NULL;
    int is_batch = -1;
    long at = 99;
    assert_int_equal(pipeline_build(v, 1, &r, &is_batch, err, sizeof err, &at), rc);
    assert_null(r);
    assert_int_equal(at, index);
    if (strncmp(err, err_start, strlen(err_start)))
        fail_msg("'%s' does not start with '%s'", err, err_start);
    json_decref(v);
}

static void test_build(void **state)
{
    (void)state;
    const char *one = "{\"type\":\"adw_event\",\"adw_id\":\"a\",\"event_type\":\"Text\"}";
    json_t *v = NULL;
    char err[256];
    assert_int_equal(codec_json_parse(one, strlen(one), &v, err, sizeof err), 0);
    store_req_t *r = NULL;
    int is_batch = -1;
    long index = 99;
    assert_int_equal(pipeline_build(v, 42, &r, &is_batch, err, sizeof err, &index), 0);
    assert_int_equal(is_batch, 0);
    assert_int_equal(index, -1);
    assert_int_equal(r->nevents, 1);
    assert_string_equal(r->events[0].adw_id, "a");
    assert_int_equal(r->events[0].received_us, 42);
    store_req_destroy(&r);
    json_decref(v);

    build_fails("3", -EINVAL, -1, "expected an event object or an array of events");
    build_fails("[]", -EINVAL, -1, "empty batch");
    build_fails("{\"adw_id\":\"a\",\"event_type\":\"x\"}", -EINVAL, -1, "type is required");
    build_fails(
        "[{\"type\":\"adw_event\",\"adw_id\":\"a\",\"event_type\":\"x\"},{\"adw_id\":\"a\"}]",
        -EINVAL, 1, "event 1: ");

    /* ADW_BATCH_MAX events pass; one more is -E2BIG. */
    json_t *arr = json_array();
    for (int i = 0; i <= ADW_BATCH_MAX; i++)
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:s}", "type", "adw_event", "adw_id", "a", "event_type", "x"));
    assert_int_equal(pipeline_build(arr, 1, &r, &is_batch, err, sizeof err, &index), -E2BIG);
    assert_null(r);
    json_array_remove(arr, 0);
    assert_int_equal(pipeline_build(arr, 1, &r, &is_batch, err, sizeof err, &index), 0);
    assert_int_equal(is_batch, 1);
    assert_int_equal(r->nevents, ADW_BATCH_MAX);
    store_req_destroy(&r);
    json_decref(arr);
}

static void test_reject_labels(void **state)
{
    fixture_t *f = *state;
    static const char *const want[] = {"bad_json",   "schema",       "too_large",
                                       "batch_size", "unauthorized", "bad_request",
                                       "database",   "unavailable",  "overloaded"};
    assert_int_equal(PIPELINE_REJECT_COUNT, sizeof want / sizeof want[0]);
    for (int i = 0; i < PIPELINE_REJECT_COUNT; i++) {
        assert_string_equal(pipeline_reject_name((pipeline_reject_t)i), want[i]);
        for (int k = 0; k <= i; k++)
            pipeline_count_rejected(f->p, (pipeline_reject_t)i);
    }
    assert_null(pipeline_reject_name(PIPELINE_REJECT_COUNT));
    assert_null(pipeline_reject_name((pipeline_reject_t)-1));
    /* The series are registered in the enum's order, each counting its own reason. */
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(metrics_render(f->metrics, &b), 0);
    const char *at = b.data;
    for (int i = 0; i < PIPELINE_REJECT_COUNT; i++) {
        char line[128];
        snprintf(line, sizeof line, "adw_ingest_rejected_total{reason=\"%s\"} %d\n", want[i],
                 i + 1);
        const char *p = strstr(at, line);
        if (!p) {
            fail_msg("no '%s' after position %zu", line, (size_t)(at - b.data));
            break; /* not reached: fail_msg does not return */
        }
        at = p + strlen(line);
    }
    buf_free(&b);
    pipeline_count_received(f->p, PIPELINE_HTTP, 3);
    pipeline_count_received(f->p, PIPELINE_ZMQ, 5);
    assert_int_equal(series(f, "adw_ingest_received_total{transport=\"http\"}"), 3);
    assert_int_equal(series(f, "adw_ingest_received_total{transport=\"zmq\"}"), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_synced_before_admitting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_while_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overloaded_and_stopping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_within_a_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channels_do_not_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_published_in_order_then_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stored_before_not_published, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_still_published, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failures, setup, teardown),
        cmocka_unit_test(test_build),
        cmocka_unit_test_setup_teardown(test_reject_labels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
