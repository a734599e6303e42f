/* Unit tests for gateway/dbchoice: which standbys are usable, where a read goes by the id it
 * needs (rotation, one more look, the primary), and the ADW_GATEWAY_READ_URL list. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "dbchoice.h"

#define EPOCH 77
#define RECHECK INT64_C(20000)

static void test_usable(void **state)
{
    (void)state;
    dbchoice_standby_t s = {.up = 1, .epoch = EPOCH, .reach = 10};
    assert_true(dbchoice_usable(&s, EPOCH));
    /* Another database's standby (another epoch) is never usable. */
    assert_false(dbchoice_usable(&s, EPOCH + 1));
    /* While the primary's epoch is unknown, no standby is. */
    assert_false(dbchoice_usable(&s, 0));
    /* Down (unreachable, promoted, no schema): not usable whatever it showed before. */
    s.up = 0;
    assert_false(dbchoice_usable(&s, EPOCH));
    /* A standby without an epoch never matches an unknown primary. */
    dbchoice_standby_t none = {.up = 1, .epoch = 0};
    assert_false(dbchoice_usable(&none, 0));
}

static void test_pick_by_reach(void **state)
{
    (void)state;
    dbchoice_standby_t s[2] = {{.up = 1, .epoch = EPOCH, .reach = 100, .looked_us = 1000},
                               {.up = 1, .epoch = EPOCH, .reach = 50, .looked_us = 1000}};
    /* Both reach 40: reads rotate over them. */
    dbchoice_t c = dbchoice_pick(s, 2, EPOCH, 40, 0, 1000, RECHECK);
    assert_int_equal(c.standby, 0);
    assert_int_equal(c.look, 0);
    c = dbchoice_pick(s, 2, EPOCH, 40, 1, 1000, RECHECK);
    assert_int_equal(c.standby, 1);
    c = dbchoice_pick(s, 2, EPOCH, 40, 2, 1000, RECHECK);
    assert_int_equal(c.standby, 0);
    /* Only the first reaches 80, whatever the turn. */
    for (unsigned turn = 0; turn < 4; turn++) {
        c = dbchoice_pick(s, 2, EPOCH, 80, turn, 1000, RECHECK);
        assert_int_equal(c.standby, 0);
        assert_int_equal(c.look, 0);
    }
    /* Exactly the reach is enough; one more is not (looked at just now: the primary). */
    assert_int_equal(dbchoice_pick(s, 2, EPOCH, 100, 1, 1000, RECHECK).standby, 0);
    c = dbchoice_pick(s, 2, EPOCH, 101, 0, 1000, RECHECK);
    assert_int_equal(c.standby, -1);
    assert_int_equal(c.look, 0);
    /* A need of 0 (an empty database) goes to a standby too. */
    assert_true(dbchoice_pick(s, 2, EPOCH, 0, 0, 1000, RECHECK).standby >= 0);
}

static void test_pick_never_unusable(void **state)
{
    (void)state;
    /* A promoted standby (down) and one of another database, both far ahead: never read,
     * never looked at by a reader. */
    dbchoice_standby_t s[2] = {{.up = 0, .epoch = EPOCH, .reach = 1000},
                               {.up = 1, .epoch = EPOCH + 1, .reach = 1000}};
    for (unsigned turn = 0; turn < 4; turn++) {
        dbchoice_t c = dbchoice_pick(s, 2, EPOCH, 5, turn, 10000000, RECHECK);
        assert_int_equal(c.standby, -1);
        assert_int_equal(c.look, 0);
    }
    /* No standbys at all: the primary. */
    assert_int_equal(dbchoice_pick(NULL, 0, EPOCH, 5, 0, 0, RECHECK).standby, -1);
    /* The primary's epoch unknown: the primary. */
    dbchoice_standby_t ok = {.up = 1, .epoch = EPOCH, .reach = 1000};
    assert_int_equal(dbchoice_pick(&ok, 1, 0, 5, 0, 0, RECHECK).standby, -1);
}

static void test_pick_looks_again(void **state)
{
    (void)state;
    /* Neither reaches 60. The last looks are old enough: look again at the one of highest
     * reach (a paused standby among them is looked at no more than any other). */
    dbchoice_standby_t s[3] = {{.up = 1, .epoch = EPOCH, .reach = 40, .looked_us = 0},
                               {.up = 1, .epoch = EPOCH, .reach = 55, .looked_us = 0},
                               {.up = 0, .epoch = EPOCH, .reach = 59, .looked_us = 0}};
    dbchoice_t c = dbchoice_pick(s, 3, EPOCH, 60, 0, RECHECK, RECHECK);
    assert_int_equal(c.standby, 1);
    assert_int_equal(c.look, 1);
    /* Standby 1 was looked at recently: the next best that was not. */
    s[1].looked_us = RECHECK;
    c = dbchoice_pick(s, 3, EPOCH, 60, 0, RECHECK + 1, RECHECK);
    assert_int_equal(c.standby, 0);
    assert_int_equal(c.look, 1);
    /* All looked at recently: the primary, without a look. */
    s[0].looked_us = RECHECK;
    c = dbchoice_pick(s, 3, EPOCH, 60, 0, RECHECK + 1, RECHECK);
    assert_int_equal(c.standby, -1);
    assert_int_equal(c.look, 0);
    /* Once it is old again, look once more. */
    c = dbchoice_pick(s, 3, EPOCH, 60, 0, 2 * RECHECK, RECHECK);
    assert_int_equal(c.standby, 1);
    assert_int_equal(c.look, 1);
}

