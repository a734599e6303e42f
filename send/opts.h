/* opts: adw-send's settings: the option table (flags, environment, defaults, --help), the
 * usage rules between flags, and the client options they give.
 *
 * Pure: nothing here reads stdin, prints or opens a file. config_load() fills a
 * send_options_t from the table; send_opts_check() says whether the combination is usable;
 * send_opts_client() maps it to the client library's options. */
#ifndef ADW_SEND_OPTS_H
#define ADW_SEND_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "config.h"

/* Every setting of adw-send, as config_load() fills it. Plain data; the strings point into
 * argv, environ or the option table and are never freed. */
typedef struct send_options_t {
    const char *adw_id;
    const char *step;
    const char *type;
    const char *event_type;
    const char *event;
    const char *status;
    const char *summary;
    const char *payload;
    int64_t duration_ms; /* -1: no --duration-ms */
    const char *event_id;
    int json;
    int hook;
    int stream_json;
    int tee;
    client_flags_t net; /* --http, --zmq, --token, --curve-server, --curve-cert */
    const char *ca_file;
    const char *make_cert;
    int64_t timeout_ms;
    const char *spool;
    int64_t spool_max;
    int strict;
    int64_t max_input;
    const char *log_level;
    const char *log_format;
} send_options_t;

/* What a send_options_t holds before config_load() fills it. */
#define SEND_OPTIONS_INIT                                                                          \
    {                                                                                              \
        .duration_ms = -1                                                                          \
    }

/* adw-send's option table, for config_load() / config_start(). Static storage; never NULL. */
const config_program_t *send_opts_program(void);

/* Checks the usage rules config_load() cannot see: one mode of --json, --hook and
 * --stream-json at most; no event flag (--type, --event, --summary, ...) with a mode; --tee
 * only with --stream-json; not both --http and --zmq on the command line. argv is the one
 * config_load() read o from (borrowed). Returns 0, or -EINVAL with a one-line reason in err
 * (without the program's name). */
int send_opts_check(const send_options_t *o, int argc, char **argv, char *err, size_t errlen);

/* Fills *co from o: ZeroMQ (o->net.zmq) when --zmq is on the command line or no HTTP URL is set,
 * else HTTP (o->net.http); the token, CA file, CURVE files and spool bound; spool_dir is NULL for
 * --spool off and when the spool is unset, else o->spool. co borrows o's strings. Returns 1
 * when the spool is unset (the caller puts the default directory in co->spool_dir), else 0. */
int send_opts_client(const send_options_t *o, int argc, char **argv, client_options_t *co);

#endif
