#include "webdir.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Checks the path's segments against the rules in the header. */
static int path_allowed(const char *path)
{
    if (path[0] != '/' || strchr(path, '\\'))
        return 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        if (*p == '.')
            return 0;
        while (*p && *p != '/')
            p++;
    }
    return 1;
}

int webdir_root(const char *dir, char *out, size_t outlen)
{
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return -errno;
    struct stat st;
    if (stat(real, &st))
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if ((size_t)snprintf(out, outlen, "%s", real) >= outlen)
        return -ENAMETOOLONG;
    return 0;
}

int webdir_resolve(const char *root, const char *path, char *out, size_t outlen)
{
    if (!path_allowed(path))
        return -ENOENT;
    char joined[PATH_MAX];
    int n = snprintf(joined, sizeof joined, "%s%s", root, path);
    if (n < 0 || (size_t)n >= sizeof joined)
        return -ENAMETOOLONG;
    struct stat st;
    if (stat(joined, &st))
        return -ENOENT;
    if (S_ISDIR(st.st_mode)) {
        size_t len = (size_t)n;
        const char *sep = len && joined[len - 1] == '/' ? "" : "/";
        if ((size_t)snprintf(joined + len, sizeof joined - len, "%sindex.html", sep) >=
            sizeof joined - len)
            return -ENAMETOOLONG;
    }
    char real[PATH_MAX];
    if (!realpath(joined, real) || stat(real, &st) || !S_ISREG(st.st_mode))
        return -ENOENT;
    size_t rl = strlen(root);
    if (strncmp(real, root, rl) || (real[rl] != '/' && !(rl == 1 && root[0] == '/')))
        return -ENOENT;
    if ((size_t)snprintf(out, outlen, "%s", real) >= outlen)
        return -ENAMETOOLONG;
    return 0;
}

const char *webdir_mime(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"txt", "text/plain; charset=utf-8"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"wasm", "application/wasm"},
    };
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash : name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot + 1, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}
