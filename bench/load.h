/* load: adw-bench's measuring mode. Holds WebSocket clients on gateways (fleet.h), pushes
 * events through ingest over HTTP or ZeroMQ with the project's client library at a set or the
 * highest rate, bounded in count and time, and reports what the pipeline did.
 */
#ifndef ADW_LOAD_H
#define ADW_LOAD_H

/* Runs the load generator with adw-bench's command line. Returns the process exit code
 * (0: measured and nothing lost; 1: loss, duplicates or disorder seen; 2: bad configuration). */
int load_main(int argc, char **argv);

#endif
