/* limits: every bound of the external contract, in one place (proto/limits.md mirrors it). */
#ifndef ADW_ADW_LIMITS_H
#define ADW_ADW_LIMITS_H

#define ADW_ADW_ID_MAX 64            /* adw_id: 1..64 chars of [A-Za-z0-9._:-] */
#define ADW_STEP_MAX 64              /* bytes */
#define ADW_EVENT_TYPE_MAX 64        /* bytes */
#define ADW_EVENT_NAME_MAX 64        /* bytes, the system event's `event` */
#define ADW_STATUS_MAX 32            /* bytes */
#define ADW_SUMMARY_MAX 4096         /* bytes of UTF-8 */
#define ADW_PAYLOAD_MAX 65536        /* bytes of the payload serialized as compact JSON */
#define ADW_EVENT_ID_MAX 64          /* bytes */
#define ADW_AGENT_ID_MAX 64          /* bytes of UTF-8: agent_id, 1..64 when present */
#define ADW_AGENT_TYPE_MAX 64        /* bytes of UTF-8: agent_type, 1..64 when present */
#define ADW_BATCH_MAX 1000           /* events in one array, NDJSON body or ZMQ request */
#define ADW_JSON_DEPTH_MAX 64        /* nesting of arrays and objects, in any codec */
#define ADW_BODY_MAX_DEFAULT 1048576 /* ADW_INGEST_MAX_BODY default */
#define ADW_CLIENT_FRAME_MAX 65536   /* WebSocket client frames */

#endif
