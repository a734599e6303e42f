/* compact: the size check the hook and stream-json fuzz drivers share. */
#ifndef ADW_FUZZ_COMPACT_H
#define ADW_FUZZ_COMPACT_H

#include <jansson.h>
#include <stddef.h>

/* Returns the bytes of j (borrowed) as compact JSON, as the contract counts them (jsonw_size).
 * jansson's dump gives the same count unless reals are in it (jsonw writes the shortest form
 * that reads back): aborts when it does not, or when jsonw_size fails. */
size_t compact_size(const json_t *j);

#endif
