#include "approvals.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "adw_limits.h"
#include "approval_event.h"
#include "err.h"
#include "hook_answer.h"
#include "jsonw.h"
#include "log.h"
#include "timefmt.h"

#define APPROVALS_TICK_MS 100 /* how often timeouts (and the expire scan) are looked at */
#define APPROVALS_RULES_FILE_MAX (1 << 20)

typedef enum ap_state {
    AP_REQUESTING, /* approval_requested submitted, not committed */
    AP_PENDING,    /* committed: the hook is held, a decision may be taken */
    AP_DECIDING,   /* approval_decided submitted */
    AP_EXPIRING,   /* approval_expired submitted */
} ap_state_t;

/* One of these per approval not yet ended. */
typedef struct approval_t {
    struct approval_t *prev, *next;
    approvals_t *reg;
    char id[APPROVAL_ID_LEN + 1];
    ap_state_t state;
    httpd_conn_t *hook;    /* the held hook's request; NULL once its connection closed */
    httpd_conn_t *decider; /* the POST waiting for approval_decided's commit, or NULL */
    char adw_id[ADW_ADW_ID_MAX + 1];
    char *step, *tool_name, *tool_use_id, *summary, *rule; /* owned; NULL: none */
    json_t *tool_input;                                    /* owned reference */
    int timeout_s, allow_on_timeout;
    int64_t hook_event_id, requested_id;
    int64_t requested_us, expires_us; /* wall clock */
    int64_t since_ms, expires_ms;     /* the loop's clock: when the hold began, its deadline */
    /* The decision being stored. */
    int allow, by_timeout;
    char *reason; /* owned; as stored (NULL: none) */
    char decided_by[APPROVALS_NAME_MAX + 1];
    int64_t waited_ms;
} approval_t;

/* One ended approval's outcome. */
typedef struct ended_t {
    char id[APPROVAL_ID_LEN + 1];
    char status[8]; /* "allowed", "denied", "expired" */
} ended_t;

struct approvals_t {
    approvals_options_t o;
    approval_t *head; /* newest first */
    size_t n;
    ended_t *ended; /* a ring of APPROVALS_ENDED_MAX */
    size_t ended_next, ended_n;
    int stopping;
    int scanned;  /* the expire scan ran since the store last became ready */
    int scanning; /* an expire scan is in the store */
    metric_t *m_pending, *m_allow, *m_deny, *m_timeout_allow, *m_timeout_deny, *m_expired;
};

/* The channel of expire scans (submitters' channels are connection keys and approvals). */
#define APPROVALS_SCAN_CHANNEL (UINT64_MAX - 1)

static void on_tick(loop_t *loop, void *arg);

