#include "approval_rollup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

static const char INSERT_SQL[] =
    "INSERT INTO adw_approvals (approval_id, adw_id, step, tool_name, tool_use_id, summary,"
    " tool_input, rule, status, requested_id, requested_at, expires_at)"
    " SELECT a, b, c, d, e, f, g, h, 'pending', i, j, k FROM unnest($1::text[], $2::text[],"
    " $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[], $9::bigint[],"
    " $10::timestamptz[], $11::timestamptz[]) AS t(a, b, c, d, e, f, g, h, i, j, k)"
    " ON CONFLICT (approval_id) DO NOTHING";

static const char UPDATE_SQL[] =
    "UPDATE adw_approvals x SET status = u.status, decided_id = u.decided_id,"
    " decided_at = u.decided_at, decision = u.decision, reason = u.reason,"
    " decided_by = u.decided_by, waited_ms = u.waited_ms"
    " FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::text[],"
    " $6::text[], $7::text[], $8::bigint[])"
    " AS u(approval_id, status, decided_id, decided_at, decision, reason, decided_by, waited_ms)"
    " WHERE x.approval_id = u.approval_id AND x.status = 'pending'";

/* Appends the text[] literal element s (NULL: NULL) to b. */
static int arr_add(buf_t *b, const char *s)
{
    int rc = buf_putc(b, b->len ? ',' : '{');
    if (!s)
        return rc | buf_puts(b, "NULL");
    rc |= buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            rc |= buf_putc(b, '\\');
        rc |= buf_putc(b, *s);
    }
    return rc | buf_putc(b, '"');
}

static int arr_close(buf_t *b)
{
    return (b->len ? 0 : buf_putc(b, '{')) | buf_putc(b, '}');
}

/* payload.key of e as a string, or NULL. */
static const char *pstr(const adw_event_t *e, const char *key)
{
    return json_string_value(json_object_get(json_object_get(e->doc, "payload"), key));
}

static int arr_int(buf_t *b, int64_t v)
{
    char n[24];
    snprintf(n, sizeof n, "%" PRId64, v);
    return arr_add(b, n);
}

/* Whether approval id already has an end in this batch (the first one wins). */
static int ended_before(store_req_t **reqs, size_t nreqs, size_t q_at, size_t i_at, const char *id)
{
    for (size_t q = 0; q <= q_at; q++) {
        store_req_t *r = reqs[q];
        if (!r->approvals)
            continue;
        for (size_t i = 0; i < r->nevents && (q < q_at || i < i_at); i++) {
            const adw_event_t *e = &r->events[i];
            if (!r->fresh[i] || !e->event || !strcmp(e->event, "approval_requested"))
                continue;
            const char *other = pstr(e, "approval_id");
            if (other && !strcmp(other, id))
                return 1;
        }
    }
    (void)nreqs;
    return 0;
}

static int add_requested(approval_rollup_t *a, const adw_event_t *e, const char *id)
{
    buf_t *c = a->ins;
    char at[TIMEFMT_LEN], idn[24];
    timefmt_format(e->received_us, at);
    snprintf(idn, sizeof idn, "%" PRId64, e->id);
    json_t *input = json_object_get(json_object_get(e->doc, "payload"), "tool_input");
    char *input_text = json_dumps(input ? input : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!input_text)
        return -ENOMEM;
    int rc = arr_add(&c[0], id) | arr_add(&c[1], e->adw_id) | arr_add(&c[2], e->step) |
             arr_add(&c[3], pstr(e, "tool_name")) | arr_add(&c[4], pstr(e, "tool_use_id")) |
             arr_add(&c[5], e->summary) | arr_add(&c[6], input_text) |
             arr_add(&c[7], pstr(e, "rule")) | arr_add(&c[8], idn) | arr_add(&c[9], at) |
             arr_add(&c[10], pstr(e, "expires_at"));
    free(input_text);
    a->nins++;
    return rc;
}

static int add_end(approval_rollup_t *a, const adw_event_t *e, const char *id)
{
    buf_t *c = a->upd;
    char at[TIMEFMT_LEN];
    timefmt_format(e->received_us, at);
    int decided = !strcmp(e->event, "approval_decided");
    const char *decision = decided ? pstr(e, "decision") : NULL;
    const char *status = !decided                                 ? "expired"
                         : decision && !strcmp(decision, "allow") ? "allowed"
                                                                  : "denied";
    json_t *w = json_object_get(json_object_get(e->doc, "payload"), "waited_ms");
    int rc = arr_add(&c[0], id) | arr_add(&c[1], status) | arr_int(&c[2], e->id) |
             arr_add(&c[3], at) | arr_add(&c[4], decision) | arr_add(&c[5], pstr(e, "reason")) |
             arr_add(&c[6], decided ? pstr(e, "decided_by") : NULL);
    if (json_is_integer(w))
        rc |= arr_int(&c[7], (int64_t)json_integer_value(w));
    else
        rc |= arr_add(&c[7], NULL);
    a->nupd++;
    return rc;
}

int approval_rollup_encode(approval_rollup_t *a, store_req_t **reqs, size_t nreqs)
{
    int rc = 0;
    a->nins = a->nupd = 0;
    for (size_t k = 0; k < 11; k++)
        buf_reset(&a->ins[k]);
    for (size_t k = 0; k < 8; k++)
        buf_reset(&a->upd[k]);
    for (size_t q = 0; q < nreqs && !rc; q++) {
        store_req_t *r = reqs[q];
        if (!r->approvals)
            continue;
        for (size_t i = 0; i < r->nevents && !rc; i++) {
            const adw_event_t *e = &r->events[i];
            const char *id = pstr(e, "approval_id");
            if (!r->fresh[i] || !e->is_system || !e->event || !id)
                continue;
            if (!strcmp(e->event, "approval_requested"))
                rc = add_requested(a, e, id);
            else if ((!strcmp(e->event, "approval_decided") ||
                      !strcmp(e->event, "approval_expired")) &&
                     !ended_before(reqs, nreqs, q, i, id))
                rc = add_end(a, e, id);
        }
    }
    for (size_t k = 0; k < 11 && !rc && a->nins; k++)
        rc |= arr_close(&a->ins[k]);
    for (size_t k = 0; k < 8 && !rc && a->nupd; k++)
        rc |= arr_close(&a->upd[k]);
    return rc ? -ENOMEM : 0;
}

static int send(PGconn *conn, const char *sql, buf_t *cols, int n)
{
    const char *values[11];
    for (int k = 0; k < n; k++)
        values[k] = cols[k].data;
    return PQsendQueryParams(conn, sql, n, NULL, values, NULL, NULL, 0) == 1 ? 0 : -1;
}

int approval_rollup_send(approval_rollup_t *a, PGconn *conn)
{
    int sent = 0;
    if (a->nins) {
        if (send(conn, INSERT_SQL, a->ins, 11))
            return -1;
        sent++;
    }
    if (a->nupd) {
        if (send(conn, UPDATE_SQL, a->upd, 8))
            return -1;
        sent++;
    }
    return sent;
}

void approval_rollup_free(approval_rollup_t *a)
{
    for (size_t k = 0; k < 11; k++)
        buf_free(&a->ins[k]);
    for (size_t k = 0; k < 8; k++)
        buf_free(&a->upd[k]);
}
