/* buf: a growable byte buffer with a hard cap.
 *
 * One of these per output being built (a JSON document, a msgpack frame, a COPY stream).
 * The bytes are always NUL-terminated one past `len`, so text can be used as a C string.
 */
#ifndef ADW_BUF_H
#define ADW_BUF_H

#include <stddef.h>

typedef struct buf_t {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, not counting the trailing NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on len; 0 means unlimited */
} buf_t;

/* Initialises an empty buffer that refuses to grow past max bytes (0: no cap). */
void buf_init(buf_t *b, size_t max);

/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_free(buf_t *b);

/* Empties the buffer and keeps its storage. */
void buf_reset(buf_t *b);

/* Makes room for n more bytes. Returns 0, or -ENOMEM (allocation) or -E2BIG (over the cap);
 * on error the buffer is unchanged. */
int buf_reserve(buf_t *b, size_t n);

/* Appends n bytes. Returns 0, -ENOMEM or -E2BIG; on error nothing is appended. */
int buf_append(buf_t *b, const void *p, size_t n);

/* Appends a NUL-terminated string. Same returns as buf_append. */
int buf_puts(buf_t *b, const char *s);

/* Appends one byte. Same returns as buf_append. */
int buf_putc(buf_t *b, char c);

/* Appends printf-style text. Same returns as buf_append. */
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Removes the first n bytes (n <= len), moving the rest to the front. */
void buf_consume(buf_t *b, size_t n);

/* Hands the storage to the caller (who frees it with free()) and empties the buffer.
 * Returns NULL for a buffer that never allocated. */
char *buf_steal(buf_t *b, size_t *len);

#endif