approval_rules_t *approvals_load_rules(const char *spec, char *err, size_t errlen)
{
    set_err(err, errlen, "%s", "");
    if (!spec || !*spec)
        return NULL;
    if (spec[0] != '@')
        return approval_rules_parse(spec, strlen(spec), err, errlen);
    FILE *f = fopen(spec + 1, "rb");
    if (!f) {
        set_err(err, errlen, "cannot read %s: %s", spec + 1, strerror(errno));
        return NULL;
    }
    char *text = malloc(APPROVALS_RULES_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, APPROVALS_RULES_FILE_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    approval_rules_t *r = NULL;
    if (!text)
        set_err(err, errlen, "out of memory");
    else if (bad)
        set_err(err, errlen, "cannot read %s", spec + 1);
    else if (n > APPROVALS_RULES_FILE_MAX)
        set_err(err, errlen, "%s: over %d bytes", spec + 1, APPROVALS_RULES_FILE_MAX);
    else {
        char why[APPROVAL_RULES_ERR_LEN];
        r = approval_rules_parse(text, n, why, sizeof why);
        if (!r)
            set_err(err, errlen, "%s: %s", spec + 1, why);
    }
    free(text);
    return r;
}

approvals_t *approvals_new(const approvals_options_t *o)
{
    approvals_t *a = calloc(1, sizeof *a);
    if (!a || !(a->ended = calloc(APPROVALS_ENDED_MAX, sizeof *a->ended)) ||
        loop_timer(o->loop, APPROVALS_TICK_MS, on_tick, a) < 0) {
        if (a)
            free(a->ended);
        free(a);
        approval_rules_t *r = o->rules;
        approval_rules_destroy(&r);
        return NULL;
    }
    a->o = *o;
    if (a->o.max_pending <= 0)
        a->o.max_pending = 1000;
    if (o->metrics) {
        a->m_pending = metrics_gauge(o->metrics, "adw_ingest_approvals_pending", NULL,
                                     "PreToolUse hooks held for a decision");
        static const char help[] = "Approvals ended, by outcome";
        const char *name = "adw_ingest_approvals_total";
        a->m_allow = metrics_counter(o->metrics, name, "outcome=\"allow\"", help);
        a->m_deny = metrics_counter(o->metrics, name, "outcome=\"deny\"", help);
        a->m_timeout_allow = metrics_counter(o->metrics, name, "outcome=\"timeout_allow\"", help);
        a->m_timeout_deny = metrics_counter(o->metrics, name, "outcome=\"timeout_deny\"", help);
        a->m_expired = metrics_counter(o->metrics, name, "outcome=\"expired\"", help);
    }
    return a;
}

static void ap_free(approval_t *ap)
{
    free(ap->step);
    free(ap->tool_name);
    free(ap->tool_use_id);
    free(ap->summary);
    free(ap->rule);
    free(ap->reason);
    json_decref(ap->tool_input);
    free(ap);
}

/* Unlinks ap from the registry and frees it. */
static void ap_remove(approval_t *ap)
{
    approvals_t *a = ap->reg;
    if (ap->prev)
        ap->prev->next = ap->next;
    else
        a->head = ap->next;
    if (ap->next)
        ap->next->prev = ap->prev;
    a->n--;
    metric_set(a->m_pending, (int64_t)a->n);
    ap_free(ap);
}

void approvals_destroy(approvals_t **ap)
{
    if (!ap || !*ap)
        return;
    approvals_t *a = *ap;
    approval_t *x = a->head;
    while (x) {
        approval_t *next = x->next;
        ap_free(x);
        x = next;
    }
    approval_rules_destroy(&a->o.rules);
    free(a->ended);
    free(a);
    *ap = NULL;
}

const approval_rule_t *approvals_match(const approvals_t *a, const char *adw_id,
                                       const char *tool_name, const json_t *tool_input)
{
    return a ? approval_rules_match(a->o.rules, adw_id, tool_name, tool_input) : NULL;
}

size_t approvals_held(const approvals_t *a)
{
    return a ? a->n : 0;
}

static approval_t *find(const approvals_t *a, const char *id)
{
    for (approval_t *x = a->head; x; x = x->next)
        if (!strcmp(x->id, id))
            return x;
    return NULL;
}

static void remember(approvals_t *a, const char *id, const char *status)
{
    ended_t *e = &a->ended[a->ended_next];
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->status, sizeof e->status, "%s", status);
    a->ended_next = (a->ended_next + 1) % APPROVALS_ENDED_MAX;
    if (a->ended_n < APPROVALS_ENDED_MAX)
        a->ended_n++;
}

static const char *ended_status(const approvals_t *a, const char *id)
{
    for (size_t i = 0; i < a->ended_n; i++)
        if (!strcmp(a->ended[i].id, id))
            return a->ended[i].status;
    return NULL;
}

