/* CurveZMQ for the client library's DEALER (client_wire.h): Z85, certificate files as CZMQ's
 * zcert writes them, and the client side of RFC 26 over ZMTP 3.0 (RFC 25: HELLO, WELCOME,
 * INITIATE, READY, then MESSAGE boxes), with libsodium's crypto_box. No I/O but the files. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "client_wire.h"

#define CURVE_MAC 16      /* crypto_box_MACBYTES */
#define CURVE_MSG_HEAD 16 /* "\x07MESSAGE" and the short nonce */

/* ---- Z85 (ZeroMQ RFC 32) ---- */

static const char Z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          ".-:+=^!/*?&<>()[]{}@%$#";

void client_curve_z85_encode(char out[CLIENT_CURVE_Z85_LEN + 1],
                             const unsigned char key[CLIENT_CURVE_KEY])
{
    size_t o = 0;
    for (size_t i = 0; i < CLIENT_CURVE_KEY; i += 4) {
        uint32_t v = (uint32_t)key[i] << 24 | (uint32_t)key[i + 1] << 16 |
                     (uint32_t)key[i + 2] << 8 | key[i + 3];
        for (int k = 4; k >= 0; k--) {
            out[o + (size_t)k] = Z85[v % 85];
            v /= 85;
        }
        o += 5;
    }
    out[o] = '\0';
}

int client_curve_z85_decode(unsigned char key[CLIENT_CURVE_KEY], const char *text, size_t len)
{
    if (len != CLIENT_CURVE_Z85_LEN)
        return -EINVAL;
    for (size_t i = 0; i < len; i += 5) {
        uint64_t v = 0;
        for (size_t k = 0; k < 5; k++) {
            const char *at = text[i + k] ? strchr(Z85, text[i + k]) : NULL;
            if (!at)
                return -EINVAL;
            v = v * 85 + (uint64_t)(at - Z85);
        }
        if (v > 0xffffffffu)
            return -EINVAL;
        for (size_t k = 0; k < 4; k++)
            key[i / 5 * 4 + k] = (unsigned char)(v >> (24 - 8 * k));
    }
    return 0;
}

/* ---- certificate files ---- */

/* Reads the "curve" section's public-key and secret-key from ZPL text (what zconfig_save
 * writes). Each found key is decoded into its buffer and its flag set. */
static int parse_cert(const char *text, unsigned char pub[CLIENT_CURVE_KEY], int *has_pub,
                      unsigned char sec[CLIENT_CURVE_KEY], int *has_sec)
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
                    unsigned char *dst = which == 1 ? pub : sec;
                    if (client_curve_z85_decode(dst, v, (size_t)(ve - v)))
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

int client_curve_load(const char *path, unsigned char pub[CLIENT_CURVE_KEY],
                      unsigned char sec[CLIENT_CURVE_KEY], char *err, size_t errlen)
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
        snprintf(err, errlen, "cannot read the certificate %s: %s", path, strerror(errno));
        return -ENOENT;
    }
    int has_pub = 0, has_sec = 0;
    unsigned char s[CLIENT_CURVE_KEY];
    int rc = parse_cert(text, pub, &has_pub, s, &has_sec);
    free(text);
    if (rc || !has_pub) {
        snprintf(err, errlen, "%s is not a CURVE certificate (no valid curve/public-key)", used);
        return -EINVAL;
    }
    if (sec) {
        if (!has_sec) {
            snprintf(err, errlen, "%s holds no secret key (give the secret certificate, %s_secret)",
                     used, path);
            return -EINVAL;
        }
        memcpy(sec, s, sizeof s);
    }
    sodium_memzero(s, sizeof s);
    return 0;
}

/* Writes one certificate file as zcert_save does; secret NULL: the public one. */
static int write_cert(const char *path, const char *pub, const char *secret, char *err,
                      size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
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
    sodium_memzero(text, sizeof text);
    if (w != n || fsync(fd)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -EIO;
    }
    close(fd);
    return 0;
}

