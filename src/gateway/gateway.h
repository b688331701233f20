/*
 * gateway.h — hand a request to an upstream OpenAI-compatible endpoint, only
 * under rules the user wrote (docs/gateway.md).
 *
 * The gateway sits between a front end (the HTTP server's
 * /v1/chat/completions and /v1/completions, `cairn ask`) and two kinds of
 * answerer: the local model (a callback the front end supplies) and the
 * upstreams of the configuration (called with libcurl). For each request it
 *   1. picks a policy: the request's own (body field "cairn_route" or header
 *      X-Cairn-Route-Policy), else the model map, else the store's default
 *      (local-only unless configured);
 *   2. checks privacy: a grounded request whose context holds a private chunk
 *      never goes upstream (answered locally, or refused with the reason);
 *   3. tries the routes of the policy in order: local-first falls over to the
 *      upstream on a local error, timeout, overload or a prompt longer than
 *      the local context; cloud-first falls back to local on an upstream
 *      failure, timeout, 429, open circuit breaker or spent budget;
 *   4. redacts (regular expressions) everything that goes upstream;
 *   5. writes one audit record (JSON line) and counts everything for /metrics.
 * A fall-over happens only before the first byte reached the client: a stream
 * that breaks after that ends with an SSE error event (no [DONE]).
 *
 * Threads: one gw handle serves concurrent requests (one mutex guards the
 * counters, breakers and budgets; no lock is held during a call).
 */
#ifndef CAIRN_GATEWAY_H
#define CAIRN_GATEWAY_H

#include "base/base.h"
#include "store/config.h"

#define GW_MAX_UPSTREAMS 16
#define GW_MAX_MODELS 16
#define GW_MAX_MAP 64
#define GW_MAX_REDACT 32
#define GW_MAX_GLOBS 32
#define GW_MAX_BODY_BYTES ((size_t)8 << 20)      /* a request or a whole non-streamed answer */
#define GW_MAX_EVENT_BYTES ((size_t)1 << 20)     /* one SSE event from upstream */

typedef enum gw_policy {
    GW_POLICY_LOCAL_ONLY = 0,
    GW_POLICY_LOCAL_FIRST,
    GW_POLICY_CLOUD_FIRST,
    GW_POLICY_CLOUD_ONLY,       /* only through the model map or a request: "upstream" */
    GW_POLICY_MODEL_MAP,        /* resolve through [model-map]; not a route by itself */
} gw_policy;

const char *gw_policy_name(gw_policy p);
/* "local-only", "local-first", "cloud-first", "cloud-only"/"upstream", "model-map". */
bool gw_policy_parse(const char *s, gw_policy *out);

typedef struct gw_upstream_cfg {
    char *name;
    char *base_url;             /* ".../v1"; the gateway appends "/chat/completions" */
    char *models[GW_MAX_MODELS];/* names served; the first is sent when the request names a local model */
    size_t n_models;
    char *key_env;              /* environment variable holding the API key (never the key) */
    int64_t timeout_ms;         /* connect + first byte of the answer */
    int64_t idle_ms;            /* longest gap between stream events */
    int64_t price_in_nano;      /* price per 1k input tokens, in 1e-6 units = per token in 1e-9 */
    int64_t price_out_nano;
    int64_t budget_tokens;      /* per UTC day; 0 = no cap */
    int64_t budget_nano;        /* money per UTC day in 1e-9 units; 0 = no cap */
    int64_t max_tokens;         /* completion tokens reserved when the request names none */
    int retries;                /* extra attempts for idempotent failures */
    int64_t backoff_ms;         /* first retry delay; doubles */
    int breaker_failures;       /* consecutive failures that open the breaker */
    int64_t breaker_cooldown_ms;
    const char *hdr[4];         /* run time only (never from the config): extra request headers, borrowed */
} gw_upstream_cfg;

