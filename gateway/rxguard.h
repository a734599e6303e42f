/* rxguard: the check libwebsockets 4.1 leaves out: every frame a client sends must be masked
 * (RFC 6455 5.1: "a server MUST close the connection upon receiving a frame that is not
 * masked"). lws 4.1.6 (Debian 12's) unmasks only when the bit is set and takes unmasked
 * frames as they are; later versions close with 1002 themselves.
 *
 * How: lws reads every server connection with recv(2) (lws_ssl_capable_read_no_ssl). This
 * module defines recv, so that libwebsockets' calls, resolved through the dynamic linker, land
 * here first (the executable's definition comes first in the lookup order). On the service
 * thread only, for descriptors announced with rxguard_watch, it follows the byte stream: the
 * HTTP request heads (looking for one with an Upgrade header), then WebSocket frame headers,
 * skipping payloads by their length without touching them. At the first frame whose mask bit
 * is clear it hands lws only the bytes before that frame, discards everything after it (reads
 * answer EAGAIN), and reports the violation; the caller then closes the connection with 1002.
 * Every other descriptor, and every other thread, goes straight to recvfrom(2). TLS connections
 * (wss) are followed the same way in SSL_read, which this module defines too, on the decrypted
 * bytes.
 *
 * Which libwebsockets need it: every one before 5.0.0. lws 5.0.0 is the first release whose
 * frame parser (lib/roles/ws/ops-ws.c, lws_ws_rx_sm, state LWS_RXPS_04_FRAME_HDR_LEN) closes a
 * server connection on a client frame without the mask bit, itself, with 1002 "client
 * unmasked" (the lws commit "Audit fixes"); every 4.x release up to 4.5.8, and every
 * v4.x-stable branch, records the bit and takes the frame. So the guard is built only against
 * lws < 5 (RXGUARD_BUILT, from lws_config.h's LWS_LIBRARY_VERSION_MAJOR). Built against lws 5
 * or later, this module is stubs: recv and SSL_read are libc's and OpenSSL's own,
 * rxguard_init does nothing and returns 0, rxguard_attach returns 0, rxguard_active returns 0;
 * lws closes unmasked frames with its own reason and the gateway's unmasked_frame metric stays
 * at 0.
 *
 * Threads: rxguard_init, rxguard_watch and rxguard_attach belong to the thread that runs the
 * lws loop (the one that called rxguard_init).
 */
#ifndef ADW_GATEWAY_RXGUARD_H
#define ADW_GATEWAY_RXGUARD_H

#include <lws_config.h>

#if LWS_LIBRARY_VERSION_MAJOR < 5
#define RXGUARD_BUILT 1 /* this libwebsockets takes unmasked client frames: the guard is built */
#else
#define RXGUARD_BUILT 0 /* this libwebsockets closes them itself: stubs only */
#endif

/* Called, from inside a read, when a connection with a user (rxguard_attach) sent an unmasked
 * frame. It must not close the connection itself; it may ask lws for a writeable callback. */
typedef void (*rxguard_violation_fn)(void *user);

/* Sets the guard up for the calling thread's lws loop. Returns 0; -ENOMEM; -ENOTSUP when the
 * executable's recv or SSL_read is not the one shared libraries call (the check would be
 * inert). */
int rxguard_init(rxguard_violation_fn on_violation);

/* A new connection on fd (accepted, nothing read yet): the guard starts at its request head. */
void rxguard_watch(int fd);

/* The connection on fd is now a WebSocket with this user (NULL to detach). Returns 1 when an
 * unmasked frame has already been seen on it (the violation callback is not called then), else
 * 0. */
int rxguard_attach(int fd, void *user);

/* Frees the guard's table; later reads all go straight through. */
void rxguard_shutdown(void);

/* Returns 1 when this build carries the guard (RXGUARD_BUILT: recv and SSL_read are defined
 * here), 0 when it holds only the stubs. */
int rxguard_active(void);

#endif