/* Submits the one event ev (taken) for ap; done gets ap. Returns 0 or -ENOMEM (ev freed). */
static int submit(approval_t *ap, adw_event_t *ev, pipeline_done_fn done)
{
    store_req_t *r = store_req_new(1);
    if (!r) {
        event_clear(ev);
        return -ENOMEM;
    }
    r->events[0] = *ev;
    r->approvals = 1;
    return pipeline_submit(ap->reg->o.pipeline, (uint64_t)(uintptr_t)ap, r, done, ap) ? 0 : -ENOMEM;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void on_expired(void *ctx, const pipeline_outcome_t *o);
static void on_decided(void *ctx, const pipeline_outcome_t *o);

/* Ends ap as expired for reason (static text): approval_expired is submitted; the hook, if
 * still there, is answered 503 once that is done. */
static void expire(approval_t *ap, const char *reason)
{
    approvals_t *a = ap->reg;
    int64_t now_ms = loop_now_ms(a->o.loop);
    ap->waited_ms = now_ms > ap->since_ms ? now_ms - ap->since_ms : 0;
    free(ap->reason);
    ap->reason = strdup(reason);
    adw_event_t ev;
    char err[EVENT_ERR_LEN];
    if (!ap->reason ||
        approval_event_expired(ap->id, ap->adw_id, ap->step, reason, ap->waited_ms, ap->summary,
                               timefmt_now_us(), &ev, err, sizeof err) ||
        submit(ap, &ev, on_expired)) {
        log_warn("approvals: approval %s not expired (out of memory); the next expire scan ends "
                 "it",
                 ap->id);
        if (ap->hook)
            httpd_respond_error(ap->hook, 503, "the approval could not be stored", -1, NULL, 0);
        ap_remove(ap);
        return;
    }
    ap->state = AP_EXPIRING;
}

static void on_expired(void *ctx, const pipeline_outcome_t *o)
{
    approval_t *ap = ctx;
    approvals_t *a = ap->reg;
    char msg[160];
    if (o->status == PIPELINE_OK) {
        remember(a, ap->id, "expired");
        metric_add(a->m_expired, 1);
        log_info("approvals: %s expired (%s) after %" PRId64 " ms", ap->id, ap->reason,
                 ap->waited_ms);
        snprintf(msg, sizeof msg, "approval %s expired: %s", ap->id, ap->reason);
    } else {
        log_warn("approvals: approval_expired of %s not stored (%s); the next expire scan ends it",
                 ap->id, o->error ? o->error : "refused");
        snprintf(msg, sizeof msg, "approval %s: %s", ap->id, ap->reason);
    }
    if (ap->hook)
        httpd_respond_error(ap->hook, 503, msg, -1, NULL, 0);
    ap_remove(ap);
}

static void on_requested(void *ctx, const pipeline_outcome_t *o)
{
    approval_t *ap = ctx;
    approvals_t *a = ap->reg;
    if (o->status != PIPELINE_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "the approval request could not be stored: %s",
                 o->error ? o->error : "refused");
        if (ap->hook)
            httpd_respond_error(ap->hook, 503, msg, -1, NULL, 0);
        ap_remove(ap);
        return;
    }
    ap->requested_id = o->ids[0];
    ap->state = AP_PENDING;
    ap->since_ms = loop_now_ms(a->o.loop);
    ap->expires_ms = ap->since_ms + (int64_t)ap->timeout_s * 1000;
    if (!ap->hook)
        expire(ap, "hook connection closed");
    else if (a->stopping)
        expire(ap, "ingest stopping");
    else
        httpd_hold(ap->hook);
}

