/* config: one declarative table per program drives flags, environment, defaults and --help.
 *
 * Precedence: a flag on the command line, else the environment variable, else the default.
 * Values are written into the caller's options struct at each entry's offset.
 */
#ifndef ADW_CONFIG_H
#define ADW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum config_type {
    CONFIG_STRING, /* const char * (points into argv, environ or the table; never freed) */
    CONFIG_INT,    /* int64_t within [min, max]; accepts k/M/G (x1024) suffixes when bytes */
    CONFIG_BOOL,   /* int 0/1; a bare --flag means 1; accepts 1/0/true/false/yes/no/on/off */
} config_type_t;

/* One of these per setting of a program. */
typedef struct config_option_t {
    const char *flag; /* long flag without the dashes, e.g. "http" */
    const char *env;  /* environment variable, or NULL for flag-only settings */
    config_type_t type;
    int bytes;        /* CONFIG_INT: accept k/M/G suffixes */
    const char *def;  /* default as text; NULL means unset (strings stay NULL) */
    size_t offset;    /* offsetof(options struct, field) */
    int64_t min, max; /* bounds for CONFIG_INT (both 0: no bounds) */
    const char *doc;  /* one line for --help */
} config_option_t;

/* One of these per program. */
typedef struct config_program_t {
    const char *name;    /* "adw-ingest" */
    const char *summary; /* one line shown by --help */
    const char *usage;   /* usage line after the program name, e.g. "[options]" */
    const config_option_t *options;
    size_t noptions;
} config_program_t;

#define CONFIG_OK 0
#define CONFIG_EXIT 1 /* --help or --version was printed: exit 0 */

/* Fills opts from argv, the environment and the defaults.
 * Returns CONFIG_OK, CONFIG_EXIT after printing help or version to stdout, or -EINVAL with a
 * one-line reason in err (unknown flag, bad number, out of range, missing value). Positional
 * arguments are refused unless positional is non-NULL, in which case argv indexes of them are
 * stored there (up to *npositional on input; count on output). */
int config_load(const config_program_t *prog, void *opts, int argc, char **argv, int *positional,
                int *npositional, char *err, size_t errlen);

/* The rows of the options every program has: --log-level (default level) and --log-format, in
 * the fields log_level and log_format of opts_t. */
// clang-format off
#define CONFIG_LOG_OPTIONS(opts_t, level)                                                          \
    {.flag = "log-level", .env = "ADW_LOG_LEVEL", .type = CONFIG_STRING, .def = (level),           \
     .offset = offsetof(opts_t, log_level), .doc = "debug, info, warn or error"},                  \
    {.flag = "log-format", .env = "ADW_LOG_FORMAT", .type = CONFIG_STRING, .def = "text",          \
     .offset = offsetof(opts_t, log_format), .doc = "text or json"}
// clang-format on

/* What a program does first: config_load (no positional arguments), then log_init with the
 * level and format the options name (*log_format NULL or log_format NULL: text). Returns
 * CONFIG_OK, CONFIG_EXIT after --help or --version (exit 0), or -EINVAL after printing
 * "program: reason" on stderr (bad usage). */
int config_start(const config_program_t *prog, void *opts, int argc, char **argv,
                 const char *const *log_level, const char *const *log_format);

/* Prints --help text for prog to f (each flag with its environment variable and default). */
void config_print_help(const config_program_t *prog, void *f);

/* Parses a byte size like "1048576", "64k", "8M". Returns 0 or -EINVAL. */
int config_parse_size(const char *s, int64_t *out);

#endif
