/* fiu_policy: a failure policy for libfiu's POSIX preload library, with counts.
 *
 * Preloaded after /usr/lib/fiu/fiu_posix_preload.so, it enables libfiu failure points with an
 * external callback (fiu_enable_external) that fails each call with a probability, picks the
 * errno from a list of realistic ones, optionally fails only calls made by the program's own
 * code, and counts what it injected. Built by the tests (tests/integration/test_fiu.py) without
 * sanitizers: it is a test tool, not part of the programs.
 *
 * Environment:
 *   ADW_FIU         point;point;...  where point = name:probability[:ERRNO,ERRNO...][:who]
 *                   e.g. posix/io/net/send:0.03:EPIPE,EAGAIN;libc/mm/malloc:0.02:ENOMEM:own
 *                   who "own": fail only calls made by the main executable (not by libzmq,
 *                   libwebsockets, libpq, ...); "not=NAME": fail calls made anywhere except in
 *                   a library whose path contains NAME (e.g. not=libzmq, which asserts on any
 *                   failed write to its signalling eventfd); "soft=NAME": calls from such a
 *                   library fail only with EINTR or EAGAIN (a hard error on a socket that is in
 *                   fact alive leaves libpq waiting for an answer the server will never send,
 *                   since it still waits for the rest of the message). Points without errnos
 *                   (the .../reduce ones, which shorten a read or write) ignore the list.
 *   ADW_FIU_ARM     a file: failures are injected only while it exists (checked every 100 ms),
 *                   so a test can start the program cleanly and stop injecting to check it.
 *   ADW_FIU_COUNTS  a file rewritten with the counts as JSON (every 64 failures and at exit).
 *   ADW_FIU_SEED    seed of the per-thread generators (default: the pid), mixed with the
 *                   thread id.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* libfiu's API (fiu.h is in libfiu-dev, which is not needed for this). */
typedef int external_cb_t(const char *name, int *failnum, void **failinfo, unsigned int *flags);
int fiu_init(unsigned int flags);
int fiu_enable_external(const char *name, int failnum, void *failinfo, unsigned int flags,
                        external_cb_t *external_cb);

#define MAX_POINTS 16
#define MAX_ERRNOS 8

typedef struct point_t {
    char name[64];
    double prob;
    int own;          /* only calls from the main executable */
    char not_in[32];  /* only calls from outside a library whose path contains this */
    char soft_in[32]; /* calls from a library whose path contains this: EINTR/EAGAIN only */
    int nerr;
    int errs[MAX_ERRNOS];
    atomic_long failed[MAX_ERRNOS + 1]; /* per errno; [nerr] when none */
    atomic_long declined;               /* drawn to fail but called from a library: not failed */
} point_t;

static point_t points[MAX_POINTS];
static int npoints;
static char counts_path[512];
static char arm_path[512];
static atomic_int armed;
static atomic_long next_arm_check_ms;
static atomic_long total;
static uintptr_t main_lo, main_hi;
static unsigned long seed;

static const struct {
    const char *name;
    int value;
} errno_names[] = {
    {"EPIPE", EPIPE},
    {"ECONNRESET", ECONNRESET},
    {"EINTR", EINTR},
    {"EAGAIN", EAGAIN},
    {"EIO", EIO},
    {"ENOBUFS", ENOBUFS},
    {"ENOMEM", ENOMEM},
    {"ENOSPC", ENOSPC},
    {"ETIMEDOUT", ETIMEDOUT},
};

