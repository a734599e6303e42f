/* check: the fuzz drivers' assertion, kept in fuzzing builds (no NDEBUG to switch it off). */
#ifndef ADW_FUZZ_CHECK_H
#define ADW_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* Aborts, naming cond and where it stands, when cond is false. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