typedef struct gw_map_entry {
    char *model;                /* requested model name ('*' globs allowed) */
    gw_policy policy;
    int upstream;               /* index, or -1 for the default upstream */
} gw_map_entry;

typedef struct gw_redact_rule {
    char *name;
    char *pattern;
    void *code;                 /* pcre2_code* */
} gw_redact_rule;

typedef enum gw_private_action { GW_PRIVATE_LOCAL = 0, GW_PRIVATE_REFUSE } gw_private_action;

typedef struct gw_config {
    gw_policy policy;           /* store default */
    int default_upstream;       /* index; -1 when none */
    gw_upstream_cfg up[GW_MAX_UPSTREAMS];
    size_t n_up;
    gw_map_entry map[GW_MAX_MAP];
    size_t n_map;
    gw_redact_rule redact[GW_MAX_REDACT];
    size_t n_redact;
    bool default_private;
    char *private_globs[GW_MAX_GLOBS];
    size_t n_globs;
    gw_private_action on_private;
    bool audit_content;         /* write request/answer text into the audit log */
    bool allow_override;        /* requests may pick their policy (default true) */
    int64_t local_timeout_ms;   /* given to the local callback as its deadline */
} gw_config;

void gw_config_init(gw_config *c);
void gw_config_free(gw_config *c);
/* Read [gateway], [upstream NAME], [model-map], [redact], [privacy] from a
 * parsed INI file (.cairn/config or a --gateway FILE). Errors name the key. */
cairn_status gw_config_from_ini(gw_config *c, const store_config *ini);
cairn_status gw_config_load_file(gw_config *c, const char *path);
/* "0.002" -> 2000 (1e-6 units); at most 6 decimals. */
cairn_status gw_parse_price(const char *s, int64_t *nano_per_token);

/* ---- one request ---- */

/* A chunk of context of a grounded request, for the privacy rule. */
typedef struct gw_chunk_ref {
    const char *path;           /* source path (matched against [privacy] paths) */
    int private_tag;            /* metadata private: -1 unset, 0 false, 1 true */
    int64_t chunk_id;
} gw_chunk_ref;

typedef enum gw_endpoint { GW_EP_CHAT = 0, GW_EP_COMPLETIONS } gw_endpoint;

typedef struct gw_request {
    gw_endpoint endpoint;
    const char *body;           /* the OpenAI request JSON (as sent upstream, before redaction) */
    size_t body_len;
    const char *policy_header;  /* X-Cairn-Route-Policy, or NULL */
    bool grounded;              /* carries store context (ask, cairn-rag) */
    const gw_chunk_ref *chunks;
    size_t n_chunks;
    const char *request_id;     /* for the audit log; NULL = generated */
} gw_request;

/* Why an answerer did not answer. */
typedef enum gw_fail {
    GW_FAIL_NONE = 0,
    GW_FAIL_ERROR,              /* local error / upstream transport error */
    GW_FAIL_TIMEOUT,
    GW_FAIL_OVERLOAD,           /* local queue full */
    GW_FAIL_TOO_LONG,           /* prompt longer than the local context */
    GW_FAIL_HTTP_429,
    GW_FAIL_HTTP_5XX,
    GW_FAIL_BUDGET,
    GW_FAIL_BREAKER,
    GW_FAIL_NO_KEY,
    GW_FAIL_BROKEN,             /* the stream broke after bytes reached the client */
} gw_fail;
const char *gw_fail_name(gw_fail f);

/* What the gateway knows about the route when the answer starts. */
typedef struct gw_route_info {
    const char *route;          /* "local", "upstream", "refused" */
    const char *upstream;       /* name or NULL */
    const char *policy;         /* policy name */
    const char *rule;           /* the rule that fired, e.g. "cloud-first: upstream timeout -> local" */
    bool fallback;
} gw_route_info;

/* Where the answer goes (the front end's response). begin() is called once,
 * before the first write, with the HTTP status and content type
 * ("application/json" or "text/event-stream"). Writes are whole SSE events
 * or the whole JSON body. A non-OK status from the sink stops the answer
 * (client gone). */
