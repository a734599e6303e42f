#include "client.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "adw_limits.h"
#include "client_wire.h"
#include "err.h"
#include "event.h"
#include "jsonw.h"
#include "log.h"
#include "spool.h"
#include "timefmt.h"

#define CLIENT_DRAIN_WINDOW 256 /* spool files read into memory at once */

static const char *const CLIENT_ZMQ_WILDCARDS[] = {"tcp://*:", "tcp://0.0.0.0:"};

struct client_t {
    client_zmq_t *zmq; /* one of these two */
    client_http_t *http;
    spool_t *spool;      /* NULL: no spool */
    int64_t backoff_ms;  /* the next pause after a failure */
    int64_t retry_at_us; /* no tries before this (monotonic); 0: none */
    int64_t ids[ADW_BATCH_MAX];
    json_t *batch; /* the request being sent (references to the events) */
};

/* The kind of failure a negative errno from a constructor means. */
static client_err_t err_kind(int e)
{
    return e == ENOMEM ? CLIENT_ERR_NOMEM : CLIENT_ERR_CONFIG;
}

client_t *client_new(const client_options_t *o, client_err_t *code, char *err, size_t errlen)
{
    client_err_t kind = CLIENT_ERR_NOMEM;
    client_t *c = calloc(1, sizeof *c);
    if (!c) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
    c->batch = json_array();
    if (!c->batch) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    if (o->http_url && *o->http_url) {
        c->http = client_http_new(o->http_url, o->token, o->ca_file, err, errlen);
        if (!c->http) {
            kind = err_kind(errno);
            goto fail;
        }
    } else {
        const char *ep = o->zmq_endpoint && *o->zmq_endpoint ? o->zmq_endpoint : CLIENT_ZMQ_DEFAULT;
        /* A bind address (ingest's own ADW_INGEST_ZMQ, a wildcard host) means this host. */
        char local[512];
        for (size_t i = 0; i < sizeof CLIENT_ZMQ_WILDCARDS / sizeof CLIENT_ZMQ_WILDCARDS[0]; i++) {
            size_t k = strlen(CLIENT_ZMQ_WILDCARDS[i]);
            if (!strncmp(ep, CLIENT_ZMQ_WILDCARDS[i], k) && strlen(ep) < sizeof local - 16) {
                snprintf(local, sizeof local, "tcp://127.0.0.1:%s", ep + k);
                ep = local;
                break;
            }
        }
        client_curve_keys_t keys, *curve = NULL;
        int given = (o->curve_server && *o->curve_server) + (o->curve_cert && *o->curve_cert);
        if (given == 1) {
            set_err(err, errlen,
                    "CURVE needs both the server's public certificate "
                    "(--curve-server) and our secret one (--curve-cert)");
            kind = CLIENT_ERR_CONFIG;
            goto fail;
        }
        if (given == 2) {
            int rc = client_cert_load(o->curve_server, keys.server, NULL, err, errlen);
            if (rc == 0)
                rc = client_cert_load(o->curve_cert, keys.pub, keys.sec, err, errlen);
            if (rc) {
                explicit_bzero(&keys, sizeof keys);
                kind = err_kind(-rc);
                goto fail;
            }
            curve = &keys;
        }
        c->zmq = client_zmq_new(ep, curve, err, errlen);
        kind = err_kind(errno);
        if (curve)
            explicit_bzero(&keys, sizeof keys);
        if (!c->zmq)
            goto fail;
    }
    if (o->spool_dir && *o->spool_dir) {
        c->spool = spool_open(o->spool_dir, o->spool_max);
        if (!c->spool) {
            kind = err_kind(errno);
            set_err(err, errlen, "spool directory '%s': %s", o->spool_dir, strerror(errno));
            goto fail;
        }
    }
    if (code)
        *code = CLIENT_ERR_NONE;
    return c;
fail:
    if (code)
        *code = kind;
    client_destroy(&c);
    return NULL;
}

void client_destroy(client_t **cp)
{
    if (!cp || !*cp)
        return;
    client_t *c = *cp;
    client_zmq_destroy(&c->zmq);
    client_http_destroy(&c->http);
    spool_close(&c->spool);
    json_decref(c->batch);
    free(c);
    *cp = NULL;
}

/* ---- event ids ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void client_event_id_new(char out[CLIENT_EVENT_ID_LEN + 1])
{
    static atomic_ulong counter;
    unsigned char r[CLIENT_EVENT_ID_LEN / 2];
    ssize_t got = getrandom(r, sizeof r, GRND_NONBLOCK);
    if (got != (ssize_t)sizeof r) {
        /* No entropy yet (early boot): time, pid and a counter, mixed. Still unique. */
        uint64_t x = (uint64_t)timefmt_now_us() ^ ((uint64_t)getpid() << 40) ^
                     ((uint64_t)atomic_fetch_add(&counter, 1) << 20) ^ (uint64_t)timefmt_mono_us();
        for (size_t i = 0; i < sizeof r; i += 8) {
            uint64_t v = splitmix64(&x);
            memcpy(r + i, &v, sizeof r - i < 8 ? sizeof r - i : 8);
        }
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof r; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[CLIENT_EVENT_ID_LEN] = '\0';
}

