#include "approve.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "adw_limits.h"
#include "auth.h"
#include "buf.h"
#include "codec.h"
#include "db.h"
#include "dbjson.h"
#include "decide.h"
#include "forward.h"
#include "log.h"
#include "respond.h"

#define APPROVE_WAIT_S (DB_STATEMENT_TIMEOUT_MS / 1000 + FORWARD_TIMEOUT_MS / 1000 + 10)
#define APPROVE_AUTH_MAX (DECIDE_LEN_MAX + 16) /* bytes of an Authorization header kept */

typedef struct lookup_job_t lookup_job_t;

/* One of these per decision being handled (ss->approve). */
struct approve_t {
    ws_server_t *s;
    struct lws *wsi;
    ws_session_t *ss;
    char id[APPROVE_ID_LEN + 1];
    const decide_entry_t *who; /* the decide token's entry (owned by s->decide) */
    buf_t body;                /* the request body as it arrives */
    char *forward_body;        /* the decision handed to ingest (owned) */
    size_t forward_len;
    char decision[8];
    lookup_job_t *job;  /* the lookup in flight, if any */
    forward_req_t *req; /* the forwarded decision in flight, if any */
};

/* One of these per lookup of an approval in adw_approvals. */
struct lookup_job_t {
    dbjob_t job;      /* first: the pool hands it back */
    approve_t *owner; /* NULL once the request went away */
    char id[APPROVE_ID_LEN + 1];
    int found;
    int db_error;
    char adw_id[ADW_ADW_ID_MAX + 1];
    char status[16];
};

int approve_match(const char *path)
{
    return !strncmp(path, APPROVE_PATH, strlen(APPROVE_PATH)) && path[strlen(APPROVE_PATH)];
}

/* Logs one decision attempt: never the token. */
static void note(const approve_t *a, const char *name, int status, const char *what)
{
    log_info("approval %s: decided_by %s, %s -> %d%s%s", a->id[0] ? a->id : "(bad id)",
             name ? name : "(no decide token)", a->decision[0] ? a->decision : "(no decision)",
             status, what ? ": " : "", what ? what : "");
}

