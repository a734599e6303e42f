/* codec: the wire forms of a JSON value (msgpack over ZeroMQ, JSON text over HTTP and
 * WebSocket) to and from jansson's json_t.
 *
 * Both decoders accept exactly what the contract allows and refuse the rest with a reason:
 * any JSON value at top level, strings of valid UTF-8 without NUL bytes, 64-bit signed
 * integers, finite reals, object keys unique, nesting of arrays and objects at most
 * ADW_JSON_DEPTH_MAX deep (a scalar is depth 0, `[]` depth 1). The decoders do no I/O and
 * never read outside the buffer they are given. Reasons are written NUL-terminated into the
 * caller's err[errlen] (err may be NULL when errlen is 0), truncated to fit.
 *
 * Why the msgpack decoder checks every length before it allocates: it reads frames from any
 * ZeroMQ peer, before a single event has been validated, and a msgpack header claims its
 * length in a few bytes. `dd ff ff ff ff` is an array of four billion elements in five bytes;
 * a decoder that reserved room for the claimed count (as a general-purpose unpacker does) would
 * let one small frame ask for tens of gigabytes, and a handful of them exhaust the server's
 * memory. Since every element takes at least one byte, a claim larger than the bytes left is
 * refused at once, and memory use stays proportional to the frame (which ingest bounds by
 * --max-body).
 */
#ifndef ADW_CODEC_H
#define ADW_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct msgpack_packer; /* msgpack.h; declared here so that users of the rest need not include it */

/* Decodes the len bytes at buf (borrowed) as exactly one msgpack value filling the whole
 * frame. Mapping: nil -> null, bool -> true/false, every int form -> integer, float32 and
 * float64 -> real, str -> string, array -> array, map -> object. Refused: a uint64 above
 * INT64_MAX ("integer out of range"), NaN or infinity, a string that is not valid UTF-8 or
 * holds a NUL byte, bin, ext (timestamps included), the never-used byte 0xc1, a map key that
 * is not a string, a duplicate key, nesting deeper than ADW_JSON_DEPTH_MAX, truncation, and
 * bytes after the value. Every claimed length is checked against the bytes left before
 * anything is allocated (an array of N needs N more bytes, a map 2N), so a small frame never
 * makes a large allocation. The reason names the problem and its byte offset.
 * Returns 0 and sets *out to a new value (owned by the caller, json_decref), or -EINVAL
 * (malformed or refused input) or -ENOMEM, with *out set to NULL and the reason in err. */
int codec_msgpack_decode(const void *buf, size_t len, json_t **out, char *err, size_t errlen);

/* Packs v (borrowed) with pk (borrowed; its write callback decides where the bytes go):
 * null -> nil, true/false -> bool, integer -> the smallest int form, real -> float64,
 * string -> str, array -> array, object -> map in insertion order. Returns 0, -EINVAL (a NaN
 * or infinite real, nesting deeper than JSONW_DEPTH_MAX of jsonw.h, a length over 2^32 - 1), or
 * -ENOMEM when the write callback fails (msgpack_sbuffer's only failure). On error, some
 * bytes may already have been written. */
int codec_msgpack_encode(struct msgpack_packer *pk, const json_t *v);

/* Appends v (borrowed) packed as codec_msgpack_encode does to out (borrowed). Returns 0,
 * -EINVAL as codec_msgpack_encode, -ENOMEM or -E2BIG (the buffer's cap); on error out is
 * cut back to the length it had on entry. */
int codec_msgpack_to_buf(buf_t *out, const json_t *v);

/* Parses the len bytes at buf (borrowed) as one JSON text (any value at top level) with
 * jansson, refusing duplicate keys, \u0000, invalid UTF-8, integers outside 64 bits, reals
 * that overflow, trailing data, and nesting deeper than ADW_JSON_DEPTH_MAX. Input that is
 * empty or only whitespace is refused as "empty body". The reason carries jansson's text
 * with line and column. Returns 0 and sets *out to a new value (owned by the caller,
 * json_decref), or -EINVAL or -ENOMEM with *out set to NULL and the reason in err. */
/* Appends a stored event as a msgpack map: "id", "received_at", then doc's own members in their
 * order (the frame ingest publishes). doc is borrowed. Returns 0, -ENOMEM or -E2BIG; on error
 * out is unchanged. */
int codec_msgpack_event(buf_t *out, const json_t *doc, int64_t id, const char *received_at);

int codec_json_parse(const char *buf, size_t len, json_t **out, char *err, size_t errlen);

#endif
