#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

int tls_pair_ok(const char *cert, const char *key, const char *cert_name, const char *key_name,
                char *err, size_t errlen)
{
    int c = cert && *cert, k = key && *key;
    if (c == k)
        return 1;
    snprintf(err, errlen, "%s and %s go together: set both or neither", cert_name, key_name);
    return 0;
}

const char *tls_last_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown error");
    ERR_clear_error();
    return buf;
}

/* Checks that path can be opened for reading; else a reason in err. */
static int readable(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "TLS %s %s: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

SSL_CTX *tls_server_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    char why[256];
    if (readable("certificate", cert_file, err, errlen) || readable("key", key_file, err, errlen))
        return NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: %s", tls_last_error(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(err, errlen, "TLS certificate %s: not a PEM certificate (%s)", cert_file,
                 tls_last_error(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(err, errlen, "TLS key %s does not match certificate %s", key_file, cert_file);
        else
            snprintf(err, errlen, "TLS key %s: not a PEM private key (%s)", key_file,
                     tls_last_error(why, sizeof why));
        ERR_clear_error();
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "TLS key %s does not match certificate %s", key_file, cert_file);
        ERR_clear_error();
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void tls_server_destroy(SSL_CTX **ctx)
{
    if (!ctx || !*ctx)
        return;
    SSL_CTX_free(*ctx);
    *ctx = NULL;
}
