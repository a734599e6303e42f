#include "demo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "timefmt.h"

#define DEMO_MAX_RUNS 64    /* runs at once */
#define DEMO_GAP_MS_MIN 150 /* pause between two events of a run, at speed 1 */
#define DEMO_GAP_MS_MAX 700
#define DEMO_STEP_GAP_MS 1200   /* pause before a step starts, at speed 1 */
#define DEMO_FAIL_PERCENT 12    /* chance that a build or review step fails */
#define DEMO_GIVE_UP_PERCENT 40 /* chance that a failed step ends the run */

/* ---- a small deterministic generator ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* A number in [lo, hi]. */
static int64_t between(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
}

static int chance(int percent)
{
    return between(1, 100) <= percent;
}

#define PICK(arr) ((arr)[rng() % (sizeof(arr) / sizeof((arr)[0]))])

/* ---- what the runs work on ---- */

/* One of these per kind of task a run works on: its files, commands and words. */
typedef struct demo_task_t {
    const char *title;
    const char *issue;
    const char *src[3]; /* files to read and change */
    const char *test;   /* the test file */
    const char *doc;    /* the documentation file */
    const char *test_cmd;
    const char *lint_cmd;
    const char *grep; /* a pattern to look for */
    const char *thoughts[3];
    const char *findings[3];
} demo_task_t;

static const demo_task_t TASKS[] = {
    {"Add JWT authentication middleware",
     "#142",
     {"src/auth/middleware.py", "src/auth/tokens.py", "src/app.py"},
     "tests/test_auth.py",
     "docs/auth.md",
     "pytest tests/test_auth.py -q",
     "ruff check src",
     "def authenticate",
     {"The app has no auth layer yet; requests reach the handlers directly.",
      "Tokens should be verified once in middleware, not in every handler.",
      "Expired tokens must answer 401 with WWW-Authenticate, not 500."},
     {"The middleware reads the Authorization header and verifies the signature.",
      "Refresh tokens are stored hashed; the rotation test covers reuse.",
      "Public routes are listed explicitly so health checks stay open."}},
    {"Fix pagination in the orders API",
     "#207",
     {"src/api/orders.ts", "src/api/pagination.ts", "src/db/queries.ts"},
     "tests/orders.test.ts",
     "docs/api/orders.md",
     "npm test",
     "npm run lint",
     "offset",
     {"Offset pagination skips rows when orders are inserted between pages.",
      "A cursor on (created_at, id) keeps pages stable under inserts.",
      "The client SDK sends page=N; keep it working for one release."},
     {"Pages now use a keyset cursor; next_cursor is null on the last page.",
      "The old page parameter maps onto the cursor and logs a deprecation.",
      "The query uses the existing (created_at, id) index: no new migration."}},
    {"Add rate limiting to the gateway",
     "#318",
     {"internal/ratelimit/bucket.go", "cmd/gateway/main.go", "internal/config/config.go"},
     "internal/ratelimit/bucket_test.go",
     "docs/rate-limits.md",
     "go test ./...",
     "go vet ./...",
     "func NewServer",
     {"Limits must hold per API key, not per connection.",
      "A token bucket per key with lazy refill needs no background goroutine.",
      "Answer 429 with Retry-After so well-behaved clients back off."},
     {"Buckets live in a sharded map; idle ones are evicted after ten minutes.",
      "The limit is configurable per plan and defaults to 100 requests per minute.",
      "Load test: 50k keys stay under 20 MB."}},
    {"Migrate settings page to React hooks",
     "#95",
     {"web/src/pages/Settings.jsx", "web/src/hooks/useSettings.js", "web/src/api/client.js"},
     "web/src/pages/Settings.test.jsx",
     "docs/frontend.md",
     "npm test -- Settings",
     "npm run lint",
     "componentDidMount",
     {"The class component mixes fetching and rendering; split the data into a hook.",
      "Saving should be optimistic with a rollback on error.",
      "Keep the form's field names so the e2e selectors still match."},
     {"useSettings owns loading, saving and errors; the page only renders.",
      "Unsaved changes warn before navigation.",
      "Snapshot tests updated; behaviour tests unchanged and passing."}},
};

static const char *const MODEL = "claude-sonnet-4-5-20250929";

/* ---- one run ---- */

/* One of these per run being played: its script of events, played one at a time. */
typedef struct demo_play_t {
    char adw_id[16];
    char session[40];
    const demo_task_t *task;
    json_t *script;     /* the events still to send, in order (an array) */
    size_t next;        /* index of the next event in script */
    int64_t due_us;     /* when to send it (monotonic) */
    int64_t started_us; /* monotonic time of adw_start */
    int64_t step_us;    /* monotonic time of the current step_start */
    int64_t context;    /* tokens in the conversation so far: usage grows with it */
    int failed;         /* the run ended in adw_failed */
} demo_play_t;

