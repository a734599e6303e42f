#include "admit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "api.h"
#include "auth.h"
#include "http1.h"
#include "log.h"

#define ADMIT_TOKEN_MAX 1024  /* longest token accepted */
#define ADMIT_FD_RESERVE 64   /* descriptors kept for ZeroMQ, PostgreSQL and the rest */
#define ADMIT_HTTP_SPARE 1024 /* descriptors beyond the clients for HTTP and upgrades, at most */
#define ADMIT_ORIGIN_MAX 512  /* longest Origin header accepted, with its NUL */

int admit_read_args(ws_server_t *s, struct lws *wsi)
{
    s->nargs = 0;
    size_t used = 0;
    for (int i = 0; i < 256; i++) {
        int flen = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (flen < 0 || used + (size_t)flen + 1 > sizeof s->argbuf)
            return -E2BIG;
        char *p = s->argbuf + used;
        int n = lws_hdr_copy_fragment(wsi, p, (int)(sizeof s->argbuf - used),
                                      WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        used += (size_t)n + 1;
        if (!n)
            continue;
        if (s->nargs == WS_ARGS_MAX)
            return -E2BIG;
        char *eq = strchr(p, '=');
        s->args[s->nargs].name = p;
        s->args[s->nargs].value = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        s->nargs++;
    }
    return 0;
}

static const char *arg(const ws_server_t *s, const char *name)
{
    for (size_t i = 0; i < s->nargs; i++)
        if (!strcmp(s->args[i].name, name))
            return s->args[i].value;
    return NULL;
}

/* What a presented token grants for reading: a full or read token's access, else a decide
 * token's (decide.h: "*" reads every run, else its prefixes). */
static tokens_access_t read_access(ws_server_t *s, const char *got, size_t glen,
                                   const filter_list_t **scope)
{
    tokens_access_t a = tokens_check(s->tokens, got, glen, scope);
    const decide_entry_t *d = decide_check(s->decide, got, glen);
    if (a != TOKENS_REFUSED || !d)
        return a;
    *scope = d->all ? NULL : &d->scope;
    return d->all ? TOKENS_FULL : TOKENS_SCOPED;
}

tokens_access_t admit_token(ws_server_t *s, struct lws *wsi, const filter_list_t **scope)
{
    *scope = NULL;
    if (!tokens_required(s->tokens))
        return TOKENS_FULL;
    const char *q = arg(s, "token");
    if (q) {
        tokens_access_t a = read_access(s, q, strlen(q), scope);
        if (a != TOKENS_REFUSED)
            return a;
    }
    char h[ADMIT_TOKEN_MAX + 16];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    const char *t;
    size_t tl;
    if (n <= 0 || n >= (int)sizeof h ||
        lws_hdr_copy(wsi, h, sizeof h, WSI_TOKEN_HTTP_AUTHORIZATION) < 0 ||
        auth_bearer(h, strlen(h), &t, &tl))
        return tokens_check(s->tokens, NULL, 0, scope);
    tokens_access_t a = read_access(s, t, tl, scope);
    explicit_bzero(h, sizeof h);
    return a;
}

/* Splits an origin "scheme://host[:port]" into its host (without brackets or port). */
static int origin_host(const char *origin, char *host, size_t hostlen, char *scheme, size_t slen)
{
    const char *sep = strstr(origin, "://");
    if (!sep || (size_t)(sep - origin) >= slen)
        return -1;
    memcpy(scheme, origin, (size_t)(sep - origin));
    scheme[sep - origin] = '\0';
    const char *h = sep + 3, *end;
    if (*h == '[') {
        end = strchr(h, ']');
        if (!end)
            return -1;
        h++;
    } else {
        end = h + strcspn(h, ":/");
    }
    if ((size_t)(end - h) >= hostlen)
        return -1;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    return 0;
}

int admit_origin_allowed(const char *origins, const char *origin_hdr, const char *host_hdr)
{
    char origin[ADMIT_ORIGIN_MAX];
    if (!origin_hdr)
        return 1;
    size_t ol = strlen(origin_hdr);
    if (ol >= sizeof origin)
        return 0;
    memcpy(origin, origin_hdr, ol + 1);
    while (ol && origin[ol - 1] == '/')
        origin[--ol] = '\0';
    char scheme[16], host[256];
    if (origin_host(origin, host, sizeof host, scheme, sizeof scheme))
        return 0;
    int http = !strcasecmp(scheme, "http") || !strcasecmp(scheme, "https");
    /* Same origin: the authority after the scheme equals the Host header. */
    if (http && host_hdr && !strcasecmp(strstr(origin, "://") + 3, host_hdr))
        return 1;
    if (!origins) {
        return http && (!strcasecmp(host, "localhost") || !strcmp(host, "127.0.0.1") ||
                        !strcmp(host, "::1"));
    }
    if (!strcmp(origins, "*"))
        return 1;
    const char *p = origins;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        size_t l = len;
        while (l && (p[l - 1] == ' ' || p[l - 1] == '/'))
            l--;
        if (l && l == ol && !strncasecmp(p, origin, l))
            return 1;
        p += len;
    }
    return 0;
}

