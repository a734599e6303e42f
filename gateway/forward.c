#include "forward.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

/* One of these per decision handed to ingest. */
struct forward_req_t {
    forward_req_t *next;
    forward_reply_fn reply;
    void *user; /* NULL once cancelled (loop thread) */
    char *url;
    char *body;
    size_t len;
    struct curl_slist *headers;
    CURL *easy;
    buf_t answer;
    int truncated;
    long status;
    char why[CURL_ERROR_SIZE];
};

struct forward_t {
    forward_options_t o;
    char *base; /* ingest_url without trailing '/' */
    char *auth; /* "Authorization: Bearer ..." or NULL */
    CURLM *multi;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    forward_req_t *todo, *todo_tail; /* guarded by lock */
    forward_req_t *done, *done_tail; /* guarded by lock */
    size_t count;                    /* requests in the module (guarded by lock) */
    int stop;                        /* guarded by lock */
    forward_req_t *running;          /* the thread's own */
    int nrunning;
};

static void push(forward_req_t **head, forward_req_t **tail, forward_req_t *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static void req_free(forward_req_t *r)
{
    if (!r)
        return;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->url);
    free(r->body);
    buf_free(&r->answer);
    free(r);
}

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
    forward_req_t *r = arg;
    size_t len = size * n;
    size_t room = FORWARD_BODY_MAX > r->answer.len ? FORWARD_BODY_MAX - r->answer.len : 0;
    size_t take = len < room ? len : room;
    if (take < len)
        r->truncated = 1;
    if (take && buf_append(&r->answer, ptr, take))
        return 0;
    return len;
}

/* Thread: makes r's handle and adds it to the multi. Returns 0 or -1 (r then finished with
 * its reason). */
static int start(forward_t *f, forward_req_t *r)
{
    CURL *c = r->easy = curl_easy_init();
    if (!c) {
        snprintf(r->why, sizeof r->why, "out of memory");
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "adw-gateway");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)FORWARD_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)FORWARD_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->why);
    curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)r);
    if (curl_multi_add_handle(f->multi, c) != CURLM_OK) {
        snprintf(r->why, sizeof r->why, "cannot start the request");
        return -1;
    }
    return 0;
}

/* Thread: r is finished (status set, or 0 with why); hands it to the loop. */
static void finish(forward_t *f, forward_req_t *r)
{
    pthread_mutex_lock(&f->lock);
    push(&f->done, &f->done_tail, r);
    pthread_mutex_unlock(&f->lock);
    if (f->o.wake)
        f->o.wake(f->o.wake_arg);
}

/* Thread: takes r out of the running list. */
static void unlink_running(forward_t *f, forward_req_t *r)
{
    for (forward_req_t **p = &f->running; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            f->nrunning--;
            return;
        }
}

static void *forward_main(void *arg)
{
    forward_t *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        int stop = f->stop;
        forward_req_t *take = NULL, *take_tail = NULL;
        while (!stop && f->todo && f->nrunning < FORWARD_PARALLEL) {
            forward_req_t *r = f->todo;
            f->todo = r->next;
            if (!f->todo)
                f->todo_tail = NULL;
            push(&take, &take_tail, r);
            f->nrunning++;
        }
        pthread_mutex_unlock(&f->lock);
        if (stop)
            break;
        for (forward_req_t *r = take, *next; r; r = next) {
            next = r->next;
            r->next = f->running;
            f->running = r;
            if (start(f, r)) {
                unlink_running(f, r);
                finish(f, r);
            }
        }
        int still;
        curl_multi_perform(f->multi, &still);
        CURLMsg *msg;
        int queued;
        while ((msg = curl_multi_info_read(f->multi, &queued))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            forward_req_t *r = (forward_req_t *)priv;
            CURLcode result = msg->data.result;
            curl_multi_remove_handle(f->multi, r->easy);
            if (result == CURLE_OK) {
                curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
            } else {
                r->status = 0;
                if (!r->why[0])
                    snprintf(r->why, sizeof r->why, "%s", curl_easy_strerror(result));
            }
            unlink_running(f, r);
            finish(f, r);
        }
        curl_multi_poll(f->multi, NULL, 0, 1000, NULL);
    }
    for (forward_req_t *r = f->running, *next; r; r = next) {
        next = r->next;
        curl_multi_remove_handle(f->multi, r->easy);
        req_free(r);
    }
    f->running = NULL;
    return NULL;
}

