/* listen: the one reading of a listen address ("host:port") for every program that binds a TCP
 * port (adw-ingest's HTTP listener, adw-gateway's). Pure: no I/O, no name resolution.
 *
 * The rules:
 *   host:port      host is everything before the LAST ':', so "::1:8000" is host "::1";
 *                  a name ("localhost") is kept for the caller to resolve
 *   [v6]:port      the brackets are removed: "[::1]:8000" is host "::1"; the ']' must be
 *                  followed by ':'
 *   :port, *:port  an empty host or "*" (also "[]" and "[*]") is host "": every interface
 *   port           1 to 5 decimal digits, 0..65535; 0 lets the kernel choose
 * Refused: no ':' ("8000", "127.0.0.1"), an empty port, anything but digits in the port, a
 * port over 65535, a host of LISTEN_HOST_MAX bytes or more, a '[' without "]:", and a '[' or
 * ']' anywhere else in the host. "0.0.0.0" stays as written (IPv4 only, where "" may also mean
 * IPv6): what "every interface" binds is the caller's choice.
 */
#ifndef ADW_LISTEN_H
#define ADW_LISTEN_H

#include <stddef.h>

#define LISTEN_HOST_MAX 256 /* bytes of a host, NUL included */

/* A parsed listen address. Plain data. */
typedef struct listen_addr_t {
    char host[LISTEN_HOST_MAX]; /* without brackets; "" for every interface */
    int port;                   /* 0..65535; 0: the kernel chooses */
} listen_addr_t;

/* Parses text (borrowed, NUL-terminated) by the rules above into *out. Returns 0, or -EINVAL
 * with a one-line reason in err ("listen address 'x' must be host:port") and *out unchanged. */
int listen_parse(const char *text, listen_addr_t *out, char *err, size_t errlen);

#endif