int approvals_request(approvals_t *a, httpd_conn_t *c, const approval_rule_t *rule,
                      const adw_event_t *hook_ev, int64_t hook_id, const json_t *hook, char *id_out)
{
    if (a->stopping || (int64_t)a->n >= a->o.max_pending)
        return -EAGAIN;
    unsigned char rnd[APPROVAL_ID_LEN / 2];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return -EAGAIN;
    approval_t *ap = calloc(1, sizeof *ap);
    if (!ap)
        return -ENOMEM;
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(ap->id + 2 * i, 3, "%02x", rnd[i]);
    ap->reg = a;
    ap->hook = c;
    ap->state = AP_REQUESTING;
    snprintf(ap->adw_id, sizeof ap->adw_id, "%s", hook_ev->adw_id);
    const char *tool_name = json_string_value(json_object_get(hook, "tool_name"));
    const char *tool_use_id = json_string_value(json_object_get(hook, "tool_use_id"));
    const char *session_id = json_string_value(json_object_get(hook, "session_id"));
    ap->step = dup_or_null(hook_ev->step);
    ap->tool_name = dup_or_null(tool_name);
    ap->tool_use_id = dup_or_null(tool_use_id);
    ap->summary = dup_or_null(hook_ev->summary);
    ap->rule = strdup(rule->name);
    ap->timeout_s = rule->timeout_s;
    ap->allow_on_timeout = rule->allow_on_timeout;
    ap->hook_event_id = hook_id;
    ap->requested_us = timefmt_now_us();
    ap->expires_us = ap->requested_us + (int64_t)rule->timeout_s * 1000000;
    approval_request_info_t info = {.approval_id = ap->id,
                                    .adw_id = ap->adw_id,
                                    .step = ap->step,
                                    .tool_name = tool_name,
                                    .tool_use_id = tool_use_id,
                                    .session_id = session_id,
                                    .tool_input = json_object_get(hook, "tool_input"),
                                    .summary = ap->summary,
                                    .rule = rule->name,
                                    .timeout_s = rule->timeout_s,
                                    .allow_on_timeout = rule->allow_on_timeout,
                                    .expires_us = ap->expires_us,
                                    .hook_event_id = hook_id};
    adw_event_t ev;
    char err[EVENT_ERR_LEN];
    if (!ap->rule || approval_event_requested(&info, ap->requested_us, &ev, err, sizeof err)) {
        ap_free(ap);
        return -ENOMEM;
    }
    /* What the list shows: tool_input as the stored payload has it (within its limit). */
    ap->tool_input = json_incref(json_object_get(json_object_get(ev.doc, "payload"), "tool_input"));
    ap->next = a->head;
    if (a->head)
        a->head->prev = ap;
    a->head = ap;
    a->n++;
    metric_set(a->m_pending, (int64_t)a->n);
    if (submit(ap, &ev, on_requested)) {
        ap->hook = NULL;
        ap_remove(ap);
        return -ENOMEM;
    }
    memcpy(id_out, ap->id, sizeof ap->id);
    log_info("approvals: %s requested for run %s (%s, rule \"%s\", %d s)", ap->id, ap->adw_id,
             ap->summary ? ap->summary : "", ap->rule, ap->timeout_s);
    return 0;
}

void approvals_hook_closed(approvals_t *a, const char *id, httpd_conn_t *c)
{
    approval_t *ap = find(a, id);
    if (!ap || ap->hook != c)
        return;
    ap->hook = NULL;
    if (ap->state == AP_PENDING)
        expire(ap, "hook connection closed");
    /* requesting, deciding: seen when their commit comes back */
}

/* Takes the decision (ap pending): approval_decided is submitted; decider (NULL: the timeout)
 * is answered once it is committed. Returns 0, or -ENOMEM (ap stays pending). */
static int decide(approval_t *ap, int allow, const char *reason, const char *decided_by,
                  int by_timeout, httpd_conn_t *decider)
{
    approvals_t *a = ap->reg;
    int64_t now_ms = loop_now_ms(a->o.loop);
    char text[200];
    if (by_timeout) {
        snprintf(text, sizeof text, "%s by timeout after %d s (rule %s)",
                 allow ? "Allowed" : "Denied", ap->timeout_s, ap->rule);
        reason = text;
    }
    char *kept = reason ? strdup(reason) : NULL;
    if (reason && !kept)
        return -ENOMEM;
    int64_t waited_ms = now_ms > ap->since_ms ? now_ms - ap->since_ms : 0;
    adw_event_t ev;
    char err[EVENT_ERR_LEN];
    if (approval_event_decided(ap->id, ap->adw_id, ap->step, allow, kept, decided_by, waited_ms,
                               ap->summary, timefmt_now_us(), &ev, err, sizeof err)) {
        log_warn("approvals: no approval_decided for %s: %s", ap->id, err);
        free(kept);
        return -ENOMEM;
    }
    if (submit(ap, &ev, on_decided)) {
        free(kept);
        return -ENOMEM;
    }
    free(ap->reason);
    ap->reason = kept;
    ap->allow = allow;
    ap->by_timeout = by_timeout;
    ap->waited_ms = waited_ms;
    snprintf(ap->decided_by, sizeof ap->decided_by, "%s", decided_by);
    ap->decider = decider;
    ap->state = AP_DECIDING;
    return 0;
}

