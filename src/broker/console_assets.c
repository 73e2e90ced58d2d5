/* console_assets: every GET or HEAD that is not /api, /metrics or /health — the console's page
 * and its assets, embedded at build time (tools/embed_assets.py, web/). An unknown path gets
 * index.html: the page routes on the client side (#/topics/...), and a reload of any path shows
 * the console. Each answer carries a strong ETag (If-None-Match → 304), "Cache-Control:
 * no-cache" (the names are not versioned, so the browser revalidates: a 304 costs a header) and
 * a Content-Security-Policy that lets the page load only what the broker serves. */
#include "broker/console_assets.h"

#include <stdio.h>
#include <string.h>

#include "broker/console.h"
#include "common/util.h"
#include "net/http.h"

#define CSP "Content-Security-Policy: default-src 'self'; img-src 'self' data:; " \
            "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; " \
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n"
#define COMMON_HEADERS CSP "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n" \
            "Cache-Control: no-cache\r\n"

void console_assets_serve(struct broker *b, struct http_req *req)
{
    (void)b;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        static const char msg[] = "method not allowed\n";
        http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n", msg,
                     sizeof msg - 1);
        return;
    }
    const char *name = req->path[0] == '/' ? req->path + 1 : req->path;
    const struct console_asset *a = console_asset_find(name);
    if (a == NULL)
        a = console_asset_find("index.html");
    if (a == NULL) {                    /* a build without web/index.html */
        static const char msg[] = "no console page in this build\n";
        http_respond(req, 404, "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
        return;
    }
    char headers[sizeof(COMMON_HEADERS) + 64];
    int hl = snprintf(headers, sizeof headers, COMMON_HEADERS "ETag: %s\r\n", a->etag);
    GREGOR_ASSERT(hl > 0 && (size_t)hl < sizeof headers);
    const char *inm = http_header(req, "If-None-Match");
    if (inm != NULL && console_etag_matches(inm, a->etag)) {
        http_respond(req, 304, NULL, headers, NULL, 0);
        return;
    }
    http_respond(req, 200, a->content_type, headers, a->data, a->len);
}