int client_curve_make_cert(const char *path, char *err, size_t errlen)
{
    if (client_curve_init()) {
        snprintf(err, errlen, "libsodium cannot start");
        return -EIO;
    }
    unsigned char pk[CLIENT_CURVE_KEY], sk[CLIENT_CURVE_KEY];
    char pub[CLIENT_CURVE_Z85_LEN + 1], sec[CLIENT_CURVE_Z85_LEN + 1];
    crypto_box_keypair(pk, sk);
    client_curve_z85_encode(pub, pk);
    client_curve_z85_encode(sec, sk);
    sodium_memzero(sk, sizeof sk);
    char secret_path[4096];
    int rc = -ENAMETOOLONG;
    if ((size_t)snprintf(secret_path, sizeof secret_path, "%s_secret", path) >=
        sizeof secret_path) {
        snprintf(err, errlen, "certificate path too long");
    } else if ((rc = write_cert(secret_path, pub, sec, err, errlen)) == 0) {
        rc = write_cert(path, pub, NULL, err, errlen);
        if (rc)
            unlink(secret_path);
    }
    sodium_memzero(sec, sizeof sec);
    return rc;
}

/* ---- the handshake ---- */

int client_curve_init(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Appends the head of a ZMTP frame (flags: 0 message, 4 command) for a body of len bytes. */
static int frame_head(buf_t *out, unsigned flags, size_t len)
{
    unsigned char head[9];
    size_t hl;
    if (len <= 255) {
        head[0] = (unsigned char)flags;
        head[1] = (unsigned char)len;
        hl = 2;
    } else {
        head[0] = (unsigned char)(flags | 0x02);
        for (int i = 0; i < 8; i++)
            head[1 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 9;
    }
    return buf_append(out, head, hl);
}

void client_curve_wipe(client_curve_t *c)
{
    sodium_memzero(c->cn_sec, sizeof c->cn_sec);
    sodium_memzero(c->precom, sizeof c->precom);
    c->nonce = c->peer_nonce = 0;
}

int client_curve_hello(client_curve_t *c, buf_t *out)
{
    crypto_box_keypair(c->cn_pub, c->cn_sec);
    c->nonce = 1;
    c->peer_nonce = 0;
    unsigned char cmd[200], nonce[24], zero[64] = {0};
    memcpy(nonce, "CurveZMQHELLO---", 16);
    put64(nonce + 16, c->nonce++);
    memcpy(cmd, "\x05HELLO\x01\x00", 8);
    memset(cmd + 8, 0, 72); /* anti-amplification padding */
    memcpy(cmd + 80, c->cn_pub, 32);
    memcpy(cmd + 112, nonce + 16, 8);
    if (crypto_box_easy(cmd + 120, zero, sizeof zero, nonce, c->server, c->cn_sec))
        return -EIO;
    size_t at = out->len;
    if (frame_head(out, 0x04, sizeof cmd) || buf_append(out, cmd, sizeof cmd)) {
        out->len = at;
        return -ENOMEM;
    }
    return 0;
}

int client_curve_welcome(client_curve_t *c, const unsigned char *cmd, size_t len,
                         const unsigned char *metadata, size_t mlen, buf_t *out, char *err,
                         size_t errlen)
{
    if (len != 168 || memcmp(cmd, "\x07WELCOME", 8)) {
        snprintf(err, errlen, "a malformed WELCOME");
        return -EPROTO;
    }
    unsigned char nonce[24], plain[128];
    memcpy(nonce, "WELCOME-", 8);
    memcpy(nonce + 8, cmd + 8, 16);
    if (crypto_box_open_easy(plain, cmd + 24, 144, nonce, c->server, c->cn_sec)) {
        snprintf(err, errlen,
                 "the server's WELCOME does not open with the server key we have "
                 "(not the ingest whose public certificate we were given)");
        return -EPROTO;
    }
    memcpy(c->cn_server, plain, 32);
    memcpy(c->cookie, plain + 32, 96);
    sodium_memzero(plain, sizeof plain);
    if (crypto_box_beforenm(c->precom, c->cn_server, c->cn_sec))
        return -EIO;

    /* vouch = Box [C',S](C->S') */
    unsigned char vnonce[24], vplain[64], vouch[80];
    memcpy(vnonce, "VOUCH---", 8);
    randombytes_buf(vnonce + 8, 16);
    memcpy(vplain, c->cn_pub, 32);
    memcpy(vplain + 32, c->server, 32);
    if (crypto_box_easy(vouch, vplain, sizeof vplain, vnonce, c->cn_server, c->sec))
        return -EIO;

    /* INITIATE: cookie, short nonce, Box [C + vouch + metadata](C'->S') */
    size_t plen = 32 + 16 + 80 + mlen, blen = CURVE_MAC + plen, clen = 9 + 96 + 8 + blen;
    size_t at = out->len;
    if (frame_head(out, 0x04, clen) || buf_reserve(out, clen)) {
        out->len = at;
        return -ENOMEM;
    }
    unsigned char *p = (unsigned char *)out->data + out->len;
    memcpy(p, "\x08INITIATE", 9);
    memcpy(p + 9, c->cookie, 96);
    unsigned char inonce[24];
    memcpy(inonce, "CurveZMQINITIATE", 16);
    put64(inonce + 16, c->nonce++);
    memcpy(p + 105, inonce + 16, 8);
    unsigned char *box = p + 113, *plain_at = box + CURVE_MAC; /* sealed in place */
    memcpy(plain_at, c->pub, 32);
    memcpy(plain_at + 32, vnonce + 8, 16);
    memcpy(plain_at + 48, vouch, 80);
    if (mlen)
        memcpy(plain_at + 128, metadata, mlen);
    if (crypto_box_easy_afternm(box, plain_at, plen, inonce, c->precom)) {
        out->len = at;
        return -EIO;
    }
    out->len += clen;
    return 0;
}

int client_curve_ready(client_curve_t *c, unsigned char *cmd, size_t len, char *err, size_t errlen)
{
    if (len < 14 + CURVE_MAC || memcmp(cmd, "\x05READY", 6)) {
        snprintf(err, errlen, "a malformed READY");
        return -EPROTO;
    }
    unsigned char nonce[24];
    memcpy(nonce, "CurveZMQREADY---", 16);
    memcpy(nonce + 16, cmd + 6, 8);
    if (crypto_box_open_easy_afternm(cmd + 14 + CURVE_MAC, cmd + 14, len - 14, nonce, c->precom)) {
        snprintf(err, errlen, "a READY that does not open");
        return -EPROTO;
    }
    c->peer_nonce = get64(cmd + 6);
    return 0;
}

int client_curve_seal(client_curve_t *c, buf_t *out, const void *body, size_t len, unsigned flags)
{
    size_t mlen = 1 + len, flen = CURVE_MSG_HEAD + CURVE_MAC + mlen;
    size_t at = out->len;
    if (len > SIZE_MAX / 2 || frame_head(out, 0x00, flen) || buf_reserve(out, flen)) {
        out->len = at;
        return len > SIZE_MAX / 2 ? -E2BIG : -ENOMEM;
    }
    unsigned char *p = (unsigned char *)out->data + out->len;
    unsigned char nonce[24];
    memcpy(nonce, "CurveZMQMESSAGEC", 16);
    put64(nonce + 16, c->nonce++);
    memcpy(p, "\x07MESSAGE", 8);
    memcpy(p + 8, nonce + 16, 8);
    unsigned char *box = p + CURVE_MSG_HEAD, *plain = box + CURVE_MAC; /* sealed in place */
    plain[0] = (unsigned char)(flags & 0x03);
    if (len)
        memcpy(plain + 1, body, len);
    if (crypto_box_easy_afternm(box, plain, mlen, nonce, c->precom)) {
        out->len = at;
        return -EIO;
    }
    out->len += flen;
    return 0;
}

int client_curve_open(client_curve_t *c, unsigned char *msg, size_t len, unsigned *flags,
                      const unsigned char **body, size_t *body_len)
{
    if (len < CURVE_MSG_HEAD + CURVE_MAC + 1 || memcmp(msg, "\x07MESSAGE", 8))
        return -EPROTO;
    uint64_t n = get64(msg + 8);
    if (n <= c->peer_nonce)
        return -EPROTO; /* a replay, or out of order */
    unsigned char nonce[24];
    memcpy(nonce, "CurveZMQMESSAGES", 16);
    memcpy(nonce + 16, msg + 8, 8);
    unsigned char *box = msg + CURVE_MSG_HEAD, *plain = box + CURVE_MAC; /* opened in place */
    if (crypto_box_open_easy_afternm(plain, box, len - CURVE_MSG_HEAD, nonce, c->precom))
        return -EPROTO;
    c->peer_nonce = n;
    *flags = plain[0] & 0x03u;
    *body = plain + 1;
    *body_len = len - CURVE_MSG_HEAD - CURVE_MAC - 1;
    return 0;
}
