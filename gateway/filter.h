/* filter: which events a WebSocket client or a REST query wants. Pure: no I/O, no globals.
 *
 * A filter has five keys, each an optional list of strings:
 *   adw_id       compared with the event's adw_id
 *   steps        compared with the event's step
 *   event_types  compared with the event's event_type, or, for an event without one (a system
 *                event), with its event
 *   types        compared with the event's type
 *   agent_ids    compared with the event's agent_id (the subagent that produced it)
 * An event matches when, for every key whose list is not empty, its field equals one of the
 * list's values (AND across keys, OR within a list). An empty list or an absent key is no
 * constraint; an event that lacks the field (no step, no agent_id) does not match a non-empty
 * list.
 *
 * Limits: at most FILTER_VALUES_MAX values per key, each 1..FILTER_VALUE_MAX bytes of valid
 * UTF-8 without NUL. Parsers refuse anything else with a reason and leave the filter they were
 * given unchanged.
 */
#ifndef ADW_GATEWAY_FILTER_H
#define ADW_GATEWAY_FILTER_H

#include <jansson.h>
#include <stddef.h>

#define FILTER_VALUES_MAX 64 /* values in one key's list */
#define FILTER_VALUE_MAX 64  /* bytes of one value (the contract's longest field) */

typedef enum filter_key {
    FILTER_ADW_ID = 0,
    FILTER_STEPS,
    FILTER_EVENT_TYPES,
    FILTER_TYPES,
    FILTER_AGENT_IDS,
    FILTER_NKEYS,
} filter_key_t;

/* The key names as they appear in query strings and in subscribe messages, by filter_key_t. */
extern const char *const FILTER_KEY_NAMES[FILTER_NKEYS];

/* One key's list. */
typedef struct filter_list_t {
    char **v; /* owned strings, n of them; NULL when n is 0 */
    size_t n;
} filter_list_t;

/* One of these per client subscription or REST query. Plain data: zero-initialised (or
 * filter_init) it matches every event.
 *
 * scope, when set, is the set of adw_id prefixes a scoped read token grants (see tokens.h): an
 * event matches only when its adw_id also starts with one of them, whatever the keys say. It is
 * borrowed (it lives as long as the server) and carried along by filter_copy, filter_move and
 * filter_set_json, so that a client cannot shed it by subscribing again. */
typedef struct filter_t {
    filter_list_t key[FILTER_NKEYS];
    const filter_list_t *scope; /* borrowed adw_id prefixes; NULL or empty: no scope */
} filter_t;

/* The fields of one event that filters look at, by filter_key_t; each NULL when absent.
 * All borrowed. For FILTER_EVENT_TYPES: the event_type, else the event. */
typedef struct filter_event_t {
    const char *field[FILTER_NKEYS];
} filter_event_t;

/* Makes f match everything (no allocation). */
void filter_init(filter_t *f);

/* Frees f's lists; f matches everything afterwards. Accepts a zeroed filter. */
void filter_free(filter_t *f);

/* Makes dst (whose old lists are freed) a deep copy of src (borrowed). Returns 0, or -ENOMEM
 * leaving dst unchanged. */
int filter_copy(filter_t *dst, const filter_t *src);

/* Moves src's lists into dst (whose old lists are freed); src matches everything afterwards. */
void filter_move(filter_t *dst, filter_t *src);

/* Returns 1 when ev (borrowed) passes f (borrowed), else 0. */
int filter_match(const filter_t *f, const filter_event_t *ev);

/* Returns 1 when adw_id (borrowed; NULL: absent) starts with one of scope's prefixes, or scope
 * is NULL or empty; else 0. */
int filter_in_scope(const filter_list_t *scope, const char *adw_id);

/* Checks that every adw_id value of f lies within f's scope. Returns 0, or -EACCES with a
 * reason naming the first value outside it in err. */
int filter_check_scope(const filter_t *f, char *err, size_t errlen);

/* Returns 1 when no key of f has a value and f has no scope (f matches everything), else 0. */
int filter_is_empty(const filter_t *f);

/* Looks up a key by name ("steps"); returns it, or -1 for an unknown name. */
int filter_key_from_name(const char *name);

/* Replaces key k of f with the comma-separated values in s[0..len) (borrowed), as a query
 * string carries them ("build,review"). Empty items are skipped, so "" clears the key.
 * Returns 0, -EINVAL (a value too long or not valid UTF-8, too many values; reason in err)
 * or -ENOMEM; on error f is unchanged. */
int filter_set_csv(filter_t *f, filter_key_t k, const char *s, size_t len, char *err,
                   size_t errlen);

/* Replaces f's keys (its scope stays) with the filter described by obj (borrowed), a subscribe
 * message's "filters":
 * an object whose members are filter keys, each a string (one value), an array of strings,
 * or null (no constraint); NULL or JSON null for obj means no constraint at all. Unknown keys,
 * other types, and the limits above are refused with a reason in err.
 * Returns 0, -EINVAL or -ENOMEM; on error f is unchanged. */
int filter_set_json(filter_t *f, const json_t *obj, char *err, size_t errlen);

/* Returns a new object (owned by the caller) with one array per key that has values, the
 * canonical form echoed in "subscribed" replies; NULL when out of memory. */
json_t *filter_to_json(const filter_t *f);

/* Fills ev with borrowed pointers into the event object doc (borrowed; it must outlive ev).
 * Members that are absent or not strings are left NULL. */
void filter_event_from_json(const json_t *doc, filter_event_t *ev);

#endif
