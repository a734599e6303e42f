#include "filter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

const char *const FILTER_KEY_NAMES[FILTER_NKEYS] = {"adw_id", "steps", "event_types", "types",
                                                    "agent_ids"};

void filter_init(filter_t *f)
{
    memset(f, 0, sizeof *f);
}

static void list_free(filter_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void filter_free(filter_t *f)
{
    for (int k = 0; k < FILTER_NKEYS; k++)
        list_free(&f->key[k]);
    f->scope = NULL;
}

void filter_move(filter_t *dst, filter_t *src)
{
    filter_free(dst);
    *dst = *src;
    filter_init(src);
}

int filter_copy(filter_t *dst, const filter_t *src)
{
    filter_t nf;
    filter_init(&nf);
    nf.scope = src->scope;
    for (int k = 0; k < FILTER_NKEYS; k++) {
        const filter_list_t *l = &src->key[k];
        if (!l->n)
            continue;
        nf.key[k].v = calloc(l->n, sizeof(char *));
        if (!nf.key[k].v)
            goto fail;
        for (size_t i = 0; i < l->n; i++) {
            nf.key[k].v[i] = strdup(l->v[i]);
            if (!nf.key[k].v[i])
                goto fail;
            nf.key[k].n++;
        }
    }
    filter_move(dst, &nf);
    return 0;
fail:
    filter_free(&nf);
    return -ENOMEM;
}

static int list_has(const filter_list_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return 1;
    return 0;
}

int filter_in_scope(const filter_list_t *scope, const char *adw_id)
{
    if (!scope || !scope->n)
        return 1;
    if (!adw_id)
        return 0;
    for (size_t i = 0; i < scope->n; i++)
        if (!strncmp(adw_id, scope->v[i], strlen(scope->v[i])))
            return 1;
    return 0;
}

int filter_check_scope(const filter_t *f, char *err, size_t errlen)
{
    const filter_list_t *l = &f->key[FILTER_ADW_ID];
    for (size_t i = 0; i < l->n; i++)
        if (!filter_in_scope(f->scope, l->v[i])) {
            snprintf(err, errlen, "adw_id %.64s is outside this token's scope", l->v[i]);
            return -EACCES;
        }
    return 0;
}

int filter_match(const filter_t *f, const filter_event_t *ev)
{
    for (int k = 0; k < FILTER_NKEYS; k++) {
        const filter_list_t *l = &f->key[k];
        if (!l->n)
            continue;
        if (!ev->field[k] || !list_has(l, ev->field[k]))
            return 0;
    }
    return filter_in_scope(f->scope, ev->field[FILTER_ADW_ID]);
}

int filter_is_empty(const filter_t *f)
{
    for (int k = 0; k < FILTER_NKEYS; k++)
        if (f->key[k].n)
            return 0;
    return !f->scope || !f->scope->n;
}

int filter_key_from_name(const char *name)
{
    for (int k = 0; k < FILTER_NKEYS; k++)
        if (!strcmp(name, FILTER_KEY_NAMES[k]))
            return k;
    return -1;
}

/* Appends a copy of s[0..len) to l after checking it; duplicates are kept once. */
static int list_add(filter_list_t *l, filter_key_t k, const char *s, size_t len, char *err,
                    size_t errlen)
{
    if (len == 0 || len > FILTER_VALUE_MAX) {
        snprintf(err, errlen, "%s: each value must be 1 to %d bytes", FILTER_KEY_NAMES[k],
                 FILTER_VALUE_MAX);
        return -EINVAL;
    }
    if (memchr(s, '\0', len) || utf8_validate(s, len)) {
        snprintf(err, errlen, "%s: a value is not valid UTF-8 text", FILTER_KEY_NAMES[k]);
        return -EINVAL;
    }
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == len && !memcmp(l->v[i], s, len))
            return 0;
    if (l->n >= FILTER_VALUES_MAX) {
        snprintf(err, errlen, "%s: at most %d values", FILTER_KEY_NAMES[k], FILTER_VALUES_MAX);
        return -EINVAL;
    }
    char *copy = malloc(len + 1);
    char **v = copy ? realloc(l->v, (l->n + 1) * sizeof *v) : NULL;
    if (!v) {
        free(copy);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    l->v = v;
    // NOLINTNEXTLINE(clang-analyzer-unix.Malloc): not a leak: l owns copy, list_free frees it
    l->v[l->n++] = copy;
    return 0;
}

int filter_set_csv(filter_t *f, filter_key_t k, const char *s, size_t len, char *err, size_t errlen)
{
    filter_list_t l = {0};
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        if (j > i) {
            int rc = list_add(&l, k, s + i, j - i, err, errlen);
            if (rc) {
                list_free(&l);
                return rc;
            }
        }
        i = j + 1;
    }
    list_free(&f->key[k]);
    f->key[k] = l;
    return 0;
}

