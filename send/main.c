/* adw-send: what an agent or a hook runs to push one event (or many) to adw-ingest.
 *
 * Modes: one event from flags; --json, whole events from stdin; --hook, a Claude Code hook's
 * stdin JSON; --stream-json, `claude -p --output-format stream-json --verbose` output, sent
 * line by line as it arrives. It never holds the agent longer than --timeout-ms (for
 * --stream-json: per send), and exits 0 unless --strict. */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adw_limits.h"
#include "buf.h"
#include "client.h"
#include "codec.h"
#include "config.h"
#include "event.h"
#include "hook.h"
#include "log.h"
#include "streamjson.h"
#include "timefmt.h"

/* Exit codes. Never 2: Claude Code takes a hook's exit 2 as "block the action". */
#define SEND_EXIT_OK 0
#define SEND_EXIT_USAGE 64   /* bad flags or configuration (always) */
#define SEND_EXIT_INVALID 65 /* --strict: an input or event was invalid and not sent */
#define SEND_EXIT_LOST 74    /* --strict: an event was neither delivered nor spooled */
#define SEND_EXIT_SPOOLED 75 /* --strict: an event was not delivered now; it is in the spool */

#define SEND_LINE_MAX (16 << 20) /* longest stream-json line taken */

typedef struct send_options_t {
    const char *adw_id;
    const char *step;
    const char *type;
    const char *event_type;
    const char *event;
    const char *status;
    const char *summary;
    const char *payload;
    int64_t duration_ms;
    const char *event_id;
    int json;
    int hook;
    int stream_json;
    int tee;
    const char *http;
    const char *zmq;
    const char *token;
    const char *ca_file;
    const char *curve_server;
    const char *curve_cert;
    const char *make_cert;
    int64_t timeout_ms;
    const char *spool;
    int64_t spool_max;
    int strict;
    int64_t max_input;
    const char *log_level;
    const char *log_format;
} send_options_t;