int admit_origin_ok(ws_server_t *s, struct lws *wsi)
{
    char origin[ADMIT_ORIGIN_MAX], hosthdr[300];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return 1;
    if (n >= (int)sizeof origin || lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)
        return 0;
    int have_host = lws_hdr_copy(wsi, hosthdr, sizeof hosthdr, WSI_TOKEN_HOST) > 0;
    return admit_origin_allowed(s->origins, origin, have_host ? hosthdr : NULL);
}

int admit_query_filter(const param_t *args, size_t n, filter_t *dst, int *has_since, int64_t *since,
                       char *err, size_t errlen)
{
    filter_t f;
    filter_init(&f);
    *has_since = 0;
    for (size_t i = 0; i < n; i++) {
        int k = filter_key_from_name(args[i].name);
        const char *v = args[i].value;
        if (k >= 0) {
            if (filter_set_csv(&f, (filter_key_t)k, v, strlen(v), err, errlen))
                goto fail;
        } else if (!strcmp(args[i].name, "since")) {
            char *end;
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (*v < '0' || *v > '9' || *end || errno || x < 0) {
                snprintf(err, errlen, "since must be an event id (an integer >= 0)");
                goto fail;
            }
            *has_since = 1;
            *since = x;
        }
    }
    filter_move(dst, &f);
    return 0;
fail:
    filter_free(&f);
    return -EINVAL;
}

int admit_refuse(struct lws *wsi, int status, const char *msg, const char *hname,
                 const char *hvalue)
{
    const char *text = http1_status_reason(status);
    if (!*text)
        text = "Error";
    size_t blen = 0;
    char *body = api_error_body(msg, &blen);
    unsigned char buf[LWS_PRE + 1024];
    char *start = (char *)buf + LWS_PRE;
    int n =
        body
            ? snprintf(start, sizeof buf - LWS_PRE,
                       "HTTP/1.1 %d %s\r\nserver: adw-gateway\r\ncontent-type: application/json\r\n"
                       "content-length: %zu\r\ncache-control: no-store\r\n"
                       "connection: close\r\n%s%s%s%s\r\n%s",
                       status, text, blen, hname ? hname : "", hname ? " " : "",
                       hname ? hvalue : "", hname ? "\r\n" : "", body)
            : -1;
    free(body);
    if (n < 0 || (size_t)n >= sizeof buf - LWS_PRE)
        return -1;
    if (lws_write(wsi, (unsigned char *)start, (size_t)n, LWS_WRITE_HTTP) != n)
        return -1;
    return 1;
}

void admit_forget(ws_server_t *s, struct lws *wsi)
{
    admit_record_t *r = &s->admitted;
    if (!r->wsi || (wsi && r->wsi != wsi))
        return;
    filter_free(&r->filter);
    *r = (admit_record_t){0};
}

/* Records wsi's admission in r (an empty record): f's lists move there (f is left empty), scope
 * is borrowed from the tokens. */
static void admit_keep(admit_record_t *r, struct lws *wsi, filter_t *f, const filter_list_t *scope,
                       int has_since, int64_t since)
{
    r->wsi = wsi;
    filter_move(&r->filter, f);
    r->scope = scope;
    r->has_since = has_since;
    r->since = since;
}