/* Parses one member's value (string, array of strings, or null) into l. */
static int list_from_json(filter_list_t *l, filter_key_t k, const json_t *v, char *err,
                          size_t errlen)
{
    if (json_is_null(v))
        return 0;
    if (json_is_string(v))
        return list_add(l, k, json_string_value(v), json_string_length(v), err, errlen);
    if (!json_is_array(v)) {
        snprintf(err, errlen, "filters.%s must be a string or an array of strings",
                 FILTER_KEY_NAMES[k]);
        return -EINVAL;
    }
    if (json_array_size(v) > FILTER_VALUES_MAX) {
        snprintf(err, errlen, "%s: at most %d values", FILTER_KEY_NAMES[k], FILTER_VALUES_MAX);
        return -EINVAL;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) {
            snprintf(err, errlen, "filters.%s must be a string or an array of strings",
                     FILTER_KEY_NAMES[k]);
            return -EINVAL;
        }
        int rc = list_add(l, k, json_string_value(item), json_string_length(item), err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int filter_set_json(filter_t *f, const json_t *obj, char *err, size_t errlen)
{
    filter_t nf;
    filter_init(&nf);
    nf.scope = f->scope;
    if (!obj || json_is_null(obj)) {
        filter_move(f, &nf);
        return 0;
    }
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "filters must be an object");
        return -EINVAL;
    }
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)obj, name, v)
    {
        int k = filter_key_from_name(name);
        if (k < 0) {
            snprintf(err, errlen,
                     "unknown filter key \"%.64s\" (known: adw_id, steps, event_types, types,"
                     " agent_ids)",
                     name);
            filter_free(&nf);
            return -EINVAL;
        }
        int rc = list_from_json(&nf.key[k], (filter_key_t)k, v, err, errlen);
        if (rc) {
            filter_free(&nf);
            return rc;
        }
    }
    filter_move(f, &nf);
    return 0;
}

json_t *filter_to_json(const filter_t *f)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (int k = 0; k < FILTER_NKEYS; k++) {
        const filter_list_t *l = &f->key[k];
        if (!l->n)
            continue;
        json_t *a = json_array();
        if (!a || json_object_set_new(o, FILTER_KEY_NAMES[k], a))
            goto fail;
        for (size_t i = 0; i < l->n; i++)
            if (json_array_append_new(a, json_string(l->v[i])))
                goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static const char *str_member(const json_t *doc, const char *key)
{
    const json_t *v = json_object_get(doc, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void filter_event_from_json(const json_t *doc, filter_event_t *ev)
{
    ev->field[FILTER_ADW_ID] = str_member(doc, "adw_id");
    ev->field[FILTER_STEPS] = str_member(doc, "step");
    ev->field[FILTER_EVENT_TYPES] = str_member(doc, "event_type");
    if (!ev->field[FILTER_EVENT_TYPES])
        ev->field[FILTER_EVENT_TYPES] = str_member(doc, "event");
    ev->field[FILTER_TYPES] = str_member(doc, "type");
    ev->field[FILTER_AGENT_IDS] = str_member(doc, "agent_id");
}
