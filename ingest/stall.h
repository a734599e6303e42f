/* stall: the system event ingest raises itself when a running run has had no event for a while
 * (proto/http.md, "Events ingest raises"): run_stalled, with its summary and payload, built and
 * validated as a submitted event is, and the period of the scan that looks for such runs.
 * Pure: no I/O, no clock (the caller passes the times).
 */
#ifndef ADW_STALL_H
#define ADW_STALL_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define STALL_SCAN_MAX                                                                             \
    1000 /* most runs one scan marks stalled (fewer when a transaction holds                       \
            fewer events); the next scan takes the rest */

/* The scan period for a stall threshold of stall_s seconds: half of it, at most 10 s and at
 * least 250 ms, in milliseconds; 0 when stall_s <= 0 (stalls are off). */
int64_t stall_scan_period_ms(int64_t stall_s);

/* Whole seconds from since_us to now_us (both microseconds on the same clock), rounded down;
 * 0 when now_us is not after since_us. */
int64_t stall_idle_s(int64_t now_us, int64_t since_us);

/* Writes the summary of a spell of idle_s seconds into out (outlen bytes, NUL-terminated):
 * "No event for N s" under a minute, else "No event for M min" (M = idle_s / 60, rounded
 * down). Returns the length it needed, as snprintf. */
int stall_summary(int64_t idle_s, char *out, size_t outlen);

/* Builds the run_stalled event of run adw_id (borrowed), whose current step is step (borrowed;
 * NULL: the event has no step), idle for idle_s seconds since its event last_id, received at
 * received_us:
 *   {"type":"system","event":"run_stalled","adw_id":A,"step":S,"summary":"No event for ...",
 *    "payload":{"idle_s":N,"last_id":L}}
 * validated by event_from_json. Returns 0 with ev filled (the caller releases it with
 * event_clear), or -EINVAL (ev untouched, the reason in err) or -ENOMEM. */
int stall_event_build(const char *adw_id, const char *step, int64_t idle_s, int64_t last_id,
                      int64_t received_us, adw_event_t *ev, char *err, size_t errlen);

#endif