static json_t *base_event(const demo_play_t *p, const char *type, const char *step)
{
    json_t *e = json_object();
    json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, "adw_id", json_string(p->adw_id));
    if (step)
        json_object_set_new(e, "step", json_string(step));
    return e;
}

static void add(demo_play_t *p, json_t *e)
{
    json_array_append_new(p->script, e);
}

static void add_system(demo_play_t *p, const char *step, const char *event, const char *status,
                       json_t *payload)
{
    json_t *e = base_event(p, "system", step);
    json_object_set_new(e, "event", json_string(event));
    if (status)
        json_object_set_new(e, "status", json_string(status));
    char line[200];
    if (!strcmp(event, "adw_start"))
        snprintf(line, sizeof line, "Run started: %s (%s)", p->task->title, p->task->issue);
    else if (!strcmp(event, "step_start"))
        snprintf(line, sizeof line, "Step %s started", step);
    else if (!strcmp(event, "step_complete"))
        snprintf(line, sizeof line, "Step %s %s", step, status);
    else if (!strcmp(event, "adw_complete"))
        snprintf(line, sizeof line, "Run completed: %s", p->task->title);
    else
        snprintf(line, sizeof line, "Run failed in %s", step ? step : "setup");
    json_object_set_new(e, "summary", json_string(line));
    if (payload)
        json_object_set_new(e, "payload", payload);
    add(p, e);
}

/* The usage and cost of one assistant message, growing with the conversation. */
static json_t *usage_payload(demo_play_t *p)
{
    int64_t in = between(40, 900);
    int64_t out = between(60, 700);
    int64_t cache_create = chance(30) ? between(500, 4000) : 0;
    int64_t cache_read = p->context;
    p->context += in + out + cache_create;
    double cost = ((double)in * 3.0 + (double)out * 15.0 + (double)cache_read * 0.30 +
                   (double)cache_create * 3.75) /
                  1e6;
    json_t *pl = json_object();
    json_object_set_new(pl, "model", json_string(MODEL));
    json_object_set_new(pl, "input_tokens", json_integer(in));
    json_object_set_new(pl, "output_tokens", json_integer(out));
    json_object_set_new(pl, "cache_read_tokens", json_integer(cache_read));
    json_object_set_new(pl, "cache_creation_tokens", json_integer(cache_create));
    json_object_set_new(pl, "cost_usd", json_real((double)(int64_t)(cost * 1e6) / 1e6));
    return pl;
}

static void add_block(demo_play_t *p, const char *step, const char *type, const char *text)
{
    json_t *e = base_event(p, "adw_event", step);
    json_object_set_new(e, "event_type", json_string(type));
    json_object_set_new(e, "summary", json_string(text));
    json_t *pl = usage_payload(p);
    json_object_set_new(pl, !strcmp(type, "ThinkingBlock") ? "thinking" : "text",
                        json_string(text));
    json_object_set_new(e, "payload", pl);
    add(p, e);
}

/* A tool use as Claude Code reports it: the PreToolUse hook, the ToolUseBlock of the
 * assistant message, the PostToolUse hook with the tool's response. */
