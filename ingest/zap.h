/* zap: CURVE security for ingest's ZeroMQ sockets (optional). Holds the server's certificate
 * (CZMQ zcert) and answers ZAP requests (RFC 27) on the loop for the sockets of its context:
 * a client is admitted when its public key is among the certificates in the directory named
 * for the socket's domain (CZMQ zcertstore, read again whenever the directory changes), or for
 * any key when that directory is "*". Everything else (an unknown key, another mechanism) is
 * refused with 400; libzmq then ends the handshake with an ERROR and closes the connection.
 *
 * Loop thread only.
 */
#ifndef ADW_INGEST_ZAP_H
#define ADW_INGEST_ZAP_H

#include <stddef.h>

#include "loop.h"
#include "metrics.h"

#define AUTH_DOMAIN_SUBMIT "submit"   /* the ROUTER */
#define AUTH_DOMAIN_PUBLISH "publish" /* the PUB */

typedef struct zap_t zap_t;

typedef struct zap_options_t {
    void *zctx;              /* the context of the sockets to protect */
    const char *cert;        /* the server's certificate: PATH (secret half in PATH_secret) */
    const char *clients;     /* directory of public certificates allowed to submit, or "*" */
    const char *subscribers; /* the same for the PUB; NULL or "": as clients */
    loop_t *loop;
    metrics_t *metrics; /* may be NULL */
} zap_options_t;

/* Loads the certificate, opens the directories and binds the ZAP handler. Returns NULL with
 * the reason in err (an unreadable certificate or one without its secret key, a missing
 * directory, libzmq without CURVE). */
zap_t *zap_new(const zap_options_t *o, char *err, size_t errlen);

/* Closes the handler; accepts NULL and sets *a to NULL. Before the context is terminated. */
void zap_destroy(zap_t **a);

/* Makes sock (not yet bound) a CURVE server with our key, checked in domain
 * (AUTH_DOMAIN_*). Returns 0 or -errno. */
int zap_apply(const zap_t *a, void *sock, const char *domain);

/* The server's public key in Z85, for the log. */
const char *zap_public_key(const zap_t *a);

#endif
