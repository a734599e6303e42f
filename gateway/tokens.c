#include "tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "tokspec.h"

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

#define WHAT "ADW_GATEWAY_READ_TOKENS"

/* Takes in one entry ("token=p1,p2") for the table ctx (a tokens_t). Returns 0 or -EINVAL
 * (reason in err). */
static int add_entry(void *ctx, const tokspec_entry_t *e, char *err, size_t errlen)
{
    tokens_t *t = ctx;
    if (t->n == TOKENS_MAX) {
        snprintf(err, errlen, WHAT ": at most %d tokens", TOKENS_MAX);
        return -EINVAL;
    }
    if (!tokspec_token_valid(e->token, e->token_len, TOKENS_LEN_MAX)) {
        snprintf(err, errlen,
                 WHAT " entry %zu: a token is 1 to %d printable characters without spaces or "
                      "commas",
                 e->num, TOKENS_LEN_MAX);
        return -EINVAL;
    }
    scoped_t sc = {0};
    sc.token = strndup(e->token, e->token_len);
    if (!sc.token)
        goto nomem;
    const char *p = e->prefixes, *pre;
    size_t pl;
    while (tokspec_next_prefix(&p, e->end, &pre, &pl)) {
        if (!pl)
            continue;
        if (!tokspec_prefix_valid(pre, pl)) {
            snprintf(err, errlen,
                     WHAT " entry %zu: prefix \"%.*s\" must be 1 to %d characters of "
                          "[A-Za-z0-9._:-]",
                     e->num, (int)(pl > 64 ? 64 : pl), pre, FILTER_VALUE_MAX);
            goto fail;
        }
        char **v = realloc(sc.prefixes.v, (sc.prefixes.n + 1) * sizeof *v);
        if (!v)
            goto nomem;
        sc.prefixes.v = v;
        if (!(v[sc.prefixes.n] = strndup(pre, pl)))
            goto nomem;
        sc.prefixes.n++;
    }
    if (!sc.prefixes.n) {
        snprintf(err, errlen,
                 WHAT " entry %zu: a read token needs at least one adw_id prefix "
                      "(ADW_GATEWAY_TOKEN reads everything)",
                 e->num);
        goto fail;
    }
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].token, sc.token)) {
            snprintf(err, errlen, WHAT " entry %zu: the same token twice", e->num);
            goto fail;
        }
    if (t->full && !strcmp(t->full, sc.token)) {
        snprintf(err, errlen, WHAT " entry %zu: a read token equals ADW_GATEWAY_TOKEN", e->num);
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

tokens_t *tokens_new(const char *full, const char *read_spec, char *err, size_t errlen)
{
    tokens_t *t = calloc(1, sizeof *t);
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
    if (read_spec && *read_spec &&
        tokspec_parse(read_spec, WHAT, "token=prefix[,prefix...]", add_entry, t, err, errlen))
        goto fail;
    return t;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
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
