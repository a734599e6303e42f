/* mode: adw-send's four ways to get events, one file each: mode_flags.c (one event from the
 * flags), mode_json.c (--json), mode_hook.c (--hook), mode_stream.c (--stream-json).
 *
 * Each reads its input, keeps the valid events, delivers them through s's client and counts
 * what became of every event (and every invalid input) in s's tally. Each returns 0, or
 * -ENOMEM when it could not even build an event (main counts that as lost). */
#ifndef ADW_SEND_MODE_H
#define ADW_SEND_MODE_H

#include "run.h"

/* One event from --adw-id, --type, --event, --summary, --payload, ...; the run's deadline. */
int mode_flags_send(run_t *s);

/* --json: whole events from stdin (one object, an array, or NDJSON); --adw-id and --step
 * fill events that have none; the run's deadline. */
int mode_json_send(run_t *s);

/* --hook: a Claude Code hook's JSON from stdin, mapped as POST /api/hooks maps it; the run's
 * deadline. */
int mode_hook_send(run_t *s);

/* --stream-json: `claude -p --output-format stream-json --verbose` output, each line mapped
 * and sent as it arrives (--timeout-ms per send), copied to stdout with --tee, until EOF or
 * run_stopping; then one more try to drain the spool. */
int mode_stream_send(run_t *s);

#endif
