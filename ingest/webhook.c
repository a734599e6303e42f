#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "jsonw.h"
#include "log.h"
#include "timefmt.h"
#include "webhook_text.h"

/* One queued body. */
typedef struct hook_item_t {
    struct hook_item_t *next;
    char *body;
    size_t len;
} hook_item_t;

/* One receiver. The queue (head..tail, n) is shared under webhook_t's lock; the rest belongs
 * to the delivery thread, apart from overflow_log (the loop's). */
typedef struct hook_target_t {
    char *url;
    char host[128]; /* for log lines: the URL's path may be a secret */
    int index;
    hook_item_t *head, *tail;
    size_t n;
    size_t bytes;          /* of the bodies queued */
    hook_item_t *inflight; /* taken off the queue; retried until delivered or dropped */
    CURL *easy;
    int busy;        /* easy is in the multi handle */
    int failures;    /* consecutive failed attempts of inflight */
    int64_t next_ms; /* no attempt before this (monotonic ms) */
    metric_t *m_delivered, *m_failed, *m_queued;
    metric_t *m_dropped_overflow, *m_dropped_rejected, *m_dropped_shutdown;
    log_every_t overflow_log; /* loop thread */
    log_every_t fail_log;     /* delivery thread */
} hook_target_t;

struct webhook_t {
    hook_target_t *t;
    size_t nt;
    char **events;
    size_t nevents;
    size_t queue_max;
    char *public_url;
    CURLM *multi;
    struct curl_slist *headers;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    int stopping;           /* under lock */
    int64_t drain_until_ms; /* under lock, once stopping */
};

static int64_t now_ms(void)
{
    return timefmt_mono_us() / 1000;
}

/* ---- the delivery thread ---- */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static void item_free(hook_item_t *it)
{
    if (it) {
        free(it->body);
        free(it);
    }
}

/* Starts the next attempt of t's head event when one is due. Delivery thread. */
static void start_due(webhook_t *w, hook_target_t *t, int64_t now)
{
    if (t->busy || now < t->next_ms)
        return;
    if (!t->inflight) {
        pthread_mutex_lock(&w->lock);
        t->inflight = t->head;
        if (t->head) {
            t->head = t->head->next;
            if (!t->head)
                t->tail = NULL;
            t->n--;
            t->bytes -= t->inflight->len;
        }
        pthread_mutex_unlock(&w->lock);
        if (!t->inflight)
            return;
        t->failures = 0;
    }
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->inflight->body);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->inflight->len);
    if (curl_multi_add_handle(w->multi, t->easy) == CURLM_OK)
        t->busy = 1;
    else
        t->next_ms = now + webhook_backoff_ms(++t->failures);
}

/* An attempt ended: result is libcurl's, status the HTTP answer (0: none). */
static void finish(webhook_t *w, hook_target_t *t, CURLcode result, long status, int64_t now)
{
    curl_multi_remove_handle(w->multi, t->easy);
    t->busy = 0;
    if (result == CURLE_OK && status >= 200 && status < 300) {
        metric_add(t->m_delivered, 1);
        metric_add(t->m_queued, -1);
        item_free(t->inflight);
        t->inflight = NULL;
        t->failures = 0;
        t->next_ms = 0;
        return;
    }
    unsigned long long held;
    if (result == CURLE_OK && status >= 400 && status < 500 && status != 429) {
        metric_add(t->m_dropped_rejected, 1);
        metric_add(t->m_queued, -1);
        if (log_every(&t->fail_log, &held))
            log_warn("webhook %d (%s): HTTP %ld, event dropped (not retried)%s", t->index, t->host,
                     status, held ? " (and earlier ones)" : "");
        item_free(t->inflight);
        t->inflight = NULL;
        t->failures = 0;
        t->next_ms = 0;
        return;
    }
    metric_add(t->m_failed, 1);
    int64_t d = webhook_backoff_ms(++t->failures);
    t->next_ms = now + d;
    if (log_every(&t->fail_log, &held)) {
        if (result != CURLE_OK)
            log_warn("webhook %d (%s): %s; retrying in %lld ms (%llu similar lines held back)",
                     t->index, t->host, curl_easy_strerror(result), (long long)d, held);
        else
            log_warn("webhook %d (%s): HTTP %ld; retrying in %lld ms (%llu similar lines held "
                     "back)",
                     t->index, t->host, status, (long long)d, held);
    }
}

