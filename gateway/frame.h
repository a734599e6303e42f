/* frame: one outgoing WebSocket text message, serialized once and shared by reference count
 * among every client that sends it.
 *
 * A frame holds its payload and, just before it, the header of an unmasked, final WebSocket
 * text frame for that payload (what a server sends), so wire..wire+wire_len is the message as
 * it goes on the socket; several can be written in one go. The FRAME_HEADROOM bytes before the
 * payload are also where libwebsockets writes that same header when it frames the payload
 * itself. A frame is immutable after creation; reference counting is atomic, so a frame made on
 * one thread can be handed to another.
 */
#ifndef ADW_GATEWAY_FRAME_H
#define ADW_GATEWAY_FRAME_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "filter.h"

#define FRAME_HEADROOM 16 /* bytes before the payload; at least libwebsockets' LWS_PRE */

typedef struct frame_t {
    atomic_int refs;
    int64_t id;             /* the event's id; 0 for messages that are not events */
    size_t len;             /* payload bytes */
    filter_event_t fields;  /* the event's filter fields, pointing into this frame; all NULL for
                               messages that are not events */
    unsigned char *payload; /* len bytes of JSON text, FRAME_HEADROOM bytes into the allocation */
    unsigned char *wire;    /* the WebSocket frame header, then the payload */
    size_t wire_len;        /* header and payload bytes */
    unsigned char mem[];
} frame_t;

/* Returns a new frame (one reference, owned by the caller) holding a copy of the len bytes at
 * text (borrowed), with id 0 and no fields; NULL when out of memory. */
frame_t *frame_new_text(const char *text, size_t len);

/* Returns a new event frame for the stored event doc (borrowed): an object with an integer
 * "id" > 0 and a string "received_at" (elsewhere than first is fine, as PostgreSQL's jsonb
 * orders keys). The payload is compact JSON starting with "id" and "received_at", then doc's
 * other members in order. Returns NULL with a reason in err when doc is not such an object or
 * memory runs out. */
frame_t *frame_from_event(const json_t *doc, char *err, size_t errlen);

/* Returns a new event frame for a stored document as PostgreSQL prints jsonb (text[0..len),
 * borrowed): the same payload frame_from_event would make of it, but made by copying the text
 * without its insignificant whitespace, "id" and "received_at" moved to the front, other
 * members in order: no decoding. id and fields (borrowed, copied) are the event's, as stored
 * beside the document. Returns NULL when the text is not an object with both members (then
 * decode it), or when memory runs out. */
frame_t *frame_from_stored(int64_t id, const char *text, size_t len, const filter_event_t *fields);

/* Returns a new event frame whose payload is a copy of json[0..len) (borrowed), taken as is,
 * with the given id and fields (each borrowed and copied; NULL when absent). For a stored
 * document that cannot be decoded into a json_t (a number beyond 64 bits). NULL when out of
 * memory. */
frame_t *frame_new_event_raw(int64_t id, const char *json, size_t len,
                             const filter_event_t *fields);

/* Takes one more reference to f (not NULL) and returns f. */
frame_t *frame_ref(frame_t *f);

/* Drops one reference; frees the frame with the last one. Accepts NULL or *f NULL; sets *f to
 * NULL. */
void frame_unref(frame_t **f);

/* Appends doc (borrowed) to out as frame_from_event would serialize it. Returns 0, -EINVAL (not
 * an event object; reason in err), -ENOMEM or -E2BIG; on error out keeps its length. */
int frame_write_event(buf_t *out, const json_t *doc, char *err, size_t errlen);

#endif
