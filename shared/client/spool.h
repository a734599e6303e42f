/* spool: a directory of events waiting for ingest, shared safely by concurrent processes.
 *
 * One file per event, named "e-<19-digit microseconds>-<10-digit pid>-<8-digit sequence>.json"
 * after the time the event was made, so that names sort in the order events were made (within a
 * process, in the order spool_put was called for one time). A file holds the event's compact
 * JSON and a newline. It appears whole or not at all: it is written as ".tmp-..." in the same
 * directory, flushed with fdatasync, then renamed without replacing anything.
 *
 * Adding needs no lock. Sending spooled events does: the one that drains takes an exclusive
 * flock(2) on the file ".lock" in the directory, so one process at a time sends spooled events,
 * in name order, and removes each only after ingest acknowledged it. The lock goes away with
 * the process, so a crash never leaves the spool locked. Files ingest refused as invalid, or
 * that are not an event at all, move to the subdirectory "rejected/" for a person to look at.
 *
 * The directory (and its parents) is created, mode 0700, the first time an event is added.
 * One spool_t per process and directory; not thread-safe.
 */
#ifndef ADW_SPOOL_H
#define ADW_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SPOOL_NAME_LEN 48         /* bytes of a file name, NUL included */
#define SPOOL_MAX_DEFAULT 100000  /* events a spool holds before refusing more */
#define SPOOL_FILE_MAX (4u << 20) /* largest spool file read back; bigger ones are rejected */
#define SPOOL_TMP_STALE_S 600     /* ".tmp-" files older than this are left-overs of a crash */
#define SPOOL_REJECTED "rejected" /* subdirectory of refused files */

typedef struct spool_t spool_t;

/* Opens the spool at dir (copied; nothing is created yet). max_events bounds the files it
 * holds (0: SPOOL_MAX_DEFAULT). Returns a spool the caller closes with spool_close(), or NULL
 * with errno EINVAL (empty or over-long dir) or ENOMEM. */
spool_t *spool_open(const char *dir, size_t max_events);

/* Releases the lock if held, frees the spool and sets *s to NULL. Accepts NULL and a pointer
 * to NULL. */
void spool_close(spool_t **s);

/* The directory, as given to spool_open (owned by s). */
const char *spool_dir(const spool_t *s);

/* Writes ev (borrowed; must serialize as JSON) as a new file ordered by made_us, the time the
 * event was made (microseconds since the epoch), then by call order. Creates the directory when
 * missing. Returns 0, -ENOSPC when the spool already holds max_events files, -EINVAL when ev
 * does not serialize, or another negative errno of the file system; the reason is in err
 * (NUL-terminated when errlen > 0). Nothing is left behind on error. */
int spool_put(spool_t *s, const json_t *ev, int64_t made_us, char *err, size_t errlen);

/* Returns 1 when at least one event file is in the spool, 0 when none (or no directory yet), or
 * a negative errno. Reads the directory, nothing else: cheap enough for every submission. */
int spool_pending(spool_t *s);

/* Lists the event files in order. Stores in *names a new array of *count names (each
 * SPOOL_NAME_LEN bytes; the caller frees the array with free()), NULL when there are none.
 * With the lock held it also removes ".tmp-" files older than SPOOL_TMP_STALE_S.
 * Returns 0 (no directory: zero names) or a negative errno. */
int spool_list(spool_t *s, char (**names)[SPOOL_NAME_LEN], size_t *count);

/* Takes the drain lock, waiting until deadline_us (timefmt_mono_us clock) at the latest.
 * Returns 0 (also when already held), -ETIMEDOUT, or another negative errno (the directory
 * cannot be created, the lock file cannot be opened). */
int spool_lock(spool_t *s, int64_t deadline_us);

/* Releases the drain lock; nothing when not held. */
void spool_unlock(spool_t *s);

/* Whether this spool holds the drain lock. */
int spool_locked(const spool_t *s);

/* Reads the event in file name. Returns 0 with *ev a new reference (the caller owns it);
 * -ENOENT when the file is gone; -EINVAL (reason in err) when it holds no JSON object or is
 * bigger than SPOOL_FILE_MAX; another negative errno on I/O errors. */
int spool_read(spool_t *s, const char *name, json_t **ev, char *err, size_t errlen);

/* Removes file name (its event was acknowledged). Returns 0 (also when already gone) or a
 * negative errno. */
int spool_remove(spool_t *s, const char *name);

/* Moves file name into "rejected/" (created when missing). Returns 0 (also when already gone)
 * or a negative errno. */
int spool_reject(spool_t *s, const char *name);

/* Returns the number of event files in the spool, or a negative errno. Reads the directory. */
long spool_count(spool_t *s);

#endif
