/* replayq: admission of replays to the database, a bound on how many read at once and a FIFO of
 * those waiting for their turn.
 *
 * Pure bookkeeping, no I/O and no clock of its own: replay.c embeds a replayq_item_t in each
 * replay and asks for a slot before each page it reads from PostgreSQL. At most max_active items
 * hold a slot at once; the others wait in arrival order and are never refused. Loop-thread only.
 */
#ifndef ADW_GATEWAY_REPLAYQ_H
#define ADW_GATEWAY_REPLAYQ_H

#include <stddef.h>
#include <stdint.h>

enum { REPLAYQ_IDLE, REPLAYQ_WAITING, REPLAYQ_ACTIVE };

/* One of these per replay, embedded in it; zeroed (REPLAYQ_IDLE) before first use. */
typedef struct replayq_item_t {
    struct replayq_item_t *prev, *next; /* the FIFO, while waiting */
    int state;                          /* REPLAYQ_* */
    int64_t since_us;                   /* when it began to wait (the caller's clock) */
} replayq_item_t;

/* The queue; plain data for the caller to embed, changed only through the functions below. */
typedef struct replayq_t {
    size_t max_active;           /* slots, >= 1 */
    size_t active;               /* items holding a slot */
    size_t waiting;              /* items in the FIFO */
    size_t active_max;           /* the most that ever held a slot at once */
    size_t waiting_max;          /* the most that ever waited at once */
    replayq_item_t *head, *tail; /* the FIFO, oldest first */
} replayq_t;

/* Empties q and sets its bound (0 counts as 1). */
void replayq_init(replayq_t *q, size_t max_active);

/* Asks for a slot for an idle item it (borrowed until it is idle again). Returns 1 when it
 * holds one now (nobody waits and a slot is free), else 0: it waits at the tail, stamped with
 * now_us, until replayq_next hands it a slot. */
int replayq_acquire(replayq_t *q, replayq_item_t *it, int64_t now_us);

/* Gives back the slot of an active item, which becomes idle. The caller then admits the next
 * with replayq_next. */
void replayq_release(replayq_t *q, replayq_item_t *it);

/* The oldest waiting item, now holding a slot (removed from the FIFO, active), when a slot is
 * free; else NULL. Borrowed: it is the caller's. */
replayq_item_t *replayq_next(replayq_t *q);

/* Puts an item that replayq_next just handed out back at the head of the FIFO, its slot
 * returned and its stamp kept (the caller could not use the slot yet). */
void replayq_unget(replayq_t *q, replayq_item_t *it);

/* Forgets an item whatever its state: out of the FIFO if waiting, its slot returned if
 * active. Accepts an idle item (does nothing). */
void replayq_remove(replayq_t *q, replayq_item_t *it);

#endif
