/* webhook_text: the pure half of the webhooks: their configuration (URLs, event names, lists
 * and limits), the retry delay and the one-line text of an event. No I/O. */
#include "webhook_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "utf8.h"

int webhook_url_check(const char *url, size_t len, char *err, size_t errlen)
{
    if (len == 0) {
        set_err(err, errlen, "empty webhook URL");
        return -EINVAL;
    }
    if (len > WEBHOOK_URL_MAX) {
        set_err(err, errlen, "webhook URL of %zu bytes is over the limit of %d", len,
                WEBHOOK_URL_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f) {
            set_err(err, errlen, "webhook URL '%.*s' has a blank or control character",
                    (int)(len > 200 ? 200 : len), url);
            return -EINVAL;
        }
    }
    size_t skip = 0;
    if (len > 7 && !strncasecmp(url, "http://", 7))
        skip = 7;
    else if (len > 8 && !strncasecmp(url, "https://", 8))
        skip = 8;
    if (!skip) {
        set_err(err, errlen, "webhook URL '%.*s' is not http:// or https://",
                (int)(len > 200 ? 200 : len), url);
        return -EINVAL;
    }
    const char *a = url + skip, *end = url + len;
    const char *ae = a;
    while (ae < end && *ae != '/' && *ae != '?' && *ae != '#')
        ae++;
    /* userinfo@ is allowed (credentials in the URL); the host follows the last '@'. */
    const char *h = a;
    for (const char *p = a; p < ae; p++)
        if (*p == '@')
            h = p + 1;
    const char *he, *port = NULL;
    if (h < ae && *h == '[') {
        he = memchr(h, ']', (size_t)(ae - h));
        if (!he || he == h + 1) {
            set_err(err, errlen, "webhook URL '%.*s' has a bad IPv6 host",
                    (int)(len > 200 ? 200 : len), url);
            return -EINVAL;
        }
        he++;
        if (he < ae && *he != ':') {
            set_err(err, errlen, "webhook URL '%.*s' has a bad host", (int)(len > 200 ? 200 : len),
                    url);
            return -EINVAL;
        }
    } else {
        he = h;
        while (he < ae && *he != ':')
            he++;
    }
    if (he == h) {
        set_err(err, errlen, "webhook URL '%.*s' has no host", (int)(len > 200 ? 200 : len), url);
        return -EINVAL;
    }
    for (const char *p = h; p < he && *h != '['; p++) {
        if (*p == '[' || *p == ']') {
            set_err(err, errlen, "webhook URL '%.*s' has a bad host", (int)(len > 200 ? 200 : len),
                    url);
            return -EINVAL;
        }
    }
    if (he < ae) { /* ':' then the port */
        port = he + 1;
        long v = 0;
        const char *p = port;
        for (; p < ae && *p >= '0' && *p <= '9' && v <= 65535; p++)
            v = v * 10 + (*p - '0');
        if (p == port || p != ae || v < 1 || v > 65535) {
            set_err(err, errlen, "webhook URL '%.*s' has a bad port (1..65535)",
                    (int)(len > 200 ? 200 : len), url);
            return -EINVAL;
        }
    }
    return 0;
}

/* Splits list on commas into trimmed items, each checked by check (NULL: none). */
static int parse_list(const char *list, char **out, size_t max, const char *what,
                      int (*check)(const char *, size_t, char *, size_t), char *err, size_t errlen)
{
    size_t n = 0;
    const char *p = list ? list : "";
    int rc;
    for (;;) {
        const char *c = strchr(p, ',');
        const char *e = c ? c : p + strlen(p);
        const char *s = p;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t len = (size_t)(e - s);
        if (len == 0) {
            set_err(err, errlen, "empty item in the %s list '%.200s'", what, list ? list : "");
            rc = -EINVAL;
            goto fail;
        }
        if (n == max) {
            set_err(err, errlen, "more than %zu %s", max, what);
            rc = -EINVAL;
            goto fail;
        }
        if (check && (rc = check(s, len, err, errlen)) < 0)
            goto fail;
        out[n] = strndup(s, len);
        if (!out[n]) {
            set_err(err, errlen, "out of memory");
            rc = -ENOMEM;
            goto fail;
        }
        n++;
        if (!c)
            break;
        p = c + 1;
    }
    return (int)n;
fail:
    while (n)
        free(out[--n]);
    return rc;
}

int webhook_parse_urls(const char *list, char **out, size_t max, char *err, size_t errlen)
{
    return parse_list(list, out, max, "webhooks", webhook_url_check, err, errlen);
}

static int event_name_check(const char *s, size_t len, char *err, size_t errlen)
{
    if (len > WEBHOOK_EVENT_NAME_MAX) {
        set_err(err, errlen, "event name of %zu bytes is over the limit of %d", len,
                WEBHOOK_EVENT_NAME_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            set_err(err, errlen, "event name '%.*s' is not [a-z0-9_]", (int)len, s);
            return -EINVAL;
        }
    }
    return 0;
}