static void add_tool(demo_play_t *p, const char *step, const char *tool, const char *key,
                     const char *arg, const char *content, int ok, const char *output)
{
    char what[300], tool_id[40];
    if (!strcmp(tool, "Bash"))
        snprintf(what, sizeof what, "Bash: %s", arg);
    else if (!strcmp(tool, "Grep"))
        snprintf(what, sizeof what, "Grep %s in src", arg);
    else
        snprintf(what, sizeof what, "%s %s", tool, arg);
    snprintf(tool_id, sizeof tool_id, "toolu_01%016llx", (unsigned long long)rng());

    json_t *input = json_object();
    json_object_set_new(input, key, json_string(arg));
    if (!strcmp(tool, "Grep"))
        json_object_set_new(input, "path", json_string("src"));
    if (content)
        json_object_set_new(input, !strcmp(tool, "Edit") ? "new_string" : "content",
                            json_string(content));
    if (!strcmp(tool, "Edit"))
        json_object_set_new(input, "old_string", json_string("# TODO"));

    json_t *pre = base_event(p, "adw_event", step);
    json_object_set_new(pre, "event_type", json_string("PreToolUse"));
    json_object_set_new(pre, "summary", json_string(what));
    json_t *hook = json_object();
    json_object_set_new(hook, "session_id", json_string(p->session));
    json_object_set_new(hook, "hook_event_name", json_string("PreToolUse"));
    json_object_set_new(hook, "tool_name", json_string(tool));
    json_object_set_new(hook, "tool_input", json_deep_copy(input));
    json_object_set_new(hook, "tool_use_id", json_string(tool_id));
    json_object_set_new(pre, "payload", hook);
    add(p, pre);

    json_t *use = base_event(p, "adw_event", step);
    json_object_set_new(use, "event_type", json_string("ToolUseBlock"));
    json_object_set_new(use, "summary", json_string(what));
    json_t *pl = usage_payload(p);
    json_object_set_new(pl, "tool_name", json_string(tool));
    json_object_set_new(pl, "tool_use_id", json_string(tool_id));
    json_object_set_new(pl, "input", input);
    if (key[0] == 'f')
        json_object_set_new(pl, "file_path", json_string(arg));
    json_object_set_new(use, "payload", pl);
    add(p, use);

    char done[340];
    snprintf(done, sizeof done, "%s (%s)", what, ok ? "ok" : "failed");
    json_t *post = base_event(p, "adw_event", step);
    json_object_set_new(post, "event_type", json_string("PostToolUse"));
    json_object_set_new(post, "summary", json_string(done));
    if (!ok)
        json_object_set_new(post, "status", json_string("failed"));
    json_object_set_new(post, "duration_ms",
                        json_integer(between(15, !strcmp(tool, "Bash") ? 9000 : 120)));
    hook = json_object();
    json_object_set_new(hook, "session_id", json_string(p->session));
    json_object_set_new(hook, "hook_event_name", json_string("PostToolUse"));
    json_object_set_new(hook, "tool_name", json_string(tool));
    json_object_set_new(hook, "tool_use_id", json_string(tool_id));
    json_t *resp = json_object();
    json_object_set_new(resp, "success", json_boolean(ok));
    if (output)
        json_object_set_new(resp, "output", json_string(output));
    if (!strcmp(tool, "Bash"))
        json_object_set_new(resp, "exit_code", json_integer(ok ? 0 : 1));
    json_object_set_new(hook, "tool_response", resp);
    json_object_set_new(post, "payload", hook);
    add(p, post);
}

static void add_read(demo_play_t *p, const char *step, const char *file)
{
    char out[120];
    snprintf(out, sizeof out, "%lld lines", (long long)between(40, 420));
    add_tool(p, step, "Read", "file_path", file, NULL, 1, out);
}

/* Writes a step's events; returns 0 when it succeeded, 1 when it failed. */
static int add_step(demo_play_t *p, const char *step, int may_fail)
{
    const demo_task_t *t = p->task;
    add_system(p, step, "step_start", "running", NULL);
    int failed = 0;
    if (!strcmp(step, "plan")) {
        add_block(p, step, "ThinkingBlock", PICK(t->thoughts));
        add_read(p, step, t->src[0]);
        add_tool(p, step, "Grep", "pattern", t->grep, NULL, 1, "3 matches");
        add_read(p, step, t->src[1]);
        add_block(p, step, "ThinkingBlock", PICK(t->thoughts));
        char spec[80];
        snprintf(spec, sizeof spec, "specs/issue-%s-plan.md", t->issue + 1);
        add_tool(p, step, "Write", "file_path", spec, "## Plan\n1. ...", 1, NULL);
        add_block(p, step, "TextBlock", "Plan written: three changes, tests first.");
    } else if (!strcmp(step, "build")) {
        add_read(p, step, t->src[0]);
        add_block(p, step, "ThinkingBlock", PICK(t->thoughts));
        add_tool(p, step, "Edit", "file_path", t->src[0], "def handler(...):", 1, NULL);
        add_tool(p, step, "Write", "file_path", t->src[1], "# new module", 1, NULL);
        add_tool(p, step, "Edit", "file_path", t->src[2], "register(...)", 1, NULL);
        add_tool(p, step, "Write", "file_path", t->test, "def test_...():", 1, NULL);
        failed = may_fail && chance(DEMO_FAIL_PERCENT);
        add_tool(p, step, "Bash", "command", t->test_cmd, NULL, !failed,
                 failed ? "2 failed, 14 passed" : "16 passed");
        add_block(p, step, "TextBlock",
                  failed ? "Two tests fail: the fixture still uses the old signature."
                         : PICK(t->findings));
    } else if (!strcmp(step, "review")) {
        add_tool(p, step, "Bash", "command", "git diff --stat", NULL, 1, "4 files changed");
        add_read(p, step, t->src[0]);
        add_read(p, step, t->test);
        failed = may_fail && chance(DEMO_FAIL_PERCENT);
        add_tool(p, step, "Bash", "command", t->lint_cmd, NULL, !failed,
                 failed ? "3 problems" : "no problems");
        add_block(p, step, "ThinkingBlock", PICK(t->thoughts));
        add_block(p, step, "TextBlock",
                  failed ? "Review: lint errors and a missing edge-case test."
                         : "Review: the change matches the plan; one nit left as a comment.");
    } else if (!strcmp(step, "fix")) {
        add_block(p, step, "ThinkingBlock", "Fix what the last step found, nothing more.");
        add_read(p, step, t->test);
        add_tool(p, step, "Edit", "file_path", t->test, "fixture(...)", 1, NULL);
        add_tool(p, step, "Edit", "file_path", t->src[0], "if token is None:", 1, NULL);
        add_tool(p, step, "Bash", "command", t->test_cmd, NULL, 1, "17 passed");
        add_block(p, step, "TextBlock", "Fixed; the suite passes.");
    } else { /* document */
        add_read(p, step, t->doc);
        add_tool(p, step, "Edit", "file_path", t->doc, "## Usage", 1, NULL);
        add_tool(p, step, "Edit", "file_path", "CHANGELOG.md", "- ", 1, NULL);
        add_block(p, step, "TextBlock", PICK(t->findings));
    }
    add_system(p, step, "step_complete", failed ? "failed" : "completed", NULL);
    return failed;
}

