/* http_routes: gregor.http.listener — starts and stops the HTTP server (net/http.c) and sends
 * each request to its part of the console (broker/console.h): /health here, /metrics to
 * metrics.c, /api/ to console_api.c, every other GET or HEAD to console_assets.c. Loop thread
 * only, like everything the server calls up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/console.h"
#include "broker/console_remote.h"
#include "common/logging.h"
#include "net/http.h"

#define ROUTES_WHO "HttpConsole"
/* The longest a keep-alive connection idles or a request trickles in (seconds-slow clients
 * are closed sooner when gregor.request.read.timeout.ms is lower). */
#define CONSOLE_IDLE_MAX_MS 60000

static void text(struct http_req *req, int status, const char *body)
{
    http_respond(req, status, "text/plain; charset=utf-8", NULL, body, strlen(body));
}

static void route(void *ctx, struct http_req *req)
{
    struct broker *b = ctx;
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (strcmp(req->path, "/health/live") == 0 || strcmp(req->path, "/health/ready") == 0) {
        if (!get) {
            http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
                         "method not allowed\n", 19);
            return;
        }
        if (strcmp(req->path, "/health/live") == 0)
            text(req, 200, "live\n");
        else if (b->accepting)
            text(req, 200, "ready\n");
        else
            text(req, 503, "not ready\n");
        return;
    }
    if (strcmp(req->path, "/metrics") == 0) {
        if (!get) {
            http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
                         "method not allowed\n", 19);
            return;
        }
        metrics_serve(b, req);
        return;
    }
    if (strncmp(req->path, "/api/", 5) == 0 || strcmp(req->path, "/api") == 0) {
        console_api_serve(b, req);
        return;
    }
    if (!get) {
        http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
                     "method not allowed\n", 19);
        return;
    }
    console_assets_serve(b, req);
}

/* "host:port", "[v6]:port" or ":port" (any address) into host and port; 0 or -1. */
static int split_host_port(const char *v, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -1;
    long p = strtol(colon + 1, NULL, 10);
    if (p < 0 || p > 65535)
        return -1;
    size_t hl = (size_t)(colon - v);
    const char *h = v;
    if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {
        h = v + 1;
        hl -= 2;
    }
    if (hl >= cap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

int console_start(struct broker *b)
{
    const char *v = b->cfg.http_listener;
    if (v[0] == '\0')
        return 0;
    char host[256];
    int port;
    if (split_host_port(v, host, sizeof(host), &port) != 0) {
        LOG_ERROR(ROUTES_WHO, "gregor.http.listener %s is not host:port", v);
        return -1;
    }
    int64_t idle = b->cfg.request_read_timeout_ms;
    if (idle <= 0 || idle > CONSOLE_IDLE_MAX_MS)
        idle = CONSOLE_IDLE_MAX_MS;
    struct http_limits lim = {
        .max_body = 1u << 20,
        .max_connections = 256,
        .idle_ms = idle,
    };
    b->http = http_create(b->loop, &lim, route, b);
    if (b->http == NULL || http_listen(b->http, host, port) != 0) {
        LOG_ERROR(ROUTES_WHO, "cannot listen on gregor.http.listener %s: %s", v, strerror(errno));
        http_destroy(b->http);
        b->http = NULL;
        return -1;
    }
    bool v6 = strchr(host, ':') != NULL;
    LOG_INFO(ROUTES_WHO, "HTTP console on http://%s%s%s:%d/", v6 ? "[" : "",
             host[0] != '\0' ? host : "0.0.0.0", v6 ? "]" : "", http_port(b->http));
    return 0;
}

void console_stop(struct broker *b)
{
    console_ops_drop(b); /* before http_destroy frees their requests */
    console_remote_stop(b);
    console_login_drop(b);
    metrics_scrapes_drop(b);
    http_destroy(b->http);
    b->http = NULL;
}
