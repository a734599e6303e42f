/* Unit tests for shared/config: precedence (flag > environment > default), every type and
 * its refusals with the one-line reason, ranges, byte sizes, and --help listing every
 * option with its environment variable and default. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

typedef struct opts_t {
    const char *name;
    const char *secret;
    int64_t count;
    int64_t size;
    int verbose;
    int64_t offset;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const config_option_t OPTIONS[] = {
    {.flag = "name",
     .env = "TCFG_NAME",
     .type = CONFIG_STRING,
     .def = "default-name",
     .offset = OFF(name),
     .doc = "a name"},
    {.flag = "secret",
     .env = "TCFG_SECRET",
     .type = CONFIG_STRING,
     .offset = OFF(secret),
     .doc = "unset by default"},
    {.flag = "count",
     .env = "TCFG_COUNT",
     .type = CONFIG_INT,
     .def = "10",
     .offset = OFF(count),
     .min = 1,
     .max = 100,
     .doc = "between 1 and 100"},
    {.flag = "size",
     .env = "TCFG_SIZE",
     .type = CONFIG_INT,
     .def = "1M",
     .offset = OFF(size),
     .min = 1024,
     .max = 64 << 20,
     .bytes = 1,
     .doc = "a byte size"},
    {.flag = "verbose",
     .env = "TCFG_VERBOSE",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = OFF(verbose),
     .doc = "talk more"},
    {.flag = "offset",
     .type = CONFIG_INT,
     .def = "-5",
     .offset = OFF(offset),
     .doc = "flag only, unbounded"},
};
static const config_program_t PROG = {
    .name = "adw-test",
    .summary = "Tests the configuration table.",
    .usage = "[options] [FILE]",
    .options = OPTIONS,
    .noptions = sizeof OPTIONS / sizeof OPTIONS[0],
};

static const char *const ENVS[] = {"TCFG_NAME", "TCFG_SECRET", "TCFG_COUNT", "TCFG_SIZE",
                                   "TCFG_VERBOSE"};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ENVS / sizeof ENVS[0]; i++)
        unsetenv(ENVS[i]);
    return 0;
}

/* Loads argv (NULL-terminated, without argv[0]) into *o; returns config_load's result. */
static int load_v(opts_t *o, char *err, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "adw-test";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    memset(o, 0, sizeof *o);
    err[0] = '\0';
    return config_load(&PROG, o, argc, argv, NULL, NULL, err, 256);
}

#define LOAD(o, err, ...) load_v(o, err, (const char *const[]){__VA_ARGS__, NULL})
#define LOAD0(o, err) load_v(o, err, (const char *const[]){NULL})

static void expect_error(int rc, const char *err, const char *want)
{
    if (rc != -EINVAL || !strstr(err, want))
        fail_msg("want -EINVAL with \"%s\", got %d \"%s\"", want, rc, err);
    assert_null(strchr(err, '\n'));
}

static void test_defaults(void **state)
{
    (void)state;
    opts_t o;
    char err[256];
    assert_int_equal(LOAD0(&o, err), CONFIG_OK);
    assert_string_equal(o.name, "default-name");
    assert_null(o.secret);
    assert_int_equal(o.count, 10);
    assert_int_equal(o.size, 1048576);
    assert_int_equal(o.verbose, 0);
    assert_int_equal(o.offset, -5);
}

static void test_precedence(void **state)
{
    (void)state;
    opts_t o;
    char err[256];
    setenv("TCFG_NAME", "from-env", 1);
    setenv("TCFG_COUNT", "20", 1);
    setenv("TCFG_SIZE", "64k", 1);
    setenv("TCFG_VERBOSE", "yes", 1);
    setenv("TCFG_SECRET", "s3", 1);
    assert_int_equal(LOAD0(&o, err), CONFIG_OK);
    assert_string_equal(o.name, "from-env");
    assert_int_equal(o.count, 20);
    assert_int_equal(o.size, 65536);
    assert_int_equal(o.verbose, 1);
    assert_string_equal(o.secret, "s3");

    /* Flags beat the environment, in both spellings. */
    assert_int_equal(
        LOAD(&o, err, "--name", "from-flag", "--count=30", "--size", "2M", "--verbose=off"),
        CONFIG_OK);
    assert_string_equal(o.name, "from-flag");
    assert_int_equal(o.count, 30);
    assert_int_equal(o.size, 2 << 20);
    assert_int_equal(o.verbose, 0);
    assert_string_equal(o.secret, "s3");

    /* The last of a repeated flag wins. */
    assert_int_equal(LOAD(&o, err, "--count", "3", "--count", "4"), CONFIG_OK);
    assert_int_equal(o.count, 4);

    /* A bad environment value is an error even when a flag would override it: the operator
     * hears about the broken setting. */
    setenv("TCFG_COUNT", "many", 1);
    expect_error(LOAD(&o, err, "--count", "5"), err, "TCFG_COUNT: expected an integer, got 'many'");

    /* An empty environment value counts as unset for numbers and booleans, as set for strings. */
    setenv("TCFG_COUNT", "", 1);
    setenv("TCFG_VERBOSE", "", 1);
    setenv("TCFG_NAME", "", 1);
    assert_int_equal(LOAD0(&o, err), CONFIG_OK);
    assert_int_equal(o.count, 10);
    assert_int_equal(o.verbose, 0);
    assert_string_equal(o.name, "");
    clear_env(NULL);
}

