#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

int config_parse_size(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    int64_t mul = 1;
    if (*end) {
        switch (tolower((unsigned char)*end)) {
        case 'k':
            mul = 1024;
            break;
        case 'm':
            mul = INT64_C(1024) * 1024;
            break;
        case 'g':
            mul = 1024LL * 1024 * 1024;
            break;
        default:
            return -EINVAL;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            return -EINVAL;
    }
    if (v < 0 ? v < INT64_MIN / mul : v > INT64_MAX / mul)
        return -EINVAL;
    *out = v * mul;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

static int set_value(const config_option_t *o, void *opts, const char *val, const char *from,
                     char *err, size_t errlen)
{
    char *field = (char *)opts + o->offset;
    switch (o->type) {
    case CONFIG_STRING:
        *(const char **)field = val;
        return 0;
    case CONFIG_BOOL: {
        int b;
        if (!val || parse_bool(val, &b)) {
            snprintf(err, errlen, "%s: expected true or false, got '%s'", from, val ? val : "");
            return -EINVAL;
        }
        *(int *)field = b;
        return 0;
    }
    case CONFIG_INT: {
        int64_t v = 0;
        int rc;
        if (o->bytes) {
            rc = config_parse_size(val, &v);
        } else {
            char *end = NULL;
            errno = 0;
            long long l = val ? strtoll(val, &end, 10) : 0;
            rc = (!val || errno || end == val || *end) ? -EINVAL : 0;
            v = l;
        }
        if (rc) {
            snprintf(err, errlen, "%s: expected %s, got '%s'", from,
                     o->bytes ? "a byte size such as 65536, 64k or 1M" : "an integer",
                     val ? val : "");
            return -EINVAL;
        }
        if ((o->min || o->max) && (v < o->min || v > o->max)) {
            snprintf(err, errlen, "%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
                     from, v, o->min, o->max);
            return -EINVAL;
        }
        *(int64_t *)field = v;
        return 0;
    }
    }
    return -EINVAL;
}

void config_print_help(const config_program_t *prog, void *fp)
{
    FILE *f = fp;
    fprintf(f, "%s %s\n%s\n\nUsage: %s %s\n\nOptions (flag, environment variable, default):\n",
            prog->name, ADW_VERSION, prog->summary, prog->name, prog->usage ? prog->usage : "");
    for (size_t i = 0; i < prog->noptions; i++) {
        const config_option_t *o = &prog->options[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", o->flag,
                 o->type == CONFIG_BOOL  ? ""
                 : o->type == CONFIG_INT ? " N"
                                         : " VALUE");
        fprintf(f, "  %-26s %s\n", flag, o->doc);
        fprintf(f, "  %-26s env %s, default %s\n", "", o->env ? o->env : "(none)",
                o->def ? (*o->def ? o->def : "\"\"") : "unset");
    }
    fprintf(f, "  %-26s %s\n  %-26s %s\n", "--help", "show this help and exit", "--version",
            "show the version and exit");
}

int config_load(const config_program_t *prog, void *opts, int argc, char **argv, int *positional,
                int *npositional, char *err, size_t errlen)
{
    int maxpos = npositional ? *npositional : 0;
    int npos = 0;
    /* Defaults, then environment. */
    for (size_t i = 0; i < prog->noptions; i++) {
        const config_option_t *o = &prog->options[i];
        char from[96];
        if (o->def && set_value(o, opts, o->def, o->flag, err, errlen))
            return -EINVAL;
        const char *env = o->env ? getenv(o->env) : NULL;
        if (env && (*env || o->type == CONFIG_STRING)) {
            snprintf(from, sizeof from, "%s", o->env);
            if (set_value(o, opts, env, from, err, errlen))
                return -EINVAL;
        }
    }
    /* Flags. */
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            config_print_help(prog, stdout);
            return CONFIG_EXIT;
        }
        if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
            printf("%s %s\n", prog->name, ADW_VERSION);
            return CONFIG_EXIT;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (positional && npos < maxpos) {
                positional[npos++] = a;
                continue;
            }
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return -EINVAL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const config_option_t *o = NULL;
        for (size_t i = 0; i < prog->noptions; i++) {
            if (strlen(prog->options[i].flag) == nlen &&
                !strncmp(prog->options[i].flag, name, nlen)) {
                o = &prog->options[i];
                break;
            }
        }
        if (!o) {
            snprintf(err, errlen, "unknown option '--%.*s' (see --help)", (int)nlen, name);
            return -EINVAL;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type == CONFIG_BOOL)
            val = "1";
        if (!val) {
            if (a + 1 >= argc) {
                snprintf(err, errlen, "option '--%s' needs a value", o->flag);
                return -EINVAL;
            }
            val = argv[++a];
        }
        char from[96];
        snprintf(from, sizeof from, "--%s", o->flag);
        if (set_value(o, opts, val, from, err, errlen))
            return -EINVAL;
    }
    if (npositional)
        *npositional = npos;
    return CONFIG_OK;
}

int config_start(const config_program_t *prog, void *opts, int argc, char **argv,
                 const char *const *log_level, const char *const *log_format)
{
    char err[512];
    int rc = config_load(prog, opts, argc, argv, NULL, NULL, err, sizeof err);
    if (rc == CONFIG_EXIT)
        return CONFIG_EXIT;
    if (rc) {
        fprintf(stderr, "%s: %s\n", prog->name, err);
        return -EINVAL;
    }
    const char *format = log_format && *log_format ? *log_format : "text";
    if (log_init(prog->name, *log_level, format)) {
        fprintf(stderr, "%s: ADW_LOG_LEVEL or ADW_LOG_FORMAT is invalid\n", prog->name);
        return -EINVAL;
    }
    return CONFIG_OK;
}
