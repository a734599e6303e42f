/* libFuzzer driver for the http1 query-string and path decoders.
 *
 * Input: one byte picking the output buffer size, then the query (or path) text. Checks that
 * every result fits its buffer, is NUL-terminated at the reported length with no NUL inside,
 * and that http1_query_get agrees with iterating. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "http1_query.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t bsz = data[0] % 40; /* 0..39, small enough to truncate often */
    http1_str_t q = {(const char *)data + 1, size - 1};
    char key[40], val[40], first_key[40], first_val[40];
    size_t kl, vl;
    int have_first = 0, saw_error = 0;

    http1_query_iter_t it;
    http1_query_iter_init(&it, q);
    int rc;
    size_t pairs = 0, last_pos = 0;
    while ((rc = http1_query_next(&it, key, bsz, &kl, val, bsz, &vl)) != -ENOENT) {
        CHECK(rc == 0 || rc == -EINVAL || rc == -ENOSPC);
        CHECK(it.pos > last_pos && it.pos <= q.len); /* progress, bounded */
        last_pos = it.pos;
        CHECK(++pairs <= q.len);
        if (rc == 0) {
            CHECK(kl < bsz && vl < bsz);
            CHECK(key[kl] == '\0' && strlen(key) == kl);
            CHECK(val[vl] == '\0' && strlen(val) == vl);
            if (!have_first && !saw_error) {
                memcpy(first_key, key, kl + 1);
                memcpy(first_val, val, vl + 1);
                have_first = 1;
            }
        } else {
            saw_error = 1;
        }
    }

    /* The first pair's key finds the first pair's value, when nothing before it failed. */
    if (have_first) {
        char v2[40];
        size_t l2 = 0;
        rc = http1_query_get(q, first_key, v2, sizeof v2, &l2);
        CHECK(rc == 0);
        CHECK(strcmp(v2, first_val) == 0 && l2 == strlen(first_val));
    }
    char v3[40];
    rc = http1_query_get(q, "adw_id", v3, bsz, &vl);
    CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENOSPC);
    if (rc == 0)
        CHECK(vl < bsz && strlen(v3) == vl);

    char path[40];
    size_t pl = 0;
    rc = http1_path_decode(q, path, bsz, &pl);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOSPC);
    if (rc == 0) {
        CHECK(pl < bsz && strlen(path) == pl && pl <= q.len);
        /* Decoding the path with a big enough buffer gives the same answer. */
        char big[4096];
        if (q.len < sizeof big)
            CHECK(http1_path_decode(q, big, sizeof big, NULL) == 0 && strcmp(big, path) == 0);
    }
    return 0;
}