#define OPT(f) offsetof(send_options_t, f)
static const config_option_t OPTIONS[] = {
    {.flag = "adw-id",
     .env = "ADW_ID",
     .type = CONFIG_STRING,
     .offset = OPT(adw_id),
     .doc =
         "run id (1-64 of [A-Za-z0-9._:-]); --json/--hook/--stream-json: where events have none"},
    {.flag = "step",
     .env = "ADW_STEP",
     .type = CONFIG_STRING,
     .offset = OPT(step),
     .doc = "step name (plan, build, review, ...); --json: where events have none"},
    {.flag = "type",
     .type = CONFIG_STRING,
     .offset = OPT(type),
     .doc = "adw_event or system (default: system with --event, else adw_event)"},
    {.flag = "event-type",
     .type = CONFIG_STRING,
     .offset = OPT(event_type),
     .doc = "an adw_event's event_type (ToolUseBlock, TextBlock, ...)"},
    {.flag = "event",
     .type = CONFIG_STRING,
     .offset = OPT(event),
     .doc = "a system event's name (adw_start, step_start, step_complete, ...)"},
    {.flag = "status",
     .type = CONFIG_STRING,
     .offset = OPT(status),
     .doc = "status (running, completed, failed, ...)"},
    {.flag = "summary", .type = CONFIG_STRING, .offset = OPT(summary), .doc = "one-line summary"},
    {.flag = "payload",
     .type = CONFIG_STRING,
     .offset = OPT(payload),
     .doc = "payload, a JSON object (cost_usd and *_tokens feed the run's totals)"},
    {.flag = "duration-ms",
     .type = CONFIG_INT,
     .offset = OPT(duration_ms),
     .max = INT64_MAX,
     .doc = "duration_ms of the event"},
    {.flag = "event-id",
     .type = CONFIG_STRING,
     .offset = OPT(event_id),
     .doc = "idempotency key (default: 32 random hex digits)"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(json),
     .doc = "read whole events from stdin: one object, an array, or NDJSON"},
    {.flag = "hook",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(hook),
     .doc = "read a Claude Code hook's JSON from stdin (as POST /api/hooks maps it)"},
    {.flag = "stream-json",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(stream_json),
     .doc = "read `claude -p --output-format stream-json --verbose` output; send as it arrives"},
    {.flag = "tee",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(tee),
     .doc = "--stream-json: copy every input line to stdout"},
    {.flag = "http",
     .env = "ADW_INGEST_URL",
     .type = CONFIG_STRING,
     .offset = OPT(http),
     .doc = "send over HTTP to this ingest URL (http://host:port or https://host:port)"},
    {.flag = "ca-file",
     .env = "ADW_CA_FILE",
     .type = CONFIG_STRING,
     .offset = OPT(ca_file),
     .doc = "https: PEM file of the CAs to trust (unset: the system's)"},
    {.flag = "zmq",
     .env = "ADW_INGEST_ZMQ",
     .type = CONFIG_STRING,
     .offset = OPT(zmq),
     .doc = "send over ZeroMQ to this endpoint (default " CLIENT_ZMQ_DEFAULT ")"},
    {.flag = "token",
     .env = "ADW_INGEST_TOKEN",
     .type = CONFIG_STRING,
     .offset = OPT(token),
     .doc = "bearer token for HTTP"},
    {.flag = "curve-server",
     .env = "ADW_CURVE_SERVER",
     .type = CONFIG_STRING,
     .offset = OPT(curve_server),
     .doc = "ZeroMQ with CURVE: ingest's public certificate file (unset: no CURVE)"},
    {.flag = "curve-cert",
     .env = "ADW_CURVE_CERT",
     .type = CONFIG_STRING,
     .offset = OPT(curve_cert),
     .doc = "ZeroMQ with CURVE: our certificate (PATH, its secret half read from PATH_secret)"},
    {.flag = "make-cert",
     .type = CONFIG_STRING,
     .offset = OPT(make_cert),
     .doc = "write a new CURVE key pair to PATH (public) and PATH_secret (0600), then exit"},
    {.flag = "timeout-ms",
     .env = "ADW_SEND_TIMEOUT_MS",
     .type = CONFIG_INT,
     .def = "2000",
     .offset = OPT(timeout_ms),
     .max = 600000,
     .doc = "the longest adw-send takes (--stream-json: per send)"},
    {.flag = "spool",
     .env = "ADW_SPOOL_DIR",
     .type = CONFIG_STRING,
     .offset = OPT(spool),
     .doc = "spool directory for undelivered events (default $XDG_STATE_HOME/adw/spool or "
            "~/.local/state/adw/spool; 'off': none)"},
    {.flag = "spool-max",
     .env = "ADW_SPOOL_MAX",
     .type = CONFIG_INT,
     .def = "100000",
     .offset = OPT(spool_max),
     .min = 1,
     .max = 100000000,
     .doc = "events the spool holds at most"},
    {.flag = "strict",
     .type = CONFIG_BOOL,
     .def = "0",
     .offset = OPT(strict),
     .doc = "exit non-zero when anything was invalid (65), spooled (75) or lost (74)"},
    {.flag = "max-input",
     .env = "ADW_SEND_MAX_INPUT",
     .type = CONFIG_INT,
     .def = "16M",
     .offset = OPT(max_input),
     .min = 1024,
     .max = 1 << 30,
     .bytes = 1,
     .doc = "largest stdin for --json and --hook, in bytes"},
    {.flag = "log-level",
     .env = "ADW_LOG_LEVEL",
     .type = CONFIG_STRING,
     .def = "warn",
     .offset = OPT(log_level),
     .doc = "debug, info (one line per send), warn or error"},
    {.flag = "log-format",
     .env = "ADW_LOG_FORMAT",
     .type = CONFIG_STRING,
     .def = "text",
     .offset = OPT(log_format),
     .doc = "text or json"},
};

