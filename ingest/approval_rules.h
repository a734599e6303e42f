/* approval_rules: the rules that make ingest hold a PreToolUse hook for a person's decision
 * (ADW_INGEST_APPROVALS, proto/http.md "Approvals"). A rule file is a JSON array of objects:
 *   name        required: 1..APPROVAL_RULE_NAME_MAX bytes, named in events and errors
 *   tool        required: a POSIX extended regular expression the tool name must match
 *   input       optional: one the compact JSON text of tool_input must match
 *   adw_prefix  optional: the run's adw_id must start with it
 *   timeout_s   optional: 1..3600 (default 120), how long the hook is held
 *   on_timeout  optional: "deny" (default) or "allow", the decision taken at the timeout
 * Any other key, a wrong type or a regular expression that does not compile is an error that
 * names the rule. The first matching rule wins.
 *
 * Pure: no I/O (the caller reads a rule file); the compiled rules are read-only once parsed,
 * so matching is safe from any thread.
 */
#ifndef ADW_APPROVAL_RULES_H
#define ADW_APPROVAL_RULES_H

#include <stddef.h>

#include <jansson.h>

#define APPROVAL_RULE_NAME_MAX 128
#define APPROVAL_RULES_MAX 256         /* most rules in one file */
#define APPROVAL_TIMEOUT_DEFAULT_S 120 /* a rule's timeout_s when it gives none */
#define APPROVAL_TIMEOUT_MAX_S 3600    /* the largest timeout_s */
#define APPROVAL_RULES_ERR_LEN 256     /* room for a parse error */

/* One rule, as parsed. Plain data; the strings are owned by the rule set. */
typedef struct approval_rule_t {
    const char *name;
    const char *adw_prefix; /* NULL: any run */
    int timeout_s;          /* 1..APPROVAL_TIMEOUT_MAX_S */
    int allow_on_timeout;   /* on_timeout "allow" (else "deny") */
} approval_rule_t;

typedef struct approval_rules_t approval_rules_t;

/* Parses the rules of text[0..len) (a JSON array). Returns the rule set (the caller's, freed
 * with approval_rules_destroy; an empty array gives a set of no rules), or NULL with one line
 * in err naming the rule (its name, else its position) and the problem. */
approval_rules_t *approval_rules_parse(const char *text, size_t len, char *err, size_t errlen);

/* Frees the rules. Accepts NULL and sets *r to NULL. */
void approval_rules_destroy(approval_rules_t **r);

/* The number of rules (0 for NULL). */
size_t approval_rules_count(const approval_rules_t *r);

/* The largest timeout_s of the rules (0 when none). */
int approval_rules_max_timeout(const approval_rules_t *r);

/* The first rule a PreToolUse hook of run adw_id (borrowed) matches: its tool name tool_name
 * and its tool_input (borrowed; NULL: matched as the text "null"), or NULL when none does
 * (or when out of memory). The rule is borrowed from r. */
const approval_rule_t *approval_rules_match(const approval_rules_t *r, const char *adw_id,
                                            const char *tool_name, const json_t *tool_input);

#endif
