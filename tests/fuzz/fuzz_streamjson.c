/* libFuzzer driver for shared/streamjson.c: any bytes as a run's stdout.
 *
 * Input: one mode byte, then the output. Mode bit 0: give an adw_id; bit 1: give a step.
 * The output is fed line by line to one mapper, then once more as a single line. Aborts when
 * an event breaks the contract or the result code and outputs disagree.
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
#include "streamjson.h"

static void check_event(const json_t *ev)
{
    const char *id = json_string_value(json_object_get(ev, "adw_id"));
    const char *type = json_string_value(json_object_get(ev, "event_type"));
    const json_t *sum = json_object_get(ev, "summary");
    const json_t *payload = json_object_get(ev, "payload");
    const json_t *dur = json_object_get(ev, "duration_ms");
    if (!id || !hook_adw_id_valid(id, strlen(id)))
        abort();
    if (!type || !*type || strlen(type) > ADW_EVENT_TYPE_MAX)
        abort();
    if (!json_is_string(sum) || json_string_length(sum) == 0 ||
        json_string_length(sum) > ADW_SUMMARY_MAX)
        abort();
    for (size_t i = 0; i < json_string_length(sum); i++) {
        unsigned char c = (unsigned char)json_string_value(sum)[i];
        if (c < 0x20 || c == 0x7F)
            abort();
    }
    if (!json_is_object(payload) || compact_size(payload) > ADW_PAYLOAD_MAX)
        abort();
    if (dur && (!json_is_integer(dur) || json_integer_value(dur) < 0))
        abort();
    /* agent_id / agent_type within the contract; agent_type only with an agent_id */
    const json_t *aid = json_object_get(ev, "agent_id");
    const json_t *atype = json_object_get(ev, "agent_type");
    if (aid && hook_agent_text(aid, ADW_AGENT_ID_MAX) == NULL)
        abort();
    if (atype && (!aid || hook_agent_text(atype, ADW_AGENT_TYPE_MAX) == NULL))
        abort();
}

static void feed(streamjson_t *sj, const char *line, size_t len)
{
    json_t *events = (json_t *)1;
    char err[256] = "";
    int rc = streamjson_line(sj, line, len, &events, err, sizeof err);
    if (rc < 0) {
        if (events || err[0] == '\0' || (rc != -EINVAL && rc != -ENOMEM))
            abort();
        return;
    }
    if (rc != 0 || !json_is_array(events))
        abort();
    for (size_t i = 0; i < json_array_size(events); i++)
        check_event(json_array_get(events, i));
    json_decref(events);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    streamjson_t *sj = streamjson_new((mode & 1) ? "fuzz-run" : NULL, (mode & 2) ? "plan" : NULL);
    if (!sj)
        abort();
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || text[i] == '\n') {
            feed(sj, text + start, i - start);
            start = i + 1;
        }
    }
    feed(sj, text, n);
    streamjson_destroy(&sj);
    if (sj)
        abort();
    return 0;
}