static const config_program_t PROGRAM = {
    .name = "adw-send",
    .summary = "Pushes ADW events to adw-ingest; spools what it cannot deliver. Exit 0 unless "
               "--strict; 64 on bad usage.",
    .usage = "[options]   (event from flags, or --json | --hook | --stream-json on stdin)",
    .options = OPTIONS,
    .noptions = sizeof OPTIONS / sizeof OPTIONS[0],
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* What happened to the events of this run, for the exit code. */
typedef struct send_tally_t {
    size_t sent, spooled, lost, invalid;
} send_tally_t;

typedef struct send_t {
    send_options_t opt;
    client_t *client;
    send_tally_t tally;
    int64_t deadline_us; /* one-shot modes: the whole run */
} send_t;

static int ms_left(int64_t deadline_us)
{
    int64_t left = deadline_us - timefmt_mono_us();
    return left > 0 ? (int)((left + 999) / 1000) : 0;
}

/* Whether argv names --flag (as "--flag" or "--flag=..."). */
static int flag_given(int argc, char **argv, const char *flag)
{
    size_t n = strlen(flag);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, flag, n) &&
            (argv[i][2 + n] == '\0' || argv[i][2 + n] == '='))
            return 1;
    return 0;
}

/* The default spool directory, in buf. Returns buf, or NULL when no home is known. */
static const char *default_spool(char *buf, size_t len)
{
    const char *state = getenv("XDG_STATE_HOME");
    if (state && *state == '/') {
        snprintf(buf, len, "%s/adw/spool", state);
        return buf;
    }
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || !*home)
        return NULL;
    snprintf(buf, len, "%s/.local/state/adw/spool", home);
    return buf;
}

/* ---- input ---- */

/* Reads all of stdin into b (whose max bounds it) until EOF or the deadline. Returns 0,
 * -E2BIG, -ETIMEDOUT or a negative errno. */
static int read_stdin(buf_t *b, int64_t deadline_us)
{
    for (;;) {
        int rc = buf_reserve(b, 65536);
        if (rc == -E2BIG)
            rc = buf_reserve(b, b->max - b->len);
        if (rc == -E2BIG || (rc == 0 && b->cap - b->len <= 1)) {
            /* Full: one more byte means too much. */
            char c;
            struct pollfd p = {STDIN_FILENO, POLLIN, 0};
            if (poll(&p, 1, ms_left(deadline_us)) > 0 && read(STDIN_FILENO, &c, 1) == 0)
                return 0;
            return -E2BIG;
        }
        if (rc)
            return rc;
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        int pr = poll(&p, 1, ms_left(deadline_us));
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        ssize_t r = read(STDIN_FILENO, b->data + b->len, b->cap - b->len - 1);
        if (r == 0)
            return 0;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        b->len += (size_t)r;
        b->data[b->len] = '\0';
    }
}

static int read_input(send_t *s, buf_t *in)
{
    buf_init(in, (size_t)s->opt.max_input);
    int rc = read_stdin(in, s->deadline_us);
    if (rc == -E2BIG)
        log_error("stdin: input over %lld bytes (--max-input); not sent",
                  (long long)s->opt.max_input);
    else if (rc == -ETIMEDOUT)
        log_error("stdin: input did not end within --timeout-ms (%lld ms); not sent",
                  (long long)s->opt.timeout_ms);
    else if (rc)
        log_error("stdin: %s; not sent", strerror(-rc));
    else if (in->len == 0)
        log_error("stdin is empty: expected %s; not sent",
                  s->opt.hook ? "a hook's JSON" : "events as JSON");
    if (rc || in->len == 0) {
        s->tally.invalid++;
        return -EINVAL;
    }
    return 0;
}

/* Whether the bytes hold only JSON whitespace. */
static int blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return 0;
    return 1;
}

/* Parses --json input into events (a new array), logging what is not JSON. NDJSON when the
 * whole input is not one JSON text but its first line is. */
