/* claudetest: what the shared/claude unit tests read of the JSON they get back (a key's string,
 * a compact size, a truncation marker) and the long strings and deep JSON they feed in. Include
 * after cmocka. */
#ifndef ADW_TEST_CLAUDETEST_H
#define ADW_TEST_CLAUDETEST_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* What a shortened string ends with: "…[truncated N bytes]". */
#define MARK "\xe2\x80\xa6[truncated "

/* The string value of obj's key (borrowed), or NULL. */
static inline const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Bytes of json_dumps(JSON_COMPACT); the same as jsonw_size() for everything but reals. */
static inline size_t compact_size(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    size_t n = strlen(s);
    free(s);
    return n;
}

/* unit repeated n times, in a new string (owned by the caller, free()). */
static inline char *repeat(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

/* n arrays, each holding the next: JSON nested n deep (owned by the caller). */
static inline json_t *nest(int n)
{
    json_t *j = json_array();
    for (int i = 1; i < n; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, j);
        j = outer;
    }
    return j;
}

/* Parses "…[truncated N bytes]" at the end of s; returns N, or -1. */
static inline long marker_bytes(const char *s)
{
    const char *m = strstr(s, MARK);
    if (!m)
        return -1;
    char *end;
    long n = strtol(m + strlen(MARK), &end, 10);
    return strcmp(end, " bytes]") == 0 ? n : -1;
}

#endif
