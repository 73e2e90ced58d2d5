/* console_asset_table: the embedded assets by name, and If-None-Match against one entity tag
 * (console_assets.c answers 304 when it matches). Pure: no I/O, no allocation, no HTTP; the
 * matcher is fuzzed by tests/fuzz/fuzz_etag_match.c. */
#include <string.h>

#include "broker/console_assets.h"
#include "common/util.h"

const struct console_asset *console_asset_find(const char *name)
{
    if (name[0] == '\0')
        name = "index.html";
    for (int i = 0; i < console_assets_count; i++)
        if (strcmp(console_assets[i].name, name) == 0)
            return &console_assets[i];
    return NULL;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool console_etag_matches(const char *inm, const char *etag)
{
    GREGOR_ASSERT(etag[0] == '"');
    size_t elen = strlen(etag);
    size_t n = strnlen(inm, IF_NONE_MATCH_MAX + 1);
    if (n > IF_NONE_MATCH_MAX)
        return false;
    size_t i = 0;
    while (i < n) {                     /* each pass consumes one list member or stops */
        while (i < n && (is_blank(inm[i]) || inm[i] == ','))
            i++;
        if (i == n)
            break;
        if (inm[i] == '*')
            return true;
        if (n - i >= 2 && inm[i] == 'W' && inm[i + 1] == '/')
            i += 2;
        if (i == n || inm[i] != '"')
            return false;
        size_t start = i++;
        while (i < n && inm[i] != '"')
            i++;
        if (i == n)
            return false;               /* unterminated tag */
        i++;
        if (i - start == elen && memcmp(inm + start, etag, elen) == 0)
            return true;
        while (i < n && is_blank(inm[i]))
            i++;
        if (i < n && inm[i] != ',')
            return false;
    }
    return false;
}
