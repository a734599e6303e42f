#include "fleet_client.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

static int parse_int(const char *p, const char *end, int64_t *out)
{
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    *out = neg ? -v : v;
    return 0;
}

/* Finds `"key":` in the message and parses the integer after it. */
static int find_int(const char *m, size_t n, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    const char *p = memmem(m, n, key, kl);
    if (!p)
        return -1;
    return parse_int(p + kl, m + n, out);
}

/* Parses the integer after the last `"key":` in the message, looking from its end: bench events
 * end with "bench_seq" and "bench_t", and memmem costs more to set up per call than this scan of
 * their last bytes (three memmem calls a message were a fifth of the fleet's CPU). */
static int find_int_last(const char *m, size_t n, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    if (n < kl)
        return -1;
    for (size_t i = n - kl + 1; i-- > 0;)
        if (m[i] == key[0] && !memcmp(m + i, key, kl))
            return parse_int(m + i + kl, m + n, out);
    return -1;
}

int fleet_client_message(fclient_t *c, const char *m, size_t n)
{
    fleet_thread_t *th = c->th;
    int64_t seq = 0, t = 0, id;
    th->st.messages++;
    if (!find_int_last(m, n, "\"bench_t\":", &t) && !find_int_last(m, n, "\"bench_seq\":", &seq)) {
        int64_t lat = th->now_us - t;
        th->st.deliveries++;
        hist_add(&th->st.latency, lat);
        if (th->arrived_us)
            hist_add(&th->st.arrival, th->arrived_us - t);
        if (th->first && seq >= 0 && seq < th->f->o.max_seq) {
            int32_t l = lat < 0 ? 0 : lat > INT32_MAX ? INT32_MAX : (int32_t)lat;
            if (!th->first[seq] || l < th->first[seq])
                th->first[seq] = l ? l : 1;
            if (l > th->last[seq])
                th->last[seq] = l;
        }
        if (c->seen && seq >= 0 && seq < th->f->o.max_seq) {
            uint8_t bit = (uint8_t)(1u << (seq & 7));
            if (c->seen[seq >> 3] & bit)
                th->st.duplicates++;
            c->seen[seq >> 3] |= bit;
        }
        if (n > 6 && !memcmp(m, "{\"id\":", 6) ? !parse_int(m + 6, m + n, &id)
                                               : !find_int(m, n, "{\"id\":", &id)) {
            if (id <= c->last_id)
                th->st.out_of_order++;
            c->last_id = id;
        }
    } else if (n > 6 && !memcmp(m, "{\"id\":", 6)) { /* another event: resume after it too */
        if (!parse_int(m + 6, m + n, &id) && id > c->last_id)
            c->last_id = id;
    } else if (memmem(m, n, "\"type\":\"replayed\"", 17)) {
        th->st.replayed++;
        th->st.last_replayed_us = timefmt_now_us();
        find_int(m, n, "\"count\":", &th->st.replayed_events);
    } else if (memmem(m, n, "\"type\":\"ping\"", 13)) {
        th->st.pings++;
        return 1;
    }
    return 0;
}

int fleet_client_piece(fclient_t *c, const char *in, size_t len, int final)
{
    if (!c->frag_len && final)
        return fleet_client_message(c, in, len);
    if (c->frag_len + len <= FLEET_MSG_MAX) {
        char *nb = realloc(c->frag, c->frag_len + len + 1); /* never 0 bytes */
        if (nb) {
            memcpy(nb + c->frag_len, in, len);
            c->frag = nb;
            c->frag_len += len;
        }
    }
    if (!final)
        return 0;
    int pong = fleet_client_message(c, c->frag, c->frag_len);
    c->frag_len = 0;
    return pong;
}

const char *fleet_client_query(const fclient_t *c)
{
    const fleet_options_t *o = &c->th->f->o;
    return c->half && o->half_query ? o->half_query : o->query;
}

const char *fleet_client_source(const fclient_t *c)
{
    const fleet_t *f = c->th->f;
    if (!f->nsources)
        return NULL;
    size_t idx = (size_t)(c - c->th->clients) * (size_t)f->nthreads + (size_t)(c->th - f->threads);
    return f->sources[idx % (size_t)f->nsources];
}
