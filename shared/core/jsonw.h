/* jsonw: a compact JSON writer for jansson values, appending into a buf_t.
 *
 * Output is compact (no whitespace), object members in the object's insertion order, strings
 * with only `"`, `\` and control characters escaped (other UTF-8 passes through, `/` is not
 * escaped), integers as integers, and reals as the shortest of %.15g, %.16g and %.17g that
 * reads back as the same double, always recognisably real (`1.0`, `-0.0`, `1e+300`).
 * Nothing is allocated per value: the only allocation is the buffer's own growth.
 *
 * Strings are written as stored; values from codec_json_parse and codec_msgpack_decode are
 * valid UTF-8, and a caller building values by hand keeps them so.
 *
 * Every writing function returns 0, or -ENOMEM (allocation), -E2BIG (the buffer's cap) or
 * -EINVAL (a NaN or infinite real, nesting deeper than JSONW_DEPTH_MAX (a cycle included),
 * a non-object where an object is required); on error the buffer is cut back to the length
 * it had on entry, so nothing partial is left behind.
 */
#ifndef ADW_JSONW_H
#define ADW_JSONW_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"

/* Deepest nesting of arrays and objects the writer follows. Far above ADW_JSON_DEPTH_MAX so
 * that envelopes around a maximal event still serialize; it guards the stack, not the
 * contract. */
#define JSONW_DEPTH_MAX 1024

/* Appends v (borrowed) as compact JSON to out (borrowed). Any JSON type at top level. */
int jsonw_value(buf_t *out, const json_t *v);

/* Appends the len bytes at s (borrowed) as a quoted, escaped JSON string. NUL bytes are
 * written as \u0000. */
int jsonw_string(buf_t *out, const char *s, size_t len);

/* Appends `{`, then prefix_members, then obj's own members, then `}`. prefix_members
 * (borrowed; NULL or "" for none) is already-encoded member text without a trailing comma,
 * such as `"id":42,"received_at":"2026-01-01T00:00:00.000000Z"`; it is copied as is, and a
 * comma is put between it and obj's members when both are present. The caller ensures obj
 * has no member of the same name. obj (borrowed) must be an object, else -EINVAL. */
int jsonw_object_with(buf_t *out, const json_t *obj, const char *prefix_members);

/* Computes the size in bytes of v (borrowed) as jsonw_value would write it, without
 * building it. Returns 0 and sets *out, or -E2BIG as soon as the size is known to exceed
 * limit (pass SIZE_MAX for none), or -EINVAL as jsonw_value would; *out is only set on
 * success. */
int jsonw_size(const json_t *v, size_t limit, size_t *out);

#endif
