#include "seq.h"

void seq_start(seq_t *s, int64_t last, int64_t epoch)
{
    s->last = last;
    s->epoch = epoch;
    s->known = 1;
}

seq_verdict_t seq_on_event(seq_t *s, int64_t id)
{
    if (!s->known) {
        s->known = 1;
        s->last = id - 1;
        return SEQ_DELIVER;
    }
    if (id <= s->last)
        return SEQ_STALE;
    return id == s->last + 1 ? SEQ_DELIVER : SEQ_GAP;
}

seq_verdict_t seq_on_heartbeat(seq_t *s, int64_t last_id, int64_t epoch)
{
    if (epoch && s->epoch && epoch != s->epoch) {
        s->epoch = epoch;
        s->last = 0;
        s->known = 1;
        return SEQ_RESET;
    }
    if (epoch && !s->epoch)
        s->epoch = epoch;
    if (!s->known) {
        s->known = 1;
        s->last = last_id;
        return SEQ_NONE;
    }
    return last_id > s->last ? SEQ_GAP : SEQ_NONE;
}

void seq_delivered(seq_t *s, int64_t id)
{
    if (id > s->last)
        s->last = id;
}
