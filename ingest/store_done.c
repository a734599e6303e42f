/* store_done: how the writer answers and what it shows: a request handed back to the loop
 * thread (the completed list and its eventfd), the state with its log line and gauge, and
 * the last error. The bottom of the store's files: it calls none of the others. Writer
 * thread, but for store_state_name.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "store_internal.h"

const char *store_state_name(store_state_t st)
{
    switch (st) {
    case STORE_CONNECTING:
        return "connecting";
    case STORE_STANDBY:
        return "standby";
    case STORE_READY:
        return "ready";
    case STORE_FATAL:
        return "fatal";
    }
    return "unknown";
}

void store__set_error(store_t *s, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    /* Cut to fit, deliberately (the precision keeps -Wformat-truncation quiet in Release). */
    snprintf(s->last_error, sizeof s->last_error, "%.*s", (int)sizeof s->last_error - 1, msg);
    pthread_mutex_unlock(&s->mu);
}

void store__set_state(store_t *s, store_state_t st)
{
    int old = atomic_exchange(&s->state, (int)st);
    if (old != (int)st) {
        log_info("store: %s -> %s", store_state_name((store_state_t)old), store_state_name(st));
        metric_set(s->m_state, st);
    }
}

/* Hands n requests back to the loop thread at once: one lock, one wake-up. */
static void complete_all(store_t *s, store_req_t **reqs, size_t n)
{
    int64_t events = 0;
    for (size_t i = 0; i < n; i++) {
        events += (int64_t)reqs[i]->nevents;
        reqs[i]->next = i + 1 < n ? reqs[i + 1] : NULL;
    }
    atomic_fetch_sub(&s->pending, events);
    pthread_mutex_lock(&s->mu);
    if (s->d_tail)
        s->d_tail->next = reqs[0];
    else
        s->d_head = reqs[0];
    s->d_tail = reqs[n - 1];
    pthread_mutex_unlock(&s->mu);
    uint64_t one = 1;
    /* EAGAIN means the counter is full: the loop is woken already. */
    while (write(s->evfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

void store__complete(store_t *s, store_req_t *r)
{
    complete_all(s, &r, 1);
}

void store__complete_unavailable(store_t *s, store_req_t *r, const char *why)
{
    r->status = STORE_STATUS_UNAVAILABLE;
    snprintf(r->err, sizeof r->err, "%s", why);
    store__complete(s, r);
}

/* Completes every queued request as unavailable (called while not READY). */
void store__drain_queue(store_t *s, const char *why)
{
    pthread_mutex_lock(&s->mu);
    store_req_t *r = s->q_head;
    s->q_head = s->q_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (r) {
        store_req_t *next = r->next;
        store__complete_unavailable(s, r, why);
        r = next;
    }
}

void store__finish_ok(store_t *s, store_req_t **reqs, size_t nreqs)
{
    for (size_t q = 0; q < nreqs; q++)
        reqs[q]->status = STORE_STATUS_OK;
    complete_all(s, reqs, nreqs);
}