static json_t *parse_events(send_t *s, const char *p, size_t len)
{
    json_t *v = NULL;
    char why[256];
    if (codec_json_parse(p, len, &v, why, sizeof why) == 0) {
        if (json_is_array(v))
            return v;
        json_t *arr = json_array();
        if (arr)
            json_array_append_new(arr, v);
        else
            json_decref(v);
        return arr;
    }
    /* NDJSON? Only when the first non-blank line is a JSON text on its own. */
    size_t pos = 0;
    while (pos < len && blank(p + pos, 1))
        pos++;
    const char *nl = memchr(p + pos, '\n', len - pos);
    size_t first = nl ? (size_t)(nl - (p + pos)) : len - pos;
    json_t *probe = NULL;
    char why2[8];
    if (!nl || codec_json_parse(p + pos, first, &probe, why2, sizeof why2)) {
        log_error("stdin is not JSON (an event, an array, or NDJSON): %s; not sent", why);
        s->tally.invalid++;
        return NULL;
    }
    json_decref(probe);
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    size_t line = 0;
    pos = 0;
    while (pos < len) {
        nl = memchr(p + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - p) : len;
        line++;
        if (!blank(p + pos, end - pos)) {
            if (codec_json_parse(p + pos, end - pos, &v, why, sizeof why)) {
                log_error("stdin line %zu is not JSON: %s; not sent", line, why);
                s->tally.invalid++;
            } else {
                json_array_append_new(arr, v);
            }
        }
        pos = end + 1;
    }
    return arr;
}

/* Fills adw_id and step where an event has none (or null); --json only. */
static void fill_defaults(send_t *s, json_t *ev)
{
    json_t *a = json_object_get(ev, "adw_id"), *st = json_object_get(ev, "step");
    if (s->opt.adw_id && *s->opt.adw_id && (!a || json_is_null(a)))
        json_object_set_new(ev, "adw_id", json_string(s->opt.adw_id));
    if (s->opt.step && *s->opt.step && (!st || json_is_null(st)))
        json_object_set_new(ev, "step", json_string(s->opt.step));
}

/* Keeps the valid events of arr in a new array; logs each invalid one with what (e.g.
 * "event 2", "line 7") and counts it. */
static json_t *valid_events(send_t *s, json_t *arr, const char *what, size_t base)
{
    json_t *out = json_array();
    if (!out)
        return NULL;
    int64_t now = timefmt_now_us();
    size_t i;
    json_t *ev;
    json_array_foreach(arr, i, ev)
    {
        char why[EVENT_ERR_LEN];
        adw_event_t e;
        if (!json_is_object(ev)) {
            log_error("%s %zu: not a JSON object; not sent", what, base + i);
            s->tally.invalid++;
            continue;
        }
        if (event_from_json(ev, now, &e, why, sizeof why)) {
            log_error("%s %zu: %s; not sent", what, base + i, why);
            s->tally.invalid++;
            continue;
        }
        event_clear(&e);
        json_array_append(out, ev);
    }
    return out;
}

/* Delivers events (borrowed) and adds the outcome to the tally. */
static void deliver(send_t *s, json_t *events, int timeout_ms)
{
    if (json_array_size(events) == 0)
        return;
    client_report_t rep;
    int rc = client_submit(s->client, events, timeout_ms, &rep);
    if (rc < 0) {
        log_error("out of memory; %zu event(s) not sent", json_array_size(events));
        s->tally.lost += json_array_size(events);
        return;
    }
    s->tally.sent += rep.sent;
    s->tally.spooled += rep.spooled;
    s->tally.lost += rep.lost;
    s->tally.invalid += rep.invalid;
    if (rep.invalid)
        log_error("%zu event(s) refused by ingest: %s", rep.invalid, rep.invalid_err);
    if (rep.drained || rep.rejected)
        log_info("spool: %zu earlier event(s) delivered, %zu rejected, %zu left", rep.drained,
                 rep.rejected, rep.pending);
    if (rep.spooled)
        log_warn("%zu event(s) not delivered (%s); spooled (%zu waiting)", rep.spooled, rep.err,
                 rep.pending);
    if (rep.lost)
        log_error("%zu event(s) lost: not delivered (%s) and not spooled (%s)", rep.lost,
                  rep.err[0] ? rep.err : "?", rep.lost_err);
    if (rep.sent)
        log_info("sent %zu event(s)", rep.sent);
}