int client_event_prepare(json_t *ev, int64_t now_us)
{
    if (!json_is_object(ev))
        return -EINVAL;
    json_t *id = json_object_get(ev, "event_id");
    if (!id || json_is_null(id)) {
        char buf[CLIENT_EVENT_ID_LEN + 1];
        client_event_id_new(buf);
        if (json_object_set_new(ev, "event_id", json_string(buf)))
            return -ENOMEM;
    }
    json_t *ts = json_object_get(ev, "timestamp");
    if (!ts || json_is_null(ts)) {
        char buf[TIMEFMT_LEN];
        timefmt_format(now_us, buf);
        if (json_object_set_new(ev, "timestamp", json_string(buf)))
            return -ENOMEM;
    }
    return 0;
}

/* ---- one request ---- */

static int wire(client_t *c, int64_t deadline_us, long *index, char *err, size_t errlen)
{
    if (c->http)
        return client_http_request(c->http, c->batch, deadline_us, c->ids, index, err, errlen);
    return client_zmq_request(c->zmq, c->batch, deadline_us, c->ids, index, err, errlen);
}

int client_send(client_t *c, json_t *events, int timeout_ms, int64_t *ids, long *index, char *err,
                size_t errlen)
{
    if (index)
        *index = -1;
    json_array_clear(c->batch);
    size_t n = json_is_array(events) ? json_array_size(events) : 1;
    if (!json_is_object(events) && (!json_is_array(events) || n == 0 || n > ADW_BATCH_MAX)) {
        snprintf(err, errlen, "send an event object or an array of 1..%d of them", ADW_BATCH_MAX);
        return -EINVAL;
    }
    int64_t now = timefmt_now_us();
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_is_array(events) ? json_array_get(events, i) : events;
        int rc = client_event_prepare(ev, now);
        if (rc) {
            snprintf(err, errlen, "event %zu: %s", i,
                     rc == -EINVAL ? "not a JSON object" : "out of memory");
            json_array_clear(c->batch);
            return rc;
        }
        if (json_array_append(c->batch, ev)) {
            json_array_clear(c->batch);
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    }
    int64_t deadline = timefmt_mono_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
    int rc = wire(c, deadline, index, err, errlen);
    if (rc == 0 && ids)
        memcpy(ids, c->ids, n * sizeof *ids);
    json_array_clear(c->batch);
    return rc;
}

/* ---- sending lists of events, spooled or new ---- */

