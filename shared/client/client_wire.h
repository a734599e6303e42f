/* client_wire: the two transports under client.c, one request and its answer at a time.
 * Internal to the client library: programs use client.h.
 *
 * Both take the request as a JSON array of 1..ADW_BATCH_MAX event objects (borrowed), wait
 * until deadline_us (timefmt_mono_us clock) at the latest, and return 0 with one id per event
 * in ids[] (the caller's), or the negative errors of client_send() with the reason in err and
 * *index set for -EINVAL (-1 when ingest named no event). After any failure other than -EINVAL
 * and -EAGAIN the connection is closed; the next request opens a new one.
 */
#ifndef ADW_CLIENT_WIRE_H
#define ADW_CLIENT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

/* CurveZMQ (RFC 26 over ZMTP 3.0, as libzmq speaks it), the client side; client_curve.c. */
#define CLIENT_CURVE_KEY 32     /* bytes of a key */
#define CLIENT_CURVE_Z85_LEN 40 /* characters of a key in Z85 */

/* One connection's CURVE state. The first three keys are the caller's; the rest is made by
 * the handshake. Plain data. */
typedef struct client_curve_t {
    unsigned char server[CLIENT_CURVE_KEY];    /* S: the server's long-term public key */
    unsigned char pub[CLIENT_CURVE_KEY];       /* C: ours, long-term */
    unsigned char sec[CLIENT_CURVE_KEY];       /* c */
    unsigned char cn_pub[CLIENT_CURVE_KEY];    /* C': this connection's */
    unsigned char cn_sec[CLIENT_CURVE_KEY];    /* c' */
    unsigned char cn_server[CLIENT_CURVE_KEY]; /* S' */
    unsigned char cookie[96];
    unsigned char precom[CLIENT_CURVE_KEY]; /* crypto_box_beforenm(S', c') */
    uint64_t nonce;                         /* our next short nonce */
    uint64_t peer_nonce;                    /* the server's last short nonce */
} client_curve_t;

/* Starts libsodium (once; thread-safe). Returns 0 or -EIO. */
int client_curve_init(void);
/* Z85: encodes a key into 40 characters and a NUL; decodes exactly 40 characters. decode
 * returns 0 or -EINVAL. */
void client_curve_z85_encode(char out[CLIENT_CURVE_Z85_LEN + 1],
                             const unsigned char key[CLIENT_CURVE_KEY]);
int client_curve_z85_decode(unsigned char key[CLIENT_CURVE_KEY], const char *text, size_t len);
/* Reads a certificate as zcert_load does (path + "_secret" when it exists, else path; ZPL with
 * curve/public-key and curve/secret-key in Z85). sec NULL: only the public key is wanted.
 * Returns 0, -ENOENT (unreadable) or -EINVAL (no key, or no secret key when sec is given) with
 * the reason in err. */
int client_curve_load(const char *path, unsigned char pub[CLIENT_CURVE_KEY],
                      unsigned char sec[CLIENT_CURVE_KEY], char *err, size_t errlen);
/* Makes this connection's key pair and appends the HELLO command frame. 0, -ENOMEM or -EIO. */
int client_curve_hello(client_curve_t *c, buf_t *out);
/* Opens the WELCOME command (cmd[0..len), the frame's body) and appends the INITIATE command
 * frame carrying metadata (ZMTP properties). Returns 0, -EPROTO with the reason in err,
 * -ENOMEM or -EIO. */
int client_curve_welcome(client_curve_t *c, const unsigned char *cmd, size_t len,
                         const unsigned char *metadata, size_t mlen, buf_t *out, char *err,
                         size_t errlen);
/* Opens the READY command (decrypted in place). Returns 0 or -EPROTO with the reason in err. */
int client_curve_ready(client_curve_t *c, unsigned char *cmd, size_t len, char *err, size_t errlen);
/* Appends one MESSAGE frame boxing len bytes of body with flags (bit 0: more). 0, -ENOMEM,
 * -E2BIG or -EIO. */
int client_curve_seal(client_curve_t *c, buf_t *out, const void *body, size_t len, unsigned flags);
/* Opens a MESSAGE (a frame's body, decrypted in place): 0 with *flags (bit 0 more, bit 1
 * command) and the body at *body (into msg), or -EPROTO (malformed, replayed, forged). */
int client_curve_open(client_curve_t *c, unsigned char *msg, size_t len, unsigned *flags,
                      const unsigned char **body, size_t *body_len);
/* Forgets the connection's secrets. */
void client_curve_wipe(client_curve_t *c);

/* ZeroMQ: a DEALER speaking ZMTP 3.0 itself over one TCP or IPC connection, without libzmq: no
 * context, no I/O thread, a refused connection known at once. NULL security: the greeting, the
 * READY command and the first request go out in one write; CURVE: two round trips (HELLO,
 * INITIATE) before the first request. */
typedef struct client_zmq_t client_zmq_t;

/* endpoint: "tcp://host:port" or "ipc:///path" (copied). curve: NULL for NULL security, else
 * the keys to use (server, pub and sec copied). Returns NULL with the reason in err and errno
 * EINVAL (another transport, a malformed endpoint), EIO (libsodium) or ENOMEM. */
client_zmq_t *client_zmq_new(const char *endpoint, const client_curve_t *curve, char *err,
                             size_t errlen);