static void *run(void *arg)
{
    webhook_t *w = arg;
    for (;;) {
        int64_t now = now_ms();
        pthread_mutex_lock(&w->lock);
        int stopping = w->stopping;
        int64_t until = w->drain_until_ms;
        pthread_mutex_unlock(&w->lock);
        int left = 0;
        for (size_t i = 0; i < w->nt; i++) {
            hook_target_t *t = &w->t[i];
            start_due(w, t, now);
            pthread_mutex_lock(&w->lock);
            left |= t->inflight || t->head;
            pthread_mutex_unlock(&w->lock);
        }
        if (stopping && (!left || now >= until))
            break;
        int running = 0;
        curl_multi_perform(w->multi, &running);
        CURLMsg *msg;
        int queued;
        while ((msg = curl_multi_info_read(w->multi, &queued))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            hook_target_t *t = (hook_target_t *)(void *)priv;
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            CURLcode result = msg->data.result;
            if (t)
                finish(w, t, result, status, now_ms());
        }
        /* Sleep until a transfer needs us, a retry is due, the loop enqueues, or 1 s. */
        int64_t wait = 1000;
        now = now_ms();
        pthread_mutex_lock(&w->lock);
        for (size_t i = 0; i < w->nt; i++) {
            hook_target_t *t = &w->t[i];
            if (!t->busy && (t->inflight || t->head)) {
                int64_t d = t->next_ms - now;
                if (d < wait)
                    wait = d < 0 ? 0 : d;
            }
        }
        pthread_mutex_unlock(&w->lock);
        if (stopping && until - now < wait)
            wait = until - now < 0 ? 0 : until - now;
        curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
    }
    /* Whatever is left after the drain: dropped, counted. */
    size_t dropped_total = 0;
    for (size_t i = 0; i < w->nt; i++) {
        hook_target_t *t = &w->t[i];
        if (t->busy) {
            curl_multi_remove_handle(w->multi, t->easy);
            t->busy = 0;
        }
        pthread_mutex_lock(&w->lock);
        size_t dropped = t->n + (t->inflight ? 1 : 0);
        item_free(t->inflight);
        t->inflight = NULL;
        while (t->head) {
            hook_item_t *it = t->head;
            t->head = it->next;
            item_free(it);
        }
        t->tail = NULL;
        t->n = 0;
        t->bytes = 0;
        pthread_mutex_unlock(&w->lock);
        metric_add(t->m_dropped_shutdown, (int64_t)dropped);
        metric_add(t->m_queued, -(int64_t)dropped);
        dropped_total += dropped;
    }
    if (dropped_total)
        log_warn("webhooks: %zu events undelivered at shutdown, dropped", dropped_total);
    return NULL;
}

/* ---- set-up and the loop's side ---- */

static int target_init(webhook_t *w, hook_target_t *t, int index, const char *url,
                       metrics_t *metrics)
{
    t->url = (char *)url;
    t->index = index;
    webhook_host(url, t->host, sizeof t->host);
    t->overflow_log.period_ms = 10000;
    t->fail_log.period_ms = 10000;
    t->easy = curl_easy_init();
    if (!t->easy)
        return -ENOMEM;
    CURL *c = t->easy;
    if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
        return -EINVAL;
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "adw-ingest");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)WEBHOOK_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)WEBHOOK_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)t);
    if (metrics) {
        char label[64];
        snprintf(label, sizeof label, "webhook=\"%d\"", index);
        t->m_delivered = metrics_counter(metrics, "adw_ingest_webhook_delivered_total", label,
                                         "Events a webhook answered 2xx to");
        t->m_failed = metrics_counter(metrics, "adw_ingest_webhook_failed_total", label,
                                      "Webhook attempts that failed and are retried (5xx, "
                                      "429, no connection, timeout)");
        t->m_queued = metrics_gauge(metrics, "adw_ingest_webhook_queued", label,
                                    "Events waiting for a webhook, the one in flight included");
        const char *help = "Events a webhook never got, by reason (overflow: over the queue's "
                           "bound; rejected: a 4xx answer; shutdown: still queued at exit)";
        snprintf(label, sizeof label, "webhook=\"%d\",reason=\"overflow\"", index);
        t->m_dropped_overflow =
            metrics_counter(metrics, "adw_ingest_webhook_dropped_total", label, help);
        snprintf(label, sizeof label, "webhook=\"%d\",reason=\"rejected\"", index);
        t->m_dropped_rejected =
            metrics_counter(metrics, "adw_ingest_webhook_dropped_total", label, help);
        snprintf(label, sizeof label, "webhook=\"%d\",reason=\"shutdown\"", index);
        t->m_dropped_shutdown =
            metrics_counter(metrics, "adw_ingest_webhook_dropped_total", label, help);
    }
    return 0;
}

