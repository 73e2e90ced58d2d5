/* placeholder: lane h-web replaces this file. Answers 404 {"error":"NOT_BUILT"} so the tree
 * links until then. */
#include "broker/console.h"
#include "net/http.h"

void console_assets_serve(struct broker *b, struct http_req *req)
{
    (void)b;
    static const char body[] = "{\"error\":\"NOT_BUILT\"}";
    http_respond(req, 404, "application/json", NULL, body, sizeof(body) - 1);
}
