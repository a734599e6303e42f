/* fleet: many WebSocket clients of adw-gateway, spread over threads (one epoll set each; the
 * clients speak WebSocket themselves, or libwebsockets' client), gateway URLs and local source
 * addresses, recording what each receives: bench events (top-level "bench_seq" and "bench_t", the
 * publisher's wall clock in microseconds) are checked for loss, duplicates and order (by id) and
 * their publish-to-receipt latency is recorded.
 */
#ifndef ADW_FLEET_H
#define ADW_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "fleet_types.h"
#include "hist.h"

/* Starts the client threads, which connect (gradually) and keep the connections up (without
 * reconnecting, unless o->resume). Returns NULL with a reason in err. */
fleet_t *fleet_new(const fleet_options_t *o, char *err, size_t errlen);

/* Stops the threads, closes every connection and frees the fleet; accepts NULL, sets *f NULL. */
void fleet_destroy(fleet_t **f);

/* Fills *st with a consistent snapshot (counters and the latency histogram so far). */
void fleet_stats(fleet_t *f, fleet_stats_t *st);

/* Forgets latency observations so far (after a warm-up). */
void fleet_reset_latency(fleet_t *f);

/* Counts, over the clients that use `query` (half == 0) or `half_query` (half == 1), the bench
 * events each is missing among those whose bit is set in want (a bitset over bench_seq; NULL:
 * every seq below n). Returns the total missing over those clients. */
uint64_t fleet_lost(fleet_t *f, int half, const uint8_t *want, int64_t n);

/* For each bench event with from <= bench_seq < to that some client received (needs max_seq):
 * adds to *first the publish-to-receipt latency of the first client to get it, and to *last
 * that of the last one (the spread between them is the fan-out's sweep plus the clients' own
 * delay). */
void fleet_spread(fleet_t *f, int64_t from, int64_t to, hist_t *first, hist_t *last);

#endif