/* Scripts a whole run. Returns 0 or -ENOMEM. */
static int play_new(demo_play_t *p, int64_t now_us)
{
    memset(p, 0, sizeof *p);
    snprintf(p->adw_id, sizeof p->adw_id, "%08llx", (unsigned long long)(rng() & 0xffffffffu));
    snprintf(p->session, sizeof p->session, "%08llx-%04llx-4%03llx-8%03llx-%012llx",
             (unsigned long long)(rng() & 0xffffffffu), (unsigned long long)(rng() & 0xffff),
             (unsigned long long)(rng() & 0xfff), (unsigned long long)(rng() & 0xfff),
             (unsigned long long)(rng() & 0xffffffffffffull));
    p->task = &PICK(TASKS);
    p->context = between(8000, 14000); /* the system prompt and tools */
    p->script = json_array();
    if (!p->script)
        return -ENOMEM;
    json_t *start = json_object();
    json_object_set_new(start, "workflow", json_string("adw_plan_build_review_document"));
    json_object_set_new(start, "issue", json_string(p->task->issue));
    json_object_set_new(start, "title", json_string(p->task->title));
    json_object_set_new(start, "model", json_string(MODEL));
    add_system(p, NULL, "adw_start", "running", start);
    static const char *const steps[] = {"plan", "build", "review", "document"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int may_fail = !strcmp(steps[i], "build") || !strcmp(steps[i], "review");
        if (add_step(p, steps[i], may_fail)) {
            if (chance(DEMO_GIVE_UP_PERCENT)) {
                add_system(p, steps[i], "adw_failed", "failed", NULL);
                p->failed = 1;
                break;
            }
            add_step(p, "fix", 0);
        }
    }
    if (!p->failed)
        add_system(p, NULL, "adw_complete", "completed", NULL);
    p->due_us = now_us;
    return 0;
}

static void play_free(demo_play_t *p)
{
    json_decref(p->script);
    p->script = NULL;
}

/* The pause after an event: longer before a step starts, shorter under --speed. */
static int64_t gap_us(const demo_play_t *p, double speed)
{
    int64_t ms = between(DEMO_GAP_MS_MIN, DEMO_GAP_MS_MAX);
    json_t *next = json_array_get(p->script, p->next);
    const char *ev = json_string_value(json_object_get(next, "event"));
    if (ev && !strcmp(ev, "step_start"))
        ms += DEMO_STEP_GAP_MS;
    return (int64_t)((double)ms * 1000.0 / speed);
}

