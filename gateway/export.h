/* export: a run's stored events as a download, streamed from PostgreSQL a page at a time.
 *
 *   GET /api/adws/{adw_id}/events.ndjson   one stored event per line, as /api/events gives them
 *   GET /api/adws/{adw_id}/events.csv      a header line, then one row per event
 * (EXPORT_CSV_HEADER)
 *
 * Every event of the run once, in id order, up to the run's last event when the export began.
 * A page (EXPORT_PAGE events) is read on the dbpool's workers; it is written to the client as
 * its socket takes it, and the next page is asked for only once the previous one is written:
 * an export holds at most one page in memory and a slow reader holds up no one but itself.
 * Headers go out once the first page is read (so an unknown run answers 404): on HTTP/1.1 the
 * body is chunked and the connection closes after it; Content-Disposition names the file
 * "<adw_id>-events.ndjson" (".csv"). A run that does not exist, or lies outside the read token's
 * scope, answers 404; a database failure before the headers answers 503, after them the
 * connection is closed without the last chunk (the client sees the download cut short). A
 * client that takes nothing for EXPORT_TIMEOUT_S seconds (DB_STATEMENT_TIMEOUT_MS / 1000 + 10)
 * is closed; one that goes away has its page query cancelled and the page dropped.
 *
 * Threads: the loop thread, except csv_field_append and export_csv_row (pure, any thread).
 */
#ifndef ADW_GATEWAY_EXPORT_H
#define ADW_GATEWAY_EXPORT_H

#include <libwebsockets.h>
#include <stddef.h>

#include "buf.h"
#include "dbpool.h"
#include "filter.h"

#define EXPORT_PAGE 1000   /* events read per query */
#define EXPORT_CHUNK 32768 /* body bytes per write */
#define EXPORT_CSV_HEADER                                                                          \
    "id,received_at,ts,type,step,event_type,event,status,agent_id,summary,cost_usd,tokens,"        \
    "payload\r\n"

typedef struct export_t export_t;

/* Returns 1 when path (borrowed, percent-decoded) asks for an export, else 0. */
int export_match(const char *path);

/* Starts the export path asks for (export_match(path) is 1) on wsi, reading on pool (borrowed,
 * outliving the export); scope (borrowed, lives as long as the server; NULL: every run) is the
 * read token's. head: answer the headers only. Returns the export (owned by the caller: it lives
 * until export_destroy), or NULL when the pool's queue is full or memory runs out (answer 503).
 * It asks for a writeable callback on wsi once it has something to write. */
export_t *export_start(dbpool_t *pool, struct lws *wsi, const char *path,
                       const filter_list_t *scope, int head);

/* LWS_CALLBACK_HTTP_WRITEABLE for an export: writes its next piece from wbuf (borrowed scratch,
 * LWS_PRE + EXPORT_CHUNK + 32 bytes at least). Returns 0, or -1 to close the connection (the
 * export finished or failed). */
int export_writeable(export_t *e, unsigned char *wbuf);

/* Ends the export: a query in flight is cancelled and its result dropped when it comes back.
 * Accepts NULL; nulls *e. */
void export_destroy(export_t **e);

/* Appends s[0..len) (borrowed) to out as one CSV field (RFC 4180): as is, or between double
 * quotes with each quote doubled when it holds a comma, a quote, CR or LF. s NULL: an empty
 * field. Returns 0 or -ENOMEM (out then holds part of the field). */
int csv_field_append(buf_t *out, const char *s, size_t len);

/* Appends the CSV row (EXPORT_CSV_HEADER's columns, CRLF-terminated) of the stored event
 * json[0..len) (borrowed; compact JSON as /api/events gives it): strings as they are, null or
 * absent members as empty fields, other values (numbers, objects; payload) as compact JSON text.
 * A document that does not decode gives a row with only its id (id_if_raw) and the text as the
 * payload. Returns 0 or -ENOMEM. */
int export_csv_row(buf_t *out, const char *json, size_t len, long long id_if_raw);

#endif
