/* dbchoice: where a read goes, given what is known of the standbys. Pure: no I/O, no clock, no
 * locks (dbroute.c keeps the state and asks).
 *
 * A standby is usable while it answered its last look, was in recovery then
 * (pg_is_in_recovery()), and holds the primary's epoch (adw_meta): a promoted server, or one of
 * another database, is never read. Its reach is the newest event id it showed. Ingest assigns
 * ids in commit order and a standby replays commits in that order, so a standby whose reach is r
 * shows every event with an id <= r: a read that needs the ids up to `need` may go to any usable
 * standby whose reach is at least need, and to the primary otherwise.
 */
#ifndef ADW_GATEWAY_DBCHOICE_H
#define ADW_GATEWAY_DBCHOICE_H

#include <stddef.h>
#include <stdint.h>

#define DBCHOICE_STANDBYS_MAX 8 /* standbys in ADW_GATEWAY_READ_URL at most */

/* What is known of one standby. Plain data. */
typedef struct dbchoice_standby_t {
    int up;            /* answered the last look, in recovery, with the events table */
    int64_t epoch;     /* its adw_meta epoch at the last look (0: unknown) */
    int64_t reach;     /* the newest event id it showed at the last look */
    int64_t looked_us; /* when that look began (a monotonic clock) */
} dbchoice_standby_t;

/* The answer for one read. */
typedef struct dbchoice_t {
    int standby; /* the index of the standby to read, or -1: the primary */
    int look;    /* 1: look at that standby's reach first, and read there only if it now
                    reaches need (its last look is older than recheck_us and fell short) */
} dbchoice_t;

/* One entry of a list of URIs: text[off, off + len). */
typedef struct dbchoice_span_t {
    size_t off, len;
} dbchoice_span_t;

/* 1 when s may be read: up, and its epoch is primary_epoch (known, not 0). */
int dbchoice_usable(const dbchoice_standby_t *s, int64_t primary_epoch);

/* Picks where a read needing the ids up to need goes, among the n standbys s (borrowed):
 *  - a usable standby whose reach is at least need, the first such at or after turn % n;
 *  - else the usable standby of highest reach whose last look began recheck_us or more before
 *    now_us, with look set (one more look may find it has caught up);
 *  - else the primary (-1). */
dbchoice_t dbchoice_pick(const dbchoice_standby_t *s, size_t n, int64_t primary_epoch, int64_t need,
                         unsigned turn, int64_t now_us, int64_t recheck_us);

/* Splits list (borrowed; ADW_GATEWAY_READ_URL) into its URIs: entries separated by whitespace,
 * or by a comma that ends the list or precedes another postgresql:// or postgres:// (so a
 * multi-host URI's commas stay in it). Each entry must start with postgresql:// or postgres://.
 * Fills spans[0..max) and *n. Returns 0 (an empty or NULL list gives *n == 0), or -EINVAL with
 * the reason in err: an entry that is not such a URI, or more than max entries. */
int dbchoice_parse(const char *list, dbchoice_span_t *spans, size_t max, size_t *n, char *err,
                   size_t errlen);

#endif
