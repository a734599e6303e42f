/* tokspec: the text of a token specification, as the read tokens (tokens.h) and the decide
 * tokens (decide.h) are written: entries "token=prefix,prefix" separated by ';' or a newline,
 * the token and its prefixes split at the entry's last '=', blanks (space, tab, CR) around
 * items ignored. A specification starting with '@' names a file holding the same text, where a
 * line starting with '#' is a comment. What an entry means is the caller's: tokspec_parse hands
 * each one over, and the helpers below check its parts. No I/O but reading that file.
 */
#ifndef ADW_GATEWAY_TOKSPEC_H
#define ADW_GATEWAY_TOKSPEC_H

#include <stddef.h>

#define TOKSPEC_FILE_MAX 65536 /* bytes of a specification file */

/* One entry as tokspec_parse hands it over. Plain data; the pointers point into the text being
 * parsed (not NUL-terminated) and are valid during the call only. */
typedef struct tokspec_entry_t {
    size_t num;           /* the entry's number, counting from 1 */
    const char *token;    /* what stands before the entry's last '=', blanks trimmed */
    size_t token_len;     /* bytes of token (may be 0) */
    const char *prefixes; /* the comma list after that '=' (tokspec_next_prefix) */
    const char *end;      /* the end of the entry */
} tokspec_entry_t;

/* Takes in one entry for ctx. Returns 0, or nonzero (the reason in err) to stop the parse. */
typedef int (*tokspec_entry_fn)(void *ctx, const tokspec_entry_t *e, char *err, size_t errlen);

/* Parses spec (borrowed, not empty: the text, or '@' and the path of a file of at most
 * TOKSPEC_FILE_MAX bytes), calling add with ctx for each entry in order. what (borrowed) names
 * the setting in errors, shape (borrowed) the form of an entry ("token=prefix[,prefix...]").
 * Returns 0, add's nonzero return (err as add left it), or -EINVAL / -ENOMEM with a one-line
 * reason in err: "<what> entry N: want <shape>" (no '='), "<what> file <path>: <why>",
 * "<what> names no token" (no entry), "out of memory". The text is zeroed before it is freed. */
int tokspec_parse(const char *spec, const char *what, const char *shape, tokspec_entry_fn add,
                  void *ctx, char *err, size_t errlen);

/* Narrows s[0..*len) to the part without surrounding blanks (space, tab, CR). */
void tokspec_trim(const char **s, size_t *len);

/* Steps through the comma list [*p, end) (start with *p = the entry's prefixes): sets *item and
 * *len to its next item, blanks trimmed (may be empty), and moves *p past it. Returns 1 for an
 * item, 0 once the list is done. */
int tokspec_next_prefix(const char **p, const char *end, const char **item, size_t *len);

/* Returns 1 when p[0..len) is 1..FILTER_VALUE_MAX characters of [A-Za-z0-9._:-], else 0. */
int tokspec_prefix_valid(const char *p, size_t len);

/* Returns 1 when t[0..len) is 1..max printable characters without spaces, ';' or ',', else 0. */
int tokspec_token_valid(const char *t, size_t len, size_t max);

#endif
