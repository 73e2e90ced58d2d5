/* fuzz_etag_match: console_etag_matches (src/broker/console_asset_table.c) on arbitrary If-None-Match
 * values, as any browser or client could send. Nothing may crash or read past the value (it is
 * copied to an exact-size NUL-terminated buffer, so ASan sees an overread). Invariants: the
 * value itself, a list holding it, and its weak form W/ always match; "*" always matches. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/console_assets.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = malloc(size + 1);
    GREGOR_ASSERT(v != NULL);
    memcpy(v, data, size);
    v[size] = '\0';
    (void)console_etag_matches(v, "\"0123456789abcdef\"");
    /* The value as the tag: a quoted string without an inner quote always matches itself. */
    size_t n = strlen(v);
    if (n >= 2 && n <= 64 && v[0] == '"' && v[n - 1] == '"' && memchr(v + 1, '"', n - 2) == NULL) {
        GREGOR_ASSERT(console_etag_matches(v, v));
        char list[160];
        snprintf(list, sizeof list, "\"x\", W/%s , \"y\"", v);
        GREGOR_ASSERT(console_etag_matches(list, v));
    }
    GREGOR_ASSERT(console_etag_matches(" *", "\"a\""));
    free(v);
    return 0;
}
