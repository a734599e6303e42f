/* decide: who may decide approvals (ADW_GATEWAY_DECIDE_TOKENS). Pure: parsing and lookups, no
 * I/O but reading the @file named by the specification.
 *
 * Entries are written like the read tokens (tokens.h): "token=prefix,prefix", separated by ';'
 * or a newline, the token and its prefixes split at the entry's last '=', spaces around items
 * ignored, '@file' for a file where a line starting with '#' is a comment. Each entry may be
 * named: "name:token=prefixes", the name 1..64 characters of [A-Za-z0-9._@-] before the first
 * ':' (so a token containing ':' must be named). A prefix is 1..64 characters of
 * [A-Za-z0-9._:-], or "*" for every run. A token is 1..1024 printable characters without
 * spaces, ';' or ','; at most 1024 entries; a token or a name given twice is refused.
 *
 * A decide token decides the approvals of the runs its prefixes cover, and reads those runs
 * like a read token. Its decider name (decided_by) is the entry's name, else "token-" and the
 * first 12 hex digits of the token's SHA-256: never the token. Comparisons go through
 * auth_token_equal and look at every entry whatever matches.
 */
#ifndef ADW_GATEWAY_DECIDE_H
#define ADW_GATEWAY_DECIDE_H

#include <stddef.h>

#include "filter.h"
#include "tokspec.h"

#define DECIDE_MAX 1024                  /* entries */
#define DECIDE_NAME_MAX 64               /* bytes of a name */
#define DECIDE_LEN_MAX 1024              /* bytes of a token */
#define DECIDE_FILE_MAX TOKSPEC_FILE_MAX /* bytes of a decide-token file */

typedef struct decide_t decide_t;

/* One of these per decide token: what a lookup hands back (owned by the decide_t). */
typedef struct decide_entry_t {
    char name[DECIDE_NAME_MAX + 1]; /* the decider's name: given, or "token-<12 hex>" */
    int all;                        /* "*" among its prefixes: every run */
    filter_list_t scope;            /* its prefixes ("*" left out); empty when all */
} decide_entry_t;

/* Builds the table from spec (borrowed; NULL or "" for none: an empty table). Returns NULL with
 * a one-line reason in err naming the entry, never a token. */
decide_t *decide_new(const char *spec, char *err, size_t errlen);

/* Frees *d; accepts NULL and sets *d to NULL. */
void decide_destroy(decide_t **d);

/* Number of decide tokens. */
size_t decide_count(const decide_t *d);

/* Returns 1 when token (NUL-terminated, borrowed) equals one of d's tokens, else 0: for
 * refusing a token configured as both a read and a decide token. */
int decide_has(const decide_t *d, const char *token);

/* The entry whose token equals got[0..glen) (borrowed), or NULL (none, or got is NULL). */
const decide_entry_t *decide_check(const decide_t *d, const char *got, size_t glen);

/* Returns 1 when e's scope covers adw_id (borrowed), else 0. */
int decide_covers(const decide_entry_t *e, const char *adw_id);

/* Writes "token-" and the first 12 hex digits of SHA-256(token) to out (at least 19 bytes). */
void decide_hash_name(const char *token, size_t len, char *out, size_t outlen);

#endif
