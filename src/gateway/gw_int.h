/* gw_int.h — the gateway's internal pieces: SSE parser, upstream client. */
#ifndef CAIRN_GW_INT_H
#define CAIRN_GW_INT_H

#include "gateway/gateway.h"

/* ---- server-sent events (gw_sse.c) ----
 * The text/event-stream format: lines ending in LF, CRLF or CR; "data: x"
 * lines of one event are joined with LF; a blank line ends the event; lines
 * starting with ':' are comments; other fields (event, id, retry) are kept
 * out of the data. One event's data is capped (CAIRN_ERR_TOO_LARGE). */
typedef cairn_status (*gw_sse_event_fn)(void *ctx, const char *data, size_t n);
typedef struct gw_sse {
    cairn_buf line, data;
    bool have_data, last_cr;
    gw_sse_event_fn fn;
    void *ctx;
    size_t max_event;
    size_t events;
} gw_sse;
void gw_sse_init(gw_sse *p, size_t max_event, gw_sse_event_fn fn, void *ctx);
void gw_sse_free(gw_sse *p);
cairn_status gw_sse_feed(gw_sse *p, const char *buf, size_t n);

/* ---- upstream client (gw_client.c) ---- */
typedef struct gw_conn gw_conn;        /* a reusable curl handle pair (keeps connections) */
cairn_status gw_conn_new(gw_conn **out);
void gw_conn_free(gw_conn *c);

typedef struct gw_call {
    /* in */
    const gw_upstream_cfg *up;
    gw_endpoint ep;
    const char *body;
    size_t body_len;
    bool stream;
    const gw_sink *sink;        /* events and bodies go here once the answer is good */
    const gw_route_info *info;
    /* out */
    int http_status;
    gw_fail fail;
    bool started;               /* sink->begin was called */
    bool done_seen;             /* the upstream sent data: [DONE] (not forwarded) */
    bool sink_failed;
    int64_t usage_in, usage_out;
    bool usage_seen;
    size_t events;
    char err[256];
} gw_call;

/* One HTTP exchange. On success (fail NONE) the answer went to the sink:
 * a stream's events (not [DONE]), or a JSON body; a 4xx other than 408/429
 * is passed to the sink as the answer too. On failure before anything was
 * written, nothing was written. */
void gw_upstream_call(gw_conn *c, gw_call *call);

/* Text of the last error detail of the upstream, for health. */
void gw_json_usage(const char *json, size_t n, int64_t *in, int64_t *out, bool *seen);

/* ---- the handle (gw.c, gw_budget.c) ---- */
#include <pthread.h>
#include <sys/types.h>

#define GW_LAT_BUCKETS 12
extern const double gw_lat_bounds[GW_LAT_BUCKETS];   /* seconds; +Inf implied */
#define GW_FAIL_COUNT (GW_FAIL_BROKEN + 1)
#define GW_POOL 8

typedef struct gw_up_state {
    /* circuit breaker */
    int consec_fail;
    int64_t open_until_ns;      /* monotonic; 0 = closed */
    bool trial;                 /* a half-open trial is in flight */
    uint64_t opens;
    /* health */
    uint64_t requests, ok, errors[GW_FAIL_COUNT];
    uint64_t lat_count, lat_bucket[GW_LAT_BUCKETS + 1];
    double lat_sum;
    char last_error[256];
    int64_t last_ok_s, last_error_s;
    /* budget of the current day */
    int64_t used_tokens, used_nano, resv_tokens, resv_nano;
    uint64_t budget_stops;
} gw_up_state;

struct gw {
    gw_config cfg;
    char *dir;
    pthread_mutex_t mu;
    gw_clock_fn clock;
    void *clock_ctx;
    gw_up_state up[GW_MAX_UPSTREAMS];
    /* the audit log of the current day: budgets are the sum of its records */
    int64_t day;                /* days since the epoch (UTC, injected clock); -1 = none open */
    int audit_fd;
    int64_t audit_off;          /* bytes of it already counted */
    int content_fd;
    gw_conn *pool[GW_POOL];
    size_t n_pool;
    uint64_t seq;
    /* counters for /metrics */
    uint64_t routes[4];         /* local, upstream, refused, error */
    uint64_t fallbacks, refusals_private, refusals_budget, refusals_other, broken;
    uint64_t redactions[GW_MAX_REDACT];
};

int64_t gw_clock_now(gw *g);
/* With g->mu held: open the day of `now` (reloading its budgets) and count
 * records appended since the last look (by this or another process). */
cairn_status gw_budget_sync(gw *g, int64_t now);
/* With g->mu held: append one audit line (ends in '\n'). */
cairn_status gw_audit_append(gw *g, const char *line, size_t n, const char *content, size_t content_len);

/* gw_redact with a count per rule (per_rule has cfg->n_redact slots, added to). */
cairn_status gw_redact_each(const gw_config *c, const char *s, size_t n, char **out, size_t *out_len, int *per_rule);

#endif
