/* console_assets: the web console's files (web/), embedded at build time by
 * tools/embed_assets.py into $(BUILD)/gen/console_assets_data.c, and the If-None-Match test
 * console_assets.c answers 304 with. */
#ifndef GREGOR_BROKER_CONSOLE_ASSETS_H
#define GREGOR_BROKER_CONSOLE_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

struct console_asset {
    const char *name;           /* "app.js": the path without its leading '/' */
    const char *content_type;
    const char *etag;           /* strong, quoted: "\"0123456789abcdef\"" */
    const unsigned char *data;  /* len bytes (a NUL follows them) */
    size_t len;
};

/* console_assets_count entries, then one of all zeros. */
extern const struct console_asset console_assets[];
extern const int console_assets_count;

/* The asset named name ("app.js"; "" is index.html), or NULL. */
const struct console_asset *console_asset_find(const char *name);

/* Whether an If-None-Match value (a comma-separated list of entity tags, each maybe W/, or
 * "*") matches etag, by the weak comparison RFC 9110 asks of If-None-Match. Reads at most
 * IF_NONE_MATCH_MAX bytes of it; a malformed list matches nothing. */
#define IF_NONE_MATCH_MAX 4096
bool console_etag_matches(const char *if_none_match, const char *etag);

#endif
