/* fleet_query: the query string a resuming fleet client sends (fleet_epoll.c). Pure. */
#ifndef ADW_FLEET_QUERY_H
#define ADW_FLEET_QUERY_H

#include <stddef.h>
#include <stdint.h>

/* Writes to out (size n) the query a resuming client sends: query without its since parameter,
 * then since=<since>. Returns the length, or -ENOSPC (out then holds an empty string) when it
 * does not fit. Pure; query is borrowed (NULL: empty). */
int fleet_resume_query(char *out, size_t n, const char *query, int64_t since);

#endif
