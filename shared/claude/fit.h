/* fit: shortening an event's payload until it fits the contract's limit.
 *
 * The contract caps `payload` at ADW_PAYLOAD_MAX bytes of compact JSON. Hook bodies and
 * stream-json messages can be bigger (a Read's tool_response holds the whole file). Rather
 * than reject the event, hook_payload_fit() shortens it, in this order, until it fits:
 *   1. the longest strings anywhere in the payload are cut, all to one common length chosen
 *      so the total fits, on a UTF-8 boundary, each ending in "…[truncated N bytes]" (N raw
 *      bytes removed); strings shorter than that length are untouched;
 *   2. if strings alone cannot do it, the largest top-level values are replaced, largest
 *      first, by the string "…[truncated N bytes]" (N bytes of their compact JSON);
 *   3. if still too big (thousands of keys), the payload becomes
 *      {"adw_truncated":true,"adw_original_bytes":N}.
 * A shortened payload carries the top-level key "adw_truncated": true; a payload that fits
 * as it is stays untouched. Object keys are never cut. Sizes are measured with jsonw_size()
 * (shared/core/jsonw.h), the measure event_from_json() checks the limit with.
 *
 * The name keeps the hook_ prefix of hook.h, which includes this header.
 * Pure: no I/O, no global state; safe to call from any thread.
 */
#ifndef ADW_FIT_H
#define ADW_FIT_H

#include <stddef.h>

#include <jansson.h>

/* Shortens payload in place until jsonw_size() measures it at most max bytes, as described
 * at the top of this file, adding "adw_truncated": true when it changed anything.
 * payload: borrowed, must be an object whose values are not shared with other documents
 * (a string shared elsewhere would be cut there too).
 * Returns 0 (it fits, shortened or not), -EINVAL (payload not an object, or nested deeper
 * than JSONW_DEPTH_MAX so that it cannot be measured), -E2BIG (max is too small even for
 * the step 3 stub) or -ENOMEM. On error the payload may be partly shortened and should be
 * discarded. */
int hook_payload_fit(json_t *payload, size_t max);

#endif