/* ---- modes ---- */

/* Sets key to the text v when v is not NULL; names the flag in *bad when v is not UTF-8. */
static void put_text(json_t *ev, const char *key, const char *v, const char *flag, const char **bad)
{
    if (!v)
        return;
    json_t *j = json_string(v);
    if (!j) {
        if (!*bad)
            *bad = flag;
        return;
    }
    json_object_set_new(ev, key, j);
}

static int from_flags(send_t *s)
{
    const send_options_t *o = &s->opt;
    if (!o->adw_id || !*o->adw_id) {
        log_error("no adw_id: give --adw-id or set ADW_ID; not sent");
        s->tally.invalid++;
        return 0;
    }
    const char *type = o->type ? o->type : o->event && !o->event_type ? "system" : "adw_event";
    json_t *ev = json_object();
    if (!ev)
        return -ENOMEM;
    const char *bad = NULL;
    put_text(ev, "type", type, "--type", &bad);
    put_text(ev, "adw_id", o->adw_id, "--adw-id", &bad);
    if (o->step && *o->step)
        put_text(ev, "step", o->step, "--step", &bad);
    put_text(ev, "event_type", o->event_type, "--event-type", &bad);
    put_text(ev, "event", o->event, "--event", &bad);
    put_text(ev, "status", o->status, "--status", &bad);
    if (o->duration_ms >= 0)
        json_object_set_new(ev, "duration_ms", json_integer(o->duration_ms));
    put_text(ev, "summary", o->summary, "--summary", &bad);
    if (bad) {
        log_error("%s is not valid UTF-8; not sent", bad);
        json_decref(ev);
        s->tally.invalid++;
        return 0;
    }
    if (o->payload) {
        json_t *p = NULL;
        char why[256];
        if (codec_json_parse(o->payload, strlen(o->payload), &p, why, sizeof why) ||
            !json_is_object(p)) {
            log_error("--payload must be a JSON object%s%s; not sent", p ? "" : ": ", p ? "" : why);
            json_decref(p);
            json_decref(ev);
            s->tally.invalid++;
            return 0;
        }
        json_object_set_new(ev, "payload", p);
    }
    put_text(ev, "event_id", o->event_id, "--event-id", &bad);
    if (bad) {
        log_error("%s is not valid UTF-8; not sent", bad);
        json_decref(ev);
        s->tally.invalid++;
        return 0;
    }
    json_t *arr = json_array();
    json_array_append_new(arr, ev);
    json_t *ok = valid_events(s, arr, "event", 0);
    deliver(s, ok, ms_left(s->deadline_us));
    json_decref(ok);
    json_decref(arr);
    return 0;
}

static int from_json(send_t *s)
{
    buf_t in;
    if (read_input(s, &in)) {
        buf_free(&in);
        return 0;
    }
    json_t *arr = parse_events(s, in.data, in.len);
    buf_free(&in);
    if (!arr)
        return 0;
    size_t i;
    json_t *ev;
    json_array_foreach(arr, i, ev)
    {
        if (json_is_object(ev))
            fill_defaults(s, ev);
    }
    json_t *ok = valid_events(s, arr, "event", 0);
    deliver(s, ok, ms_left(s->deadline_us));
    json_decref(ok);
    json_decref(arr);
    return 0;
}

static int from_hook(send_t *s)
{
    buf_t in;
    if (read_input(s, &in)) {
        buf_free(&in);
        return 0;
    }
    json_t *hook = NULL;
    char why[256];
    int rc = codec_json_parse(in.data, in.len, &hook, why, sizeof why);
    buf_free(&in);
    if (rc) {
        log_error("hook input is not JSON: %s; not sent", why);
        s->tally.invalid++;
        return 0;
    }
    json_t *ev = hook_to_event(hook, s->opt.adw_id, s->opt.step, why, sizeof why);
    json_decref(hook);
    if (!ev) {
        log_error("hook input: %s; not sent", why);
        s->tally.invalid++;
        return 0;
    }
    json_t *arr = json_array();
    json_array_append_new(arr, ev);
    json_t *ok = valid_events(s, arr, "event", 0);
    deliver(s, ok, ms_left(s->deadline_us));
    json_decref(ok);
    json_decref(arr);
    return 0;
}

