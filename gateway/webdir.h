/* webdir: maps request paths to files under the dashboard's directory, safely.
 *
 * A path maps only to a regular file inside the root: no ".." or other dot-segments, no hidden
 * names (segments starting with '.'), no backslashes or NUL, and after symlinks are resolved
 * the file must still be inside the root. "/" and directories map to their index.html.
 */
#ifndef ADW_GATEWAY_WEBDIR_H
#define ADW_GATEWAY_WEBDIR_H

#include <stddef.h>

/* Resolves path (borrowed; percent-decoded, starting with '/') under root (borrowed; an
 * absolute, symlink-free directory as webdir_root returns it) into out[outlen]. Returns 0, or
 * -ENOENT (no such file, or a path refused by the rules above), -ENAMETOOLONG. */
int webdir_resolve(const char *root, const char *path, char *out, size_t outlen);

/* Canonicalises dir into out[outlen] (realpath). Returns 0, or a negative errno when it is not
 * an existing directory. */
int webdir_root(const char *dir, char *out, size_t outlen);

/* The Content-Type for a file name by its extension; "application/octet-stream" for unknown
 * ones. Returns a static string. */
const char *webdir_mime(const char *name);

#endif