void client_zmq_destroy(client_zmq_t **z);
int client_zmq_request(client_zmq_t *z, const json_t *events, int64_t deadline_us, int64_t *ids,
                       long *index, char *err, size_t errlen);

/* ZMTP framing, no I/O (exposed for the unit tests). */
#define CLIENT_ZMTP_GREETING 64
/* Appends our greeting and READY command (Socket-Type DEALER) to out. Returns 0 or -ENOMEM. */
int client_zmtp_hello(buf_t *out);
/* Appends one final message frame holding len bytes of body. Returns 0, -ENOMEM or -E2BIG. */
int client_zmtp_frame(buf_t *out, const void *body, size_t len);
/* Checks the peer's greeting (the first CLIENT_ZMTP_GREETING bytes of p) offers the NULL
 * mechanism. Returns 0 or -EPROTO with the reason in err. */
int client_zmtp_check_greeting(const unsigned char *p, char *err, size_t errlen);
/* Appends our greeting for mechanism ("NULL" or "CURVE"), as a client. Returns 0 or -ENOMEM. */
int client_zmtp_greeting(buf_t *out, const char *mechanism);
/* As client_zmtp_check_greeting, for mechanism ("NULL" or "CURVE"). */
int client_zmtp_check_greeting_for(const unsigned char *p, const char *mechanism, char *err,
                                   size_t errlen);
/* Parses the frame at p[0..len): returns -EAGAIN when incomplete, -EPROTO when malformed, or
 * 0 with *flags (bit 0 more, bit 2 command), the body at *body (into p), *body_len, and
 * *frame_len the bytes the whole frame took. max bounds the body. */
int client_zmtp_parse_frame(const unsigned char *p, size_t len, size_t max, unsigned *flags,
                            const unsigned char **body, size_t *body_len, size_t *frame_len);

/* Sockets, shared by both transports. */
/* Connects a non-blocking stream socket to host:port (tcp) or the unix socket path (host NULL,
 * port the path) by the deadline. Returns the fd, or -ECONNREFUSED / -ETIMEDOUT with the
 * reason in err. */
int client_net_connect(const char *host, const char *port, int64_t deadline_us, char *err,
                       size_t errlen);
/* Waits for events on fd until the deadline. Returns 0, -ETIMEDOUT or a negative errno. */
int client_net_wait(int fd, short events, int64_t deadline_us);
/* Writes all of p[0..len) by the deadline. Returns 0, -ETIMEDOUT or -ECONNRESET. */
int client_net_write(int fd, const void *p, size_t len, int64_t deadline_us);

/* TLS for https (client_tls.c): OpenSSL is loaded with dlopen on the first use, so programs
 * that never use https do not load it. Contexts and sessions are opaque (SSL_CTX, SSL). */
/* Returns a client context that verifies servers against the PEM bundle ca_file (borrowed), or
 * the system's CAs when ca_file is NULL or ""; NULL with the reason in err (no libssl.so.3, an
 * unreadable CA file). */
void *client_tls_ctx_new(const char *ca_file, char *err, size_t errlen);
void client_tls_ctx_destroy(void **ctx);
/* Runs the handshake on the connected non-blocking fd by the deadline, checking that the
 * certificate is trusted and names host. Returns 0 with *sess set, -ETIMEDOUT, -ECONNREFUSED
 * (refused or not trusted; reason in err) or -ENOMEM. */
int client_tls_connect(void *ctx, int fd, const char *host, int64_t deadline_us, void **sess,
                       char *err, size_t errlen);
/* Writes all of p[0..len) by the deadline. Returns 0, -ETIMEDOUT or -ECONNRESET. */
int client_tls_write(void *sess, int fd, const void *p, size_t len, int64_t deadline_us);
/* Reads what comes first, waiting until the deadline. Returns the bytes read (> 0), 0 at the
 * end of the stream, -ETIMEDOUT or -ECONNRESET. */
long client_tls_read(void *sess, int fd, void *p, size_t len, int64_t deadline_us);
/* Sends close_notify if the socket takes it and frees *sess (not the fd). Accepts NULL. */
void client_tls_close(void **sess);

/* HTTP/1.1: one keep-alive connection; a request on a reused connection that the server had
 * closed meanwhile is sent again once on a new one. */
typedef struct client_http_t client_http_t;

/* url: "http://host[:port][/prefix]" or "https://..." (copied); token: NULL or "" for none
 * (copied); ca_file: for https, the PEM bundle to trust (NULL or "": the system's; borrowed).
 * Returns NULL with the reason in err (bad URL, https without OpenSSL, an unreadable CA file)
 * or errno ENOMEM. */
client_http_t *client_http_new(const char *url, const char *token, const char *ca_file, char *err,
                               size_t errlen);
void client_http_destroy(client_http_t **h);
int client_http_request(client_http_t *h, const json_t *events, int64_t deadline_us, int64_t *ids,
                        long *index, char *err, size_t errlen);

/* Reads an answer's "ids" (an array of n integers) or, for one event, "id". Returns 0 or
 * -EPROTO with the reason in err. answer is borrowed. */
int client_wire_ids(const json_t *answer, size_t n, int64_t *ids, char *err, size_t errlen);

#endif