int admit_upgrade(ws_server_t *s, struct lws *wsi, const char *upgrade)
{
    char path[256];
    admit_forget(s, NULL);
    if (strcasecmp(upgrade ? upgrade : "", "websocket")) {
        metric_add(s->m_rej_bad, 1);
        return admit_refuse(wsi, 400, "only WebSocket upgrades are supported", NULL, NULL);
    }
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0 || strcmp(path, WS_PATH)) {
        metric_add(s->m_rej_bad, 1);
        return admit_refuse(wsi, 404, "WebSocket endpoint is " WS_PATH, NULL, NULL);
    }
    if (admit_read_args(s, wsi)) {
        metric_add(s->m_rej_bad, 1);
        return admit_refuse(wsi, 414, "query string too long", NULL, NULL);
    }
    const filter_list_t *scope;
    if (admit_token(s, wsi, &scope) == TOKENS_REFUSED) {
        metric_add(s->m_rej_auth, 1);
        return admit_refuse(wsi, 401, "missing or wrong token", "www-authenticate:", "Bearer");
    }
    if (!admit_origin_ok(s, wsi)) {
        metric_add(s->m_rej_origin, 1);
        return admit_refuse(wsi, 403, "origin not allowed", NULL, NULL);
    }
    filter_t f;
    filter_init(&f);
    int has_since;
    int64_t since = 0;
    char err[200];
    if (admit_query_filter(s->args, s->nargs, &f, &has_since, &since, err, sizeof err)) {
        metric_add(s->m_rej_bad, 1);
        return admit_refuse(wsi, 400, err, NULL, NULL);
    }
    f.scope = scope;
    if (filter_check_scope(&f, err, sizeof err)) {
        filter_free(&f);
        metric_add(s->m_rej_auth, 1);
        return admit_refuse(wsi, 403, err, NULL, NULL);
    }
    if (s->shutting_down || !fanout_initialized(s->fanout)) {
        filter_free(&f);
        metric_add(s->m_rej_unready, 1);
        return admit_refuse(wsi, 503, s->shutting_down ? "shutting down" : "not ready yet",
                            "retry-after:", "1");
    }
    if (fanout_count(s->fanout) >= (size_t)s->o.max_clients) {
        filter_free(&f);
        metric_add(s->m_rej_full, 1);
        return admit_refuse(wsi, 503, "too many clients", "retry-after:", "5");
    }
    admit_keep(&s->admitted, wsi, &f, scope, has_since, since);
    return 0;
}

int admit_take(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    admit_record_t *r = &s->admitted;
    if (r->wsi && r->wsi == wsi) {
        ss->scope = r->scope;
        return 0;
    }
    /* No LWS_CALLBACK_HTTP_CONFIRM_UPGRADE came first. */
    admit_forget(s, NULL);
    char err[200];
    const filter_list_t *scope;
    filter_t f;
    filter_init(&f);
    int has_since = 0;
    int64_t since = 0;
    if (admit_read_args(s, wsi) || admit_token(s, wsi, &scope) == TOKENS_REFUSED ||
        admit_query_filter(s->args, s->nargs, &f, &has_since, &since, err, sizeof err))
        return -1;
    f.scope = scope;
    if (filter_check_scope(&f, err, sizeof err)) {
        filter_free(&f);
        return -1;
    }
    ss->scope = scope;
    admit_keep(r, wsi, &f, scope, has_since, since);
    return 0;
}

int admit_claim(ws_server_t *s, struct lws *wsi, filter_t *filter, int *has_since, int64_t *since)
{
    admit_record_t *r = &s->admitted;
    if (!r->wsi || r->wsi != wsi)
        return -ENOENT;
    filter_move(filter, &r->filter);
    *has_since = r->has_since;
    *since = r->since;
    admit_forget(s, wsi);
    return 0;
}

unsigned admit_http_spare(unsigned avail)
{
    unsigned spare = avail / 32;
    return spare < 16 ? 16 : spare > ADMIT_HTTP_SPARE ? ADMIT_HTTP_SPARE : spare;
}

unsigned admit_fd_budget(ws_server_t *s)
{
    unsigned want = (unsigned)s->o.max_clients + ADMIT_HTTP_SPARE;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
        return want;
    if (rl.rlim_cur < want + ADMIT_FD_RESERVE && rl.rlim_max > rl.rlim_cur) {
        /* The soft limit is often far below the hard one (1024 and 524288 under systemd). */
        rlim_t goal = want + ADMIT_FD_RESERVE;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > goal ? goal : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl))
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t cur = rl.rlim_cur;
    unsigned avail = cur > (rlim_t)4 * ADMIT_FD_RESERVE ? (unsigned)(cur - ADMIT_FD_RESERVE)
                                                        : (unsigned)(cur / 2);
    if (want <= avail)
        return want;
    unsigned spare = admit_http_spare(avail); /* requests and upgrades being answered */
    int clients = avail > spare ? (int)(avail - spare) : 1;
    if (clients < s->o.max_clients) {
        log_warn("descriptor limit %llu: at most %d WebSocket clients (ADW_GATEWAY_MAX_CLIENTS "
                 "is %d)",
                 (unsigned long long)cur, clients, s->o.max_clients);
        s->o.max_clients = clients;
    }
    return avail;
}
