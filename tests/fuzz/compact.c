#include "compact.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "jsonw.h"

static int count_cb(const char *buffer, size_t size, void *data)
{
    (void)buffer;
    *(size_t *)data += size;
    return 0;
}

static bool has_real(const json_t *j)
{
    size_t i;
    const char *key;
    json_t *v;
    if (json_is_real(j))
        return true;
    json_array_foreach((json_t *)j, i, v)
    {
        if (has_real(v))
            return true;
    }
    json_object_foreach((json_t *)j, key, v)
    {
        if (has_real(v))
            return true;
    }
    return false;
}

size_t compact_size(const json_t *j)
{
    size_t n = 0, dumped = 0;
    if (jsonw_size(j, SIZE_MAX, &n) != 0)
        abort();
    if (!has_real(j) &&
        (json_dump_callback(j, count_cb, &dumped, JSON_COMPACT) != 0 || dumped != n))
        abort();
    return n;
}
