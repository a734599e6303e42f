#include "spool.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "codec.h"
#include "jsonw.h"
#include "timefmt.h"

#define SPOOL_DIR_MAX 3500 /* bytes of the directory path; leaves room for names under PATH_MAX */

struct spool_t {
    char *dir;
    size_t max_events;
    int lock_fd; /* -1 when the lock file is not open */
    int locked;
};

/* Sequence numbers of this process: unique per (pid, made_us), so names never collide. */
static atomic_uint spool_seq;

spool_t *spool_open(const char *dir, size_t max_events)
{
    if (!dir || !*dir || strlen(dir) > SPOOL_DIR_MAX) {
        errno = EINVAL;
        return NULL;
    }
    spool_t *s = calloc(1, sizeof *s);
    if (!s)
        goto fail;
    s->dir = strdup(dir);
    if (!s->dir)
        goto fail;
    s->max_events = max_events ? max_events : SPOOL_MAX_DEFAULT;
    s->lock_fd = -1;
    return s;
fail:
    free(s);
    errno = ENOMEM;
    return NULL;
}

void spool_close(spool_t **sp)
{
    if (!sp || !*sp)
        return;
    spool_t *s = *sp;
    spool_unlock(s);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s->dir);
    free(s);
    *sp = NULL;
}

const char *spool_dir(const spool_t *s)
{
    return s->dir;
}

/* mkdir -p with mode 0700. Returns 0 or a negative errno. */
static int make_dirs(const char *dir)
{
    char path[SPOOL_DIR_MAX + SPOOL_NAME_LEN + 16];
    size_t n = strlen(dir);
    if (n >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) && errno != EEXIST)
            return -errno;
        path[i] = c;
    }
    struct stat st;
    if (stat(dir, &st))
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int is_event_name(const char *n)
{
    size_t len = strlen(n);
    return len + 1 <= SPOOL_NAME_LEN && len > 7 && !strncmp(n, "e-", 2) &&
           !strcmp(n + len - 5, ".json");
}

/* Writes all n bytes to fd. Returns 0 or a negative errno. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Renames from to to unless to exists (-EEXIST). Falls back to link+unlink on file systems
 * without RENAME_NOREPLACE. */
static int rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    if (link(from, to))
        return -errno;
    unlink(from);
    return 0;
}

long spool_count(spool_t *s)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (is_event_name(e->d_name))
            n++;
    closedir(d);
    return n;
}

int spool_put(spool_t *s, const json_t *ev, int64_t made_us, char *err, size_t errlen)
{
    buf_t b;
    buf_init(&b, 0);
    char tmp[SPOOL_DIR_MAX + 64], path[SPOOL_DIR_MAX + 64];
    int fd = -1, rc, have_tmp = 0;
    long have = spool_count(s);
    if (have >= 0 && (size_t)have >= s->max_events) {
        snprintf(err, errlen, "spool %s is full (%zu events)", s->dir, s->max_events);
        return -ENOSPC;
    }
    rc = jsonw_value(&b, ev);
    if (rc == 0)
        rc = buf_putc(&b, '\n');
    if (rc) {
        snprintf(err, errlen, "event does not serialize: %s", strerror(-rc));
        goto fail;
    }
    unsigned seq = atomic_fetch_add(&spool_seq, 1);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%d-%u-%" PRId64, s->dir, (int)getpid(), seq,
             timefmt_mono_us());
    for (int attempt = 0;; attempt++) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            have_tmp = 1;
            break;
        }
        rc = -errno;
        if (rc != -ENOENT || attempt) {
            set_err(err, errlen, "spool: cannot create a file in %s: %s", s->dir, strerror(-rc));
            goto fail;
        }
        rc = make_dirs(s->dir);
        if (rc) {
            set_err(err, errlen, "spool: cannot create %s: %s", s->dir, strerror(-rc));
            goto fail;
        }
    }
    rc = write_all(fd, b.data, b.len);
    if (rc == 0 && fdatasync(fd))
        rc = -errno;
    if (close(fd) && rc == 0)
        rc = -errno;
    if (rc) {
        set_err(err, errlen, "spool: cannot write to %s: %s", s->dir, strerror(-rc));
        goto fail;
    }
    if (made_us < 0)
        made_us = 0;
    for (int attempt = 0; attempt < 1000; attempt++) {
        snprintf(path, sizeof path, "%s/e-%019" PRId64 "-%010d-%08u.json", s->dir, made_us,
                 (int)getpid(), seq % 100000000u);
        rc = rename_noreplace(tmp, path);
        if (rc != -EEXIST)
            break;
        seq = atomic_fetch_add(&spool_seq, 1);
    }
    if (rc) {
        set_err(err, errlen, "spool: cannot rename a file in %s: %s", s->dir, strerror(-rc));
        goto fail;
    }
    buf_free(&b);
    return 0;
fail:
    if (have_tmp)
        unlink(tmp);
    buf_free(&b);
    return rc;
}

