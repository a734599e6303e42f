#include "tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

/* One of these per read token. */
typedef struct scoped_t {
    char *token;
    filter_list_t prefixes;
} scoped_t;

struct tokens_t {
    char *full; /* NULL when unset */
    scoped_t *v;
    size_t n;
};

static int prefix_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

static char *trimmed(const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t' || *s == '\r')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

/* Parses one entry e[0..len) ("token=p1,p2") into t. Returns 0 or -EINVAL/-ENOMEM (reason in
 * err; entry numbers count from 1). */
static int add_entry(tokens_t *t, const char *e, size_t len, size_t num, char *err, size_t errlen)
{
    const char *eq = NULL;
    for (size_t i = 0; i < len; i++)
        if (e[i] == '=')
            eq = e + i;
    if (!eq) {
        snprintf(err, errlen, "ADW_GATEWAY_READ_TOKENS entry %zu: want token=prefix[,prefix...]",
                 num);
        return -EINVAL;
    }
    if (t->n == TOKENS_MAX) {
        snprintf(err, errlen, "ADW_GATEWAY_READ_TOKENS: at most %d tokens", TOKENS_MAX);
        return -EINVAL;
    }
    scoped_t sc = {0};
    sc.token = trimmed(e, (size_t)(eq - e));
    if (!sc.token)
        goto nomem;
    size_t tl = strlen(sc.token);
    int bad = tl == 0 || tl > TOKENS_LEN_MAX;
    for (const char *c = sc.token; *c; c++)
        bad |= *c <= ' ' || *c == 0x7f || *c == ',';
    if (bad) {
        snprintf(err, errlen,
                 "ADW_GATEWAY_READ_TOKENS entry %zu: a token is 1 to %d printable characters "
                 "without spaces or commas",
                 num, TOKENS_LEN_MAX);
        goto fail;
    }
    const char *p = eq + 1, *end = e + len;
    while (p <= end) {
        const char *q = p;
        while (q < end && *q != ',')
            q++;
        char *pre = trimmed(p, (size_t)(q - p));
        if (!pre)
            goto nomem;
        size_t pl = strlen(pre);
        int ok = pl >= 1 && pl <= FILTER_VALUE_MAX;
        for (size_t i = 0; ok && i < pl; i++)
            ok = prefix_char(pre[i]);
        if (!ok && pl) {
            snprintf(err, errlen,
                     "ADW_GATEWAY_READ_TOKENS entry %zu: prefix \"%.64s\" must be 1 to %d "
                     "characters of [A-Za-z0-9._:-]",
                     num, pre, FILTER_VALUE_MAX);
            free(pre);
            goto fail;
        }
        if (!pl) {
            free(pre);
        } else {
            char **v = realloc(sc.prefixes.v, (sc.prefixes.n + 1) * sizeof *v);
            if (!v) {
                free(pre);
                goto nomem;
            }
            sc.prefixes.v = v;
            sc.prefixes.v[sc.prefixes.n++] = pre;
        }
        p = q + 1;
    }
    if (!sc.prefixes.n) {
        snprintf(err, errlen,
                 "ADW_GATEWAY_READ_TOKENS entry %zu: a read token needs at least one adw_id prefix "
                 "(ADW_GATEWAY_TOKEN reads everything)",
                 num);
        goto fail;
    }
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].token, sc.token)) {
            snprintf(err, errlen, "ADW_GATEWAY_READ_TOKENS entry %zu: the same token twice", num);
            goto fail;
        }
    if (t->full && !strcmp(t->full, sc.token)) {
        snprintf(err, errlen,
                 "ADW_GATEWAY_READ_TOKENS entry %zu: a read token equals ADW_GATEWAY_TOKEN", num);
        goto fail;
    }
    scoped_t *nv = realloc(t->v, (t->n + 1) * sizeof *nv);
    if (!nv)
        goto nomem;
    t->v = nv;
    t->v[t->n++] = sc;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    free(sc.token);
    for (size_t i = 0; i < sc.prefixes.n; i++)
        free(sc.prefixes.v[i]);
    free(sc.prefixes.v);
    return -EINVAL;
}

/* Reads the file named by path into a new string (owned by the caller). NULL with a reason. */
static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "ADW_GATEWAY_READ_TOKENS file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(TOKENS_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, TOKENS_FILE_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!text || bad || n > TOKENS_FILE_MAX) {
        snprintf(err, errlen, "ADW_GATEWAY_READ_TOKENS file %s: %s", path,
                 !text ? "out of memory"
                 : bad ? "cannot read"
                       : "larger than 64 KiB");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

tokens_t *tokens_new(const char *full, const char *read_spec, char *err, size_t errlen)
{
    tokens_t *t = calloc(1, sizeof *t);
    char *text = NULL;
    if (!t)
        goto nomem;
    if (full && *full) {
        if (strlen(full) > TOKENS_LEN_MAX) {
            snprintf(err, errlen, "ADW_GATEWAY_TOKEN is longer than %d bytes", TOKENS_LEN_MAX);
            goto fail;
        }
        t->full = strdup(full);
        if (!t->full)
            goto nomem;
    }
    if (!read_spec || !*read_spec)
        return t;
    int from_file = read_spec[0] == '@';
    text = from_file ? read_file(read_spec + 1, err, errlen) : strdup(read_spec);
    if (!text) {
        if (!from_file)
            goto nomem;
        goto fail;
    }
    size_t num = 0;
    for (char *p = text; *p;) {
        size_t len = strcspn(p, ";\n");
        char *e = p;
        p += len + (p[len] != '\0');
        while (len && (*e == ' ' || *e == '\t' || *e == '\r')) {
            e++;
            len--;
        }
        if (!len || *e == '#' || strspn(e, " \t\r") >= len)
            continue;
        if (add_entry(t, e, len, ++num, err, errlen))
            goto fail;
    }
    if (!t->n) {
        snprintf(err, errlen, "ADW_GATEWAY_READ_TOKENS names no token");
        goto fail;
    }
    free(text);
    return t;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    free(text);
    tokens_destroy(&t);
    return NULL;
}

void tokens_destroy(tokens_t **tp)
{
    if (!tp || !*tp)
        return;
    tokens_t *t = *tp;
    *tp = NULL;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].token);
        for (size_t k = 0; k < t->v[i].prefixes.n; k++)
            free(t->v[i].prefixes.v[k]);
        free(t->v[i].prefixes.v);
    }
    free(t->v);
    free(t->full);
    free(t);
}

int tokens_required(const tokens_t *t)
{
    return t->full || t->n;
}

size_t tokens_scoped_count(const tokens_t *t)
{
    return t->n;
}

tokens_access_t tokens_check(const tokens_t *t, const char *got, size_t glen,
                             const filter_list_t **scope)
{
    *scope = NULL;
    if (!tokens_required(t))
        return TOKENS_FULL;
    if (!got)
        return TOKENS_REFUSED;
    /* Every token is compared, so the time does not depend on which one matches. */
    int full = t->full ? auth_token_equal(got, glen, t->full) : 0;
    size_t match = t->n;
    for (size_t i = 0; i < t->n; i++) {
        int eq = auth_token_equal(got, glen, t->v[i].token);
        match = eq ? i : match;
    }
    if (full)
        return TOKENS_FULL;
    if (match < t->n) {
        *scope = &t->v[match].prefixes;
        return TOKENS_SCOPED;
    }
    return TOKENS_REFUSED;
}