/* Refuses before the body is read: a whole response, then the connection closes. */
static int refuse(ws_server_t *s, struct lws *wsi, ws_session_t *ss, int status, const char *msg,
                  const char *hname, const char *hvalue)
{
    (void)s;
    approve_destroy(&ss->approve);
    if (admit_refuse(wsi, status, msg, hname, hvalue) < 0)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Answers through the writeable callback (keep-alive) and ends the decision. */
static void answer(approve_t *a, int status, const char *msg)
{
    note(a, a->who ? a->who->name : NULL, status, msg);
    struct lws *wsi = a->wsi;
    ws_session_t *ss = a->ss;
    approve_destroy(&ss->approve);
    respond_error(wsi, ss, status, msg);
}

/* The Bearer token of the Authorization header, copied into h; *tok NULL when there is none. */
static void bearer(struct lws *wsi, char *h, size_t hlen, const char **tok, size_t *tlen)
{
    *tok = NULL;
    *tlen = 0;
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 0 || n >= (int)hlen ||
        lws_hdr_copy(wsi, h, (int)hlen, WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
        return;
    if (auth_bearer(h, strlen(h), tok, tlen))
        *tok = NULL;
}

int approve_start(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const char *path)
{
    approve_destroy(&ss->approve);
    approve_t probe = {0}; /* for the log line of an early refusal */
    const char *id = path + strlen(APPROVE_PATH);
    int id_ok = strlen(id) == APPROVE_ID_LEN;
    for (const char *p = id; id_ok && *p; p++)
        id_ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
    if (id_ok)
        memcpy(probe.id, id, APPROVE_ID_LEN + 1);

    if (lws_hdr_custom_length(wsi, "x-adw-forwarded:", 16) >= 0) {
        note(&probe, NULL, 508, "arrived with X-ADW-Forwarded");
        return refuse(s, wsi, ss, 508,
                      "this decision was already forwarded by a gateway: send decisions to "
                      "ingest (ADW_GATEWAY_INGEST_URL must name ingest, not a gateway)",
                      NULL, NULL);
    }
    if (!admit_origin_ok(s, wsi)) {
        note(&probe, NULL, 403, "origin not allowed");
        return refuse(s, wsi, ss, 403, "origin not allowed", NULL, NULL);
    }
    if (!decide_count(s->decide)) {
        note(&probe, NULL, 403, "no decide tokens configured");
        return refuse(s, wsi, ss, 403, "deciding needs a decide token (ADW_GATEWAY_DECIDE_TOKENS)",
                      NULL, NULL);
    }
    char h[APPROVE_AUTH_MAX];
    const char *tok;
    size_t tlen;
    bearer(wsi, h, sizeof h, &tok, &tlen);
    const decide_entry_t *who = tok ? decide_check(s->decide, tok, tlen) : NULL;
    int reads = 0;
    if (tok && !who) {
        const filter_list_t *scope;
        reads = tokens_required(s->tokens) &&
                tokens_check(s->tokens, tok, tlen, &scope) != TOKENS_REFUSED;
    }
    explicit_bzero(h, sizeof h);
    if (!who) {
        note(&probe, NULL, reads ? 403 : 401, reads ? "a read token" : "missing or wrong token");
        if (reads)
            return refuse(s, wsi, ss, 403, "this token may read but not decide", NULL, NULL);
        return refuse(s, wsi, ss, 401, "deciding needs a decide token in Authorization: Bearer",
                      "www-authenticate:", "Bearer");
    }
    char cl[32];
    int have_len = lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    int h2 = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COLON_PATH) > 0;
    long long clen = have_len ? strtoll(cl, NULL, 10) : -1;
    if (clen > APPROVE_BODY_MAX) {
        note(&probe, who->name, 413, "body too large");
        return refuse(s, wsi, ss, 413, "body over 4096 bytes", NULL, NULL);
    }
    if (!have_len && !h2) {
        note(&probe, who->name, 411, "no Content-Length");
        return refuse(s, wsi, ss, 411, "a decision needs a Content-Length", NULL, NULL);
    }
    if (!id_ok) {
        note(&probe, who->name, 404, "not an approval id");
        return refuse(s, wsi, ss, 404, "no such approval (an approval_id is 32 hex digits)", NULL,
                      NULL);
    }
    if (clen == 0) {
        note(&probe, who->name, 400, "empty body");
        return refuse(s, wsi, ss, 400,
                      "body is not JSON: want {\"decision\":\"allow\"|\"deny\",\"reason\":\"...\"}",
                      NULL, NULL);
    }
    if (s->shutting_down)
        return refuse(s, wsi, ss, 503, "shutting down", "retry-after:", "1");
    approve_t *a = calloc(1, sizeof *a);
    if (!a)
        return refuse(s, wsi, ss, 500, "out of memory", NULL, NULL);
    a->s = s;
    a->wsi = wsi;
    a->ss = ss;
    a->who = who;
    memcpy(a->id, probe.id, sizeof a->id);
    buf_init(&a->body, APPROVE_BODY_MAX);
    ss->approve = a;
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, APPROVE_WAIT_S);
    return 0;
}

int approve_body(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const void *in, size_t len)
{
    approve_t *a = ss->approve;
    if (!a)
        return -1;
    if (a->body.len + len > APPROVE_BODY_MAX) {
        note(a, a->who->name, 413, "body too large");
        return refuse(s, wsi, ss, 413, "body over 4096 bytes", NULL, NULL);
    }
    if (buf_append(&a->body, in, len))
        return refuse(s, wsi, ss, 500, "out of memory", NULL, NULL);
    return 0;
}

