/* tokens: who may read what. The full token (ADW_GATEWAY_TOKEN) reads everything; each read
 * token (ADW_GATEWAY_READ_TOKENS) reads only the runs whose adw_id starts with one of its
 * prefixes.
 *
 * Read tokens are written "token=prefix,prefix;token=prefix": entries separated by ';' or a
 * newline, the token and its prefixes split at the entry's last '=' (so a token may end in
 * base64 padding), spaces around items ignored. A value starting with '@' names a file holding
 * the same text, where a line starting with '#' is a comment. Prefixes are 1..64 characters of
 * [A-Za-z0-9._:-]; tokens 1..1024 printable characters without spaces, ';' or ','.
 *
 * Without any token every request reads everything. With a token of either kind configured,
 * a request must carry one. Comparisons go through auth_token_equal and look at every
 * configured token whatever matches, so timing tells nothing about which one did.
 */
#ifndef ADW_GATEWAY_TOKENS_H
#define ADW_GATEWAY_TOKENS_H

#include <stddef.h>

#include "filter.h"
#include "tokspec.h"

#define TOKENS_MAX 1024                  /* read tokens */
#define TOKENS_LEN_MAX 1024              /* bytes of one token */
#define TOKENS_FILE_MAX TOKSPEC_FILE_MAX /* bytes of a read-token file */

typedef struct tokens_t tokens_t;

typedef enum tokens_access {
    TOKENS_REFUSED = 0, /* missing or wrong token */
    TOKENS_FULL,        /* reads every run */
    TOKENS_SCOPED,      /* reads the runs its scope names */
} tokens_access_t;

/* Builds the table from the full token (borrowed; NULL or "" for none) and the read-token
 * specification (borrowed; NULL or "" for none). Returns NULL with a one-line reason in err
 * (which never contains a token). */
tokens_t *tokens_new(const char *full, const char *read_spec, char *err, size_t errlen);

/* Frees *t; accepts NULL and sets *t to NULL. */
void tokens_destroy(tokens_t **t);

/* Returns 1 when requests must carry a token. */
int tokens_required(const tokens_t *t);

/* Number of read tokens. */
size_t tokens_scoped_count(const tokens_t *t);

/* Checks the presented token got[0..glen) (borrowed; NULL when none was presented). On
 * TOKENS_SCOPED sets *scope to the token's prefixes (owned by t, valid until tokens_destroy);
 * else *scope is NULL. */
tokens_access_t tokens_check(const tokens_t *t, const char *got, size_t glen,
                             const filter_list_t **scope);

#endif