int spool_pending(spool_t *s)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)))
        found = is_event_name(e->d_name);
    closedir(d);
    return found;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

int spool_list(spool_t *s, char (**names)[SPOOL_NAME_LEN], size_t *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(s->dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    char(*v)[SPOOL_NAME_LEN] = NULL;
    size_t n = 0, cap = 0;
    time_t now = time(NULL);
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (s->locked && !strncmp(e->d_name, ".tmp-", 5)) {
            struct stat st;
            if (!fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
                now - st.st_mtime > SPOOL_TMP_STALE_S)
                unlinkat(dirfd(d), e->d_name, 0);
            continue;
        }
        if (!is_event_name(e->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            void *nv = realloc(v, ncap * sizeof *v);
            if (!nv) {
                rc = -ENOMEM;
                goto fail;
            }
            v = nv;
            cap = ncap;
        }
        memcpy(v[n++], e->d_name, strlen(e->d_name) + 1); /* fits: is_event_name */
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, name_cmp);
    *names = n ? v : NULL;
    if (!n)
        free(v);
    *count = n;
    return 0;
fail:
    closedir(d);
    free(v);
    return rc;
}

int spool_lock(spool_t *s, int64_t deadline_us)
{
    if (s->locked)
        return 0;
    if (s->lock_fd < 0) {
        char path[SPOOL_DIR_MAX + 16];
        snprintf(path, sizeof path, "%s/.lock", s->dir);
        for (int attempt = 0; s->lock_fd < 0; attempt++) {
            s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (s->lock_fd >= 0)
                break;
            int rc = -errno;
            if (rc != -ENOENT || attempt)
                return rc;
            rc = make_dirs(s->dir);
            if (rc)
                return rc;
        }
    }
    /* flock cannot time out: poll with short sleeps, doubling from 0.5 ms to 8 ms. */
    long nap_us = 500;
    for (;;) {
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0) {
            s->locked = 1;
            return 0;
        }
        if (errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        int64_t left = deadline_us - timefmt_mono_us();
        if (left <= 0)
            return -ETIMEDOUT;
        long t = left < nap_us ? (long)left : nap_us;
        struct timespec ts = {t / 1000000, (t % 1000000) * 1000};
        nanosleep(&ts, NULL);
        if (nap_us < 8000)
            nap_us *= 2;
    }
}

void spool_unlock(spool_t *s)
{
    if (s->locked) {
        flock(s->lock_fd, LOCK_UN);
        s->locked = 0;
    }
}

int spool_locked(const spool_t *s)
{
    return s->locked;
}

int spool_read(spool_t *s, const char *name, json_t **ev, char *err, size_t errlen)
{
    *ev = NULL;
    char path[SPOOL_DIR_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        set_err(err, errlen, "spool: cannot open %s: %s", name, strerror(-rc));
        return rc;
    }
    buf_t b;
    buf_init(&b, 0);
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st)) {
        rc = -errno;
        set_err(err, errlen, "spool: cannot stat %s: %s", name, strerror(-rc));
        goto fail;
    }
    if (st.st_size > (off_t)SPOOL_FILE_MAX) {
        snprintf(err, errlen, "spool: %s is over %u bytes", name, SPOOL_FILE_MAX);
        rc = -EINVAL;
        goto fail;
    }
    rc = buf_reserve(&b, (size_t)st.st_size + 1);
    if (rc)
        goto fail;
    while (b.len < (size_t)st.st_size) {
        ssize_t r = read(fd, b.data + b.len, (size_t)st.st_size - b.len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            set_err(err, errlen, "spool: cannot read %s: %s", name, strerror(-rc));
            goto fail;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
    }
    b.data[b.len] = '\0';
    char why[200];
    json_t *v = NULL;
    rc = codec_json_parse(b.data ? b.data : "", b.len, &v, why, sizeof why);
    if (rc) {
        snprintf(err, errlen, "spool: %s is not JSON: %s", name, why);
        goto fail;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        snprintf(err, errlen, "spool: %s holds no JSON object", name);
        rc = -EINVAL;
        goto fail;
    }
    *ev = v;
    close(fd);
    buf_free(&b);
    return 0;
fail:
    close(fd);
    buf_free(&b);
    return rc;
}

int spool_remove(spool_t *s, const char *name)
{
    char path[SPOOL_DIR_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    if (unlink(path) && errno != ENOENT)
        return -errno;
    return 0;
}

int spool_reject(spool_t *s, const char *name)
{
    char from[SPOOL_DIR_MAX + 64], dir[SPOOL_DIR_MAX + 16], to[SPOOL_DIR_MAX + 80];
    snprintf(from, sizeof from, "%s/%s", s->dir, name);
    snprintf(dir, sizeof dir, "%s/" SPOOL_REJECTED, s->dir);
    snprintf(to, sizeof to, "%s/%s", dir, name);
    if (mkdir(dir, 0700) && errno != EEXIST)
        return -errno;
    if (rename(from, to) && errno != ENOENT)
        return -errno;
    return 0;
}
