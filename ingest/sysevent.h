/* sysevent: the system events ingest raises itself (run_stalled, approval_*, budget_*), built
 * and validated as a submitted event is. Pure: no I/O, no clock (the caller passes the time).
 */
#ifndef ADW_SYSEVENT_H
#define ADW_SYSEVENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "event.h"

/* Builds {"type":"system","event":name,"adw_id":A,"step":S,"summary":summary,"payload":payload}
 * (in that key order; no "step" when step is NULL, "" for a NULL adw_id) and validates it with
 * event_from_json as received at received_us. name, adw_id, step and summary are borrowed.
 * payload: the caller's reference, which this call takes whatever happens (NULL, as from a
 * failed json_pack, counts as out of memory). Returns 0 with ev filled (release with
 * event_clear), or -EINVAL (the reason in err) or -ENOMEM ("out of memory" in err), ev
 * untouched. */
int sysevent_build(const char *name, const char *adw_id, const char *step, const char *summary,
                   json_t *payload, int64_t received_us, adw_event_t *ev, char *err, size_t errlen);

#endif