static void note_failure(client_t *c, int rc, const char *why, client_report_t *rep)
{
    rep->error = rc;
    snprintf(rep->err, sizeof rep->err, "%s", why);
    if (rc == -ENOMEM)
        return;
    c->retry_at_us = timefmt_mono_us() + c->backoff_ms * 1000;
    c->backoff_ms =
        c->backoff_ms * 2 > CLIENT_BACKOFF_MAX_MS ? CLIENT_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void note_success(client_t *c)
{
    c->retry_at_us = 0;
    c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
}

int client_backing_off(const client_t *c)
{
    return c->retry_at_us && timefmt_mono_us() < c->retry_at_us;
}

static void invalid(client_report_t *rep, const char *why)
{
    if (!rep->invalid_err[0])
        snprintf(rep->invalid_err, sizeof rep->invalid_err, "%s", why);
    rep->invalid++;
}

/* One event of a list ingest acknowledged (names: spooled) or refused. */
static void acked(client_t *c, char (*names)[SPOOL_NAME_LEN], size_t i, client_report_t *rep)
{
    if (!names) {
        rep->sent++;
        return;
    }
    int rc = spool_remove(c->spool, names[i]);
    if (rc)
        log_warn("spool: cannot remove %s/%s: %s", spool_dir(c->spool), names[i], strerror(-rc));
    rep->drained++;
}

static void refused(client_t *c, char (*names)[SPOOL_NAME_LEN], size_t i, const char *why,
                    client_report_t *rep)
{
    if (!names) {
        invalid(rep, why);
        return;
    }
    int rc = spool_reject(c->spool, names[i]);
    log_warn("spool: ingest refused %s: %s; moved to %s/" SPOOL_REJECTED "/%s", names[i], why,
             spool_dir(c->spool), rc ? "(failed)" : "");
    rep->rejected++;
}

/* Sends ev[0..n) (NULL entries skipped; owned references, released as they are done with) in
 * requests, in order, until one fails to be delivered. Returns 0 when all were acknowledged or
 * refused, else the failure (negative errno) with *done the index of the first not sent. */
static int send_list(client_t *c, json_t **ev, char (*names)[SPOOL_NAME_LEN], size_t n,
                     size_t *done, int64_t deadline_us, client_report_t *rep)
{
    size_t map[ADW_BATCH_MAX];
    size_t i = 0;
    int single = 0;
    char why[CLIENT_ERR_LEN];
    while (i < n) {
        if (!ev[i]) {
            i++;
            continue;
        }
        json_array_clear(c->batch);
        size_t count = 0, bytes = 2;
        for (size_t j = i; j < n && count < (single ? 1u : (size_t)ADW_BATCH_MAX); j++) {
            if (!ev[j])
                continue;
            size_t sz = 0;
            if (jsonw_size(ev[j], SIZE_MAX, &sz))
                sz = CLIENT_REQUEST_MAX;
            if (count && bytes + sz + 1 > CLIENT_REQUEST_MAX)
                break;
            if (json_array_append(c->batch, ev[j])) {
                json_array_clear(c->batch);
                *done = i;
                note_failure(c, -ENOMEM, "out of memory", rep);
                return -ENOMEM;
            }
            map[count++] = j;
            bytes += sz + 1;
        }
        long index = -1;
        int rc = wire(c, deadline_us, &index, why, sizeof why);
        json_array_clear(c->batch);
        if (rc == 0) {
            note_success(c);
            for (size_t k = 0; k < count; k++) {
                acked(c, names, map[k], rep);
                json_decref(ev[map[k]]);
                ev[map[k]] = NULL;
            }
            i = map[count - 1] + 1;
            continue;
        }
        if ((rc == -EINVAL && index >= 0) || ((rc == -EINVAL || rc == -E2BIG) && count == 1)) {
            size_t k = map[index >= 0 ? (size_t)index : 0];
            refused(c, names, k, why, rep);
            json_decref(ev[k]);
            ev[k] = NULL;
            continue;
        }
        if (rc == -EINVAL || rc == -E2BIG) { /* which one is not said: one at a time */
            single = 1;
            continue;
        }
        *done = i;
        note_failure(c, rc, why, rep);
        return rc;
    }
    *done = n;
    return 0;
}

/* Sends the spool's events in order, with the lock held. Returns 0 when the spool is empty,
 * 1 when events are left (the reason in rep), or -ENOMEM. */
static int drain_locked(client_t *c, int64_t deadline_us, client_report_t *rep)
{
    json_t *ev[CLIENT_DRAIN_WINDOW];
    for (;;) {
        char(*names)[SPOOL_NAME_LEN] = NULL;
        size_t count = 0;
        int rc = spool_list(c->spool, &names, &count);
        if (rc) {
            snprintf(rep->err, sizeof rep->err, "spool %s: %s", spool_dir(c->spool), strerror(-rc));
            rep->error = rc;
            return rc == -ENOMEM ? rc : 1;
        }
        if (count == 0)
            return 0;
        size_t before = rep->drained + rep->rejected;
        for (size_t w = 0; w < count; w += CLIENT_DRAIN_WINDOW) {
            size_t m = count - w < CLIENT_DRAIN_WINDOW ? count - w : CLIENT_DRAIN_WINDOW;
            for (size_t k = 0; k < m; k++) {
                char why[CLIENT_ERR_LEN];
                ev[k] = NULL;
                int r = spool_read(c->spool, names[w + k], &ev[k], why, sizeof why);
                if (r == -ENOENT)
                    continue; /* taken meanwhile */
                if (r == 0) {
                    adw_event_t e;
                    char verr[EVENT_ERR_LEN];
                    if (event_from_json(ev[k], timefmt_now_us(), &e, verr, sizeof verr) == 0) {
                        event_clear(&e);
                        continue;
                    }
                    snprintf(why, sizeof why, "not a valid event: %s", verr);
                    json_decref(ev[k]);
                    ev[k] = NULL;
                }
                /* Not JSON, not an event, or unreadable: it would block the spool forever. */
                refused(c, names + w, k, why, rep);
            }
            size_t done = 0;
            rc = send_list(c, ev, names + w, m, &done, deadline_us, rep);
            for (size_t k = 0; k < m; k++)
                json_decref(ev[k]);
            if (rc) {
                free(names);
                return rc == -ENOMEM ? rc : 1;
            }
        }
        free(names);
        if (rep->drained + rep->rejected == before || timefmt_mono_us() >= deadline_us) {
            int left = spool_pending(c->spool);
            if (left > 0 && !rep->error) {
                rep->error = -ETIMEDOUT;
                snprintf(rep->err, sizeof rep->err, "spool %s: not drained in time",
                         spool_dir(c->spool));
            }
            return left > 0 ? 1 : 0;
        }
    }
}

/* How long a call keeps for spooling what it could not send. */
static int64_t spool_reserve_us(int timeout_ms)
{
    int64_t r = (int64_t)timeout_ms * 1000 / 5;
    return r > 100000 ? 100000 : r;
}

static void count_pending(client_t *c, client_report_t *rep)
{
    long n = c->spool ? spool_count(c->spool) : 0;
    rep->pending = n > 0 ? (size_t)n : 0;
}

int client_drain(client_t *c, int timeout_ms, client_report_t *rep)
{
    memset(rep, 0, sizeof *rep);
    if (!c->spool)
        return 0;
    if (timeout_ms < 0)
        timeout_ms = 0;
    int64_t deadline = timefmt_mono_us() + (int64_t)timeout_ms * 1000;
    if (spool_pending(c->spool) <= 0)
        return 0;
    int rc = spool_lock(c->spool, deadline);
    if (rc) {
        rep->error = rc;
        snprintf(rep->err, sizeof rep->err, "spool %s: %s", spool_dir(c->spool),
                 rc == -ETIMEDOUT ? "locked by another process" : strerror(-rc));
        count_pending(c, rep);
        return 1;
    }
    rc = drain_locked(c, deadline, rep);
    spool_unlock(c->spool);
    count_pending(c, rep);
    return rc;
}

int client_submit(client_t *c, json_t *events, int timeout_ms, client_report_t *rep)
{
    memset(rep, 0, sizeof *rep);
    if (timeout_ms < 0)
        timeout_ms = 0;
    int64_t start = timefmt_mono_us();
    int64_t deadline = start + (int64_t)timeout_ms * 1000 - spool_reserve_us(timeout_ms);
    int64_t now_us = timefmt_now_us();
    size_t n = json_is_array(events) ? json_array_size(events) : 1;
    // NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof *p is a pointer
    json_t **ev = calloc(n ? n : 1, sizeof *ev);
    if (!ev)
        return -ENOMEM;
    size_t nvalid = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_is_array(events) ? json_array_get(events, i) : events;
        char why[CLIENT_ERR_LEN], verr[EVENT_ERR_LEN];
        if (!json_is_object(e)) {
            snprintf(why, sizeof why, "event %zu: not a JSON object", i);
            invalid(rep, why);
            continue;
        }
        rc = client_event_prepare(e, now_us);
        if (rc)
            goto done;
        adw_event_t parsed;
        if (event_from_json(e, now_us, &parsed, verr, sizeof verr)) {
            snprintf(why, sizeof why, "event %zu: %s", i, verr);
            invalid(rep, why);
            continue;
        }
        event_clear(&parsed);
        ev[nvalid++] = json_incref(e);
    }
    if (nvalid == 0)
        goto done;

    /* Older events first: while any wait in the spool, the new ones queue behind them. */
    int blocked = 0;
    if (client_backing_off(c)) {
        blocked = 1;
        rep->error = -EAGAIN;
        snprintf(rep->err, sizeof rep->err,
                 "ingest failed a moment ago; not trying again for %lld ms",
                 (long long)((c->retry_at_us - timefmt_mono_us()) / 1000));
    } else if (c->spool && spool_pending(c->spool) > 0) {
        int lrc = spool_lock(c->spool, deadline);
        if (lrc) {
            blocked = 1;
            rep->error = lrc;
            snprintf(rep->err, sizeof rep->err, "spool %s: %s", spool_dir(c->spool),
                     lrc == -ETIMEDOUT ? "locked by another process" : strerror(-lrc));
        } else {
            int d = drain_locked(c, deadline, rep);
            if (d < 0) {
                rc = d;
                goto done;
            }
            blocked = d;
        }
    }
    size_t sent_upto = 0;
    if (!blocked) {
        int s = send_list(c, ev, NULL, nvalid, &sent_upto, deadline, rep);
        if (s == -ENOMEM) {
            rc = s;
            goto done;
        }
    }
    for (size_t i = sent_upto; i < nvalid; i++) {
        if (!ev[i])
            continue;
        char why[CLIENT_ERR_LEN];
        if (c->spool && spool_put(c->spool, ev[i], now_us, why, sizeof why) == 0) {
            rep->spooled++;
            continue;
        }
        if (!c->spool)
            snprintf(why, sizeof why, "no spool");
        if (!rep->lost)
            snprintf(rep->lost_err, sizeof rep->lost_err, "%s", why);
        rep->lost++;
    }
    if (c->spool && (rep->spooled || blocked || rep->drained))
        count_pending(c, rep);
done:
    if (c->spool)
        spool_unlock(c->spool);
    for (size_t i = 0; i < nvalid; i++)
        json_decref(ev[i]);
    free(ev);
    if (rc)
        return rc;
    return rep->spooled || rep->lost ? 1 : 0;
}