/* Maps and sends one stream-json line. */
static void stream_line(send_t *s, streamjson_t *sj, const char *line, size_t len, size_t no)
{
    json_t *events = NULL;
    char why[256];
    if (streamjson_line(sj, line, len, &events, why, sizeof why)) {
        log_error("stream line %zu: %s; not sent", no, why);
        s->tally.invalid++;
        return;
    }
    char what[32];
    snprintf(what, sizeof what, "stream line %zu event", no);
    json_t *ok = valid_events(s, events, what, 0);
    deliver(s, ok, (int)s->opt.timeout_ms);
    json_decref(ok);
    json_decref(events);
}

static int from_stream(send_t *s)
{
    streamjson_t *sj = streamjson_new(s->opt.adw_id, s->opt.step);
    if (!sj) {
        /* Read on anyway: closing the pipe early could kill the agent writing into it. */
        log_error("--stream-json: %s; nothing from this stream is sent",
                  errno == EINVAL ? "--adw-id must be 1-64 of [A-Za-z0-9._:-] and --step at "
                                    "most 64 bytes"
                                  : "out of memory");
        s->tally.invalid++;
        char chunk[65536];
        ssize_t r;
        while (!stopping &&
               ((r = read(STDIN_FILENO, chunk, sizeof chunk)) > 0 || (r < 0 && errno == EINTR)))
            if (r > 0 && s->opt.tee && fwrite(chunk, 1, (size_t)r, stdout) == (size_t)r)
                fflush(stdout);
        return 0;
    }
    buf_t b;
    buf_init(&b, SEND_LINE_MAX + 1);
    size_t no = 0, scan = 0;
    int eof = 0, skipping = 0;
    while (!eof || b.len) {
        char *nl = b.len > scan ? memchr(b.data + scan, '\n', b.len - scan) : NULL;
        if (nl || (eof && b.len)) {
            size_t n = nl ? (size_t)(nl - b.data) + 1 : b.len;
            if (skipping) {
                skipping = 0;
            } else {
                no++;
                if (s->opt.tee && fwrite(b.data, 1, n, stdout) == n)
                    fflush(stdout);
                stream_line(s, sj, b.data, n, no);
            }
            buf_consume(&b, n);
            scan = 0;
            continue;
        }
        scan = b.len;
        if (eof || stopping)
            break;
        if (b.len >= SEND_LINE_MAX) {
            no++;
            log_error("stream line %zu: longer than %d bytes; not sent", no, SEND_LINE_MAX);
            s->tally.invalid++;
            skipping = 1;
            buf_reset(&b);
            scan = 0;
        }
        if (buf_reserve(&b, 65536) && buf_reserve(&b, SEND_LINE_MAX - b.len)) {
            log_error("out of memory");
            break;
        }
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        int pr = poll(&p, 1, 250); /* wakes to notice a signal */
        if (pr <= 0)
            continue;
        ssize_t r = read(STDIN_FILENO, b.data + b.len, b.cap - b.len - 1);
        if (r == 0) {
            eof = 1;
        } else if (r < 0) {
            if (errno != EINTR && errno != EAGAIN) {
                log_error("stdin: %s", strerror(errno));
                eof = 1;
            }
        } else {
            b.len += (size_t)r;
            b.data[b.len] = '\0';
        }
    }
    buf_free(&b);
    streamjson_destroy(&sj);
    /* At the end: one more try for whatever waits in the spool. */
    client_report_t rep;
    if (s->tally.spooled && client_drain(s->client, (int)s->opt.timeout_ms, &rep) >= 0 &&
        rep.drained)
        log_info("spool: %zu event(s) delivered at the end, %zu left", rep.drained, rep.pending);
    return 0;
}

