#include "listen.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "err.h"

int listen_parse(const char *text, listen_addr_t *out, char *err, size_t errlen)
{
    assert(text && out);
    const char *colon = strrchr(text, ':');
    if (!colon || !colon[1]) {
        set_err(err, errlen, "listen address '%s' must be host:port", text);
        return -EINVAL;
    }
    const char *host = text;
    size_t hlen = (size_t)(colon - text);
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':') {
            set_err(err, errlen, "listen address '%s' must be [IPv6 address]:port", text);
            return -EINVAL;
        }
        host = text + 1;
        hlen = (size_t)(end - host);
        colon = end + 1;
    }
    if (memchr(host, '[', hlen) || memchr(host, ']', hlen)) {
        set_err(err, errlen, "listen address '%s' must be host:port", text);
        return -EINVAL;
    }
    if (hlen >= LISTEN_HOST_MAX) {
        set_err(err, errlen, "listen address '%s' is too long", text);
        return -EINVAL;
    }
    const char *p = colon + 1;
    size_t plen = strlen(p);
    long port = 0;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] < '0' || p[i] > '9' || i >= 5) {
            port = -1;
            break;
        }
        port = port * 10 + (p[i] - '0');
    }
    if (port < 0 || port > 65535) {
        set_err(err, errlen, "listen address '%s' must be host:port with a port of 0-65535", text);
        return -EINVAL;
    }
    if (hlen == 1 && host[0] == '*')
        hlen = 0;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (int)port;
    return 0;
}
