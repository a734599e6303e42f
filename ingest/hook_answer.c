#include "hook_answer.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "jsonw.h"

/* The X-ADW-Event-Id header line of id into out (64 bytes); "" when id <= 0. */
static const char *event_header(int64_t id, char *out, size_t outlen)
{
    if (id <= 0)
        return NULL;
    snprintf(out, outlen, "X-ADW-Event-Id: %" PRId64 "\r\n", id);
    return out;
}

void hook_answer_none(httpd_conn_t *c, int64_t event_id)
{
    char h[64];
    httpd_respond(c, 200, "application/json", "{}", 2, event_header(event_id, h, sizeof h), 0);
}

void hook_answer_decision(httpd_conn_t *c, const char *decision, const char *reason,
                          int64_t event_id)
{
    buf_t b;
    buf_init(&b, 0);
    int bad = buf_puts(&b, "{\"hookSpecificOutput\":{\"hookEventName\":\"PreToolUse\","
                           "\"permissionDecision\":");
    bad |= jsonw_string(&b, decision, strlen(decision));
    if (reason) {
        bad |= buf_puts(&b, ",\"permissionDecisionReason\":");
        bad |= jsonw_string(&b, reason, strlen(reason));
    }
    bad |= buf_puts(&b, "}}");
    char h[64];
    /* A body that could not be built is never sent cut short (httpd closes instead). */
    httpd_respond(c, 200, "application/json", bad ? NULL : b.data, b.len,
                  event_header(event_id, h, sizeof h), 0);
    buf_free(&b);
}
