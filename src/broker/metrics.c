/* placeholder: lane h-metrics replaces this file. Answers 404 {"error":"NOT_BUILT"} and counts
 * nothing, so the tree links until then. */
#include <string.h>

#include "broker/console.h"
#include "net/http.h"

void metrics_serve(struct broker *b, struct http_req *req)
{
    (void)b;
    static const char body[] = "{\"error\":\"NOT_BUILT\"}";
    http_respond(req, 404, "application/json", NULL, body, sizeof(body) - 1);
}

void metrics_topic_traffic(struct broker *b, const struct topic *t, struct topic_traffic *out)
{
    (void)b;
    (void)t;
    memset(out, 0, sizeof(*out));
}
