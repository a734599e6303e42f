#include "decide.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "tokspec.h"

/* One of these per decide token. */
typedef struct dentry_t {
    char *token;
    decide_entry_t e;
} dentry_t;

struct decide_t {
    dentry_t *v;
    size_t n;
};

#define WHAT "ADW_GATEWAY_DECIDE_TOKENS"

static int alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int name_char(char c)
{
    return alnum(c) || c == '.' || c == '_' || c == '@' || c == '-';
}

void decide_hash_name(const char *token, size_t len, char *out, size_t outlen)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, len, md);
    snprintf(out, outlen, "token-%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2], md[3], md[4],
             md[5]);
}

static void entry_free(dentry_t *de)
{
    if (de->token) {
        explicit_bzero(de->token, strlen(de->token));
        free(de->token);
    }
    for (size_t i = 0; i < de->e.scope.n; i++)
        free(de->e.scope.v[i]);
    free(de->e.scope.v);
    memset(de, 0, sizeof *de);
}

/* Adds prefix p[0..len) to de. Returns 0, -EINVAL (reason in err) or -ENOMEM. */
static int add_prefix(dentry_t *de, const char *p, size_t len, size_t num, char *err, size_t errlen)
{
    if (len == 1 && *p == '*') {
        de->e.all = 1;
        return 0;
    }
    if (!tokspec_prefix_valid(p, len)) {
        snprintf(err, errlen,
                 WHAT " entry %zu: prefix \"%.*s\" must be * or 1 to %d characters of "
                      "[A-Za-z0-9._:-]",
                 num, (int)(len > 64 ? 64 : len), p, FILTER_VALUE_MAX);
        return -EINVAL;
    }
    char **v = realloc(de->e.scope.v, (de->e.scope.n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    de->e.scope.v = v;
    if (!(v[de->e.scope.n] = strndup(p, len)))
        return -ENOMEM;
    de->e.scope.n++;
    return 0;
}

/* Takes in one entry ("[name:]token=p1,p2") for the table ctx (a decide_t). Returns 0 or
 * -EINVAL/-ENOMEM (reason in err). */
static int add_entry(void *ctx, const tokspec_entry_t *en, char *err, size_t errlen)
{
    decide_t *d = ctx;
    size_t num = en->num;
    if (d->n == DECIDE_MAX) {
        snprintf(err, errlen, WHAT ": at most %d tokens", DECIDE_MAX);
        return -EINVAL;
    }
    dentry_t de = {0};
    const char *tok = en->token;
    size_t tl = en->token_len;
    const char *colon = memchr(tok, ':', tl);
    if (colon) {
        const char *name = tok;
        size_t nl = (size_t)(colon - tok);
        tokspec_trim(&name, &nl);
        int ok = nl >= 1 && nl <= DECIDE_NAME_MAX;
        for (size_t i = 0; ok && i < nl; i++)
            ok = name_char(name[i]);
        if (!ok) {
            snprintf(err, errlen,
                     WHAT " entry %zu: a name is 1 to %d characters of [A-Za-z0-9._@-] (a token "
                          "containing ':' must be named: name:token=prefixes)",
                     num, DECIDE_NAME_MAX);
            return -EINVAL;
        }
        memcpy(de.e.name, name, nl);
        de.e.name[nl] = '\0';
        tl -= (size_t)(colon + 1 - tok);
        tok = colon + 1;
        tokspec_trim(&tok, &tl);
    }
    if (!tokspec_token_valid(tok, tl, DECIDE_LEN_MAX)) {
        snprintf(err, errlen,
                 WHAT " entry %zu: a token is 1 to %d printable characters without spaces, "
                      "';' or ','",
                 num, DECIDE_LEN_MAX);
        return -EINVAL;
    }
    int rc = -ENOMEM;
    if (!(de.token = strndup(tok, tl)))
        goto fail;
    if (!de.e.name[0])
        decide_hash_name(tok, tl, de.e.name, sizeof de.e.name);
    const char *p = en->prefixes, *pre;
    size_t pl;
    while (tokspec_next_prefix(&p, en->end, &pre, &pl))
        if (pl && (rc = add_prefix(&de, pre, pl, num, err, errlen)))
            goto fail;
    rc = -EINVAL;
    if (!de.e.all && !de.e.scope.n) {
        snprintf(err, errlen,
                 WHAT " entry %zu: a decide token needs at least one adw_id prefix "
                      "(* for every run)",
                 num);
        goto fail;
    }
    if (de.e.all) { /* every run: the prefixes add nothing */
        for (size_t i = 0; i < de.e.scope.n; i++)
            free(de.e.scope.v[i]);
        free(de.e.scope.v);
        de.e.scope.v = NULL;
        de.e.scope.n = 0;
    }
    for (size_t i = 0; i < d->n; i++) {
        if (!strcmp(d->v[i].token, de.token)) {
            snprintf(err, errlen, WHAT " entry %zu: the same token twice", num);
            goto fail;
        }
        if (!strcmp(d->v[i].e.name, de.e.name)) {
            snprintf(err, errlen, WHAT " entry %zu: the name %s twice", num, de.e.name);
            goto fail;
        }
    }
    rc = -ENOMEM;
    dentry_t *nv = realloc(d->v, (d->n + 1) * sizeof *nv);
    if (!nv)
        goto fail;
    d->v = nv;
    d->v[d->n++] = de;
    return 0;
fail:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    entry_free(&de);
    return rc;
}

decide_t *decide_new(const char *spec, char *err, size_t errlen)
{
    decide_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (spec && *spec &&
        tokspec_parse(spec, WHAT, "[name:]token=prefix[,prefix...]", add_entry, d, err, errlen))
        decide_destroy(&d);
    return d;
}

void decide_destroy(decide_t **dp)
{
    if (!dp || !*dp)
        return;
    decide_t *d = *dp;
    *dp = NULL;
    for (size_t i = 0; i < d->n; i++)
        entry_free(&d->v[i]);
    free(d->v);
    free(d);
}

size_t decide_count(const decide_t *d)
{
    return d ? d->n : 0;
}

int decide_has(const decide_t *d, const char *token)
{
    return token && decide_check(d, token, strlen(token)) != NULL;
}

const decide_entry_t *decide_check(const decide_t *d, const char *got, size_t glen)
{
    if (!d || !got)
        return NULL;
    /* Every token is compared, so the time does not depend on which one matches. */
    size_t match = d->n;
    for (size_t i = 0; i < d->n; i++) {
        int eq = auth_token_equal(got, glen, d->v[i].token);
        match = eq ? i : match;
    }
    return match < d->n ? &d->v[match].e : NULL;
}

int decide_covers(const decide_entry_t *e, const char *adw_id)
{
    if (e->all)
        return 1;
    return e->scope.n && filter_in_scope(&e->scope, adw_id);
}
