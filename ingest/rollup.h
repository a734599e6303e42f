/* rollup: what a batch of events adds to its runs (adw_runs) and steps (adw_steps), and the
 * status an event implies for them. Pure: no I/O, no locks. The writer folds each fresh event
 * of a batch into two maps (one aggregate per run, one per run and step), then sends the
 * aggregates along with the events; the SQL adds them to the stored rows.
 */
#ifndef ADW_ROLLUP_H
#define ADW_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* One of these per run (step NULL) or (run, step) touched by a batch: the batch's
 * contribution. The strings are borrowed from the batch's events. */
typedef struct rollup_agg_t {
    const char *adw_id;       /* NULL: a free slot */
    const char *step;         /* NULL for the run row */
    const char *status;       /* last explicit (or implied) status in the batch, or NULL */
    const char *current_step; /* run: step of the last event that had one */
    int64_t n, tokens, itok, otok, crtok, cctok;
    double cost;
    int64_t first_ts, last_ts, first_id, last_id, updated_us;
    int64_t duration_ms;
    int has_duration;
} rollup_agg_t;

/* An open-addressing map of aggregates keyed by (adw_id, step). Zero-initialise it; free it
 * with rollup_map_free. Iterate over slots[0..cap), skipping those with adw_id NULL. */
typedef struct rollup_map_t {
    rollup_agg_t *slots; /* owned */
    size_t cap;          /* power of two */
    size_t used;
} rollup_map_t;

/* Empties m and makes room for expect keys (the map never grows: size it for every event of
 * the batch). Returns 0 or -ENOMEM (m is then unchanged). */
int rollup_map_reset(rollup_map_t *m, size_t expect);

/* Frees m's slots and zeroes it. */
void rollup_map_free(rollup_map_t *m);

/* Finds or adds the aggregate of (adw_id, step) (both borrowed; step NULL for a run). The map
 * must have been reset for at least as many keys as are added. Never NULL. */
rollup_agg_t *rollup_map_get(rollup_map_t *m, const char *adw_id, const char *step);

/* Finds the aggregate of (adw_id, step) without adding it; NULL when absent. */
rollup_agg_t *rollup_map_find(const rollup_map_t *m, const char *adw_id, const char *step);

/* The status e implies for its run: its own, else "completed" for the system event
 * adw_complete and "failed" for adw_failed; NULL when none. */
const char *rollup_run_status(const adw_event_t *e);

/* The status e implies for its step: its own, else "running" for step_start, "completed" for
 * step_complete and "failed" for step_failed; NULL when none. */
const char *rollup_step_status(const adw_event_t *e);

/* Adds e (its id assigned) to an aggregate: count, cost and token totals (saturating at the
 * top of their type), first and last timestamps, first and last ids, last received time. */
void rollup_add(rollup_agg_t *a, const adw_event_t *e);

/* Folds one fresh event of the batch into its run's aggregate in runs and, when it has a step,
 * its step's in steps: totals, current step, and the status and step duration that system
 * events set. */
void rollup_event(rollup_map_t *runs, rollup_map_t *steps, const adw_event_t *e);

#endif
