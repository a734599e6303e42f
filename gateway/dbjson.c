#include "dbjson.h"

#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "timefmt.h"

json_t *dbjson_text(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    return json_stringn(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

json_t *dbjson_int(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    return json_integer(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

json_t *dbjson_real(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    return json_real(strtod(PQgetvalue(r, row, col), NULL));
}

json_t *dbjson_ts(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    char t[TIMEFMT_LEN];
    timefmt_format(strtoll(PQgetvalue(r, row, col), NULL, 10), t);
    return json_string(t);
}

json_t *dbjson_doc(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    json_t *v = json_loadb(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col),
                           JSON_DECODE_ANY, NULL);
    return v ? v : dbjson_text(r, row, col);
}

int dbjson_undefined_table(const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return state && !strcmp(state, "42P01");
}

void dbjson_error(buf_t *body, const char *msg)
{
    buf_reset(body);
    if (buf_puts(body, "{\"error\":") || jsonw_string(body, msg, strlen(msg)) ||
        buf_putc(body, '}'))
        buf_free(body);
}
