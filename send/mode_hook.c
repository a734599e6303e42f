/* mode_hook: --hook, a Claude Code hook's JSON from stdin, mapped to one event as
 * POST /api/hooks maps it (shared/claude/hook.c). */
#include "codec.h"
#include "hook.h"
#include "input.h"
#include "log.h"
#include "mode.h"

int mode_hook_send(run_t *s)
{
    buf_t in;
    if (input_read(s, &in)) {
        buf_free(&in);
        return 0;
    }
    json_t *hook = NULL;
    char why[256];
    int rc = codec_json_parse(in.data, in.len, &hook, why, sizeof why);
    buf_free(&in);
    if (rc) {
        log_error("hook input is not JSON: %s; not sent", why);
        s->tally.invalid++;
        return 0;
    }
    json_t *ev = hook_to_event(hook, s->opt.adw_id, s->opt.step, why, sizeof why);
    json_decref(hook);
    if (!ev) {
        log_error("hook input: %s; not sent", why);
        s->tally.invalid++;
        return 0;
    }
    run_send_one(s, ev);
    return 0;
}