static int exit_code(const send_t *s)
{
    if (!s->opt.strict)
        return SEND_EXIT_OK;
    if (s->tally.lost)
        return SEND_EXIT_LOST;
    if (s->tally.spooled)
        return SEND_EXIT_SPOOLED;
    if (s->tally.invalid)
        return SEND_EXIT_INVALID;
    return SEND_EXIT_OK;
}

int main(int argc, char **argv)
{
    int64_t start = timefmt_mono_us();
    send_t s = {.opt = {.duration_ms = -1}};
    char err[CLIENT_ERR_LEN];
    int rc = config_start(&PROGRAM, &s.opt, argc, argv, &s.opt.log_level, &s.opt.log_format);
    if (rc)
        return rc == CONFIG_EXIT ? 0 : SEND_EXIT_USAGE;
    s.deadline_us = start + s.opt.timeout_ms * 1000;
    if (s.opt.make_cert) {
        if (client_cert_make(s.opt.make_cert, err, sizeof err)) {
            fprintf(stderr, "adw-send: %s\n", err);
            return 1;
        }
        printf("public certificate: %s\nsecret certificate: %s_secret\n", s.opt.make_cert,
               s.opt.make_cert);
        return 0;
    }

    /* Check the usage: one mode, one transport, event flags only with the flags mode. */
    int modes = !!s.opt.json + !!s.opt.hook + !!s.opt.stream_json;
    if (modes > 1) {
        fprintf(stderr, "adw-send: --json, --hook and --stream-json exclude each other\n");
        return SEND_EXIT_USAGE;
    }
    static const char *const event_flags[] = {"type",    "event-type", "event",       "status",
                                              "summary", "payload",    "duration-ms", "event-id"};
    for (size_t i = 0; modes && i < sizeof event_flags / sizeof event_flags[0]; i++) {
        if (flag_given(argc, argv, event_flags[i])) {
            fprintf(stderr,
                    "adw-send: --%s describes an event from flags; it has no effect "
                    "with --json, --hook or --stream-json\n",
                    event_flags[i]);
            return SEND_EXIT_USAGE;
        }
    }
    if (s.opt.tee && !s.opt.stream_json) {
        fprintf(stderr, "adw-send: --tee goes with --stream-json\n");
        return SEND_EXIT_USAGE;
    }
    int want_http = flag_given(argc, argv, "http"), want_zmq = flag_given(argc, argv, "zmq");
    if (want_http && want_zmq) {
        fprintf(stderr, "adw-send: give --http or --zmq, not both\n");
        return SEND_EXIT_USAGE;
    }
    client_options_t co = {.token = s.opt.token,
                           .ca_file = s.opt.ca_file,
                           .curve_server = s.opt.curve_server,
                           .curve_cert = s.opt.curve_cert,
                           .spool_max = (size_t)s.opt.spool_max};
    if (want_zmq || (!want_http && !(s.opt.http && *s.opt.http)))
        co.zmq_endpoint = s.opt.zmq;
    else
        co.http_url = s.opt.http;
    char spool[4096];
    if (!s.opt.spool || !*s.opt.spool)
        co.spool_dir = default_spool(spool, sizeof spool);
    else if (strcmp(s.opt.spool, "off") != 0)
        co.spool_dir = s.opt.spool;

    client_err_t why;
    s.client = client_new(&co, &why, err, sizeof err);
    if (!s.client && why == CLIENT_ERR_NOMEM) {
        /* Not a usage error: the event is lost, and only --strict says so in the exit code. */
        log_error("%s; the event(s) were not sent", err);
        s.tally.lost++;
        return exit_code(&s);
    }
    if (!s.client) {
        fprintf(stderr, "adw-send: %s\n", err);
        return SEND_EXIT_USAGE;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (s.opt.json)
        rc = from_json(&s);
    else if (s.opt.hook)
        rc = from_hook(&s);
    else if (s.opt.stream_json)
        rc = from_stream(&s);
    else
        rc = from_flags(&s);
    client_destroy(&s.client);
    if (rc == -EINVAL)
        return SEND_EXIT_USAGE;
    if (rc)
        s.tally.lost++;
    return exit_code(&s);
}
