/* metrics.c — counters and the Prometheus text; see metrics.h. */
#include "server/metrics.h"

#include <pthread.h>
#include <string.h>

static const double BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NB ((int)CAIRN_ARRAY_LEN(BUCKETS))
#define MAX_CODES 16

typedef struct route_stats {
    const char *name;
    int codes[MAX_CODES];            /* distinct status codes seen (bounded) */
    uint64_t code_n[MAX_CODES];
    int n_codes;
    uint64_t bucket[NB + 1];         /* the last is +Inf */
    double sum_s;
    uint64_t count;
} route_stats;

struct srv_metrics {
    pthread_mutex_t mu;
    route_stats r[METRICS_MAX_ROUTES];
    uint64_t tok_prompt, tok_completion, tok_cached, cache_hits, cache_lookups;
    int connections;
};

cairn_status metrics_new(srv_metrics **out)
{
    srv_metrics *m = cairn_calloc(1, sizeof *m);
    if (!m)
        return cairn_fail(CAIRN_ERR_NOMEM, "metrics: out of memory");
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return CAIRN_OK;
}

void metrics_free(srv_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    cairn_free(m);
}

void metrics_name_route(srv_metrics *m, int route, const char *name)
{
    if (route >= 0 && route < METRICS_MAX_ROUTES)
        m->r[route].name = name;
}

void metrics_request(srv_metrics *m, int route, int status, int64_t ns)
{
    if (route < 0 || route >= METRICS_MAX_ROUTES)
        return;
    double s = (double)ns / 1e9;
    pthread_mutex_lock(&m->mu);
    route_stats *r = &m->r[route];
    int i = 0;
    while (i < r->n_codes && r->codes[i] != status)
        i++;
    if (i == r->n_codes && r->n_codes < MAX_CODES)
        r->codes[r->n_codes++] = status;
    if (i < r->n_codes)
        r->code_n[i]++;
    int b = 0;
    while (b < NB && s > BUCKETS[b])
        b++;
    r->bucket[b]++;
    r->sum_s += s;
    r->count++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_tokens(srv_metrics *m, uint64_t prompt, uint64_t completion, uint64_t cached, bool lookup)
{
    pthread_mutex_lock(&m->mu);
    m->tok_prompt += prompt;
    m->tok_completion += completion;
    m->tok_cached += cached;
    m->cache_lookups += lookup;
    m->cache_hits += lookup && cached > 0;
    pthread_mutex_unlock(&m->mu);
}

void metrics_connections(srv_metrics *m, int delta)
{
    pthread_mutex_lock(&m->mu);
    m->connections += delta;
    pthread_mutex_unlock(&m->mu);
}

cairn_status metrics_render(srv_metrics *m, const metrics_gauges *g, cairn_buf *o)
{
    pthread_mutex_lock(&m->mu);
    cairn_status st = CAIRN_OK;
#define P(...) do { if (st == CAIRN_OK) st = cairn_buf_printf(o, __VA_ARGS__); } while (0)
    P("# HELP cairn_http_requests_total HTTP requests answered, by route and status.\n"
      "# TYPE cairn_http_requests_total counter\n");
    for (int i = 0; i < METRICS_MAX_ROUTES; i++)
        for (int c = 0; m->r[i].name && c < m->r[i].n_codes; c++)
            P("cairn_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n", m->r[i].name, m->r[i].codes[c],
              (unsigned long long)m->r[i].code_n[c]);
    P("# HELP cairn_http_request_seconds Time from the request's first byte to its response (streams: to the end).\n"
      "# TYPE cairn_http_request_seconds histogram\n");
    for (int i = 0; i < METRICS_MAX_ROUTES; i++) {
        const route_stats *r = &m->r[i];
        if (!r->name || !r->count)
            continue;
        uint64_t cum = 0;
        for (int b = 0; b < NB; b++) {
            cum += r->bucket[b];
            P("cairn_http_request_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", r->name, BUCKETS[b], (unsigned long long)cum);
        }
        P("cairn_http_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", r->name, (unsigned long long)r->count);
        P("cairn_http_request_seconds_sum{route=\"%s\"} %.6f\n", r->name, r->sum_s);
        P("cairn_http_request_seconds_count{route=\"%s\"} %llu\n", r->name, (unsigned long long)r->count);
    }
    P("# HELP cairn_tokens_total Tokens processed: prompt (all), cached (prompt tokens reused from the prompt cache), completion.\n"
      "# TYPE cairn_tokens_total counter\n"
      "cairn_tokens_total{kind=\"prompt\"} %llu\ncairn_tokens_total{kind=\"cached\"} %llu\n"
      "cairn_tokens_total{kind=\"completion\"} %llu\n",
      (unsigned long long)m->tok_prompt, (unsigned long long)m->tok_cached, (unsigned long long)m->tok_completion);
    P("# HELP cairn_prompt_cache_hits_total Generation requests that reused cached KV of a shared prompt prefix.\n"
      "# TYPE cairn_prompt_cache_hits_total counter\ncairn_prompt_cache_hits_total %llu\n"
      "# HELP cairn_prompt_cache_lookups_total Generation requests that looked for a cached prefix.\n"
      "# TYPE cairn_prompt_cache_lookups_total counter\ncairn_prompt_cache_lookups_total %llu\n",
      (unsigned long long)m->cache_hits, (unsigned long long)m->cache_lookups);
    P("# HELP cairn_queue_depth Generation requests waiting for a slot.\n# TYPE cairn_queue_depth gauge\ncairn_queue_depth %d\n"
      "# HELP cairn_slots_busy Generation slots in use.\n# TYPE cairn_slots_busy gauge\ncairn_slots_busy %d\n"
      "# HELP cairn_slots_total Generation slots (--parallel).\n# TYPE cairn_slots_total gauge\ncairn_slots_total %d\n"
      "# HELP cairn_connections Open HTTP connections.\n# TYPE cairn_connections gauge\ncairn_connections %d\n",
      g->queue_depth, g->slots_busy, g->slots_total, m->connections);
#undef P
    pthread_mutex_unlock(&m->mu);
    return st;
}
