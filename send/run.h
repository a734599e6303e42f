/* run: one run of adw-send, and what every mode shares: the client, the tally of what became
 * of the events, the deadline; keeping the valid events, delivering them, and the exit code
 * the tally gives. */
#ifndef ADW_SEND_RUN_H
#define ADW_SEND_RUN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "client.h"
#include "opts.h"

/* Exit codes. Never 2: Claude Code takes a hook's exit 2 as "block the action". */
#define SEND_EXIT_OK 0
#define SEND_EXIT_USAGE 64   /* bad flags or configuration (always) */
#define SEND_EXIT_INVALID 65 /* --strict: an input or event was invalid and not sent */
#define SEND_EXIT_LOST 74    /* --strict: an event was neither delivered nor spooled */
#define SEND_EXIT_SPOOLED 75 /* --strict: an event was not delivered now; it is in the spool */

/* What happened to the events of this run, for the exit code. */
typedef struct run_tally_t {
    size_t sent, spooled, lost, invalid;
} run_tally_t;

/* One of these per process. */
typedef struct run_t {
    send_options_t opt;
    client_t *client; /* owned; NULL before client_new */
    run_tally_t tally;
    int64_t deadline_us; /* one-shot modes: the whole run */
} run_t;

/* Set (to 1) by main's SIGTERM and SIGINT handlers; --stream-json stops reading when set. */
extern volatile sig_atomic_t run_stopping;

/* Milliseconds from now to deadline_us (monotonic), rounded up; 0 when it has passed. */
int run_ms_left(int64_t deadline_us);

/* Keeps the valid events of arr (borrowed) in a new array (owned by the caller; NULL when out
 * of memory); logs each invalid one with what and its index plus base (e.g. "event 2") and
 * counts it in the tally. */
json_t *run_valid_events(run_t *s, json_t *arr, const char *what, size_t base);

/* Delivers events (borrowed) through the client within timeout_ms, logs the outcome and adds
 * it to the tally. Nothing happens for an empty array. */
void run_deliver(run_t *s, json_t *events, int timeout_ms);

/* Sends the one event ev (owned; freed here) as the one-shot modes do: logged and counted as
 * "event 0" when invalid, else delivered within the run's deadline. */
void run_send_one(run_t *s, json_t *ev);

/* The exit code the tally gives: SEND_EXIT_OK unless --strict; then LOST, SPOOLED, INVALID,
 * the first that counted anything, else OK. */
int run_exit_code(const run_t *s);

#endif
