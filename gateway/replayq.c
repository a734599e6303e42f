#include "replayq.h"

#include <assert.h>

void replayq_init(replayq_t *q, size_t max_active)
{
    *q = (replayq_t){.max_active = max_active ? max_active : 1};
}

static void unlink_item(replayq_t *q, replayq_item_t *it)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        q->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        q->tail = it->prev;
    it->prev = it->next = NULL;
    q->waiting--;
}

static void take_slot(replayq_t *q, replayq_item_t *it)
{
    it->state = REPLAYQ_ACTIVE;
    q->active++;
    if (q->active > q->active_max)
        q->active_max = q->active;
}

int replayq_acquire(replayq_t *q, replayq_item_t *it, int64_t now_us)
{
    assert(it->state == REPLAYQ_IDLE);
    if (!q->head && q->active < q->max_active) {
        take_slot(q, it);
        return 1;
    }
    it->state = REPLAYQ_WAITING;
    it->since_us = now_us;
    it->next = NULL;
    it->prev = q->tail;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->waiting++;
    if (q->waiting > q->waiting_max)
        q->waiting_max = q->waiting;
    return 0;
}

void replayq_release(replayq_t *q, replayq_item_t *it)
{
    assert(it->state == REPLAYQ_ACTIVE && q->active > 0);
    it->state = REPLAYQ_IDLE;
    q->active--;
}

replayq_item_t *replayq_next(replayq_t *q)
{
    replayq_item_t *it = q->head;
    if (!it || q->active >= q->max_active)
        return NULL;
    unlink_item(q, it);
    take_slot(q, it);
    return it;
}

void replayq_unget(replayq_t *q, replayq_item_t *it)
{
    assert(it->state == REPLAYQ_ACTIVE && q->active > 0);
    q->active--;
    it->state = REPLAYQ_WAITING;
    it->prev = NULL;
    it->next = q->head;
    if (q->head)
        q->head->prev = it;
    else
        q->tail = it;
    q->head = it;
    q->waiting++;
}

void replayq_remove(replayq_t *q, replayq_item_t *it)
{
    if (it->state == REPLAYQ_WAITING)
        unlink_item(q, it);
    else if (it->state == REPLAYQ_ACTIVE)
        q->active--;
    it->state = REPLAYQ_IDLE;
}
