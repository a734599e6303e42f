/* event: the ADW event model: validation of every rule of the contract, and the fields the
 * store and the run state need, extracted once.
 *
 * An event lives as a jansson object (`doc`, kept exactly as submitted, key order included)
 * plus the fields below, which point into it.
 */
#ifndef ADW_EVENT_H
#define ADW_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_ERR_LEN 160

/* Which run totals an event carries (bits of adw_event_t.has). */
enum {
    EVENT_HAS_COST = 1 << 0,
    EVENT_HAS_TOKENS = 1 << 1,
    EVENT_HAS_DURATION = 1 << 2,
    EVENT_HAS_TS = 1 << 3,
};

/* One of these per event accepted for storage. Plain data. */
typedef struct adw_event_t {
    json_t *doc;      /* owned reference: the event as submitted */
    const char *type; /* the following point into doc; NULL when absent */
    const char *adw_id;
    const char *step;
    const char *event_type; /* adw_event's event_type */
    const char *event;      /* system's event */
    const char *status;
    const char *event_id;
    const char *summary;
    const char *agent_id;   /* the subagent the event comes from; NULL: the main agent */
    const char *agent_type; /* that subagent's type, when known */
    int is_system;          /* type == "system" */
    unsigned has;           /* EVENT_HAS_* */
    int64_t ts_us;          /* the event's timestamp; received_us when absent */
    int64_t duration_ms;    /* when EVENT_HAS_DURATION */
    double cost_usd;        /* payload.cost_usd, 0 when absent */
    int64_t tokens;         /* payload.tokens, else the sum of the four kinds below */
    int64_t input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens;
    int64_t id;          /* assigned at commit; 0 before */
    int64_t received_us; /* time of receipt, set by event_from_json */
    /* Set only by ingest's OTLP route (/v1/logs), never from an event's keys: */
    char *attr_session; /* owned (free()d by event_clear): the writer files the event under
                           the run that hook events of this session id were filed under,
                           else keeps adw_id; NULL: adw_id as it is */
    int otel;           /* an OTel log record: its cost and tokens count as OTel's spend */
} adw_event_t;

/* Validates doc against every rule of the contract's event table and fills ev.
 * doc is borrowed; on success ev holds its own reference (release with event_clear).
 * received_us is the time of receipt (also the timestamp when the event has none).
 * Returns 0, or -EINVAL with a one-line reason in err (EVENT_ERR_LEN bytes), ev untouched. */
int event_from_json(json_t *doc, int64_t received_us, adw_event_t *ev, char *err, size_t errlen);

/* Drops ev's reference to its doc and zeroes it. Accepts an already cleared event. */
void event_clear(adw_event_t *ev);

/* Returns whether s is a valid adw_id: 1..64 chars of [A-Za-z0-9._:-]. */
int event_adw_id_valid(const char *s, size_t len);

#endif