webhook_t *webhook_new(const webhook_options_t *o, int *bad_option, char *err, size_t errlen)
{
    *bad_option = 0;
    char *urls[WEBHOOK_MAX];
    int nu = webhook_parse_urls(o->urls, urls, WEBHOOK_MAX, err, errlen);
    if (nu < 0) {
        *bad_option = nu == -EINVAL;
        return NULL;
    }
    webhook_t *w = calloc(1, sizeof *w);
    if (!w) {
        while (nu)
            free(urls[--nu]);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    w->t = calloc((size_t)nu, sizeof *w->t);
    w->events = calloc(WEBHOOK_EVENTS_MAX, sizeof *w->events);
    if (!w->t || !w->events) {
        while (nu)
            free(urls[--nu]);
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    w->nt = (size_t)nu;
    for (size_t i = 0; i < w->nt; i++)
        w->t[i].url = urls[i]; /* owned from here on */
    int ne = webhook_parse_events(o->events, w->events, WEBHOOK_EVENTS_MAX, err, errlen);
    if (ne < 0) {
        *bad_option = ne == -EINVAL;
        goto fail;
    }
    w->nevents = (size_t)ne;
    if (o->queue_max < 1) {
        set_err(err, errlen, "webhook queue bound must be at least 1");
        *bad_option = 1;
        goto fail;
    }
    w->queue_max = (size_t)o->queue_max;
    if (o->public_url && *o->public_url) {
        if (webhook_url_check(o->public_url, strlen(o->public_url), err, errlen) < 0) {
            *bad_option = 1;
            goto fail;
        }
        w->public_url = strdup(o->public_url);
        if (!w->public_url) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        set_err(err, errlen, "cannot initialise libcurl");
        goto fail;
    }
    w->multi = curl_multi_init();
    w->headers = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h2 = w->headers ? curl_slist_append(w->headers, "Expect:") : NULL;
    if (!w->multi || !h2) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    w->headers = h2;
    for (size_t i = 0; i < w->nt; i++) {
        int rc = target_init(w, &w->t[i], (int)i, w->t[i].url, o->metrics);
        if (rc < 0) {
            set_err(err, errlen, "webhook %zu: libcurl refused its URL", i);
            *bad_option = rc == -EINVAL;
            goto fail;
        }
    }
    if (pthread_create(&w->thread, NULL, run, w)) {
        set_err(err, errlen, "cannot start the webhook thread");
        goto fail;
    }
    w->started = 1;
    return w;
fail:
    webhook_destroy(&w);
    return NULL;
}

size_t webhook_count(const webhook_t *w)
{
    return w ? w->nt : 0;
}

static int listed(const webhook_t *w, const char *name)
{
    for (size_t i = 0; i < w->nevents; i++)
        if (!strcmp(w->events[i], name))
            return 1;
    return 0;
}

/* The body: {"text":...,"event":{"id":..,"received_at":..,...doc}}. Returns 0 or -errno. */
static int body_build(const webhook_t *w, const adw_event_t *e, buf_t *out)
{
    char text[WEBHOOK_TEXT_MAX + 1];
    size_t tl = webhook_text(e, w->public_url, text, sizeof text);
    char received[TIMEFMT_LEN];
    timefmt_format(e->received_us, received);
    char prefix[TIMEFMT_LEN + 64];
    snprintf(prefix, sizeof prefix, "\"id\":%lld,\"received_at\":\"%s\"", (long long)e->id,
             received);
    int rc = buf_puts(out, "{\"text\":");
    rc = rc ? rc : jsonw_string(out, text, tl);
    rc = rc ? rc : buf_puts(out, ",\"event\":");
    rc = rc ? rc : jsonw_object_with(out, e->doc, prefix);
    rc = rc ? rc : buf_putc(out, '}');
    return rc;
}

void webhook_enqueue(webhook_t *w, const adw_event_t *e)
{
    if (!w || !e->is_system || !e->event || !listed(w, e->event))
        return;
    buf_t b;
    buf_init(&b, 0);
    if (body_build(w, e, &b) < 0) {
        buf_free(&b);
        log_warn("webhooks: out of memory building event %lld's body; not sent", (long long)e->id);
        return;
    }
    int wake = 0;
    for (size_t i = 0; i < w->nt; i++) {
        hook_target_t *t = &w->t[i];
        hook_item_t *it = calloc(1, sizeof *it);
        char *copy = it ? malloc(b.len + 1) : NULL;
        if (!copy) {
            free(it);
            metric_add(t->m_dropped_overflow, 1);
            continue;
        }
        memcpy(copy, b.data, b.len);
        copy[b.len] = '\0';
        it->body = copy;
        it->len = b.len;
        hook_item_t *old = NULL, **last = &old;
        size_t dropped = 0;
        pthread_mutex_lock(&w->lock);
        if (t->tail)
            t->tail->next = it;
        else
            t->head = it;
        t->tail = it;
        t->n++;
        t->bytes += it->len;
        /* Over either bound: the oldest go (the newest always stays). */
        while (t->head && t->n > 1 && (t->n > w->queue_max || t->bytes > WEBHOOK_QUEUE_BYTES_MAX)) {
            hook_item_t *gone = t->head;
            t->head = gone->next;
            t->n--;
            t->bytes -= gone->len;
            gone->next = NULL;
            *last = gone;
            last = &gone->next;
            dropped++;
        }
        pthread_mutex_unlock(&w->lock);
        metric_add(t->m_queued, 1 - (int64_t)dropped);
        wake = 1;
        while (old) {
            hook_item_t *next = old->next;
            item_free(old);
            old = next;
        }
        if (dropped) {
            metric_add(t->m_dropped_overflow, (int64_t)dropped);
            unsigned long long held;
            if (log_every(&t->overflow_log, &held))
                log_warn("webhook %d (%s): queue over its bound (%zu events, %d MiB), the oldest "
                         "dropped (%llu more since the last line)",
                         t->index, t->host, w->queue_max, WEBHOOK_QUEUE_BYTES_MAX >> 20, held);
        }
    }
    buf_free(&b);
    if (wake)
        curl_multi_wakeup(w->multi);
}

void webhook_destroy(webhook_t **pw)
{
    if (!pw || !*pw)
        return;
    webhook_t *w = *pw;
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->stopping = 1;
        w->drain_until_ms = now_ms() + WEBHOOK_DRAIN_MS;
        pthread_mutex_unlock(&w->lock);
        curl_multi_wakeup(w->multi);
        pthread_join(w->thread, NULL);
    }
    for (size_t i = 0; w->t && i < w->nt; i++) {
        hook_target_t *t = &w->t[i];
        if (t->easy)
            curl_easy_cleanup(t->easy);
        free(t->url);
    }
    if (w->multi)
        curl_multi_cleanup(w->multi);
    curl_slist_free_all(w->headers);
    for (size_t i = 0; w->events && i < WEBHOOK_EVENTS_MAX; i++)
        free(w->events[i]);
    free(w->events);
    free(w->t);
    free(w->public_url);
    pthread_mutex_destroy(&w->lock);
    free(w);
    *pw = NULL;
}
