#include "search.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "param.h"
#include "db.h"
#include "dbjson.h"
#include "frame.h"
#include "log.h"
#include "utf8.h"

/* The searched text of an event: written exactly as migration 4's index expression
 * (ingest/migrate.c), so that the planner can use that index. */
#define SEARCH_TEXT                                                                                \
    "lower(coalesce(doc->>'summary', '') || ' ' || coalesce(doc->'payload'->>'tool_name', '')"     \
    " || ' ' || coalesce(doc->'payload'->'tool_input'->>'file_path', '')"                          \
    " || ' ' || coalesce(doc->'payload'->'tool_input'->>'command', '')"                            \
    " || ' ' || coalesce(doc->'payload'->'tool_input'->>'pattern', '')"                            \
    " || ' ' || coalesce(doc->'payload'->'tool_input'->>'url', '')"                                \
    " || ' ' || coalesce(doc->'payload'->'tool_input'->>'path', '')"                               \
    " || ' ' || coalesce(doc->'payload'->'tool_input'->>'query', ''))"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Whether word[0..n) holds SEARCH_TRIGRAM_RUN word characters in a row, as pg_trgm counts them
 * (letters and digits; a non-ASCII character counts as one). */
static int has_trigram(const char *word, size_t n)
{
    int run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)word[i];
        size_t len = c < 0x80 ? 1 : utf8_char_len(word + i, n - i);
        int w = c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
        run = w ? run + 1 : 0;
        if (run >= SEARCH_TRIGRAM_RUN)
            return 1;
        i += len ? len : 1;
    }
    return 0;
}

int search_pattern(const char *word, size_t n, char *out, size_t outlen)
{
    if (outlen < 2 * n + 3)
        return -ENOSPC;
    size_t k = 0;
    out[k++] = '%';
    for (size_t i = 0; i < n; i++) {
        if (word[i] == '\\' || word[i] == '%' || word[i] == '_')
            out[k++] = '\\';
        out[k++] = word[i];
    }
    out[k++] = '%';
    out[k] = '\0';
    return (int)k;
}

int search_parse_words(const char *q, search_query_t *s, char *err, size_t errlen)
{
    s->nwords = 0;
    size_t len = strlen(q);
    while (len && is_space(q[len - 1]))
        len--;
    while (len && is_space(*q)) {
        q++;
        len--;
    }
    if (!len) {
        snprintf(err, errlen, "q must hold at least one word");
        return -EINVAL;
    }
    if (len > SEARCH_Q_MAX) {
        snprintf(err, errlen, "q must be at most %d bytes", SEARCH_Q_MAX);
        return -EINVAL;
    }
    if (utf8_validate(q, len)) {
        snprintf(err, errlen, "q must be UTF-8");
        return -EINVAL;
    }
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(q[i]))
            i++;
        size_t start = i;
        while (i < len && !is_space(q[i]))
            i++;
        if (i == start)
            continue;
        if (s->nwords == SEARCH_WORDS_MAX) {
            snprintf(err, errlen, "q must hold at most %d words", SEARCH_WORDS_MAX);
            s->nwords = 0;
            return -EINVAL;
        }
        search_pattern(q + start, i - start, s->pattern[s->nwords], SEARCH_PATTERN_MAX);
        s->indexed[s->nwords] = (unsigned char)has_trigram(q + start, i - start);
        s->nwords++;
    }
    return 0;
}

int search_parse(const param_t *params, size_t n, search_query_t *s, filter_t *f, char *err,
                 size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->limit = SEARCH_LIMIT_DEFAULT;
    const char *q = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = params[i].name, *v = params[i].value;
        int64_t x;
        if (!strcmp(name, "q")) {
            q = v;
        } else if (!strcmp(name, "limit")) {
            if (param_int(v, 1, SEARCH_LIMIT_MAX, &x)) {
                snprintf(err, errlen, "limit must be an integer from 1 to %d", SEARCH_LIMIT_MAX);
                return 400;
            }
            s->limit = (int)x;
        } else if (!strcmp(name, "before")) {
            if (param_int(v, 1, INT64_MAX, &x)) {
                snprintf(err, errlen, "before must be an event id (an integer >= 1)");
                return 400;
            }
            s->before = x;
        } else if (!strcmp(name, "adw_id")) {
            if (filter_set_csv(f, FILTER_ADW_ID, v, strlen(v), err, errlen))
                return 400;
        }
    }
    if (!q) {
        snprintf(err, errlen, "q (the words to search for) is required");
        return 400;
    }
    return search_parse_words(q, s, err, errlen) ? 400 : 0;
}