static void on_decided(void *ctx, const pipeline_outcome_t *o)
{
    approval_t *ap = ctx;
    approvals_t *a = ap->reg;
    if (o->status != PIPELINE_OK) {
        log_warn("approvals: the decision on %s was not stored (%s); it stays pending", ap->id,
                 o->error ? o->error : "refused");
        ap->state = AP_PENDING;
        if (ap->decider) {
            httpd_respond_error(ap->decider, 503,
                                o->error ? o->error : "the decision could not be stored", -1, NULL,
                                0);
            ap->decider = NULL;
        }
        if (!ap->hook)
            expire(ap, "hook connection closed");
        else if (a->stopping)
            expire(ap, "ingest stopping");
        return;
    }
    const char *decision = ap->allow ? "allow" : "deny";
    remember(a, ap->id, ap->allow ? "allowed" : "denied");
    metric_add(ap->by_timeout ? (ap->allow ? a->m_timeout_allow : a->m_timeout_deny)
                              : (ap->allow ? a->m_allow : a->m_deny),
               1);
    log_info("approvals: %s %s by %s after %" PRId64 " ms", ap->id,
             ap->allow ? "allowed" : "denied", ap->decided_by, ap->waited_ms);
    if (ap->hook) {
        char text[128];
        const char *why = ap->reason;
        if (!why) {
            snprintf(text, sizeof text, "%s by %s", ap->allow ? "Allowed" : "Denied",
                     ap->decided_by);
            why = text;
        }
        httpd_conn_t *hook = ap->hook;
        ap->hook = NULL;
        hook_answer_decision(hook, decision, why, ap->hook_event_id);
    }
    if (ap->decider) {
        buf_t b;
        buf_init(&b, 0);
        int bad = buf_printf(&b,
                             "{\"approval_id\":\"%s\",\"decision\":\"%s\",\"id\":%" PRId64
                             ",\"waited_ms\":%" PRId64 "}",
                             ap->id, decision, o->ids[0], ap->waited_ms);
        httpd_respond(ap->decider, 200, "application/json", bad ? NULL : b.data, b.len, NULL, 0);
        buf_free(&b);
        ap->decider = NULL;
    }
    ap_remove(ap);
}

void approvals_decide(approvals_t *a, httpd_conn_t *c, const char *id, int allow,
                      const char *reason, const char *decided_by)
{
    char msg[160];
    approval_t *ap = find(a, id);
    if (!ap || ap->state == AP_REQUESTING) {
        const char *st = ended_status(a, id);
        if (st) {
            snprintf(msg, sizeof msg, "approval %s is already %s", id, st);
            httpd_respond_error(c, 409, msg, -1, NULL, 0);
        } else {
            snprintf(msg, sizeof msg, "no approval %s", id);
            httpd_respond_error(c, 404, msg, -1, NULL, 0);
        }
        return;
    }
    if (ap->state != AP_PENDING) {
        snprintf(msg, sizeof msg, "approval %s is already %s", id,
                 ap->state == AP_DECIDING ? "being decided" : "expired");
        httpd_respond_error(c, 409, msg, -1, NULL, 0);
        return;
    }
    if (decide(ap, allow, reason, decided_by, 0, c)) {
        httpd_respond_error(c, 503, "out of memory", -1, NULL, 0);
        return;
    }
    httpd_defer(c);
}

void approvals_decider_closed(approvals_t *a, const char *id, httpd_conn_t *c)
{
    approval_t *ap = find(a, id);
    if (ap && ap->decider == c)
        ap->decider = NULL;
}

/* Appends key and s (NULL: null) to b as JSON. */
static int put_str(buf_t *b, const char *key, const char *s)
{
    int rc = buf_printf(b, ",\"%s\":", key);
    return rc | (s ? jsonw_string(b, s, strlen(s)) : buf_puts(b, "null"));
}

