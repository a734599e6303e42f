/* Unit tests for send/opts: adw-send's option table as config_load reads it (defaults, the
 * environment, flags, every bounded number crossing its bound), the usage rules between flags
 * (one mode, no event flags with a mode, --tee, one transport), and the client options the
 * settings give (transport, spool). Argument lists are those hooks and agents run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "opts.h"

/* Unsets every environment variable adw-send reads, so each test starts from the defaults. */
static int clear_env(void **state)
{
    (void)state;
    const config_program_t *p = send_opts_program();
    for (size_t i = 0; i < p->noptions; i++)
        if (p->options[i].env)
            unsetenv(p->options[i].env);
    return 0;
}

/* The argv of the last load(), argv[0] included, for the usage rules. */
static char *ARGV[64];
static int ARGC;

/* Loads args (NULL-terminated, without argv[0]) into *o from SEND_OPTIONS_INIT, as main does.
 * Returns config_load's result, with its reason in err (256 bytes). */
static int load(send_options_t *o, char *err, const char *const *args)
{
    *o = (send_options_t)SEND_OPTIONS_INIT;
    ARGC = 0;
    ARGV[ARGC++] = "adw-send";
    for (; *args; args++)
        ARGV[ARGC++] = (char *)*args;
    ARGV[ARGC] = NULL;
    err[0] = '\0';
    return config_load(send_opts_program(), o, ARGC, ARGV, NULL, NULL, err, 256);
}

/* Loads args and applies the usage rules; returns send_opts_check's result (the load must
 * succeed). */
static int check(send_options_t *o, char *err, const char *const *args)
{
    assert_int_equal(load(o, err, args), CONFIG_OK);
    return send_opts_check(o, ARGC, ARGV, err, 256);
}

static void test_defaults(void **state)
{
    (void)state;
    send_options_t o;
    char err[256];
    const char *const args[] = {NULL};
    assert_int_equal(check(&o, err, args), 0);
    assert_null(o.adw_id);
    assert_null(o.step);
    assert_null(o.type);
    assert_null(o.payload);
    assert_int_equal(o.duration_ms, -1);
    assert_int_equal(o.json + o.hook + o.stream_json + o.tee + o.strict, 0);
    assert_int_equal(o.timeout_ms, 2000);
    assert_int_equal(o.spool_max, 100000);
    assert_int_equal(o.max_input, 16 << 20);
    assert_string_equal(o.log_level, "warn");
    assert_string_equal(o.log_format, "text");
    client_options_t co;
    assert_int_equal(send_opts_client(&o, ARGC, ARGV, &co), 1); /* default spool wanted */
    assert_null(co.http_url);
    assert_null(co.zmq_endpoint); /* the client's default endpoint */
    assert_null(co.spool_dir);
    assert_int_equal(co.spool_max, 100000);
}

/* The flags of a hook command line as settings: flag over environment. */
static void test_hook_command_line(void **state)
{
    (void)state;
    setenv("ADW_ID", "env-run", 1);
    setenv("ADW_STEP", "plan", 1);
    setenv("ADW_SEND_TIMEOUT_MS", "500", 1);
    send_options_t o;
    char err[256];
    const char *const args[] = {"--hook",       "--adw-id", "run-1.a:b",
                                "--step=build", "--strict", NULL};
    assert_int_equal(check(&o, err, args), 0);
    assert_true(o.hook);
    assert_true(o.strict);
    assert_string_equal(o.adw_id, "run-1.a:b");
    assert_string_equal(o.step, "build");
    assert_int_equal(o.timeout_ms, 500);
}

static void test_event_from_flags(void **state)
{
    (void)state;
    send_options_t o;
    char err[256];
    const char *const args[] = {"--adw-id",
                                "r1",
                                "--type",
                                "adw_event",
                                "--event-type",
                                "ToolUseBlock",
                                "--status",
                                "running",
                                "--summary",
                                "Writing auth middleware",
                                "--payload",
                                "{\"tool_name\":\"Write\",\"cost_usd\":0.25}",
                                "--duration-ms",
                                "45",
                                "--event-id",
                                "my-key-1",
                                NULL};
    assert_int_equal(check(&o, err, args), 0);
    assert_string_equal(o.type, "adw_event");
    assert_string_equal(o.event_type, "ToolUseBlock");
    assert_string_equal(o.status, "running");
    assert_string_equal(o.summary, "Writing auth middleware");
    assert_string_equal(o.payload, "{\"tool_name\":\"Write\",\"cost_usd\":0.25}");
    assert_int_equal(o.duration_ms, 45);
    assert_string_equal(o.event_id, "my-key-1");
    assert_int_equal(o.json + o.hook + o.stream_json, 0);
}

