#include "approval_rules.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* One compiled rule. */
typedef struct rule_t {
    approval_rule_t pub;
    char *name, *adw_prefix;
    regex_t tool, input;
    int has_tool, has_input;
} rule_t;

struct approval_rules_t {
    rule_t *rules;
    size_t n;
};

static void rule_free(rule_t *r)
{
    if (r->has_tool)
        regfree(&r->tool);
    if (r->has_input)
        regfree(&r->input);
    free(r->name);
    free(r->adw_prefix);
}

void approval_rules_destroy(approval_rules_t **rp)
{
    if (!rp || !*rp)
        return;
    approval_rules_t *r = *rp;
    for (size_t i = 0; i < r->n; i++)
        rule_free(&r->rules[i]);
    free(r->rules);
    free(r);
    *rp = NULL;
}

size_t approval_rules_count(const approval_rules_t *r)
{
    return r ? r->n : 0;
}

int approval_rules_max_timeout(const approval_rules_t *r)
{
    int most = 0;
    for (size_t i = 0; r && i < r->n; i++)
        if (r->rules[i].pub.timeout_s > most)
            most = r->rules[i].pub.timeout_s;
    return most;
}

/* Compiles pattern into re. Returns 0, or -EINVAL with regerror's text in why. */
static int compile(regex_t *re, const char *pattern, char *why, size_t whylen)
{
    int rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc == 0)
        return 0;
    regerror(rc, re, why, whylen);
    return -EINVAL;
}

/* Parses the rule at position i of the array into r (zeroed). Returns 0, or -EINVAL with
 * err set (naming the rule), or -ENOMEM. */
static int parse_rule(json_t *o, size_t i, rule_t *r, char *err, size_t errlen)
{
    char who[APPROVAL_RULE_NAME_MAX + 32], why[200];
    snprintf(who, sizeof who, "rule %zu", i);
    if (!json_is_object(o)) {
        set_err(err, errlen, "%s: not a JSON object", who);
        return -EINVAL;
    }
    json_t *name = json_object_get(o, "name");
    if (json_is_string(name) && json_string_length(name) >= 1 &&
        json_string_length(name) <= APPROVAL_RULE_NAME_MAX &&
        !memchr(json_string_value(name), '\0', json_string_length(name)))
        snprintf(who, sizeof who, "rule \"%s\"", json_string_value(name));
    else {
        set_err(err, errlen, "%s: \"name\" must be a string of 1-%d bytes", who,
                APPROVAL_RULE_NAME_MAX);
        return -EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "tool") && strcmp(key, "input") &&
            strcmp(key, "adw_prefix") && strcmp(key, "timeout_s") && strcmp(key, "on_timeout")) {
            set_err(err, errlen,
                    "%s: unknown key \"%.40s\" (known: name, tool, input, adw_prefix, timeout_s, "
                    "on_timeout)",
                    who, key);
            return -EINVAL;
        }
    }
    if (!(r->name = strdup(json_string_value(name))))
        return -ENOMEM;
    r->pub.name = r->name;
    json_t *tool = json_object_get(o, "tool");
    if (!json_is_string(tool) || !json_string_length(tool)) {
        set_err(err, errlen, "%s: \"tool\" must be a regular expression (a non-empty string)", who);
        return -EINVAL;
    }
    if (compile(&r->tool, json_string_value(tool), why, sizeof why)) {
        set_err(err, errlen, "%s: \"tool\" does not compile: %s", who, why);
        return -EINVAL;
    }
    r->has_tool = 1;
    json_t *input = json_object_get(o, "input");
    if (input) {
        if (!json_is_string(input) || !json_string_length(input)) {
            set_err(err, errlen, "%s: \"input\" must be a regular expression (a non-empty string)",
                    who);
            return -EINVAL;
        }
        if (compile(&r->input, json_string_value(input), why, sizeof why)) {
            set_err(err, errlen, "%s: \"input\" does not compile: %s", who, why);
            return -EINVAL;
        }
        r->has_input = 1;
    }
    json_t *prefix = json_object_get(o, "adw_prefix");
    if (prefix) {
        if (!json_is_string(prefix) || !json_string_length(prefix) ||
            json_string_length(prefix) > 64) {
            set_err(err, errlen, "%s: \"adw_prefix\" must be a string of 1-64 characters", who);
            return -EINVAL;
        }
        if (!(r->adw_prefix = strdup(json_string_value(prefix))))
            return -ENOMEM;
        r->pub.adw_prefix = r->adw_prefix;
    }
    r->pub.timeout_s = APPROVAL_TIMEOUT_DEFAULT_S;
    json_t *t = json_object_get(o, "timeout_s");
    if (t) {
        if (!json_is_integer(t) || json_integer_value(t) < 1 ||
            json_integer_value(t) > APPROVAL_TIMEOUT_MAX_S) {
            set_err(err, errlen, "%s: \"timeout_s\" must be an integer from 1 to %d", who,
                    APPROVAL_TIMEOUT_MAX_S);
            return -EINVAL;
        }
        r->pub.timeout_s = (int)json_integer_value(t);
    }
    json_t *ot = json_object_get(o, "on_timeout");
    if (ot) {
        const char *s = json_string_value(ot);
        if (!s || (strcmp(s, "deny") && strcmp(s, "allow"))) {
            set_err(err, errlen, "%s: \"on_timeout\" must be \"deny\" or \"allow\"", who);
            return -EINVAL;
        }
        r->pub.allow_on_timeout = !strcmp(s, "allow");
    }
    return 0;
}

approval_rules_t *approval_rules_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    approval_rules_t *r = NULL;
    if (!doc) {
        set_err(err, errlen, "not JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_array(doc)) {
        set_err(err, errlen, "expected a JSON array of rules");
        goto fail;
    }
    size_t n = json_array_size(doc);
    if (n > APPROVAL_RULES_MAX) {
        set_err(err, errlen, "%zu rules: at most %d", n, APPROVAL_RULES_MAX);
        goto fail;
    }
    r = calloc(1, sizeof *r);
    if (!r || !(r->rules = calloc(n ? n : 1, sizeof *r->rules))) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        r->n = i + 1; /* the rule is freed with the set, whatever was parsed of it */
        int rc = parse_rule(json_array_get(doc, i), i, &r->rules[i], err, errlen);
        if (rc == -ENOMEM)
            set_err(err, errlen, "out of memory");
        if (rc)
            goto fail;
    }
    json_decref(doc);
    return r;
fail:
    approval_rules_destroy(&r);
    json_decref(doc);
    return NULL;
}

const approval_rule_t *approval_rules_match(const approval_rules_t *r, const char *adw_id,
                                            const char *tool_name, const json_t *tool_input)
{
    if (!r || !r->n || !tool_name)
        return NULL;
    char *input = NULL;
    const approval_rule_t *found = NULL;
    for (size_t i = 0; i < r->n && !found; i++) {
        const rule_t *ru = &r->rules[i];
        if (ru->adw_prefix && (!adw_id || strncmp(adw_id, ru->adw_prefix, strlen(ru->adw_prefix))))
            continue;
        if (regexec(&ru->tool, tool_name, 0, NULL, 0))
            continue;
        if (ru->has_input) {
            if (!input) {
                input = tool_input ? json_dumps(tool_input, JSON_COMPACT | JSON_ENCODE_ANY)
                                   : strdup("null");
                if (!input)
                    return NULL;
            }
            if (regexec(&ru->input, input, 0, NULL, 0))
                continue;
        }
        found = &ru->pub;
    }
    free(input);
    return found;
}