int approvals_list(const approvals_t *a, buf_t *out)
{
    int rc = buf_puts(out, "{\"approvals\":[");
    int first = 1;
    for (const approval_t *x = a ? a->head : NULL; x; x = x->next) {
        if (x->state != AP_PENDING && x->state != AP_DECIDING)
            continue;
        char req[32], exp[32];
        approval_event_time(x->requested_us, req);
        approval_event_time(x->expires_us, exp);
        rc |= buf_printf(out, "%s{\"approval_id\":\"%s\"", first ? "" : ",", x->id);
        rc |= put_str(out, "adw_id", x->adw_id);
        rc |= put_str(out, "step", x->step);
        rc |= put_str(out, "tool_name", x->tool_name);
        rc |= put_str(out, "tool_use_id", x->tool_use_id);
        rc |= put_str(out, "summary", x->summary);
        rc |= buf_puts(out, ",\"tool_input\":");
        char *input =
            json_dumps(x->tool_input ? x->tool_input : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
        rc |= input ? buf_puts(out, input) : -1;
        free(input);
        rc |= put_str(out, "rule", x->rule);
        rc |= buf_printf(out,
                         ",\"status\":\"pending\",\"requested_id\":%" PRId64
                         ",\"requested_at\":\"%s\",\"expires_at\":\"%s\",\"decided_id\":null,"
                         "\"decided_at\":null,\"decision\":null,\"reason\":null,"
                         "\"decided_by\":null,\"waited_ms\":null}",
                         x->requested_id, req, exp);
        first = 0;
    }
    rc |= buf_puts(out, "]}");
    return rc ? -ENOMEM : 0;
}

void approvals_stop(approvals_t *a)
{
    if (!a)
        return;
    a->stopping = 1;
    approval_t *x = a->head;
    while (x) {
        approval_t *next = x->next; /* expire may free x */
        if (x->state == AP_PENDING)
            expire(x, "ingest stopping");
        x = next;
    }
}

/* ---- the expire scan ---- */

static void on_scan_done(void *ctx, const pipeline_outcome_t *o)
{
    approvals_t *a = ctx;
    a->scanning = 0;
    if (o->status != PIPELINE_OK) {
        a->scanned = 0; /* the next tick tries again */
        return;
    }
    for (size_t i = 0; i < o->nids; i++) {
        const char *id = json_string_value(
            json_object_get(json_object_get(o->events[i].doc, "payload"), "approval_id"));
        if (id) {
            remember(a, id, "expired");
            metric_add(a->m_expired, 1);
        }
    }
    if (o->nids)
        log_info("approvals: %zu pending approvals of an earlier ingest expired (ingest "
                 "restarted)",
                 o->nids);
    /* A full scan may have left more: the next tick scans again. */
    a->scanned = o->nids < APPROVAL_SCAN_MAX;
}

static void scan(approvals_t *a)
{
    store_req_t *r = store_req_new(0);
    if (!r)
        return;
    buf_t held;
    buf_init(&held, 0);
    int bad = buf_putc(&held, '{');
    for (const approval_t *x = a->head; x; x = x->next)
        bad |= buf_printf(&held, "%s%s", held.len > 1 ? "," : "", x->id);
    bad |= buf_putc(&held, '}');
    if (bad) {
        buf_free(&held);
        store_req_destroy(&r);
        return;
    }
    r->held = strdup(held.data);
    buf_free(&held);
    if (!r->held) {
        store_req_destroy(&r);
        return;
    }
    r->approval_scan = 1;
    a->scanning = 1;
    a->scanned = 1;
    if (!pipeline_submit(a->o.pipeline, APPROVALS_SCAN_CHANNEL, r, on_scan_done, a)) {
        a->scanning = 0;
        a->scanned = 0;
    }
}

/* Every tick: timeouts are decided; after the store (re)became ready, one expire scan. */
static void on_tick(loop_t *loop, void *arg)
{
    approvals_t *a = arg;
    pipeline_status_t adm = pipeline_admission(a->o.pipeline);
    if (adm == PIPELINE_UNAVAILABLE && !a->scanning)
        a->scanned = 0;
    if (adm == PIPELINE_OK && !a->scanned && !a->scanning && !a->stopping)
        scan(a);
    if (adm != PIPELINE_OK)
        return; /* a timeout's decision waits until it can be stored */
    int64_t now = loop_now_ms(loop);
    approval_t *x = a->head;
    while (x) {
        approval_t *next = x->next;
        if (x->state == AP_PENDING && now >= x->expires_ms && !a->stopping)
            decide(x, x->allow_on_timeout, NULL, "timeout", 1, NULL);
        x = next;
    }
}