static void test_modes_exclude_each_other(void **state)
{
    (void)state;
    send_options_t o;
    char err[256];
    const char *const pairs[][3] = {{"--json", "--hook", NULL},
                                    {"--hook", "--stream-json", NULL},
                                    {"--stream-json", "--json", NULL}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        assert_int_equal(check(&o, err, pairs[i]), -EINVAL);
        assert_string_equal(err, "--json, --hook and --stream-json exclude each other");
    }
    const char *const one[] = {"--stream-json", NULL};
    assert_int_equal(check(&o, err, one), 0);
}

/* Every event flag is refused with every mode, as --flag VALUE and as --flag=VALUE. */
static void test_event_flags_refused_with_a_mode(void **state)
{
    (void)state;
    static const char *const flags[] = {"--type",    "--event-type", "--event",       "--status",
                                        "--summary", "--payload",    "--duration-ms", "--event-id"};
    static const char *const modes[] = {"--json", "--hook", "--stream-json"};
    send_options_t o;
    char err[256], want[256], eq[64];
    for (size_t m = 0; m < 3; m++) {
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            snprintf(want, sizeof want,
                     "%s describes an event from flags; it has no effect with --json, --hook "
                     "or --stream-json",
                     flags[f]);
            const char *const spaced[] = {modes[m], flags[f], "7", NULL};
            assert_int_equal(check(&o, err, spaced), -EINVAL);
            assert_string_equal(err, want);
            snprintf(eq, sizeof eq, "%s=7", flags[f]);
            const char *const joined[] = {eq, modes[m], NULL};
            assert_int_equal(check(&o, err, joined), -EINVAL);
            assert_string_equal(err, want);
        }
    }
    /* --adw-id and --step go with every mode. */
    const char *const fine[] = {"--hook", "--adw-id", "r", "--step", "s", NULL};
    assert_int_equal(check(&o, err, fine), 0);
}

static void test_tee_goes_with_stream_json(void **state)
{
    (void)state;
    send_options_t o;
    char err[256];
    const char *const alone[] = {"--tee", "--adw-id", "r", NULL};
    assert_int_equal(check(&o, err, alone), -EINVAL);
    assert_string_equal(err, "--tee goes with --stream-json");
    const char *const json[] = {"--json", "--tee", NULL};
    assert_int_equal(check(&o, err, json), -EINVAL);
    assert_string_equal(err, "--tee goes with --stream-json");
    const char *const stream[] = {"--stream-json", "--tee", NULL};
    assert_int_equal(check(&o, err, stream), 0);
    assert_true(o.tee);
}

/* One transport: both flags are refused; a flag wins over the other's environment variable;
 * without flags an HTTP URL in the environment means HTTP. */
static void test_transport(void **state)
{
    (void)state;
    send_options_t o;
    client_options_t co;
    char err[256];
    const char *const both[] = {"--http", "http://127.0.0.1:8080", "--zmq=tcp://127.0.0.1:5", NULL};
    assert_int_equal(check(&o, err, both), -EINVAL);
    assert_string_equal(err, "give --http or --zmq, not both");

    setenv("ADW_INGEST_URL", "http://127.0.0.1:8080", 1);
    setenv("ADW_INGEST_ZMQ", "tcp://127.0.0.1:5999", 1);
    const char *const none[] = {NULL};
    assert_int_equal(check(&o, err, none), 0);
    send_opts_client(&o, ARGC, ARGV, &co);
    assert_string_equal(co.http_url, "http://127.0.0.1:8080");
    assert_null(co.zmq_endpoint);

    const char *const zmq[] = {"--zmq", "tcp://127.0.0.1:6000", NULL};
    assert_int_equal(check(&o, err, zmq), 0);
    send_opts_client(&o, ARGC, ARGV, &co);
    assert_null(co.http_url);
    assert_string_equal(co.zmq_endpoint, "tcp://127.0.0.1:6000");

    unsetenv("ADW_INGEST_URL");
    const char *const http[] = {"--http=https://ingest.example:8443",
                                "--token",
                                "t0k",
                                "--ca-file",
                                "/etc/adw/ca.pem",
                                NULL};
    assert_int_equal(check(&o, err, http), 0);
    send_opts_client(&o, ARGC, ARGV, &co);
    assert_string_equal(co.http_url, "https://ingest.example:8443");
    assert_null(co.zmq_endpoint);
    assert_string_equal(co.token, "t0k");
    assert_string_equal(co.ca_file, "/etc/adw/ca.pem");

    /* No URL anywhere: ZeroMQ, from the environment. */
    assert_int_equal(check(&o, err, none), 0);
    send_opts_client(&o, ARGC, ARGV, &co);
    assert_null(co.http_url);
    assert_string_equal(co.zmq_endpoint, "tcp://127.0.0.1:5999");

    const char *const curve[] = {"--curve-server", "/k/ingest.cert", "--curve-cert", "/k/me", NULL};
    assert_int_equal(check(&o, err, curve), 0);
    send_opts_client(&o, ARGC, ARGV, &co);
    assert_string_equal(co.curve_server, "/k/ingest.cert");
    assert_string_equal(co.curve_cert, "/k/me");
}

