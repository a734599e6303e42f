/* run: what every mode of adw-send shares: keeping the valid events, delivering them through
 * the client with the outcome logged and tallied, and the exit code the tally gives. */
#include "run.h"

#include "event.h"
#include "log.h"
#include "timefmt.h"

volatile sig_atomic_t run_stopping;

int run_ms_left(int64_t deadline_us)
{
    int64_t left = deadline_us - timefmt_mono_us();
    return left > 0 ? (int)((left + 999) / 1000) : 0;
}

json_t *run_valid_events(run_t *s, json_t *arr, const char *what, size_t base)
{
    json_t *out = json_array();
    if (!out)
        return NULL;
    int64_t now = timefmt_now_us();
    size_t i;
    json_t *ev;
    json_array_foreach(arr, i, ev)
    {
        char why[EVENT_ERR_LEN];
        adw_event_t e;
        if (!json_is_object(ev)) {
            log_error("%s %zu: not a JSON object; not sent", what, base + i);
            s->tally.invalid++;
            continue;
        }
        if (event_from_json(ev, now, &e, why, sizeof why)) {
            log_error("%s %zu: %s; not sent", what, base + i, why);
            s->tally.invalid++;
            continue;
        }
        event_clear(&e);
        json_array_append(out, ev);
    }
    return out;
}

void run_deliver(run_t *s, json_t *events, int timeout_ms)
{
    if (json_array_size(events) == 0)
        return;
    client_report_t rep;
    int rc = client_submit(s->client, events, timeout_ms, &rep);
    if (rc < 0) {
        log_error("out of memory; %zu event(s) not sent", json_array_size(events));
        s->tally.lost += json_array_size(events);
        return;
    }
    s->tally.sent += rep.sent;
    s->tally.spooled += rep.spooled;
    s->tally.lost += rep.lost;
    s->tally.invalid += rep.invalid;
    if (rep.invalid)
        log_error("%zu event(s) refused by ingest: %s", rep.invalid, rep.invalid_err);
    if (rep.drained || rep.rejected)
        log_info("spool: %zu earlier event(s) delivered, %zu rejected, %zu left", rep.drained,
                 rep.rejected, rep.pending);
    if (rep.spooled)
        log_warn("%zu event(s) not delivered (%s); spooled (%zu waiting)", rep.spooled, rep.err,
                 rep.pending);
    if (rep.lost)
        log_error("%zu event(s) lost: not delivered (%s) and not spooled (%s)", rep.lost,
                  rep.err[0] ? rep.err : "?", rep.lost_err);
    if (rep.sent)
        log_info("sent %zu event(s)", rep.sent);
}

void run_send_one(run_t *s, json_t *ev)
{
    json_t *arr = json_array();
    json_array_append_new(arr, ev);
    json_t *ok = run_valid_events(s, arr, "event", 0);
    run_deliver(s, ok, run_ms_left(s->deadline_us));
    json_decref(ok);
    json_decref(arr);
}

int run_exit_code(const run_t *s)
{
    if (!s->opt.strict)
        return SEND_EXIT_OK;
    if (s->tally.lost)
        return SEND_EXIT_LOST;
    if (s->tally.spooled)
        return SEND_EXIT_SPOOLED;
    if (s->tally.invalid)
        return SEND_EXIT_INVALID;
    return SEND_EXIT_OK;
}
