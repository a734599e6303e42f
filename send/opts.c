/* opts: adw-send's option table, the usage rules between its flags, and the client options
 * they give. Pure: no I/O (config_load() reads argv and the environment). */
#include "opts.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "err.h"

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
    CLIENT_CONFIG_OPTIONS(OPT(net), "send over HTTP to this ingest URL (http://host:port or "
                                    "https://host:port)"),
    {.flag = "ca-file",
     .env = "ADW_CA_FILE",
     .type = CONFIG_STRING,
     .offset = OPT(ca_file),
     .doc = "https: PEM file of the CAs to trust (unset: the system's)"},
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
    CONFIG_LOG_OPTIONS(send_options_t, "warn"),
};

static const config_program_t PROGRAM = {
    .name = "adw-send",
    .summary = "Pushes ADW events to adw-ingest; spools what it cannot deliver. Exit 0 unless "
               "--strict; 64 on bad usage.",
    .usage = "[options]   (event from flags, or --json | --hook | --stream-json on stdin)",
    .options = OPTIONS,
    .noptions = sizeof OPTIONS / sizeof OPTIONS[0],
};

const config_program_t *send_opts_program(void)
{
    return &PROGRAM;
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

int send_opts_check(const send_options_t *o, int argc, char **argv, char *err, size_t errlen)
{
    int modes = !!o->json + !!o->hook + !!o->stream_json;
    if (modes > 1) {
        set_err(err, errlen, "--json, --hook and --stream-json exclude each other");
        return -EINVAL;
    }
    static const char *const event_flags[] = {"type",    "event-type", "event",       "status",
                                              "summary", "payload",    "duration-ms", "event-id"};
    for (size_t i = 0; modes && i < sizeof event_flags / sizeof event_flags[0]; i++) {
        if (flag_given(argc, argv, event_flags[i])) {
            set_err(err, errlen,
                    "--%s describes an event from flags; it has no effect "
                    "with --json, --hook or --stream-json",
                    event_flags[i]);
            return -EINVAL;
        }
    }
    if (o->tee && !o->stream_json) {
        set_err(err, errlen, "--tee goes with --stream-json");
        return -EINVAL;
    }
    if (flag_given(argc, argv, "http") && flag_given(argc, argv, "zmq")) {
        set_err(err, errlen, "give --http or --zmq, not both");
        return -EINVAL;
    }
    return 0;
}

int send_opts_client(const send_options_t *o, int argc, char **argv, client_options_t *co)
{
    *co = (client_options_t){.token = o->net.token,
                             .ca_file = o->ca_file,
                             .curve_server = o->net.curve_server,
                             .curve_cert = o->net.curve_cert,
                             .spool_max = (size_t)o->spool_max};
    int want_http = flag_given(argc, argv, "http"), want_zmq = flag_given(argc, argv, "zmq");
    if (want_zmq || (!want_http && !(o->net.http && *o->net.http)))
        co->zmq_endpoint = o->net.zmq;
    else
        co->http_url = o->net.http;
    if (!o->spool || !*o->spool)
        return 1;
    if (strcmp(o->spool, "off") != 0)
        co->spool_dir = o->spool;
    return 0;
}
