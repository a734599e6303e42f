#include "tokspec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

void tokspec_trim(const char **s, size_t *len)
{
    while (*len && blank(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && blank((*s)[*len - 1]))
        (*len)--;
}

int tokspec_next_prefix(const char **p, const char *end, const char **item, size_t *len)
{
    if (*p > end)
        return 0;
    const char *q = *p;
    while (q < end && *q != ',')
        q++;
    *item = *p;
    *len = (size_t)(q - *p);
    tokspec_trim(item, len);
    *p = q + 1;
    return 1;
}

static int prefix_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

int tokspec_prefix_valid(const char *p, size_t len)
{
    int ok = len >= 1 && len <= FILTER_VALUE_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = prefix_char(p[i]);
    return ok;
}

int tokspec_token_valid(const char *t, size_t len, size_t max)
{
    int bad = len == 0 || len > max;
    for (size_t i = 0; i < len; i++)
        bad |= t[i] <= ' ' || t[i] == 0x7f || t[i] == ',' || t[i] == ';';
    return !bad;
}

/* Reads the file named by path into a new string (owned by the caller). NULL with a reason. */
static char *read_file(const char *path, const char *what, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s file %s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *text = malloc(TOKSPEC_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, TOKSPEC_FILE_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!text || bad || n > TOKSPEC_FILE_MAX) {
        snprintf(err, errlen, "%s file %s: %s", what, path,
                 !text ? "out of memory"
                 : bad ? "cannot read"
                       : "larger than 64 KiB");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

int tokspec_parse(const char *spec, const char *what, const char *shape, tokspec_entry_fn add,
                  void *ctx, char *err, size_t errlen)
{
    int from_file = spec[0] == '@';
    char *text = from_file ? read_file(spec + 1, what, err, errlen) : strdup(spec);
    if (!text) {
        if (!from_file)
            snprintf(err, errlen, "out of memory");
        return from_file ? -EINVAL : -ENOMEM;
    }
    int rc = 0;
    size_t num = 0;
    for (char *p = text; *p && !rc;) {
        size_t len = strcspn(p, ";\n");
        const char *e = p;
        p += len + (p[len] != '\0');
        tokspec_trim(&e, &len);
        if (!len || *e == '#')
            continue;
        num++;
        const char *eq = NULL;
        for (size_t i = 0; i < len; i++)
            if (e[i] == '=')
                eq = e + i;
        if (!eq) {
            snprintf(err, errlen, "%s entry %zu: want %s", what, num, shape);
            rc = -EINVAL;
            break;
        }
        tokspec_entry_t en = {.num = num,
                              .token = e,
                              .token_len = (size_t)(eq - e),
                              .prefixes = eq + 1,
                              .end = e + len};
        tokspec_trim(&en.token, &en.token_len);
        rc = add(ctx, &en, err, errlen);
    }
    if (!rc && !num) {
        snprintf(err, errlen, "%s names no token", what);
        rc = -EINVAL;
    }
    explicit_bzero(text, strlen(text));
    free(text);
    return rc;
}
