/* wsopts: the settings of the gateway's network side (ws.h's ws_new). Plain data.
 */
#ifndef ADW_GATEWAY_WSOPTS_H
#define ADW_GATEWAY_WSOPTS_H

#include <stddef.h>

#include "metrics.h"

typedef struct ws_options_t {
    const char *listen;        /* host:port (copied) */
    const char *token;         /* full access on /ws/events and the API (NULL or "": none) */
    const char *read_tokens;   /* scoped read tokens, tokens.h's syntax (NULL or "": none) */
    const char *decide_tokens; /* decide tokens, decide.h's syntax (NULL or "": none) */
    const char *ingest_url;    /* where decisions go (forward.h; NULL: http://127.0.0.1:8000) */
    const char *ingest_token;  /* ingest's bearer token for them (NULL or "": none) */
    const char *tls_cert;      /* PEM certificate chain file (NULL or "": plain HTTP) */
    const char *tls_key;       /* PEM private key file, with tls_cert */
    const char *origins;       /* comma-separated browser origins allowed for WebSocket; NULL or "":
                                  same origin and http or https on localhost or 127.0.0.1, any port;
                                  "*": any. Same-origin requests are always allowed. */
    const char *web_dir;       /* directory served at / (NULL: none) */
    int heartbeat_s;           /* seconds between pings */
    size_t max_queue;          /* bytes of backlog per client */
    int max_clients;           /* WebSocket clients at once */
    int max_replays;           /* replay pages read from PostgreSQL at once (replay.h) */
    metrics_t *metrics;        /* borrowed */
} ws_options_t;

#endif
