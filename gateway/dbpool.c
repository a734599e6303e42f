#include "dbpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

#define DBPOOL_THREADS_MAX 64

/* One of these per worker thread. */
typedef struct dbworker_t {
    struct dbpool_t *pool;
    pthread_t thread;
    dbjob_t *running; /* the job whose run function executes now (guarded by the pool's mu) */
    PGcancel *cancel; /* for the running job's query (guarded by the pool's mu) */
    int cancel_due;   /* the running job is to be cancelled (guarded by the pool's mu) */
    int cancelled;    /* dbpool_cancel asked for the running job (guarded by the pool's mu) */
    dbroute_conns_t standbys; /* the worker's connections to the standbys */
} dbworker_t;

struct dbpool_t {
    dbpool_options_t o;
    char *conninfo;
    pthread_mutex_t mu;
    pthread_cond_t work;
    pthread_cond_t cancels; /* wakes the canceller */
    dbjob_t *todo_head, *todo_tail;
    size_t ntodo;
    dbjob_t *done_head, *done_tail;
    int stop;
    dbworker_t workers[DBPOOL_THREADS_MAX];
    int nthreads;
    pthread_t canceller;
    int canceller_started;
};

static void push(dbjob_t **head, dbjob_t **tail, dbjob_t *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

/* Runs j on conn, cancellable meanwhile (dbpool_cancel). Returns 1 when it was asked to cancel
 * (or the pool stops), 0 otherwise. */
static int run_on(dbworker_t *w, dbjob_t *j, PGconn *conn)
{
    dbpool_t *p = w->pool;
    PGcancel *cancel = PQgetCancel(conn); /* NULL when out of memory: not cancellable */
    pthread_mutex_lock(&p->mu);
    w->running = j;
    w->cancel = cancel;
    w->cancel_due = 0;
    w->cancelled = 0;
    pthread_mutex_unlock(&p->mu);
    j->run(j, conn);
    pthread_mutex_lock(&p->mu);
    int cancelled = w->cancelled || p->stop;
    w->running = NULL;
    w->cancel = NULL;
    w->cancel_due = 0;
    w->cancelled = 0;
    pthread_mutex_unlock(&p->mu);
    PQfreeCancel(cancel);
    return cancelled;
}

/* Runs j on a standby that reaches its need when there is one; on the primary when there is
 * none, or when one of its queries failed there. */
static void run_job(dbworker_t *w, dbjob_t *j, PGconn **conn)
{
    dbpool_t *p = w->pool;
    PGconn *standby = NULL;
    int sb = dbroute_standby(p->o.route, &w->standbys, j->need, &standby);
    if (sb >= 0) {
        unsigned failures = db_failures();
        int cancelled = run_on(w, j, standby);
        if (!dbroute_done(p->o.route, &w->standbys, sb, !cancelled && db_failures() != failures))
            return;
    }
    if (db_ensure(conn, p->conninfo, j->err, sizeof j->err)) {
        j->failed = 1;
        return;
    }
    run_on(w, j, *conn);
    dbroute_primary_read(p->o.route);
}

static void *worker(void *arg)
{
    dbworker_t *w = arg;
    dbpool_t *p = w->pool;
    PGconn *conn = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->todo_head && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->stop)
            break;
        dbjob_t *j = p->todo_head;
        p->todo_head = j->next;
        if (!p->todo_head)
            p->todo_tail = NULL;
        p->ntodo--;
        pthread_mutex_unlock(&p->mu);

        j->failed = 0;
        run_job(w, j, &conn);

        pthread_mutex_lock(&p->mu);
        push(&p->done_head, &p->done_tail, j);
        pthread_mutex_unlock(&p->mu);
        if (p->o.wake)
            p->o.wake(p->o.wake_arg);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    if (conn)
        PQfinish(conn);
    dbroute_conns_close(&w->standbys);
    return NULL;
}

/* Sends PostgreSQL a cancel request for every running query marked cancel_due (or all of them
 * once the pool stops). PQcancel opens a connection of its own, so it runs here rather than on
 * the event loop. The worker cannot free the PGcancel meanwhile: it takes mu to clear it, and
 * mu is held across PQcancel (which is short: one connect and one packet). */
static void *canceller(void *arg)
{
    dbpool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (int i = 0; i < p->nthreads; i++) {
            dbworker_t *w = &p->workers[i];
            if (w->running && w->cancel && (w->cancel_due || p->stop)) {
                char err[256];
                if (!PQcancel(w->cancel, err, sizeof err))
                    log_warn("database: cannot cancel a query: %s", err);
                w->cancel_due = 0;
                w->cancel = NULL; /* once is enough; the worker frees it */
            }
        }
        if (p->stop)
            break;
        pthread_cond_wait(&p->cancels, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

dbpool_t *dbpool_new(const dbpool_options_t *o, char *err, size_t errlen)
{
    dbpool_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->o = *o;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->cancels, NULL);
    p->conninfo = strdup(o->conninfo ? o->conninfo : "");
    if (!p->conninfo) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int n = o->threads < 1 ? 1 : o->threads > DBPOOL_THREADS_MAX ? DBPOOL_THREADS_MAX : o->threads;
    for (int i = 0; i < n; i++) {
        p->workers[i].pool = p;
        if (pthread_create(&p->workers[i].thread, NULL, worker, &p->workers[i])) {
            snprintf(err, errlen, "cannot start database worker threads");
            goto fail;
        }
        p->nthreads++;
    }
    if (pthread_create(&p->canceller, NULL, canceller, p)) {
        snprintf(err, errlen, "cannot start database worker threads");
        goto fail;
    }
    p->canceller_started = 1;
    return p;
fail:
    dbpool_destroy(&p);
    return NULL;
}

void dbpool_destroy(dbpool_t **pp)
{
    if (!pp || !*pp)
        return;
    dbpool_t *p = *pp;
    *pp = NULL;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_cond_broadcast(&p->cancels);
    pthread_mutex_unlock(&p->mu);
    /* The canceller cancels every query still running, so the workers end promptly. */
    if (p->canceller_started)
        pthread_join(p->canceller, NULL);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->workers[i].thread, NULL);
    for (dbjob_t *j = p->todo_head, *next; j; j = next) {
        next = j->next;
        j->failed = 1;
        snprintf(j->err, sizeof j->err, "shutting down");
        push(&p->done_head, &p->done_tail, j);
    }
    p->todo_head = p->todo_tail = NULL;
    dbpool_complete(p);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->cancels);
    free(p->conninfo);
    free(p);
}

int dbpool_submit(dbpool_t *p, dbjob_t *job)
{
    if (job->need <= 0)
        job->need = dbroute_need(p->o.route);
    pthread_mutex_lock(&p->mu);
    if (p->stop || p->ntodo >= p->o.max_jobs) {
        pthread_mutex_unlock(&p->mu);
        return -EAGAIN;
    }
    push(&p->todo_head, &p->todo_tail, job);
    p->ntodo++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void dbpool_cancel(dbpool_t *p, dbjob_t *job)
{
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nthreads; i++) {
        if (p->workers[i].running == job) {
            p->workers[i].cancel_due = 1;
            p->workers[i].cancelled = 1;
            pthread_cond_signal(&p->cancels);
        }
    }
    pthread_mutex_unlock(&p->mu);
}

void dbpool_complete(dbpool_t *p)
{
    pthread_mutex_lock(&p->mu);
    dbjob_t *list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    for (dbjob_t *j = list, *next; j; j = next) {
        next = j->next;
        j->done(j);
    }
}
