/* client: pushes ADW events to adw-ingest, for programs to embed (adw-send, adw-bench).
 *
 * Two transports, one per client:
 *   ZeroMQ  a libzmq DEALER connected to ingest's ROUTER over TCP or IPC (NULL security, or
 *           CURVE with certificates); a request is one msgpack frame, an array of event maps;
 *           the answer {"ok":true,"ids":[...]} or {"ok":false,"error":..., "index":i,
 *           "retry":true}.
 *   HTTP    POST <url>/api/events with a JSON array body over one keep-alive connection,
 *           "Authorization: Bearer <token>" when a token is set; the answer
 *           200 {"status":"broadcasted","ids":[...]} or an error status with {"error","index"}.
 * Either way an answer comes only after ingest committed the events.
 *
 * Every event sent (or spooled) gets, in place, when it has none:
 *   - an "event_id" of 32 lowercase hex digits (16 random bytes), so that sending it again after
 *     a timeout or from the spool never stores it twice;
 *   - a "timestamp" (RFC 3339, microseconds, UTC) of the moment it was handed to the client, so
 *     that an event delivered late from the spool keeps the time it happened.
 *
 * Every call that talks to ingest takes a hard timeout: it returns by then, whatever the
 * network does. A connection that failed or timed out is closed; the next call opens a new one
 * (a late answer to an abandoned request can never be taken for another's).
 *
 * The spool (optional, spool.h): client_submit() first sends what is spooled, in order, then
 * the new events; whatever it could not deliver goes to the spool, and nothing new is sent
 * while older events wait there, so ingest sees events in the order they were made. A spooled
 * event leaves the spool only after ingest acknowledged it. Events ingest refuses as invalid
 * are not retried (a new one is dropped and counted, a spooled one moved to rejected/, as is
 * a spool file that cannot be read or holds no valid event).
 *
 * After a delivery failure client_submit() does not try again for a while (1 s, doubling up to
 * 30 s, reset by a success): new events go straight to the spool, so a stream of events does
 * not wait out the timeout for each one while ingest is down. client_drain() always tries.
 *
 * One client per thread; a client is not thread-safe.
 */
#ifndef ADW_CLIENT_H
#define ADW_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CLIENT_ZMQ_DEFAULT "tcp://127.0.0.1:5555"

/* What a program's command line says of the transport (CLIENT_CONFIG_OPTIONS fills it); each
 * string is borrowed from the command line or the environment, NULL when not given. */
typedef struct client_flags_t {
    const char *http;         /* --http: ingest's URL */
    const char *zmq;          /* --zmq: ingest's ZeroMQ endpoint */
    const char *token;        /* --token: the bearer token for HTTP */
    const char *curve_server; /* --curve-server: ingest's public certificate file */
    const char *curve_cert;   /* --curve-cert: our certificate */
} client_flags_t;

/* The transport's rows of a program's option table (config.h): --http (http_doc says which
 * URLs the program takes), --zmq, --token, --curve-server and --curve-cert, with their
 * environment variables, into the client_flags_t at byte offset base of the options struct
 * (offsetof(opts_t, its member)). */
// clang-format off
#define CLIENT_CONFIG_OPTIONS(base, http_doc)                                                      \
    {.flag = "http", .env = "ADW_INGEST_URL", .type = CONFIG_STRING,                               \
     .offset = (base) + offsetof(client_flags_t, http), .doc = (http_doc)},                        \
    {.flag = "zmq", .env = "ADW_INGEST_ZMQ", .type = CONFIG_STRING,                                \
     .offset = (base) + offsetof(client_flags_t, zmq),                                             \
     .doc = "send over ZeroMQ to this endpoint (default " CLIENT_ZMQ_DEFAULT ")"},                 \
    {.flag = "token", .env = "ADW_INGEST_TOKEN", .type = CONFIG_STRING,                            \
     .offset = (base) + offsetof(client_flags_t, token), .doc = "bearer token for HTTP"},          \
    {.flag = "curve-server", .env = "ADW_CURVE_SERVER", .type = CONFIG_STRING,                     \
     .offset = (base) + offsetof(client_flags_t, curve_server),                                    \
     .doc = "ZeroMQ with CURVE: ingest's public certificate file (unset: no CURVE)"},              \
    {.flag = "curve-cert", .env = "ADW_CURVE_CERT", .type = CONFIG_STRING,                         \
     .offset = (base) + offsetof(client_flags_t, curve_cert),                                      \
     .doc = "ZeroMQ with CURVE: our certificate (PATH, its secret half read from PATH_secret)"}
