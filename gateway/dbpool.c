#include "dbpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

#define DBPOOL_THREADS_MAX 64

struct dbpool_t {
    dbpool_options_t o;
    char *conninfo;
    pthread_mutex_t mu;
    pthread_cond_t work;
    dbjob_t *todo_head, *todo_tail;
    size_t ntodo;
    dbjob_t *done_head, *done_tail;
    int stop;
    pthread_t threads[DBPOOL_THREADS_MAX];
    int nthreads;
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

static void *worker(void *arg)
{
    dbpool_t *p = arg;
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
        if (db_ensure(&conn, p->conninfo, j->err, sizeof j->err))
            j->failed = 1;
        else
            j->run(j, conn);

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
    p->conninfo = strdup(o->conninfo ? o->conninfo : "");
    if (!p->conninfo) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int n = o->threads < 1 ? 1 : o->threads > DBPOOL_THREADS_MAX ? DBPOOL_THREADS_MAX : o->threads;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p)) {
            snprintf(err, errlen, "cannot start database worker threads");
            goto fail;
        }
        p->nthreads++;
    }
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
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
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
    free(p->conninfo);
    free(p);
}

int dbpool_submit(dbpool_t *p, dbjob_t *job)
{
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
