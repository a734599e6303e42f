/* wsproto: the WebSocket close codes the gateway sends its clients (ws.h's contract): the
 * RFC 6455 codes it uses and its own in the 4000 range. Constants only.
 */
#ifndef ADW_GATEWAY_WSPROTO_H
#define ADW_GATEWAY_WSPROTO_H

#define WS_CLOSE_HEARTBEAT 4000
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INVALID_UTF8 1007 /* a text message that is not UTF-8 */
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_DB_REPLACED 1012 /* the database was replaced while replaying: reconnect */
#define WS_CLOSE_PROTOCOL 1002    /* a client frame that is not masked (RFC 6455 5.1) */
#define WS_CLOSE_POLICY 1008      /* too many bad client messages in too short a time */

#endif
