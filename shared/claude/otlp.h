/* otlp: Claude Code's OpenTelemetry log records (an OTLP/HTTP JSON ExportLogsServiceRequest)
 * mapped to ADW events.
 *
 * The request is the proto3 JSON mapping of OTLP: lowerCamelCase keys, 64-bit integers as
 * strings (numbers are taken too), every attribute value an AnyValue wrapper:
 *
 *   {"resourceLogs":[{"resource":{"attributes":[{"key":"adw.id","value":{"stringValue":"r1"}}]},
 *     "scopeLogs":[{"scope":{"name":"com.anthropic.claude_code.events"},
 *       "logRecords":[{"timeUnixNano":"1764000000123000000","eventName":"claude_code.api_request",
 *         "body":{"stringValue":"claude_code.api_request"},
 *         "attributes":[{"key":"session.id","value":{"stringValue":"..."}}, ...]}]}]}]}
 *
 * Each log record becomes one event:
 *   {"type":"adw_event","adw_id":A,"step":S,"event_type":N,"event_id":"otel-<32 hex>",
 *    "timestamp":T,"summary":L,"payload":<the record's attributes as one JSON object>}
 *   N  the record's `eventName`, else its `event.name` attribute, else a string `body`,
 *      without a leading "claude_code."; names this module does not know are kept.
 *   T  `timeUnixNano`, else `observedTimeUnixNano` (0 is unset), as RFC 3339 with
 *      microseconds; neither: no timestamp (ingest uses the time of receipt).
 *   L  api_request  "<model> $<cost_usd> <input_tokens>/<output_tokens> tok <duration_ms> ms"
 *      tool_result  "<tool_name> ok|failed (<duration_ms> ms)"
 *      user_prompt  "Prompt (<prompt_length> chars)"
 *      tool_decision "<tool_name>: <decision>"
 *      api_error    "<model> error <status_code>: <error>"
 *      other names  the name. Parts whose attribute is missing are left out.
 *   payload: AnyValue -> JSON (stringValue, boolValue, intValue (its string becomes an
 *      integer), doubleValue, arrayValue (an array), kvlistValue (an object), bytesValue (its
 *      base64 string), empty: null); for the numeric keys (OTLP_NUMERIC_KEYS below) a numeric
 *      stringValue becomes a number, so cost_usd and the token counts sit at the payload's top
 *      level as numbers, where the run totals find them. Shortened by hook_payload_fit().
 *   event_id: a 128-bit FNV-1a hash of session.id, prompt.id, event.sequence, the name and
 *      timeUnixNano, and, when event.sequence is missing, of all the attributes too: the
 *      same record sent twice (an exporter's retry) gets the same id.
 *
 * Which run: the resource attribute `adw.id` (else the record's), and `adw.step` -> `step`;
 * else the record's (or the resource's) `session.id`: adw_id = its first 8 characters and
 * *session = the session id (ingest's writer may re-file the event under the run the hooks of
 * that session were filed under). Neither, or an invalid adw.id: the record is refused.
 *
 * Pure: no I/O, no global state; safe to call from any thread.
 */
#ifndef ADW_OTLP_H
#define ADW_OTLP_H

#include <stddef.h>

#include <jansson.h>

#define OTLP_ERR_LEN 160

/* The payload keys whose numeric stringValues become numbers. */
#define OTLP_NUMERIC_KEYS                                                                          \
    "cost_usd", "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",     \
        "duration_ms", "tool_result_size_bytes", "prompt_length", "status_code", "attempt",        \
        "event.sequence"

/* What one request maps to. Plain data; release with otlp_logs_clear. */
typedef struct otlp_logs_t {
    json_t *events;  /* owned: an array of the events made, in the records' order */
    char **sessions; /* owned: one per event: its session id to re-file by, or NULL */
    size_t *at;      /* owned: one per event: its record's position in the request */
    size_t records;  /* log records seen */
    size_t rejected; /* records refused (records = events + rejected) */
    char first_error[OTLP_ERR_LEN]; /* why the first refused record was refused, or "" */
    size_t first_at;                /* that record's position */
} otlp_logs_t;

/* Maps an ExportLogsServiceRequest (request: borrowed, not modified). At most max_events
 * records become events (ADW_BATCH_MAX in ingest); the ones after are refused.
 * Returns 0 with *out filled (records refused one by one are counted in out->rejected, with
 * the first reason), or -EINVAL when request is not OTLP logs (not an object, `resourceLogs`
 * missing or not an array) with the reason in err, or -ENOMEM; on error *out is empty. */
int otlp_logs_map(const json_t *request, size_t max_events, otlp_logs_t *out, char *err,
                  size_t errlen);

/* Frees what l holds and empties it. Accepts an empty l. */
void otlp_logs_clear(otlp_logs_t *l);

/* Maps one log record. resource: the record's `resource` object (borrowed; may be NULL).
 * record: borrowed. Returns a new event (the caller owns it) and stores in *session a
 * malloc()ed copy of the session id the adw_id fell back to (else NULL; the caller frees it),
 * or returns NULL with the reason in err (NUL-terminated when errlen > 0). */
json_t *otlp_record_to_event(const json_t *resource, const json_t *record, char **session,
                             char *err, size_t errlen);

/* An AnyValue (borrowed) as plain JSON: a new reference, or NULL when v is not an AnyValue
 * (not an object, or an unusable wrapper) or out of memory. */
json_t *otlp_value_to_json(const json_t *v);

/* A list of KeyValue ([{"key":K,"value":AnyValue}...], borrowed; NULL is empty) as a new JSON
 * object, later keys winning; entries without a string key or an AnyValue are skipped. With
 * numbers != 0, the numeric stringValues of OTLP_NUMERIC_KEYS become numbers. Returns NULL
 * when out of memory. */
json_t *otlp_attributes_to_json(const json_t *kvlist, int numbers);

#endif