/* The query for s's words: the SQL text depends on their number and on which the index serves
 * alone; every value is a parameter. A word the index cannot serve (no trigram: the index would
 * hand back every event to check again) is matched against the text with '' appended, which
 * the index does not match: a filter on the rows found otherwise (newest first by id, or
 * through another word's trigrams). */
static void build_sql(char *sql, size_t len, const search_query_t *s)
{
    int k = snprintf(sql, len,
                     "SELECT id, adw_id, type, step, coalesce(event_type, event), doc::text,"
                     " agent_id FROM events"
                     " WHERE ($1::bigint = 0 OR id < $1::bigint)"
                     " AND ($2::text[] IS NULL OR adw_id = ANY($2::text[]))"
                     " AND ($3::text[] IS NULL OR EXISTS"
                     " (SELECT 1 FROM unnest($3::text[]) AS p WHERE starts_with(adw_id, p)))");
    for (int i = 0; i < s->nwords; i++)
        k += snprintf(sql + k, len - (size_t)k,
                      s->indexed[i] ? " AND " SEARCH_TEXT " ILIKE $%d::text"
                                    : " AND (" SEARCH_TEXT " || '') ILIKE $%d::text",
                      5 + i);
    snprintf(sql + k, len - (size_t)k, " ORDER BY id DESC LIMIT $4::int");
}

int search_run(PGconn *conn, const search_query_t *s, const filter_t *f, buf_t *body)
{
    char sql[8192], before[24], limit[16];
    build_sql(sql, sizeof sql, s);
    snprintf(before, sizeof before, "%" PRId64, s->before);
    snprintf(limit, sizeof limit, "%d", s->limit + 1); /* one more tells whether more follow */
    const char *params[4 + SEARCH_WORDS_MAX] = {before, NULL, NULL, limit};
    for (int i = 0; i < s->nwords; i++)
        params[4 + i] = s->pattern[i];
    buf_t ids, scope;
    buf_init(&ids, 0);
    buf_init(&scope, 0);
    int status = 500;
    PGresult *r = NULL;
    frame_t *fr = NULL;
    buf_reset(body);
    if (f->key[FILTER_ADW_ID].n) {
        if (db_text_array(&ids, &f->key[FILTER_ADW_ID]))
            goto done;
        params[1] = ids.data;
    }
    if (f->scope && f->scope->n) {
        if (db_text_array(&scope, f->scope))
            goto done;
        params[2] = scope.data;
    }
    r = db_exec(conn, sql, 4 + s->nwords, params, DB_REPLY_TIMEOUT_MS);
    int rows = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        rows = PQntuples(r);
    } else if (!dbjson_undefined_table(r)) { /* no schema yet: nothing stored */
        char e[256];
        snprintf(e, sizeof e, "%s", PQerrorMessage(conn));
        e[strcspn(e, "\n")] = '\0';
        log_warn("api: search: %s", e);
        status = 503;
        if (buf_puts(body, "{\"error\":\"database unavailable\"}"))
            status = 500;
        goto done;
    }
    int more = rows > s->limit;
    if (more)
        rows = s->limit;
    if (buf_puts(body, "{\"events\":["))
        goto done;
    for (int i = 0; i < rows; i++) {
        if (!(fr = db_row_frame(r, i, strtoll(PQgetvalue(r, i, 0), NULL, 10))) ||
            (i && buf_putc(body, ',')) || buf_append(body, fr->payload, fr->len))
            goto done;
        frame_unref(&fr);
    }
    if (more ? buf_printf(body, "],\"next_before\":%s}", PQgetvalue(r, rows - 1, 0))
             : buf_puts(body, "],\"next_before\":null}"))
        goto done;
    status = 200;
done:
    frame_unref(&fr);
    PQclear(r);
    buf_free(&ids);
    buf_free(&scope);
    return status;
}
