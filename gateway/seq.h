/* seq: the gateway's position in the id sequence, and what to do with each id it hears of.
 * Pure: no I/O. The subscriber (sub.c) asks it about every event and heartbeat, fills what it
 * reports missing from PostgreSQL, and tells it what it delivered.
 *
 * Ids are contiguous within an epoch (the database's identity), so the next event to deliver is
 * always last + 1: a larger id means a hole, a smaller one a duplicate.
 */
#ifndef ADW_GATEWAY_SEQ_H
#define ADW_GATEWAY_SEQ_H

#include <stdint.h>

/* One of these per gateway. Plain data; zero-initialised it knows nothing yet. */
typedef struct seq_t {
    int64_t last;  /* the last id delivered, in order */
    int64_t epoch; /* the database's epoch; 0 while unknown */
    int known;     /* last is a real position (from the database, a heartbeat or an event) */
} seq_t;

typedef enum seq_verdict {
    SEQ_NONE,    /* nothing to do */
    SEQ_DELIVER, /* the event is the next one: deliver it, then seq_delivered */
    SEQ_STALE,   /* the event is at or before last: delivered already; drop it */
    SEQ_GAP,     /* ids after last up to the target are missing: fill them first */
    SEQ_RESET,   /* the epoch changed: last is now 0; fill up to the target */
} seq_verdict_t;

/* Sets the starting position read from the database (epoch 0: unknown). */
void seq_start(seq_t *s, int64_t last, int64_t epoch);

/* Judges an event with this id. An unknown position starts just before it (SEQ_DELIVER). */
seq_verdict_t seq_on_event(seq_t *s, int64_t id);

/* Judges a heartbeat saying the publisher's last id and epoch. A first epoch is adopted; a
 * different one resets the position to 0 (SEQ_RESET: fill up to last_id). An unknown position
 * starts at last_id (SEQ_NONE). A last_id ahead of the position is SEQ_GAP. */
seq_verdict_t seq_on_heartbeat(seq_t *s, int64_t last_id, int64_t epoch);

/* Records that id (> last) was delivered. */
void seq_delivered(seq_t *s, int64_t id);

#endif
