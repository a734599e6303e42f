/* log: one line per event to stderr, as text or JSON (ADW_LOG_LEVEL, ADW_LOG_FORMAT).
 *
 * Thread-safe: each line is a single write(2). Secrets (tokens) are never passed here.
 */
#ifndef ADW_LOG_H
#define ADW_LOG_H

typedef enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
} log_level_t;

/* Sets the program name, level ("debug", "info", "warn", "error") and format ("text" or
 * "json"). Returns 0, or -EINVAL for an unknown level or format (the previous settings stay). */
int log_init(const char *program, const char *level, const char *format);

/* Returns whether a message at this level would be written. */
int log_enabled(log_level_t level);

/* Writes one line at `level` when enabled. The message is printf-formatted, newlines escaped. */
void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* At most one line a period for a condition that can recur without bound (a peer retrying a
 * refused key, say): log_every returns 1 when this occurrence is to be written, with *held set
 * to how many were held back since the last line written, or 0 to hold it back. One per
 * condition, used from one thread; zero-initialised with period_ms set. */
typedef struct log_every_t {
    long long period_ms;
    long long last_ms; /* when the last line was written (0: never) */
    unsigned long long held;
} log_every_t;

int log_every(log_every_t *e, unsigned long long *held);

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
