/* claude_internal: what the files of adw_claude share among themselves. Internal: not part
 * of the library's API; include it only from the .c files of shared/claude.
 */
#ifndef ADW_CLAUDE_INTERNAL_H
#define ADW_CLAUDE_INTERNAL_H

/* The ellipsis that ends a cut summary (summary.c) and starts a cut string's marker (fit.c):
 * U+2026, 3 bytes of UTF-8, none escaped in JSON. */
#define HOOK_ELLIPSIS "\xe2\x80\xa6"
#define HOOK_ELLIPSIS_LEN 3

#endif
