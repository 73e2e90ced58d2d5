/* Unit tests for the console's assets: the table tools/embed_assets.py builds from web/ (every
 * file the page loads is there, with its type and a strong ETag) and If-None-Match
 * (src/broker/console_asset_table.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "broker/console_assets.h"

static void test_table(void **state)
{
    (void)state;
    const char *names[] = {"index.html", "app.js", "app.css"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct console_asset *a = console_asset_find(names[i]);
        assert_non_null(a);
        assert_true(a->len > 0);
        assert_int_equal(a->data[a->len], 0);
        assert_int_equal(strlen(a->etag), 18);
        assert_int_equal(a->etag[0], '"');
    }
    assert_ptr_equal(console_asset_find(""), console_asset_find("index.html"));
    assert_string_equal(console_asset_find("app.js")->content_type, "text/javascript; charset=utf-8");
    assert_null(console_asset_find("nope.js"));
    assert_null(console_asset_find("../Makefile"));
    assert_null(console_assets[console_assets_count].name);
}

static void test_if_none_match(void **state)
{
    (void)state;
    const char *e = "\"0123456789abcdef\"";
    assert_true(console_etag_matches("\"0123456789abcdef\"", e));
    assert_true(console_etag_matches("W/\"0123456789abcdef\"", e));
    assert_true(console_etag_matches("\"x\", \"0123456789abcdef\"", e));
    assert_true(console_etag_matches("\"x\",W/\"0123456789abcdef\" ,\"y\"", e));
    assert_true(console_etag_matches("*", e));
    assert_false(console_etag_matches("", e));
    assert_false(console_etag_matches("\"0123456789abcde\"", e));
    assert_false(console_etag_matches("\"0123456789abcdef", e));      /* unterminated */
    assert_false(console_etag_matches("0123456789abcdef", e));        /* not quoted */
    assert_false(console_etag_matches("\"x\" junk, \"0123456789abcdef\"", e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_if_none_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
