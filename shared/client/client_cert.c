/* CURVE certificate files as CZMQ's zcert_save writes them (ZPL text: a public file PATH with
 * curve/public-key, and PATH_secret, mode 0600, with both keys, in Z85), for the client
 * library's ZeroMQ transport (client_wire.h) and adw-send --make-cert (client.h). The keys
 * themselves are libzmq's (zmq_curve_keypair, zmq_z85_decode). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "client.h"
#include "client_wire.h"
#include "err.h"

/* Copies a Z85 key of text[0..len) into out when it is one (40 characters that decode to 32
 * bytes). Returns 0 or -EINVAL. */
static int take_key(char out[CLIENT_CURVE_Z85_LEN + 1], const char *text, size_t len)
{
    char z[CLIENT_CURVE_Z85_LEN + 1];
    unsigned char bin[32];
    if (len != CLIENT_CURVE_Z85_LEN || memchr(text, '\0', len))
        return -EINVAL;
    memcpy(z, text, len);
    z[len] = '\0';
    int ok = zmq_z85_decode(bin, z) != NULL;
    explicit_bzero(bin, sizeof bin);
    if (ok)
        memcpy(out, z, sizeof z);
    explicit_bzero(z, sizeof z);
    return ok ? 0 : -EINVAL;
}

/* Reads the "curve" section's public-key and secret-key from ZPL text (what zconfig_save
 * writes). Each key found is copied into its buffer and its flag set. */
static int parse_cert(const char *text, char pub[CLIENT_CURVE_Z85_LEN + 1], int *has_pub,
                      char sec[CLIENT_CURVE_Z85_LEN + 1], int *has_sec)
{
    int in_curve = 0;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        const char *p = line, *stop = line + n;
        while (p < stop && (*p == ' ' || *p == '\t'))
            p++;
        int indented = p > line;
        if (p < stop && *p != '#' && *p != '\r') {
            const char *name = p;
            while (p < stop && *p != ' ' && *p != '\t' && *p != '=' && *p != '\r')
                p++;
            size_t nl = (size_t)(p - name);
            if (!indented) {
                in_curve = nl == 5 && !memcmp(name, "curve", 5);
            } else if (in_curve) {
                int which = nl == 10 && !memcmp(name, "public-key", 10)   ? 1
                            : nl == 10 && !memcmp(name, "secret-key", 10) ? 2
                                                                          : 0;
                while (p < stop && (*p == ' ' || *p == '\t'))
                    p++;
                if (which && p < stop && *p == '=') {
                    p++;
                    while (p < stop && (*p == ' ' || *p == '\t'))
                        p++;
                    const char *v = p, *ve;
                    if (p < stop && (*p == '"' || *p == '\'')) {
                        v = p + 1;
                        ve = memchr(v, *p, (size_t)(stop - v));
                        if (!ve)
                            return -EINVAL;
                    } else {
                        ve = v;
                        while (ve < stop && *ve != ' ' && *ve != '\t' && *ve != '\r' && *ve != '#')
                            ve++;
                    }
                    char *dst = which == 1 ? pub : sec;
                    if (take_key(dst, v, (size_t)(ve - v)))
                        return -EINVAL;
                    *(which == 1 ? has_pub : has_sec) = 1;
                }
            }
        }
        line = end ? end + 1 : stop;
    }
    return 0;
}

/* Reads a whole small file (at most 64 KiB) into a NUL-terminated malloc'd string (the
 * caller's). NULL with errno set when it cannot. */
static char *read_small(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = malloc(65537);
    if (!text) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    size_t n = fread(text, 1, 65536, f);
    int too_big = n == 65536 && fgetc(f) != EOF, failed = ferror(f);
    fclose(f);
    if (too_big || failed) {
        free(text);
        errno = too_big ? EFBIG : EIO;
        return NULL;
    }
    text[n] = '\0';
    return text;
}

int client_cert_load(const char *path, char pub[CLIENT_CURVE_Z85_LEN + 1],
                     char sec[CLIENT_CURVE_Z85_LEN + 1], char *err, size_t errlen)
{
    /* As zcert_load: the secret file (path + "_secret") first, then path itself. */
    char secret_path[4096];
    snprintf(secret_path, sizeof secret_path, "%s_secret", path);
    const char *used = secret_path;
    char *text = read_small(secret_path);
    if (!text) {
        used = path;
        text = read_small(path);
    }
    if (!text) {
        int e = errno;
        set_err(err, errlen, "cannot read the certificate %s: %s", path, strerror(e));
        return e == ENOMEM ? -ENOMEM : -ENOENT;
    }
    int has_pub = 0, has_sec = 0;
    char s[CLIENT_CURVE_Z85_LEN + 1];
    int rc = parse_cert(text, pub, &has_pub, s, &has_sec);
    explicit_bzero(text, strlen(text));
    free(text);
    if (rc || !has_pub) {
        set_err(err, errlen, "%s is not a CURVE certificate (no valid curve/public-key)", used);
        return -EINVAL;
    }
    if (sec) {
        if (!has_sec) {
            set_err(err, errlen, "%s holds no secret key (give the secret certificate, %s_secret)",
                    used, path);
            return -EINVAL;
        }
        memcpy(sec, s, sizeof s);
    }
    explicit_bzero(s, sizeof s);
    return 0;
}

/* Writes one certificate file as zcert_save does; secret NULL: the public one. */
static int write_cert(const char *path, const char *pub, const char *secret, char *err,
                      size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0) {
        set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -errno;
    }
    char when[64];
    time_t t = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
    char text[1024];
    int n;
    if (secret)
        n = snprintf(text, sizeof text,
                     "#   ****  Generated on %s by adw-send  ****\n"
                     "#   ZeroMQ CURVE **Secret** Certificate\n"
                     "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
                     "\n"
                     "metadata\n"
                     "curve\n"
                     "    public-key = \"%s\"\n"
                     "    secret-key = \"%s\"\n",
                     when, pub, secret);
    else
        n = snprintf(text, sizeof text,
                     "#   ****  Generated on %s by adw-send  ****\n"
                     "#   ZeroMQ CURVE Public Certificate\n"
                     "#   Exchange securely, or use a secure mechanism to verify the contents\n"
                     "#   of this file after exchange.\n"
                     "\n"
                     "metadata\n"
                     "curve\n"
                     "    public-key = \"%s\"\n",
                     when, pub);
    ssize_t w = write(fd, text, (size_t)n);
    explicit_bzero(text, sizeof text);
    if (w != n || fsync(fd)) {
        set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -EIO;
    }
    close(fd);
    return 0;
}

int client_cert_make(const char *path, char *err, size_t errlen)
{
    char pub[CLIENT_CURVE_Z85_LEN + 1], sec[CLIENT_CURVE_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, sec)) {
        int e = errno;
        set_err(err, errlen, "cannot make a CURVE key pair: %s", zmq_strerror(e));
        return e == ENOTSUP ? -ENOTSUP : -EIO;
    }
    char secret_path[4096];
    int rc = -ENAMETOOLONG;
    if ((size_t)snprintf(secret_path, sizeof secret_path, "%s_secret", path) >=
        sizeof secret_path) {
        set_err(err, errlen, "certificate path too long");
    } else if ((rc = write_cert(secret_path, pub, sec, err, errlen)) == 0) {
        rc = write_cert(path, pub, NULL, err, errlen);
        if (rc)
            unlink(secret_path);
    }
    explicit_bzero(sec, sizeof sec);
    return rc;
}
