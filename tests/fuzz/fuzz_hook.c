/* libFuzzer driver for shared/hook.c: any bytes as a hook body, mapped to an event.
 *
 * Input: one mode byte, then the body. Mode bit 0: load with JSON_ALLOW_NUL; bit 1: give an
 * adw_id; bit 2: give a step; bits 3-7: the limit for a second, direct hook_payload_fit()
 * call (40..536 bytes) so that every shortening path runs on small inputs. Aborts when an
 * event breaks the contract (agent_id / agent_type other than the body's valid ones
 * included) or a fitted payload is over its limit (counted by jsonw_size, as
 * the contract counts it).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compact.h"
#include "hook.h"
#include "adw_limits.h"
#include "jsonw.h"

static void check_event(const json_t *ev, const json_t *hook)
{
    const char *id = json_string_value(json_object_get(ev, "adw_id"));
    const json_t *sum = json_object_get(ev, "summary");
    const json_t *payload = json_object_get(ev, "payload");
    if (strcmp(json_string_value(json_object_get(ev, "type")), "adw_event") != 0)
        abort();
    if (!id || !hook_adw_id_valid(id, strlen(id)))
        abort();
    if (!json_equal(json_object_get(ev, "event_type"), json_object_get(hook, "hook_event_name")))
        abort();
    if (!json_is_string(sum) || json_string_length(sum) > ADW_SUMMARY_MAX)
        abort();
    for (size_t i = 0; i < json_string_length(sum); i++) {
        unsigned char c = (unsigned char)json_string_value(sum)[i];
        if (c < 0x20 || c == 0x7F)
            abort();
    }
    if (!json_is_object(payload) || compact_size(payload) > ADW_PAYLOAD_MAX)
        abort();
    if (!json_object_get(payload, "adw_truncated") && !json_equal(payload, hook))
        abort();
    /* agent keys: exactly the body's, when they are within the contract */
    static const struct {
        const char *key;
        size_t max;
    } agent[] = {{"agent_id", ADW_AGENT_ID_MAX}, {"agent_type", ADW_AGENT_TYPE_MAX}};
    for (size_t i = 0; i < sizeof agent / sizeof agent[0]; i++) {
        const char *want = hook_agent_text(json_object_get(hook, agent[i].key), agent[i].max);
        const json_t *got = json_object_get(ev, agent[i].key);
        if (want ? !json_equal(got, json_object_get(hook, agent[i].key)) : got != NULL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    json_error_t jerr;
    json_t *hook =
        json_loadb((const char *)data + 1, size - 1, (mode & 1) ? JSON_ALLOW_NUL : 0, &jerr);
    if (!hook)
        return 0;
    char err[256] = "";
    json_t *ev = hook_to_event(hook, (mode & 2) ? "fuzz-run" : NULL, (mode & 4) ? "build" : NULL,
                               err, sizeof err);
    if (ev)
        check_event(ev, hook);
    else if (err[0] == '\0')
        abort();
    json_decref(ev);

    if (json_is_object(hook)) {
        json_t *copy = json_deep_copy(hook);
        size_t max = 40 + (size_t)(mode >> 3) * 16;
        int rc = hook_payload_fit(copy, max);
        if (rc == 0 && compact_size(copy) > max)
            abort();
        size_t unused;
        /* -EINVAL only for a hook too deep for the writer to measure */
        if (rc != 0 && rc != -E2BIG && !(rc == -EINVAL && jsonw_size(hook, SIZE_MAX, &unused)))
            abort();
        json_decref(copy);
    }
    json_decref(hook);
    return 0;
}
