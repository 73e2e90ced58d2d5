/* console: what the broker serves on gregor.http.listener — the web console's pages and its
 * JSON API (docs/CONSOLE.md), /metrics in Prometheus' text format, /health. All on the loop
 * thread; each part in its own file:
 *   http_routes.c     the listener's start/stop and the dispatch below, /health/live|ready
 *   console_api.c     /api/... (JSON), login against the SASL credentials, ACLs obeyed
 *   console_assets.c  every other GET: the page and its assets, embedded at build time
 *   metrics.c         /metrics, and the counters the handlers bump */
#ifndef GREGOR_BROKER_CONSOLE_H
#define GREGOR_BROKER_CONSOLE_H

#include <stdint.h>

struct broker;
struct http_req;
struct topic;

/* http_routes.c: starts the HTTP listener when gregor.http.listener is set (0; -1 when it
 * cannot listen, logged) and stops it. */
int console_start(struct broker *b);
void console_stop(struct broker *b);
/* console_data.c: forgets the HTTP requests of console creates/deletes still awaiting the
 * cluster (their answers are dropped; each op is freed when the cluster's callback comes), and
 * frees the console produces still waiting for acks=all (unanswered). */
void console_ops_drop(struct broker *b);
/* console_api.c: answers now the failed logins still waiting out their delay (their timers
 * cancelled), before http_destroy frees their requests. */
void console_login_drop(struct broker *b);

/* Each answers req (http_respond), now or later. */
void console_api_serve(struct broker *b, struct http_req *req);
void console_assets_serve(struct broker *b, struct http_req *req);
void metrics_serve(struct broker *b, struct http_req *req);

/* A topic's traffic since the broker started (metrics.c), for the console's rates: the
 * console samples it, the page draws the differences. */
struct topic_traffic {
    uint64_t messages_in, bytes_in, bytes_out;
    uint64_t produce_requests, fetch_requests;
};
void metrics_topic_traffic(struct broker *b, const struct topic *t, struct topic_traffic *out);

#endif