static const char *errno_name(int e)
{
    for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
        if (errno_names[i].value == e)
            return errno_names[i].name;
    return "?";
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_armed(void)
{
    if (!arm_path[0])
        return 1;
    long now = now_ms();
    if (now >= atomic_load(&next_arm_check_ms)) {
        atomic_store(&next_arm_check_ms, now + 100);
        atomic_store(&armed, syscall(SYS_faccessat, AT_FDCWD, arm_path, F_OK, 0) == 0);
    }
    return atomic_load(&armed);
}

static double draw(void)
{
    static __thread uint64_t x;
    if (!x) { /* splitmix64 of the seed and the thread: unrelated streams per thread */
        uint64_t z = seed * 0x9E3779B97F4A7C15ull + (uint64_t)syscall(SYS_gettid);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        x = (z ^ (z >> 31)) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return (double)(x >> 11) / (double)(1ull << 53);
}

/* Does the point's "who" allow failing this call? The caller is the first frame outside libfiu,
 * its preload library, this one and the sanitizer runtimes (whose interceptors call the
 * wrappers). *soft is set when the caller is the point's soft_in library. */
static int caller_allowed(const point_t *p, int *soft)
{
    void *frames[16];
    int n = backtrace(frames, 16);
    for (int i = 1; i < n; i++) {
        uintptr_t a = (uintptr_t)frames[i];
        if (a >= main_lo && a < main_hi)
            return 1; /* the program itself */
        Dl_info info;
        if (!dladdr(frames[i], &info) || !info.dli_fname)
            return 0;
        const char *f = info.dli_fname;
        if (strstr(f, "libfiu") || strstr(f, "fiu_posix_preload") || strstr(f, "fiu_policy") ||
            strstr(f, "libasan") || strstr(f, "libubsan"))
            continue;
        if (p->own)
            return 0;
        if (p->soft_in[0] && strstr(f, p->soft_in))
            *soft = 1;
        return !p->not_in[0] || !strstr(f, p->not_in);
    }
    return 0;
}

static void write_counts(void)
{
    if (!counts_path[0])
        return;
    char out[8192];
    size_t pos = 0;
    pos += (size_t)snprintf(out + pos, sizeof out - pos, "{");
    for (int i = 0; i < npoints && pos < sizeof out - 256; i++) {
        point_t *p = &points[i];
        long sum = 0;
        for (int k = 0; k <= p->nerr; k++)
            sum += atomic_load(&p->failed[k]);
        pos += (size_t)snprintf(out + pos, sizeof out - pos,
                                "%s\"%s\":{\"failed\":%ld,\"declined\":%ld,\"by_errno\":{",
                                i ? "," : "", p->name, sum, atomic_load(&p->declined));
        for (int k = 0; k < p->nerr; k++)
            pos += (size_t)snprintf(out + pos, sizeof out - pos, "%s\"%s\":%ld", k ? "," : "",
                                    errno_name(p->errs[k]), atomic_load(&p->failed[k]));
        pos += (size_t)snprintf(out + pos, sizeof out - pos, "}}");
    }
    pos += (size_t)snprintf(out + pos, sizeof out - pos, "}\n");
    /* Raw system calls: the wrapped write() could itself be failed. */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", counts_path, (long)syscall(SYS_gettid));
    int fd =
        (int)syscall(SYS_openat, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    long w = syscall(SYS_write, fd, out, pos);
    syscall(SYS_close, fd);
    if (w == (long)pos)
        syscall(SYS_renameat, AT_FDCWD, tmp, AT_FDCWD, counts_path);
    else
        syscall(SYS_unlinkat, AT_FDCWD, tmp, 0);
}

static int on_call(const char *name, int *failnum, void **failinfo, unsigned int *flags)
{
    (void)failnum;
    (void)flags;
    point_t *p = NULL;
    for (int i = 0; i < npoints; i++)
        if (!strcmp(points[i].name, name)) {
            p = &points[i];
            break;
        }
    if (!p || !is_armed() || draw() >= p->prob)
        return 0;
    int soft = 0;
    if ((p->own || p->not_in[0] || p->soft_in[0]) && !caller_allowed(p, &soft)) {
        atomic_fetch_add(&p->declined, 1);
        return 0;
    }
    int k = p->nerr;
    if (p->nerr) {
        k = (int)(draw() * p->nerr);
        if (k >= p->nerr)
            k = p->nerr - 1;
        for (int tries = 0; soft && p->errs[k] != EINTR && p->errs[k] != EAGAIN; tries++) {
            if (tries == 2 * MAX_ERRNOS) { /* the list has neither: do not fail this call */
                atomic_fetch_add(&p->declined, 1);
                return 0;
            }
            k = (k + 1) % p->nerr;
        }
        *failinfo = (void *)(long)p->errs[k];
    }
    atomic_fetch_add(&p->failed[k], 1);
    if ((atomic_fetch_add(&total, 1) + 1) % 64 == 0)
        write_counts();
    return 1;
}

static int find_main(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    main_lo = lo;
    main_hi = hi;
    return 1; /* the first object is the program */
}

static int parse_errno(const char *s)
{
    for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
        if (!strcmp(errno_names[i].name, s))
            return errno_names[i].value;
    return 0;
}

static void parse_point(char *spec)
{
    if (npoints == MAX_POINTS)
        return;
    point_t *p = &points[npoints];
    char *save = NULL;
    char *name = strtok_r(spec, ":", &save);
    char *prob = strtok_r(NULL, ":", &save);
    if (!name || !prob)
        return;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->prob = atof(prob);
    for (char *f = strtok_r(NULL, ":", &save); f; f = strtok_r(NULL, ":", &save)) {
        if (!strcmp(f, "own")) {
            p->own = 1;
            continue;
        }
        if (!strncmp(f, "soft=", 5)) {
            snprintf(p->soft_in, sizeof p->soft_in, "%s", f + 5);
            continue;
        }
        if (!strncmp(f, "not=", 4)) {
            snprintf(p->not_in, sizeof p->not_in, "%s", f + 4);
            continue;
        }
        char *s2 = NULL;
        for (char *e = strtok_r(f, ",", &s2); e && p->nerr < MAX_ERRNOS;
             e = strtok_r(NULL, ",", &s2)) {
            int v = parse_errno(e);
            if (v)
                p->errs[p->nerr++] = v;
        }
    }
    if (fiu_enable_external(p->name, 1, NULL, 0, on_call) == 0)
        npoints++;
    else
        fprintf(stderr, "fiu_policy: cannot enable %s\n", p->name);
}

__attribute__((constructor(300))) static void fiu_policy_init(void)
{
    const char *spec = getenv("ADW_FIU");
    if (!spec)
        return;
    const char *c = getenv("ADW_FIU_COUNTS");
    const char *a = getenv("ADW_FIU_ARM");
    const char *sd = getenv("ADW_FIU_SEED");
    snprintf(counts_path, sizeof counts_path, "%s", c ? c : "");
    snprintf(arm_path, sizeof arm_path, "%s", a ? a : "");
    seed = sd ? strtoul(sd, NULL, 10) : (unsigned long)getpid();
    dl_iterate_phdr(find_main, NULL);
    void *warm[2];
    backtrace(warm, 2); /* loads the unwinder now rather than inside a failing call */
    fiu_init(0);
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", spec);
    char *save = NULL;
    for (char *pt = strtok_r(copy, ";", &save); pt; pt = strtok_r(NULL, ";", &save))
        parse_point(pt);
    write_counts();
}

__attribute__((destructor)) static void fiu_policy_fini(void)
{
    write_counts();
}