forward_t *forward_new(const forward_options_t *o, char *err, size_t errlen)
{
    const char *url = o->ingest_url && *o->ingest_url ? o->ingest_url : "http://127.0.0.1:8000";
    if ((strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) || strchr(url, '?') ||
        strchr(url, '#') || strchr(url, ' ') || strlen(url) > 2048) {
        snprintf(err, errlen,
                 "ADW_GATEWAY_INGEST_URL must be ingest's http:// or https:// base URL "
                 "(without a query), e.g. http://127.0.0.1:8000");
        return NULL;
    }
    const char *tok = o->ingest_token;
    if (tok && *tok) {
        for (const char *p = tok; *p; p++)
            if (*p <= ' ' || *p == 0x7f) {
                snprintf(err, errlen,
                         "ADW_GATEWAY_INGEST_TOKEN holds a space or a control "
                         "character");
                return NULL;
            }
    }
    forward_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->o = *o;
    pthread_mutex_init(&f->lock, NULL);
    f->base = strdup(url);
    size_t bl = f->base ? strlen(f->base) : 0;
    while (bl && f->base[bl - 1] == '/')
        f->base[--bl] = '\0';
    if (tok && *tok) {
        size_t n = strlen(tok) + 32;
        f->auth = malloc(n);
        if (f->auth)
            snprintf(f->auth, n, "Authorization: Bearer %s", tok);
    }
    f->o.ingest_url = NULL;
    f->o.ingest_token = NULL;
    if (!f->base || (tok && *tok && !f->auth)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(f->multi = curl_multi_init())) {
        snprintf(err, errlen, "cannot initialise libcurl");
        goto fail;
    }
    if (pthread_create(&f->thread, NULL, forward_main, f)) {
        snprintf(err, errlen, "cannot start the forwarding thread");
        goto fail;
    }
    f->started = 1;
    return f;
fail:
    forward_destroy(&f);
    return NULL;
}

void forward_destroy(forward_t **fp)
{
    if (!fp || !*fp)
        return;
    forward_t *f = *fp;
    *fp = NULL;
    if (f->started) {
        pthread_mutex_lock(&f->lock);
        f->stop = 1;
        pthread_mutex_unlock(&f->lock);
        curl_multi_wakeup(f->multi);
        pthread_join(f->thread, NULL);
    }
    for (forward_req_t *lists[2] = {f->todo, f->done}, **l = lists; l < lists + 2; l++)
        for (forward_req_t *r = *l, *next; r; r = next) {
            next = r->next;
            req_free(r);
        }
    if (f->multi)
        curl_multi_cleanup(f->multi);
    if (f->auth) {
        explicit_bzero(f->auth, strlen(f->auth));
        free(f->auth);
    }
    free(f->base);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

forward_req_t *forward_submit(forward_t *f, const char *approval_id, const char *decided_by,
                              const char *body, size_t len, forward_reply_fn reply, void *user)
{
    forward_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    buf_init(&r->answer, 0);
    r->reply = reply;
    r->user = user;
    size_t ul = strlen(f->base) + strlen(approval_id) + 32;
    char hdr[128];
    r->url = malloc(ul);
    r->body = malloc(len ? len : 1);
    if (!r->url || !r->body)
        goto fail;
    snprintf(r->url, ul, "%s/api/approvals/%s", f->base, approval_id);
    memcpy(r->body, body, len);
    r->len = len;
    snprintf(hdr, sizeof hdr, "X-ADW-Decided-By: %s", decided_by);
    const char *lines[] = {"Content-Type: application/json", hdr, "X-ADW-Forwarded: 1",
                           "Expect:", f->auth};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!lines[i])
            continue;
        struct curl_slist *h = curl_slist_append(r->headers, lines[i]);
        if (!h)
            goto fail;
        r->headers = h;
    }
    pthread_mutex_lock(&f->lock);
    if (f->stop || f->count >= FORWARD_QUEUE_MAX) {
        pthread_mutex_unlock(&f->lock);
        goto fail;
    }
    f->count++;
    push(&f->todo, &f->todo_tail, r);
    pthread_mutex_unlock(&f->lock);
    curl_multi_wakeup(f->multi);
    return r;
fail:
    req_free(r);
    return NULL;
}

void forward_cancel(forward_t *f, forward_req_t *r)
{
    if (!f || !r)
        return;
    pthread_mutex_lock(&f->lock);
    r->user = NULL;
    pthread_mutex_unlock(&f->lock);
}

void forward_complete(forward_t *f)
{
    pthread_mutex_lock(&f->lock);
    forward_req_t *list = f->done;
    f->done = f->done_tail = NULL;
    pthread_mutex_unlock(&f->lock);
    for (forward_req_t *r = list, *next; r; r = next) {
        next = r->next;
        pthread_mutex_lock(&f->lock);
        f->count--;
        void *user = r->user;
        pthread_mutex_unlock(&f->lock);
        if (user) {
            if (r->status) {
                size_t blen = 0;
                char *body = buf_steal(&r->answer, &blen);
                r->reply(user, (int)r->status, body, body ? blen : 0, NULL);
            } else {
                r->reply(user, 0, NULL, 0, r->why[0] ? r->why : "no answer");
            }
        }
        req_free(r);
    }
}
