/*
 * metrics.h — the server's counters, exported at GET /metrics in the
 * Prometheus text format (version 0.0.4):
 *
 *   cairn_http_requests_total{route="chat",code="200"}   counter
 *   cairn_http_request_seconds_bucket{route="chat",le="0.005"} ... histogram
 *   cairn_tokens_total{kind="prompt"|"completion"|"cached"}  counter
 *   cairn_prompt_cache_hits_total, cairn_prompt_cache_lookups_total  counter
 *   cairn_queue_depth, cairn_slots_busy, cairn_slots_total, cairn_connections  gauges
 *
 * Routes are a fixed small set (names from the routing table), so the
 * label space is bounded whatever clients send.
 */
#ifndef CAIRN_SERVER_METRICS_H
#define CAIRN_SERVER_METRICS_H

#include "base/base.h"

#define METRICS_MAX_ROUTES 24

typedef struct srv_metrics srv_metrics;

cairn_status metrics_new(srv_metrics **out);
void metrics_free(srv_metrics *m);
/* Route ids are small integers (0..METRICS_MAX_ROUTES-1) named once. */
void metrics_name_route(srv_metrics *m, int route, const char *name);
void metrics_request(srv_metrics *m, int route, int status, int64_t ns);
void metrics_tokens(srv_metrics *m, uint64_t prompt, uint64_t completion, uint64_t cached, bool lookup);
void metrics_connections(srv_metrics *m, int delta);
typedef struct metrics_gauges { int queue_depth, slots_busy, slots_total; } metrics_gauges;
cairn_status metrics_render(srv_metrics *m, const metrics_gauges *g, cairn_buf *out);

#endif
