/* tls: OpenSSL server contexts from a certificate chain file and a private key file (PEM), for
 * ingest's HTTP server and the gateway.
 *
 * Both programs check the pair here at start, so that a missing, unreadable or mismatched file
 * is a one-line reason and a non-zero exit rather than a failure on the first connection.
 */
#ifndef ADW_TLS_H
#define ADW_TLS_H

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;

/* Returns 1 when both or neither of cert and key are set (non-empty), else 0 with a reason in
 * err naming the variables cert_name and key_name. */
int tls_pair_ok(const char *cert, const char *key, const char *cert_name, const char *key_name,
                char *err, size_t errlen);

/* Returns a server context (owned by the caller, tls_server_destroy) for TLS 1.2 and later
 * with the certificate chain in cert_file and the private key in key_file, checked to belong
 * together; session tickets off. NULL with a one-line reason in err (naming the file). */
SSL_CTX *tls_server_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Frees *ctx; accepts NULL and sets *ctx to NULL. */
void tls_server_destroy(SSL_CTX **ctx);

/* Writes OpenSSL's first queued error (or "unknown error") into buf, clears the queue, and
 * returns buf. */
const char *tls_last_error(char *buf, size_t len);

#endif