static void test_numbers(void **state)
{
    (void)state;
    opts_t o;
    char err[256];
    static const char *const bad_int[] = {
        "", "x", "1x", "1.5", "0x10", "10 ", "1e3", "--5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_int / sizeof bad_int[0]; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--count=%s", bad_int[i]);
        char want[96];
        snprintf(want, sizeof want, "--count: expected an integer, got '%s'", bad_int[i]);
        expect_error(LOAD(&o, err, arg), err, want);
    }
    /* Ranges are inclusive. */
    assert_int_equal(LOAD(&o, err, "--count=1"), CONFIG_OK);
    assert_int_equal(LOAD(&o, err, "--count=100"), CONFIG_OK);
    expect_error(LOAD(&o, err, "--count=0"), err, "--count: 0 is out of range [1, 100]");
    expect_error(LOAD(&o, err, "--count=101"), err, "--count: 101 is out of range [1, 100]");
    expect_error(LOAD(&o, err, "--count=-1"), err, "out of range");
    setenv("TCFG_COUNT", "1000", 1);
    expect_error(LOAD0(&o, err), err, "TCFG_COUNT: 1000 is out of range [1, 100]");
    clear_env(NULL);
    /* Unbounded (min = max = 0) takes any 64-bit value. */
    assert_int_equal(LOAD(&o, err, "--offset=-9223372036854775808"), CONFIG_OK);
    assert_int_equal(o.offset, INT64_MIN);
    assert_int_equal(LOAD(&o, err, "--offset", "9223372036854775807"), CONFIG_OK);
    assert_int_equal(o.offset, INT64_MAX);

    /* Byte sizes. */
    static const struct {
        const char *text;
        int64_t v;
    } sizes[] = {{"1024", 1024},    {"1k", 1024},    {"1K", 1024},    {"2kb", 2048},
                 {"3KiB", 3072},    {"1M", 1048576}, {"1m", 1048576}, {"1MiB", 1048576},
                 {"64M", 64 << 20}, {"16384", 16384}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--size=%s", sizes[i].text);
        assert_int_equal(LOAD(&o, err, arg), CONFIG_OK);
        assert_int_equal(o.size, sizes[i].v);
    }
    static const char *const bad_size[] = {"", "k", "1x", "1.5M", "1kk", "1Mb2", "M1", "1 k"};
    for (size_t i = 0; i < sizeof bad_size / sizeof bad_size[0]; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--size=%s", bad_size[i]);
        char want[96];
        snprintf(want, sizeof want,
                 "--size: expected a byte size such as 65536, 64k or 1M, got '%s'", bad_size[i]);
        expect_error(LOAD(&o, err, arg), err, want);
    }
    expect_error(LOAD(&o, err, "--size=1G"), err, "--size: 1073741824 is out of range");
    expect_error(LOAD(&o, err, "--size=1023"), err, "out of range [1024, 67108864]");

    int64_t v = 0;
    assert_int_equal(config_parse_size("8G", &v), 0);
    assert_int_equal(v, 8LL << 30);
    assert_int_equal(config_parse_size("9223372036854775807", &v), 0);
    assert_int_equal(v, INT64_MAX);
    assert_int_equal(config_parse_size("9007199254740992k", &v), -EINVAL); /* overflows */
    assert_int_equal(config_parse_size("8589934592G", &v), -EINVAL);
    assert_int_equal(config_parse_size(NULL, &v), -EINVAL);
    assert_int_equal(config_parse_size("", &v), -EINVAL);
}

