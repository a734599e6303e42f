/* input: the whole of stdin for the one-shot modes (--json, --hook), bounded by --max-input
 * and the run's deadline. */
#ifndef ADW_SEND_INPUT_H
#define ADW_SEND_INPUT_H

#include "buf.h"
#include "run.h"

/* Initialises in (the caller frees it with buf_free, also on failure) and reads all of stdin
 * into it within --max-input and the run's deadline. Returns 0, or -EINVAL after logging why
 * (too big, too slow, a read error, empty) and counting the input invalid in the tally. */
int input_read(run_t *s, buf_t *in);

#endif