static void test_spool(void **state)
{
    (void)state;
    send_options_t o;
    client_options_t co;
    char err[256];
    const char *const off[] = {"--spool", "off", NULL};
    assert_int_equal(check(&o, err, off), 0);
    assert_int_equal(send_opts_client(&o, ARGC, ARGV, &co), 0);
    assert_null(co.spool_dir);

    const char *const dir[] = {"--spool", "/var/tmp/adw-spool", "--spool-max", "5", NULL};
    assert_int_equal(check(&o, err, dir), 0);
    assert_int_equal(send_opts_client(&o, ARGC, ARGV, &co), 0);
    assert_string_equal(co.spool_dir, "/var/tmp/adw-spool");
    assert_int_equal(co.spool_max, 5);

    /* Empty means unset: the default directory. */
    setenv("ADW_SPOOL_DIR", "", 1);
    const char *const none[] = {NULL};
    assert_int_equal(check(&o, err, none), 0);
    assert_int_equal(send_opts_client(&o, ARGC, ARGV, &co), 1);
    assert_null(co.spool_dir);
}

/* Every bounded number of the table, at its bound and one past it. */
static void test_limits(void **state)
{
    (void)state;
    send_options_t o;
    char err[256];
    const char *const t_max[] = {"--timeout-ms", "600000", NULL};
    assert_int_equal(load(&o, err, t_max), CONFIG_OK);
    assert_int_equal(o.timeout_ms, 600000);
    const char *const t_over[] = {"--timeout-ms", "600001", NULL};
    assert_int_equal(load(&o, err, t_over), -EINVAL);
    assert_non_null(strstr(err, "--timeout-ms"));
    assert_non_null(strstr(err, "out of range"));

    const char *const in_min[] = {"--max-input", "1k", NULL};
    assert_int_equal(load(&o, err, in_min), CONFIG_OK);
    assert_int_equal(o.max_input, 1024);
    const char *const in_under[] = {"--max-input", "1023", NULL};
    assert_int_equal(load(&o, err, in_under), -EINVAL);
    assert_non_null(strstr(err, "--max-input"));
    setenv("ADW_SEND_MAX_INPUT", "2G", 1);
    const char *const none[] = {NULL};
    assert_int_equal(load(&o, err, none), -EINVAL);
    assert_non_null(strstr(err, "ADW_SEND_MAX_INPUT"));
    setenv("ADW_SEND_MAX_INPUT", "1G", 1);
    assert_int_equal(load(&o, err, none), CONFIG_OK);
    assert_int_equal(o.max_input, 1 << 30);

    const char *const sp_zero[] = {"--spool-max", "0", NULL};
    assert_int_equal(load(&o, err, sp_zero), -EINVAL);
    assert_non_null(strstr(err, "--spool-max"));
    const char *const sp_over[] = {"--spool-max", "100000001", NULL};
    assert_int_equal(load(&o, err, sp_over), -EINVAL);
    const char *const sp_max[] = {"--spool-max", "100000000", NULL};
    assert_int_equal(load(&o, err, sp_max), CONFIG_OK);
    assert_int_equal(o.spool_max, 100000000);

    const char *const dur[] = {"--duration-ms", "-1", NULL};
    assert_int_equal(load(&o, err, dur), -EINVAL);
    const char *const dur0[] = {"--duration-ms", "0", NULL};
    assert_int_equal(load(&o, err, dur0), CONFIG_OK);
    assert_int_equal(o.duration_ms, 0);
}

static void test_unknown_flag_and_missing_value(void **state)
{
    (void)state;
    send_options_t o;
    char err[256];
    const char *const unknown[] = {"--hook", "--adwid", "r", NULL};
    assert_int_equal(load(&o, err, unknown), -EINVAL);
    assert_string_equal(err, "unknown option '--adwid' (see --help)");
    const char *const missing[] = {"--adw-id", NULL};
    assert_int_equal(load(&o, err, missing), -EINVAL);
    assert_string_equal(err, "option '--adw-id' needs a value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_hook_command_line, clear_env),
        cmocka_unit_test_setup(test_event_from_flags, clear_env),
        cmocka_unit_test_setup(test_modes_exclude_each_other, clear_env),
        cmocka_unit_test_setup(test_event_flags_refused_with_a_mode, clear_env),
        cmocka_unit_test_setup(test_tee_goes_with_stream_json, clear_env),
        cmocka_unit_test_setup(test_transport, clear_env),
        cmocka_unit_test_setup(test_spool, clear_env),
        cmocka_unit_test_setup(test_limits, clear_env),
        cmocka_unit_test_setup(test_unknown_flag_and_missing_value, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