static void lookup_run(dbjob_t *job, PGconn *conn)
{
    lookup_job_t *j = (lookup_job_t *)job;
    const char *params[1] = {j->id};
    PGresult *r = db_exec(conn, "SELECT adw_id, status FROM adw_approvals WHERE approval_id = $1",
                          1, params, DB_REPLY_TIMEOUT_MS);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (!dbjson_undefined_table(r)) { /* no table yet: no approval */
            log_warn("approval %s: %s", j->id, PQerrorMessage(conn));
            j->db_error = 1;
        }
    } else if (PQntuples(r) == 1) {
        j->found = 1;
        snprintf(j->adw_id, sizeof j->adw_id, "%s", PQgetvalue(r, 0, 0));
        snprintf(j->status, sizeof j->status, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
}

static void forwarded(void *user, int status, char *body, size_t len, const char *why)
{
    approve_t *a = user;
    a->req = NULL;
    if (!status) {
        char msg[512];
        snprintf(msg, sizeof msg, "ingest is unreachable (ADW_GATEWAY_INGEST_URL): %s", why);
        answer(a, 502, msg);
        return;
    }
    if (!body) {
        body = strdup("{}");
        len = body ? 2 : 0;
    }
    note(a, a->who->name, status, "ingest's answer");
    struct lws *wsi = a->wsi;
    ws_session_t *ss = a->ss;
    approve_destroy(&ss->approve);
    respond_prepare(wsi, ss, status, "application/json", body, len);
}

static void lookup_done(dbjob_t *job)
{
    lookup_job_t *j = (lookup_job_t *)job;
    approve_t *a = j->owner;
    if (a) {
        a->job = NULL;
        char msg[256];
        if (job->failed || j->db_error) {
            if (job->failed)
                log_warn("approval %s: %s", j->id, job->err);
            answer(a, 503, "database unavailable");
        } else if (!j->found) {
            snprintf(msg, sizeof msg, "no approval %s", a->id);
            answer(a, 404, msg);
        } else if (!decide_covers(a->who, j->adw_id)) {
            snprintf(msg, sizeof msg, "approval %s is outside this decide token's scope", a->id);
            answer(a, 403, msg);
        } else if (strcmp(j->status, "pending")) {
            snprintf(msg, sizeof msg, "approval %s is already %s", a->id, j->status);
            answer(a, 409, msg);
        } else if (a->s->shutting_down ||
                   !(a->req = forward_submit(a->s->forward, a->id, a->who->name, a->forward_body,
                                             a->forward_len, forwarded, a))) {
            a->ss->extra_header = "retry-after:";
            a->ss->extra_value = "1";
            answer(a, 503, "too busy; try again");
        }
    }
    free(j);
}

/* Checks the body; on success sets a->forward_body (the decision ingest gets). Returns 0, or
 * -EINVAL with the reason in err. */
static int check_body(approve_t *a, char *err, size_t errlen)
{
    json_t *v = NULL;
    char why[160];
    if (codec_json_parse(a->body.data ? a->body.data : "", a->body.len, &v, why, sizeof why) ||
        !json_is_object(v)) {
        snprintf(err, errlen,
                 "body is not a JSON object: want {\"decision\":\"allow\"|\"deny\",\"reason\":"
                 "\"...\"}");
        json_decref(v);
        return -EINVAL;
    }
    const char *d = json_string_value(json_object_get(v, "decision"));
    json_t *reason = json_object_get(v, "reason");
    int rc = -EINVAL;
    if (!d || (strcmp(d, "allow") && strcmp(d, "deny"))) {
        snprintf(err, errlen, "decision must be \"allow\" or \"deny\"");
    } else if (reason && !json_is_null(reason) &&
               (!json_is_string(reason) || json_string_length(reason) > APPROVE_REASON_MAX)) {
        snprintf(err, errlen, "reason must be a string of at most %d bytes", APPROVE_REASON_MAX);
    } else {
        snprintf(a->decision, sizeof a->decision, "%s", d);
        json_t *out = json_pack("{ss}", "decision", d);
        if (out && json_is_string(reason))
            json_object_set(out, "reason", reason);
        a->forward_body = out ? json_dumps(out, JSON_COMPACT) : NULL;
        a->forward_len = a->forward_body ? strlen(a->forward_body) : 0;
        json_decref(out);
        rc = a->forward_body ? 0 : -ENOMEM;
        if (rc)
            snprintf(err, errlen, "out of memory");
    }
    json_decref(v);
    return rc;
}

int approve_body_done(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    approve_t *a = ss->approve;
    if (!a)
        return -1;
    char err[200];
    if (check_body(a, err, sizeof err)) {
        answer(a, 400, err);
        return 0;
    }
    lookup_job_t *j = calloc(1, sizeof *j);
    if (j) {
        j->job.run = lookup_run;
        j->job.done = lookup_done;
        j->owner = a;
        memcpy(j->id, a->id, sizeof j->id);
    }
    if (!j || s->shutting_down || dbpool_submit(s->pool, &j->job)) {
        free(j);
        ss->extra_header = "retry-after:";
        ss->extra_value = "1";
        answer(a, 503, "too busy; try again");
        return 0;
    }
    a->job = j;
    (void)wsi;
    return 0;
}

void approve_destroy(approve_t **ap)
{
    if (!ap || !*ap)
        return;
    approve_t *a = *ap;
    *ap = NULL;
    if (a->job) {
        a->job->owner = NULL;
        dbpool_cancel(a->s->pool, &a->job->job);
    }
    if (a->req)
        forward_cancel(a->s->forward, a->req);
    buf_free(&a->body);
    free(a->forward_body);
    free(a);
}