/* Parses list into spans; returns the count, or -1 when refused (err set). */
static int parse(const char *list, dbchoice_span_t *spans, size_t max, char *err)
{
    size_t n = 99;
    int rc = dbchoice_parse(list, spans, max, &n, err, 160);
    if (rc) {
        assert_int_equal(rc, -EINVAL);
        assert_true(strlen(err) > 0);
        return -1;
    }
    return (int)n;
}

static void assert_span(const char *list, const dbchoice_span_t *sp, const char *want)
{
    assert_int_equal(sp->len, strlen(want));
    assert_memory_equal(list + sp->off, want, sp->len);
}

static void test_parse(void **state)
{
    (void)state;
    dbchoice_span_t sp[DBCHOICE_STANDBYS_MAX];
    char err[160];
    assert_int_equal(parse(NULL, sp, DBCHOICE_STANDBYS_MAX, err), 0);
    assert_int_equal(parse("", sp, DBCHOICE_STANDBYS_MAX, err), 0);
    assert_int_equal(parse("  ,\n ", sp, DBCHOICE_STANDBYS_MAX, err), 0);

    const char *one = "postgresql://adw:pw@replica:5432/adw?sslmode=require";
    assert_int_equal(parse(one, sp, DBCHOICE_STANDBYS_MAX, err), 1);
    assert_span(one, &sp[0], one);

    const char *two = " postgresql://a/adw,postgres://b:5433/adw ,";
    assert_int_equal(parse(two, sp, DBCHOICE_STANDBYS_MAX, err), 2);
    assert_span(two, &sp[0], "postgresql://a/adw");
    assert_span(two, &sp[1], "postgres://b:5433/adw");

    const char *spaced = "postgresql://a/adw\tpostgresql://b/adw\n, postgresql://c/adw";
    assert_int_equal(parse(spaced, sp, DBCHOICE_STANDBYS_MAX, err), 3);
    assert_span(spaced, &sp[2], "postgresql://c/adw");

    /* A multi-host URI keeps its commas. */
    const char *multi = "postgresql://h1:5432,h2:5433/adw,postgresql://h3/adw";
    assert_int_equal(parse(multi, sp, DBCHOICE_STANDBYS_MAX, err), 2);
    assert_span(multi, &sp[0], "postgresql://h1:5432,h2:5433/adw");
}

static void test_parse_refuses(void **state)
{
    (void)state;
    dbchoice_span_t sp[DBCHOICE_STANDBYS_MAX];
    char err[160];
    /* key=value strings (they hold spaces) and bare hosts are not URIs. */
    assert_int_equal(parse("host=replica dbname=adw", sp, DBCHOICE_STANDBYS_MAX, err), -1);
    assert_non_null(strstr(err, "entry 1"));
    assert_int_equal(parse("postgresql://a/adw replica:5432", sp, DBCHOICE_STANDBYS_MAX, err), -1);
    assert_non_null(strstr(err, "entry 2"));
    assert_int_equal(parse("postgresql://", sp, DBCHOICE_STANDBYS_MAX, err), -1);
    /* The reason never echoes the entry (it may hold a password). */
    assert_int_equal(parse("mysql://u:secret@h/db", sp, DBCHOICE_STANDBYS_MAX, err), -1);
    assert_null(strstr(err, "secret"));
    /* The limit: max entries pass, one more is refused. */
    char list[1024] = "";
    for (int i = 0; i < DBCHOICE_STANDBYS_MAX; i++)
        strcat(list, "postgresql://h/adw ");
    assert_int_equal(parse(list, sp, DBCHOICE_STANDBYS_MAX, err), DBCHOICE_STANDBYS_MAX);
    strcat(list, "postgresql://h/adw");
    assert_int_equal(parse(list, sp, DBCHOICE_STANDBYS_MAX, err), -1);
    assert_non_null(strstr(err, "more than"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usable),
        cmocka_unit_test(test_pick_by_reach),
        cmocka_unit_test(test_pick_never_unusable),
        cmocka_unit_test(test_pick_looks_again),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
