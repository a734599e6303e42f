/* webhook_text: the pure half of the webhooks, apart from their delivery (webhook.h): the
 * checks of their configuration (URLs, event names, the comma-separated lists and their
 * limits), the retry delay, the one-line text a person reads for an event, and the host of a
 * URL for log lines. No I/O, no threads, no global state.
 */
#ifndef ADW_WEBHOOK_TEXT_H
#define ADW_WEBHOOK_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* Most webhooks and most event names accepted, longest URL and name. */
#define WEBHOOK_MAX 16
#define WEBHOOK_EVENTS_MAX 32
#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_EVENT_NAME_MAX 64
/* Longest text line, in bytes (UTF-8, cut on a character boundary). */
#define WEBHOOK_TEXT_MAX 300
/* The bounds of the retry delay (webhook_backoff_ms). */
#define WEBHOOK_BACKOFF_MIN_MS 1000
#define WEBHOOK_BACKOFF_MAX_MS 60000

/* Checks one webhook URL: http:// or https:// (any case), a non-empty host (a bracketed IPv6
 * literal included), an optional port 1..65535, no blanks or control characters, at most
 * WEBHOOK_URL_MAX bytes. Returns 0, or -EINVAL with the reason in err. Pure. */
int webhook_url_check(const char *url, size_t len, char *err, size_t errlen);

/* Splits a comma-separated list (blanks around items ignored) into at most max items, each a
 * malloc'd string in out[] (the caller frees them; none on error). Each URL is checked with
 * webhook_url_check. Returns the number of items (>= 1), or -EINVAL with the reason in err (an
 * empty item, a bad URL, more than max items) or -ENOMEM. Pure. */
int webhook_parse_urls(const char *list, char **out, size_t max, char *err, size_t errlen);

/* As webhook_parse_urls for event names: 1..WEBHOOK_EVENT_NAME_MAX bytes of [a-z0-9_]. Pure. */
int webhook_parse_events(const char *list, char **out, size_t max, char *err, size_t errlen);

/* The delay before retry number `failures` (1: after the first failed attempt): 1 s doubled
 * per failure, at most 60 s. Pure. */
int64_t webhook_backoff_ms(int failures);

/* Writes the one-line text of a system event into out (NUL-terminated, at most
 * min(outlen - 1, WEBHOOK_TEXT_MAX) bytes, cut on a UTF-8 boundary), e.g.
 * ":x: Run `abc` failed at step build: <summary> — <public_url>/#/runs/abc". Slack's control
 * characters &, <, > in the event's strings are written as &amp; &lt; &gt; so a summary
 * cannot mention a channel or forge a link. public_url NULL or "": no link. Returns the
 * length written. Pure. */
size_t webhook_text(const adw_event_t *e, const char *public_url, char *out, size_t outlen);

/* Writes the host (and port) of url into out (NUL-terminated, cut to outlen - 1 bytes) for log
 * lines: what follows "://" (or the whole string without it) up to the first '/', '?' or '#',
 * any "userinfo@" left out so credentials are never logged; the path, which may hold a secret,
 * is left out too. url: NUL-terminated, borrowed. Pure. */
void webhook_host(const char *url, char *out, size_t outlen);

#endif
