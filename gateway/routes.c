#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "approve.h"
#include "db.h"
#include "respond.h"
#include "webdir.h"

static void serve_text(struct lws *wsi, ws_session_t *ss, int status, const char *ctype,
                       const char *text)
{
    char *body = strdup(text);
    respond_prepare(wsi, ss, status, ctype, body, body ? strlen(text) : 0);
}

int routes_writeable(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    if (ss->export)
        return export_writeable(ss->export, s->wbuf);
    return respond_write(s, wsi, ss);
}

static void api_reply(void *user, int status, char *body, size_t len)
{
    ws_session_t *ss = user;
    ss->job = NULL;
    respond_prepare(ss->wsi, ss, status, "application/json", body, len);
}

static void serve_readyz(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    int receiving = s->sub && sub_receiving(s->sub);
    int db = s->sub && sub_db_ok(s->sub);
    int init = fanout_initialized(s->fanout);
    if (receiving && db && init && !s->shutting_down) {
        serve_text(wsi, ss, 200, "application/json", "{\"status\":\"ready\"}");
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "not ready:%s%s%s%s", s->shutting_down ? " shutting down;" : "",
             receiving ? "" : " no messages from ingest;", db ? "" : " database unreachable;",
             init ? "" : " position unknown;");
    msg[strlen(msg) - 1] = '\0';
    respond_error(wsi, ss, 503, msg);
}

/* The REST API (api.h): the token, the query, its scope; the query goes to the database
 * workers and its reply comes back through api_reply. */
static void serve_api(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const char *path)
{
    const filter_list_t *scope;
    if (admit_token(s, wsi, &scope) == TOKENS_REFUSED) {
        ss->extra_header = "www-authenticate:";
        ss->extra_value = "Bearer";
        respond_error(wsi, ss, 401, "missing or wrong token");
        return;
    }
    if (export_match(path)) {
        ss->export = s->shutting_down ? NULL : export_start(s->pool, wsi, path, scope, ss->head);
        if (!ss->export) {
            ss->extra_header = "retry-after:";
            ss->extra_value = "1";
            respond_error(wsi, ss, 503, "too busy; try again");
        }
        return;
    }
    api_query_t q;
    char err[256];
    int st = api_parse(path, s->args, s->nargs, &q, err, sizeof err);
    q.filter.scope = scope;
    if (!st && filter_check_scope(&q.filter, err, sizeof err))
        st = 403;
    if (st) {
        api_query_free(&q);
        respond_error(wsi, ss, st, err);
        return;
    }
    ss->job = s->shutting_down ? NULL : api_submit(s->pool, &q, api_reply, ss);
    api_query_free(&q);
    if (!ss->job) {
        ss->extra_header = "retry-after:";
        ss->extra_value = "1";
        respond_error(wsi, ss, 503, "too busy; try again");
        return;
    }
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, DB_STATEMENT_TIMEOUT_MS / 1000 + 10);
}

int routes_serve(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const char *path)
{
    char *uri = NULL;
    int ulen = 0;
    int method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    api_job_t *stale = ss->job;
    ss->job = NULL;
    api_cancel(stale);
    export_destroy(&ss->export);
    approve_destroy(&ss->approve);
    ss->wsi = wsi;
    ss->extra_header = NULL;
    metric_add(s->m_http, 1);
    ss->head = method == LWSHUMETH_HEAD;
    if (method == LWSHUMETH_POST && approve_match(path))
        return approve_start(s, wsi, ss, path);
    if (method != LWSHUMETH_GET && method != LWSHUMETH_HEAD) {
        /* lws would wait for the body before a writeable callback: answer now, then close. */
        if (admit_refuse(wsi, 405, "method not allowed", "allow:", "GET") < 0)
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    if (admit_read_args(s, wsi)) {
        respond_error(wsi, ss, 414, "query string too long");
        return 0;
    }
    if (!strcmp(path, "/healthz")) {
        serve_text(wsi, ss, 200, "application/json", "{\"status\":\"ok\"}");
    } else if (!strcmp(path, "/readyz")) {
        serve_readyz(s, wsi, ss);
    } else if (!strcmp(path, "/metrics")) {
        buf_t b;
        buf_init(&b, 0);
        if (metrics_render(s->o.metrics, &b)) {
            buf_free(&b);
            respond_error(wsi, ss, 500, "out of memory");
        } else {
            size_t len = 0;
            char *body = buf_steal(&b, &len);
            respond_prepare(wsi, ss, 200, "text/plain; version=0.0.4", body, len);
        }
    } else if (!strcmp(path, WS_PATH)) {
        ss->extra_header = "upgrade:";
        ss->extra_value = "websocket";
        respond_error(wsi, ss, 426, "this endpoint speaks WebSocket only");
    } else if (!strncmp(path, "/api/", 5) || !strcmp(path, "/api")) {
        serve_api(s, wsi, ss, path);
    } else {
        char file[PATH_MAX];
        if (!s->have_web || webdir_resolve(s->web_root, path, file, sizeof file)) {
            respond_error(wsi, ss, 404, "not found");
            return 0;
        }
        int n = lws_serve_http_file(wsi, file, webdir_mime(file), NULL, 0);
        if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
            return -1;
    }
    return 0;
}

void routes_closed(ws_session_t *ss)
{
    if (!ss)
        return;
    api_cancel(ss->job);
    ss->job = NULL;
    export_destroy(&ss->export);
    approve_destroy(&ss->approve);
    free(ss->body);
    ss->body = NULL;
    ss->responding = 0;
}
