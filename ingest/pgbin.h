/* pgbin: PostgreSQL's binary formats, as the writer sends a batch: one-dimensional arrays
 * (array_recv's format, for array parameters such as $1::bigint[]) and the rows of a binary
 * COPY. Neither side escapes or parses text. The field encodings are the same in both: an
 * array element and a COPY field are each a 32-bit big-endian length (-1 for NULL) followed by
 * that many bytes of the type's binary form.
 *
 * Pure: each function appends to a buf_t and does no I/O. Those that append return 0, or
 * nonzero when out of memory (what was appended is then incomplete: start the buffer afresh).
 */
#ifndef ADW_PGBIN_H
#define ADW_PGBIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Type oids (pg_type.oid) of the element types the writer sends. */
#define PGBIN_OID_BOOL 16
#define PGBIN_OID_INT8 20
#define PGBIN_OID_TEXT 25
#define PGBIN_OID_FLOAT8 701
#define PGBIN_OID_TIMESTAMPTZ 1184
#define PGBIN_OID_JSONB 3802

/* 2000-01-01T00:00:00Z in Unix microseconds: PostgreSQL's zero for timestamps. */
#define PGBIN_EPOCH_US 946684800000000LL

/* ---- arrays: ndim, has-null flag, element type oid, then (size, lower bound) per dimension,
 * then the elements ---- */

/* Starts b (emptied first) as an array of one dimension, lower bound 1, of elements of type
 * oid; the has-null flag and the element count are set by pgbin_array_end. */
int pgbin_array_begin(buf_t *b, uint32_t oid);

/* Sets the header of an array begun with pgbin_array_begin: n elements, has_null when one of
 * them is NULL. */
void pgbin_array_end(buf_t *b, uint32_t n, int has_null);

/* Makes b (emptied first) an empty array of type oid (no dimensions). */
int pgbin_array_empty(buf_t *b, uint32_t oid);

/* ---- fields (array elements or COPY fields) ---- */

/* A text field, s (borrowed) as is; NULL s is an SQL NULL, and sets *has_null. */
int pgbin_text(buf_t *b, const char *s, int *has_null);

/* An SQL NULL (the same in any type). */
int pgbin_null(buf_t *b);

/* A bigint. */
int pgbin_int8(buf_t *b, int64_t v);

/* A boolean: one byte, 1 for v nonzero, else 0. */
int pgbin_bool(buf_t *b, int v);

/* A double precision: its IEEE 754 bits, big-endian, as a bigint is sent. */
int pgbin_float8(buf_t *b, double d);

/* A timestamptz from Unix microseconds (sent as microseconds since PGBIN_EPOCH_US). */
int pgbin_timestamptz(buf_t *b, int64_t unix_us);

/* A jsonb: version byte 1, then the object doc (borrowed) as jsonw_object_with writes it,
 * prefix_members (borrowed, may be NULL) first. Returns 0, or -ENOMEM or -EINVAL (doc not an
 * object). */
int pgbin_jsonb(buf_t *b, const json_t *doc, const char *prefix_members);

/* ---- binary COPY: the signature "PGCOPY\n\377\r\n", flags and header extension length (both
 * 0), then per row its field count and fields, then the trailer (a field count of -1) ---- */

#define PGBIN_COPY_HEADER_LEN 19 /* signature (11), flags (4), extension length (4) */

/* Starts b (emptied first) as a COPY stream: the header. */
int pgbin_copy_begin(buf_t *b);

/* Starts a row of nfields fields (the fields follow). */
int pgbin_copy_row(buf_t *b, uint16_t nfields);

/* Ends the stream: the trailer. */
int pgbin_copy_end(buf_t *b);

#endif