typedef struct gw_sink {
    void *ctx;
    cairn_status (*begin)(void *ctx, int http_status, const char *content_type, const gw_route_info *info);
    cairn_status (*write)(void *ctx, const char *p, size_t n);
} gw_sink;

/* The local answerer. It must not call sink->begin when it fails before
 * answering (so the gateway can fall over), and should return
 * GW_FAIL_TIMEOUT when it cannot start within deadline_ns (monotonic).
 * usage_in/out (optional) get token counts. */
typedef struct gw_local {
    void *ctx;
    gw_fail (*answer)(void *ctx, const gw_request *req, int64_t deadline_ns, const gw_route_info *info,
                      const gw_sink *sink, int64_t *usage_in, int64_t *usage_out);
} gw_local;

/* The outcome of one request (also in the audit record). */
typedef struct gw_result {
    char route[16];             /* local | upstream | refused */
    char upstream[64];
    char policy[16];
    char rule[256];
    bool fallback;
    int http_status;
    int64_t tokens_in, tokens_out, cost_nano;
    int64_t latency_ns;
    int redactions;
    int attempts;
} gw_result;

typedef struct gw gw;

/* The clock (UTC seconds) used for budget days; NULL = the real one. */
typedef int64_t (*gw_clock_fn)(void *ctx);

/* dir: where the audit log and budgets live (.cairn/gateway); created. The
 * config is moved into the handle (c is left empty). */
cairn_status gw_open(gw **out, gw_config *c, const char *dir);
void gw_close(gw *g);
void gw_set_clock(gw *g, gw_clock_fn fn, void *ctx);
/* A clock for tests: CAIRN_GATEWAY_NOW holds UTC seconds, or @FILE a file
 * holding them, read on every call (so a test moves time); unset = real. */
int64_t gw_env_clock(void *ctx);
const gw_config *gw_get_config(const gw *g);
/* True when any upstream is configured or a non-local policy is possible. */
bool gw_enabled(const gw *g);

/* Route and answer one request. Returns CAIRN_OK when an answer (possibly an
 * error answer: refusal, upstream error) was written to the sink; a failure
 * status only for an invalid request (nothing written; detail recorded) or
 * when the sink failed. */
cairn_status gw_handle(gw *g, const gw_request *req, const gw_local *local, const gw_sink *sink, gw_result *res);

/* A local answerer that is an HTTP server (cairn serve asking itself, with
 * a header that keeps the gateway out of the way): forwards the request to
 * u and maps what it answers to the local failures: 429 / 503 ->
 * GW_FAIL_OVERLOAD, 400 context_length_exceeded -> GW_FAIL_TOO_LONG, 404
 * (no such model) and 5xx -> GW_FAIL_ERROR, no first byte by the deadline ->
 * GW_FAIL_TIMEOUT; anything else (an answer, or another 4xx) goes to sink. */
gw_fail gw_forward_local(gw *g, gw_upstream_cfg *u, const gw_request *req, int64_t deadline_ns, const gw_route_info *info,
                         const gw_sink *sink, int64_t *usage_in, int64_t *usage_out);

/* Prometheus text for /metrics (appended). */
cairn_status gw_metrics(gw *g, cairn_buf *out);
/* Health and budgets as JSON ({"policy":..,"upstreams":[...]}) for
 * `cairn status` and /v1/gateway. Caller frees. */
cairn_status gw_status_json(gw *g, char **out);

/* Redact a string with the configured rules; *count += replacements.
 * Caller frees *out. Exposed for tests and `cairn ask`. */
cairn_status gw_redact(const gw_config *c, const char *s, size_t n, char **out, size_t *out_len, int *count);

/* Is this chunk private under the configuration? */
bool gw_chunk_private(const gw_config *c, const gw_chunk_ref *ch);

#endif
