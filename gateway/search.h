/* search: GET /api/search, the stored events whose searched text holds every word of q.
 *
 *   GET /api/search?q=WORDS[&adw_id=&limit=&before=]
 *       {"events":[...stored events, newest first...],"next_before":N|null}
 *
 * The searched text of an event (an expression index of migration 4, trigrams): its summary,
 * payload.tool_name and payload.tool_input's file_path, command, pattern, url, path and query,
 * lower-cased. q is split at ASCII whitespace into words; an event matches when the text holds
 * each word as a substring, case-insensitively (ILIKE with \ % _ taken literally). q: 1 to
 * SEARCH_Q_MAX bytes of UTF-8 once trimmed, at most SEARCH_WORDS_MAX words. adw_id: a run, or
 * a comma-separated list of runs (a filter key as for /api/events; a read token's scope applies
 * as there). limit: 1..SEARCH_LIMIT_MAX (default SEARCH_LIMIT_DEFAULT). before: only ids below
 * it. next_before: the id of the last event returned when more may follow (pass it as before),
 * else null.
 */
#ifndef ADW_GATEWAY_SEARCH_H
#define ADW_GATEWAY_SEARCH_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "filter.h"
#include "param.h"

#define SEARCH_Q_MAX 256   /* bytes of q once trimmed */
#define SEARCH_WORDS_MAX 8 /* words in q */
#define SEARCH_LIMIT_DEFAULT 50
#define SEARCH_LIMIT_MAX 200
#define SEARCH_TRIGRAM_RUN 3 /* word characters (letters, digits, non-ASCII) in a trigram */
/* an ILIKE pattern: "%" + a word with every byte escaped + "%" + NUL */
#define SEARCH_PATTERN_MAX (2 * SEARCH_Q_MAX + 3)

/* A parsed search. Plain data. */
typedef struct search_query_t {
    char pattern[SEARCH_WORDS_MAX][SEARCH_PATTERN_MAX]; /* ILIKE patterns, one per word */
    /* 1 when the word holds a trigram the index can look up (SEARCH_TRIGRAM_RUN word characters
     * in a row), 0 when the index would return every event: that word is then only a filter */
    unsigned char indexed[SEARCH_WORDS_MAX];
    int nwords;
    int64_t before; /* 0: no bound */
    int limit;
} search_query_t;

/* Splits q (borrowed, NUL-terminated) into words at ASCII whitespace and writes one ILIKE
 * pattern per word into s (search_pattern), with whether the index serves it. Returns 0, or -EINVAL
 * with the reason in err: q empty once trimmed, over SEARCH_Q_MAX bytes, not UTF-8, or over
 * SEARCH_WORDS_MAX words. */
int search_parse_words(const char *q, search_query_t *s, char *err, size_t errlen);

/* Writes "%" word[0..n) "%" into out (outlen >= 2 * n + 3), each \ % _ preceded by \ so that
 * ILIKE takes it literally. Returns the pattern's length, or -ENOSPC when out is too small. */
int search_pattern(const char *word, size_t n, char *out, size_t outlen);

/* Parses the parameters params[0..n) (percent-decoded, borrowed) of /api/search into s, and
 * adw_id into f's adw_id key. Returns 0, or 400 with the reason in err (f is left for the
 * caller to free either way). Unknown parameters are ignored. */
int search_parse(const param_t *params, size_t n, search_query_t *s, filter_t *f, char *err,
                 size_t errlen);

/* Runs s on conn (a dbpool worker's), bounded by f's adw_id key and scope (borrowed), and
 * writes the answer's JSON body to body. Returns the HTTP status: 200, 503 (the query failed:
 * body holds the reason for the client, the log the database's) or 500 (out of memory: body
 * is not usable). */
int search_run(PGconn *conn, const search_query_t *s, const filter_t *f, buf_t *body);

#endif