static void test_bools(void **state)
{
    (void)state;
    opts_t o;
    char err[256];
    static const char *const yes[] = {"1", "true", "TRUE", "yes", "on", "On"};
    static const char *const no[] = {"0", "false", "no", "off", "OFF"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        setenv("TCFG_VERBOSE", yes[i], 1);
        assert_int_equal(LOAD0(&o, err), CONFIG_OK);
        assert_int_equal(o.verbose, 1);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        setenv("TCFG_VERBOSE", no[i], 1);
        assert_int_equal(LOAD(&o, err, "--verbose"), CONFIG_OK); /* the flag wins */
        assert_int_equal(o.verbose, 1);
        assert_int_equal(LOAD0(&o, err), CONFIG_OK);
        assert_int_equal(o.verbose, 0);
    }
    setenv("TCFG_VERBOSE", "maybe", 1);
    expect_error(LOAD0(&o, err), err, "TCFG_VERBOSE: expected true or false, got 'maybe'");
    clear_env(NULL);
    expect_error(LOAD(&o, err, "--verbose=2"), err, "--verbose: expected true or false, got '2'");
}

static void test_flags(void **state)
{
    (void)state;
    opts_t o;
    char err[256];
    expect_error(LOAD(&o, err, "--nope"), err, "unknown option '--nope' (see --help)");
    expect_error(LOAD(&o, err, "--nope=1"), err, "unknown option '--nope'");
    expect_error(LOAD(&o, err, "--nam=x"), err, "unknown option '--nam'"); /* no prefixes */
    expect_error(LOAD(&o, err, "--count"), err, "option '--count' needs a value");
    expect_error(LOAD(&o, err, "file.txt"), err, "unexpected argument 'file.txt'");
    expect_error(LOAD(&o, err, "-v"), err, "unexpected argument '-v'");
    expect_error(LOAD(&o, err, "--"), err, "unexpected argument '--'");
    /* A flag's value may start with dashes. */
    assert_int_equal(LOAD(&o, err, "--name", "--odd"), CONFIG_OK);
    assert_string_equal(o.name, "--odd");
    assert_int_equal(LOAD(&o, err, "--name="), CONFIG_OK);
    assert_string_equal(o.name, "");

    /* Positional arguments, when the caller takes them. */
    char *argv[] = {"adw-test", "a", "--count=2", "b", "c", NULL};
    int pos[2], npos = 2;
    memset(&o, 0, sizeof o);
    assert_int_equal(config_load(&PROG, &o, 5, argv, pos, &npos, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "unexpected argument 'c'"));
    npos = 3;
    int pos3[3];
    assert_int_equal(config_load(&PROG, &o, 5, argv, pos3, &npos, err, sizeof err), CONFIG_OK);
    assert_int_equal(npos, 3);
    assert_int_equal(pos3[0], 1);
    assert_int_equal(pos3[1], 3);
    assert_int_equal(pos3[2], 4);
    assert_int_equal(o.count, 2);
}

static void test_help(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print_help(&PROG, f);
    fclose(f);
    assert_non_null(strstr(text, "adw-test " ADW_VERSION "\n"));
    assert_non_null(strstr(text, "Tests the configuration table."));
    assert_non_null(strstr(text, "Usage: adw-test [options] [FILE]"));
    for (size_t i = 0; i < PROG.noptions; i++) {
        const config_option_t *o = &PROG.options[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", o->flag);
        if (!strstr(text, flag) || !strstr(text, o->doc))
            fail_msg("--help lacks %s or its doc", flag);
        char env[96];
        snprintf(env, sizeof env, "env %s, default %s", o->env ? o->env : "(none)",
                 o->def ? o->def : "unset");
        if (!strstr(text, env))
            fail_msg("--help lacks \"%s\":\n%s", env, text);
    }
    assert_non_null(strstr(text, "--help"));
    assert_non_null(strstr(text, "--version"));
    free(text);

    opts_t o;
    char err[256];
    assert_int_equal(LOAD(&o, err, "--help"), CONFIG_EXIT);
    assert_int_equal(LOAD(&o, err, "-h"), CONFIG_EXIT);
    assert_int_equal(LOAD(&o, err, "--version"), CONFIG_EXIT);
    /* --help wins over a bad flag after it, but not over one before it. */
    assert_int_equal(LOAD(&o, err, "--help", "--nope"), CONFIG_EXIT);
    expect_error(LOAD(&o, err, "--nope", "--help"), err, "unknown option");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_precedence, clear_env),
        cmocka_unit_test_setup(test_numbers, clear_env),
        cmocka_unit_test_setup(test_bools, clear_env),
        cmocka_unit_test_setup(test_flags, clear_env),
        cmocka_unit_test_setup(test_help, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