// clang-format on
#define CLIENT_TIMEOUT_MS_DEFAULT 2000
#define CLIENT_EVENT_ID_LEN 32 /* hex digits of a generated event_id */
#define CLIENT_ERR_LEN 256     /* bytes of a reason, NUL included */
/* Bytes of one request, unless one event is bigger. */
#define CLIENT_REQUEST_MAX ((size_t)512 * 1024)
#define CLIENT_BACKOFF_MIN_MS 1000
#define CLIENT_BACKOFF_MAX_MS 30000

typedef struct client_t client_t;

/* Why client_new() failed, for a program to act on (the reason text beside it is for people). */
typedef enum client_err_t {
    CLIENT_ERR_NONE = 0,
    CLIENT_ERR_CONFIG, /* an option cannot be used (see client_new): the caller's mistake */
    CLIENT_ERR_NOMEM,  /* out of memory */
} client_err_t;

/* How to reach ingest. Plain data; every string is copied by client_new. */
typedef struct client_options_t {
    const char *http_url;     /* "http[s]://host[:port][/prefix]": HTTP to <prefix>/api/events
                                 (a URL already ending in /api/events or /api/events/broadcast
                                 is used as is); NULL or "": ZeroMQ */
    const char *zmq_endpoint; /* ZeroMQ endpoint; NULL or "": CLIENT_ZMQ_DEFAULT; a bind
                                 address (tcp:// wildcard or 0.0.0.0 host) means 127.0.0.1:P */
    const char *token;        /* HTTP bearer token; NULL or "": none (ZeroMQ has no token) */
    const char *ca_file;      /* https: PEM bundle of the CAs to trust; NULL or "": the
                                 system's */
    const char *curve_server; /* ZeroMQ with CURVE: the server's public certificate file (as
                                 zcert_save writes it); NULL or "": NULL security */
    const char *curve_cert;   /* ZeroMQ with CURVE: our secret certificate file (path or
                                 path_secret); both or neither */
    const char *spool_dir;    /* spool directory; NULL or "": no spool */
    size_t spool_max;         /* events the spool holds at most; 0: SPOOL_MAX_DEFAULT */
} client_options_t;

/* What one client_submit() or client_drain() did. Plain data. */
typedef struct client_report_t {
    size_t sent;     /* new events ingest acknowledged */
    size_t spooled;  /* new events written to the spool, to be sent later */
    size_t invalid;  /* new events refused: not valid here, or by ingest; not sent, not kept */
    size_t lost;     /* new events neither delivered nor spooled (no spool, spool full or
                        unwritable) */
    size_t drained;  /* spooled events acknowledged and removed from the spool */
    size_t rejected; /* spooled events ingest refused, moved to the spool's rejected/ */
    size_t pending;  /* events left in the spool when the call returned (as far as it saw) */
    int error;       /* the last failure to deliver (negative errno as client_send), or 0 */
    char err[CLIENT_ERR_LEN];         /* its reason, "" when none */
    char invalid_err[CLIENT_ERR_LEN]; /* the first invalid event's reason, "" when none */
    char lost_err[CLIENT_ERR_LEN];    /* why events were lost (no spool, spool full), or "" */
} client_report_t;

/* Makes a new CURVE key pair (libzmq's zmq_curve_keypair) and writes it as CZMQ's zcert_save
 * does: path (the public certificate, 0644) and path + "_secret" (both keys, 0600); an existing
 * file is never overwritten. Returns 0 or a negative errno with the reason in err. */