/* Sends p's next event, filling in durations. Returns 1 when the run has ended. */
static int play_step(demo_play_t *p, client_t *c, const demo_options_t *o, int64_t now_us,
                     int64_t *sent, int64_t *failed, int *down)
{
    json_t *e = json_array_get(p->script, p->next++);
    const char *ev = json_string_value(json_object_get(e, "event"));
    if (ev && !strcmp(ev, "adw_start"))
        p->started_us = now_us;
    if (ev && !strcmp(ev, "step_start"))
        p->step_us = now_us;
    if (ev && !strcmp(ev, "step_complete"))
        json_object_set_new(e, "duration_ms", json_integer((now_us - p->step_us) / 1000));
    if (ev && (!strcmp(ev, "adw_complete") || !strcmp(ev, "adw_failed")))
        json_object_set_new(e, "duration_ms", json_integer((now_us - p->started_us) / 1000));
    client_report_t rep;
    int rc = client_submit(c, e, (int)o->timeout_ms, &rep);
    if (rc == 0 && rep.sent) {
        (*sent)++;
        if (*down)
            log_info("ingest takes events again");
        *down = 0;
        log_debug("%s %s %s", p->adw_id,
                  json_string_value(json_object_get(e, "event_type"))
                      ? json_string_value(json_object_get(e, "event_type"))
                      : ev,
                  json_string_value(json_object_get(e, "summary")));
    } else {
        if (!*failed || log_enabled(LOG_LEVEL_DEBUG))
            log_warn("event not delivered: %s", rep.err[0]           ? rep.err
                                                : rep.invalid_err[0] ? rep.invalid_err
                                                                     : "?");
        (*failed)++;
    }
    if (ev && !strcmp(ev, "adw_start"))
        log_info("run %s started: %s", p->adw_id, p->task->title);
    if (p->next < json_array_size(p->script)) {
        p->due_us = now_us + gap_us(p, o->speed);
        return 0;
    }
    log_info("run %s %s after %lld s", p->adw_id, p->failed ? "failed" : "completed",
             (long long)((now_us - p->started_us) / 1000000));
    return 1;
}

int demo_run(const demo_options_t *o, volatile sig_atomic_t *stop)
{
    if (o->concurrency < 1 || o->concurrency > DEMO_MAX_RUNS || !(o->speed > 0) || o->runs < 0 ||
        o->duration_s < 0) {
        log_error("demo: bad options (concurrency 1..%d, speed > 0)", DEMO_MAX_RUNS);
        return -EINVAL;
    }
    rng_state = o->seed ? o->seed : (uint64_t)timefmt_now_us() ^ ((uint64_t)getpid() << 32);
    if (!rng_state)
        rng_state = 0x9e3779b97f4a7c15ull;
    char err[CLIENT_ERR_LEN];
    client_options_t co = {.http_url = o->http_url,
                           .zmq_endpoint = o->zmq_endpoint,
                           .token = o->token,
                           .curve_server = o->curve_server,
                           .curve_cert = o->curve_cert};
    client_t *c = client_new(&co, NULL, err, sizeof err);
    if (!c) {
        log_error("demo: %s", err);
        return -EINVAL;
    }
    demo_play_t plays[DEMO_MAX_RUNS];
    int active[DEMO_MAX_RUNS] = {0};
    int64_t started = 0, finished = 0, sent = 0, failed = 0;
    int down = 0; /* the last event was not delivered: say so once, not per event */
    int64_t t0 = timefmt_mono_us();
    int64_t end = o->duration_s ? t0 + o->duration_s * 1000000 : INT64_MAX;
    int rc = 0;
    log_info("demo: %lld run(s) at once, speed %.2f, %s", (long long)o->concurrency, o->speed,
             o->runs ? "until the runs are done" : "until stopped");
    for (;;) {
        int64_t now = timefmt_mono_us();
        if (*stop || now >= end)
            break;
        /* Fill the free slots, staggered so runs do not move in lockstep. */
        for (int i = 0; i < o->concurrency; i++) {
            if (active[i] || (o->runs && started >= o->runs))
                continue;
            if (play_new(&plays[i],
                         now + (int64_t)((double)(between(0, 1500) * 1000) / o->speed))) {
                rc = -ENOMEM;
                goto done;
            }
            active[i] = 1;
            started++;
        }
        int next = -1;
        for (int i = 0; i < o->concurrency; i++)
            if (active[i] && (next < 0 || plays[i].due_us < plays[next].due_us))
                next = i;
        if (next < 0)
            break; /* all runs done */
        int64_t wait = plays[next].due_us - now;
        if (wait > 0) {
            if (wait > 200000)
                wait = 200000; /* wake up to notice a signal or the end */
            struct timespec ts = {wait / 1000000, (wait % 1000000) * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (play_step(&plays[next], c, o, now, &sent, &failed, &down)) {
            play_free(&plays[next]);
            active[next] = 0;
            finished++;
        }
    }
done:
    for (int i = 0; i < DEMO_MAX_RUNS; i++)
        if (active[i])
            play_free(&plays[i]);
    client_destroy(&c);
    log_info("demo: %lld run(s) started, %lld finished, %lld event(s) sent, %lld not delivered",
             (long long)started, (long long)finished, (long long)sent, (long long)failed);
    return rc;
}