int webhook_parse_events(const char *list, char **out, size_t max, char *err, size_t errlen)
{
    return parse_list(list, out, max, "webhook events", event_name_check, err, errlen);
}

int64_t webhook_backoff_ms(int failures)
{
    if (failures < 1)
        failures = 1;
    int64_t d = WEBHOOK_BACKOFF_MIN_MS;
    for (int i = 1; i < failures && d < WEBHOOK_BACKOFF_MAX_MS; i++)
        d *= 2;
    return d > WEBHOOK_BACKOFF_MAX_MS ? WEBHOOK_BACKOFF_MAX_MS : d;
}

/* A bounded writer: never splits a character or an entity. */
typedef struct text_t {
    char *p;
    size_t len, cap; /* cap: bytes usable, the NUL excluded */
} text_t;

static void text_raw(text_t *t, const char *s, size_t n)
{
    if (n > t->cap - t->len)
        n = utf8_truncate(s, n, t->cap - t->len);
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

/* Appends s escaped for Slack (& < >), control characters as blanks, at most room bytes. */
static void text_escaped(text_t *t, const char *s, size_t room)
{
    size_t limit = t->len + room < t->cap ? t->len + room : t->cap;
    size_t n = strlen(s);
    for (size_t i = 0; i < n && t->len < limit;) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        default:
            break;
        }
        if (rep) {
            size_t rl = strlen(rep);
            if (t->len + rl > limit)
                break;
            memcpy(t->p + t->len, rep, rl);
            t->len += rl;
            i++;
            continue;
        }
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            t->p[t->len++] = ' ';
            i++;
            continue;
        }
        size_t cl = utf8_char_len(s + i, n - i);
        if (cl == 0) {
            i++; /* not UTF-8: skipped */
            continue;
        }
        if (t->len + cl > limit)
            break;
        memcpy(t->p + t->len, s + i, cl);
        t->len += cl;
        i += cl;
    }
    t->p[t->len] = '\0';
}

size_t webhook_text(const adw_event_t *e, const char *public_url, char *out, size_t outlen)
{
    if (!outlen)
        return 0;
    text_t t = {.p = out, .len = 0, .cap = outlen - 1};
    if (t.cap > WEBHOOK_TEXT_MAX)
        t.cap = WEBHOOK_TEXT_MAX;
    out[0] = '\0';
    const char *ev = e->event ? e->event : "";
    const char *icon = ":bell:", *verb = NULL;
    if (!strcmp(ev, "adw_failed")) {
        icon = ":x:";
        verb = "failed";
    } else if (!strcmp(ev, "run_stalled")) {
        icon = ":hourglass:";
        verb = "stalled";
    } else if (!strcmp(ev, "budget_exceeded")) {
        icon = ":money_with_wings:";
        verb = "went over its budget";
    } else if (!strcmp(ev, "approval_requested")) {
        icon = ":raised_hand:";
        verb = "waits for an approval";
    }
    /* The link goes last but is reserved first: the summary is what gets cut. */
    char link[WEBHOOK_TEXT_MAX + 1] = "";
    if (public_url && *public_url && e->adw_id) {
        size_t ul = strlen(public_url);
        while (ul && public_url[ul - 1] == '/')
            ul--;
        int ln = snprintf(link, sizeof link, " — %.*s/#/runs/%s", (int)ul, public_url, e->adw_id);
        if (ln < 0 || (size_t)ln >= sizeof link || (size_t)ln > t.cap / 2)
            link[0] = '\0'; /* a link too long to be useful in one line */
    }
    size_t linklen = strlen(link);
    size_t body_cap = t.cap - linklen;
    text_t b = {.p = out, .len = 0, .cap = body_cap};
    text_raw(&b, icon, strlen(icon));
    text_raw(&b, " Run `", 6);
    text_escaped(&b, e->adw_id ? e->adw_id : "?", 64);
    text_raw(&b, "`", 1);
    if (verb) {
        text_raw(&b, " ", 1);
        text_raw(&b, verb, strlen(verb));
    } else {
        text_raw(&b, ": ", 2);
        text_escaped(&b, ev, WEBHOOK_EVENT_NAME_MAX);
    }
    if (e->step && *e->step) {
        text_raw(&b, " at step ", 9);
        text_escaped(&b, e->step, 64);
    }
    if (e->summary && *e->summary) {
        text_raw(&b, ": ", 2);
        text_escaped(&b, e->summary, body_cap);
    }
    t.len = b.len;
    text_raw(&t, link, linklen);
    return t.len;
}

void webhook_host(const char *url, char *out, size_t outlen)
{
    const char *a = strstr(url, "://");
    a = a ? a + 3 : url;
    size_t n = strcspn(a, "/?#");
    const char *at = memchr(a, '@', n);
    while (at) { /* credentials are not logged */
        n -= (size_t)(at + 1 - a);
        a = at + 1;
        at = memchr(a, '@', n);
    }
    snprintf(out, outlen, "%.*s", (int)n, a);
}