int client_cert_make(const char *path, char *err, size_t errlen);

/* Makes a client. Nothing is connected yet (the first send connects). Returns NULL with the
 * kind of failure in *code (when code is not NULL) and the reason in err (NUL-terminated when
 * errlen > 0):
 *   CLIENT_ERR_CONFIG  a URL that is not http[s]://host[:port][/path] (https needs OpenSSL 3,
 *                      loaded at run time; an unreadable CA file), a token with a space or
 *                      control character, an endpoint that is not tcp://host:port or
 *                      ipc:///path, one CURVE certificate without the other or one that cannot
 *                      be read, an unusable spool directory
 *   CLIENT_ERR_NOMEM   out of memory
 * On success *code is CLIENT_ERR_NONE. */
client_t *client_new(const client_options_t *o, client_err_t *code, char *err, size_t errlen);

/* Closes its connection, frees the client and sets *c to NULL. Never blocks. Accepts NULL and
 * a pointer to NULL. */
void client_destroy(client_t **c);

/* Writes a new event id, CLIENT_EVENT_ID_LEN lowercase hex digits of 16 random bytes
 * (getrandom), and a NUL into out. */
void client_event_id_new(char out[CLIENT_EVENT_ID_LEN + 1]);

/* Gives ev (borrowed, an object) an "event_id" and a "timestamp" (now_us, microseconds since
 * the epoch) where it has none. Returns 0, -EINVAL (ev is not an object) or -ENOMEM. */
int client_event_prepare(json_t *ev, int64_t now_us);

/* One request: sends events (borrowed: an object, or an array of 1..ADW_BATCH_MAX objects, each
 * prepared in place with client_event_prepare) and waits for ingest's answer, at most
 * timeout_ms. No spool, no validation here, no backoff. On success stores the events' ids, in
 * order, in ids[0..n) when ids is not NULL (room for one per event) and returns 0. Otherwise
 * returns, with the reason in err:
 *   -EINVAL        ingest refused the request as invalid; *index (when not NULL) is the event
 *                  it named, or -1 when it named none; nothing was stored
 *   -EAGAIN        ingest cannot take it now (503, "retry": true); nothing was stored
 *   -ECONNREFUSED  ingest could not be reached
 *   -ECONNRESET    the connection broke before the answer (maybe stored: send again)
 *   -ETIMEDOUT     no answer in time (maybe stored: send again)
 *   -EACCES        HTTP 401/403: the token is missing or wrong
 *   -E2BIG         HTTP 413, or the request would pass ADW_BODY_MAX_DEFAULT
 *   -EPROTO        an answer that is not what the contract says (another status, bad body)
 *   -ENOMEM
 * -EINVAL is also returned, with *index -1 and nothing sent, when events is not an object or
 * an array of 1..ADW_BATCH_MAX objects. */
int client_send(client_t *c, json_t *events, int timeout_ms, int64_t *ids, long *index, char *err,
                size_t errlen);

/* Delivers events (borrowed: an object or an array of objects, any number; each is prepared in
 * place with client_event_prepare) as described at the top of this file, within timeout_ms in
 * all: each is validated (event.h), the spool drained first, the rest sent in requests of at
 * most ADW_BATCH_MAX events and CLIENT_REQUEST_MAX bytes, and what was not delivered spooled.
 * Fills *rep (zeroed first). Returns 0 when every valid event was delivered (invalid ones may
 * have been dropped: see rep->invalid), 1 when some were spooled or lost, or -ENOMEM. */
int client_submit(client_t *c, json_t *events, int timeout_ms, client_report_t *rep);

/* Sends what is spooled, in order, within timeout_ms, ignoring the backoff. Fills *rep (zeroed
 * first). Returns 0 when the spool is empty afterwards (or there is none), 1 when events are
 * left, or -ENOMEM. */
int client_drain(client_t *c, int timeout_ms, client_report_t *rep);

/* Whether the last delivery failed and client_submit() is currently spooling without trying. */
int client_backing_off(const client_t *c);

#endif
