/*
 * gw.c — routing one request: policy, privacy, budgets, breaker, retries,
 * redaction, the route field, the audit record and the counters
 * (contract in gateway.h, rules in docs/gateway.md).
 *
 * Cost on the proxied path: one cJSON parse + print of the request, one
 * parse + print of a non-streamed answer (to add the "cairn" field), one
 * write() of the audit line; no lock is held during any call.
 */
#include "gateway/gw_int.h"
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const double gw_lat_bounds[GW_LAT_BUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static const char *fail_names[] = {"none", "error", "timeout", "overload", "too_long", "http_429", "http_5xx",
                                   "budget", "breaker", "no_key", "stream_broken"};

const char *gw_fail_name(gw_fail f)
{
    return (unsigned)f < CAIRN_ARRAY_LEN(fail_names) ? fail_names[f] : "?";
}

static void lock(gw *g) { pthread_mutex_lock(&g->mu); }
static void unlock(gw *g) { pthread_mutex_unlock(&g->mu); }

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

cairn_status gw_open(gw **out, gw_config *c, const char *dir)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    gw *g = cairn_calloc(1, sizeof *g);
    if (!g)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    g->dir = cairn_strdup(dir);
    if (!g->dir) {
        cairn_free(g);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    g->cfg = *c;
    gw_config_init(c);
    pthread_mutex_init(&g->mu, NULL);
    g->day = -1;
    g->audit_fd = g->content_fd = -1;
    *out = g;
    return CAIRN_OK;
}

void gw_close(gw *g)
{
    if (!g)
        return;
    if (g->audit_fd >= 0)
        close(g->audit_fd);
    if (g->content_fd >= 0)
        close(g->content_fd);
    for (size_t i = 0; i < g->n_pool; i++)
        gw_conn_free(g->pool[i]);
    gw_config_free(&g->cfg);
    pthread_mutex_destroy(&g->mu);
    cairn_free(g->dir);
    cairn_free(g);
}

void gw_set_clock(gw *g, gw_clock_fn fn, void *ctx)
{
    lock(g);
    g->clock = fn;
    g->clock_ctx = ctx;
    unlock(g);
}

const gw_config *gw_get_config(const gw *g) { return &g->cfg; }

bool gw_enabled(const gw *g) { return g->cfg.n_up > 0; }

/* ---- connections ---- */

static gw_conn *conn_get(gw *g)
{
    gw_conn *c = NULL;
    lock(g);
    if (g->n_pool)
        c = g->pool[--g->n_pool];
    unlock(g);
    if (!c && gw_conn_new(&c) != CAIRN_OK)
        return NULL;
    return c;
}

static void conn_put(gw *g, gw_conn *c)
{
    lock(g);
    if (g->n_pool < GW_POOL) {
        g->pool[g->n_pool++] = c;
        c = NULL;
    }
    unlock(g);
    gw_conn_free(c);
}

/* ---- the decorating sink: route header, "cairn" field, [DONE] ---- */

typedef struct deco {
    gw *g;
    const gw_sink *inner;
    gw_route_info info;
    char rule[256];
    bool started, json, sse, held_done, inner_failed;
    int status;
    cairn_buf body;
    int64_t t0;
    const char *id;
    const char *model;
} deco;

static cairn_status deco_begin(void *ctx, int status, const char *ctype, const gw_route_info *info)
{
    deco *d = ctx;
    (void)info;     /* the gateway's own view of the route is authoritative */
    if (d->started)
        return CAIRN_OK;
    d->started = true;
    d->status = status;
    d->json = !strncmp(ctype, "application/json", 16);
    d->sse = !strncmp(ctype, "text/event-stream", 17);
    d->info.rule = d->rule;
    cairn_status st = d->inner->begin(d->inner->ctx, status, ctype, &d->info);
    if (st != CAIRN_OK)
        d->inner_failed = true;
    return st;
}

static cairn_status deco_write(void *ctx, const char *p, size_t n)
{
    deco *d = ctx;
    if (d->inner_failed)
        return CAIRN_ERR_INTERRUPTED;
    if (d->json)
        return cairn_buf_append(&d->body, p, n);
    if (d->sse && n >= 12 && !memcmp(p, "data: [DONE]", 12)) {
        d->held_done = true;
        return CAIRN_OK;
    }
    cairn_status st = d->inner->write(d->inner->ctx, p, n);
    if (st != CAIRN_OK)
        d->inner_failed = true;
    return st;
}

static cJSON *route_json(const deco *d)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "route", d->info.route);
    if (d->info.upstream)
        cJSON_AddStringToObject(o, "upstream", d->info.upstream);
    else
        cJSON_AddNullToObject(o, "upstream");
    cJSON_AddStringToObject(o, "policy", d->info.policy);
    cJSON_AddStringToObject(o, "rule", d->rule);
    cJSON_AddBoolToObject(o, "fallback", d->info.fallback);
    cJSON_AddNumberToObject(o, "ms", (double)((cairn_mono_ns() - d->t0) / 1000) / 1000.0);
    return o;
}

static cairn_status write_inner(deco *d, const char *p, size_t n)
{
    if (d->inner_failed)
        return CAIRN_ERR_INTERRUPTED;
    cairn_status st = d->inner->write(d->inner->ctx, p, n);
    if (st != CAIRN_OK)
        d->inner_failed = true;
    return st;
}

/* The answer is complete (done) or broke (error text): add the route. */
static cairn_status deco_finish(deco *d, bool done, const char *error)
{
    if (!d->started || d->inner_failed)
        return d->inner_failed ? CAIRN_ERR_INTERRUPTED : CAIRN_OK;
    if (d->json) {
        cJSON *j = cJSON_ParseWithLength(d->body.data ? d->body.data : "", d->body.len);
        cJSON *r = cJSON_IsObject(j) ? route_json(d) : NULL;
        if (r) {
            cJSON_AddItemToObject(j, "cairn", r);
            char *s = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            if (!s)
                return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            cairn_status st = write_inner(d, s, strlen(s));
            cJSON_free(s);
            return st;
        }
        cJSON_Delete(j);
        return write_inner(d, d->body.data ? d->body.data : "", d->body.len);
    }
    if (!d->sse)
        return CAIRN_OK;    /* another type (cairn ask's text): the route is in the result */
    cJSON *ev = cJSON_CreateObject();
    cJSON *r = route_json(d);
    if (!ev || !r) {
        cJSON_Delete(ev);
        cJSON_Delete(r);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    if (error) {
        cJSON *e = cJSON_AddObjectToObject(ev, "error");
        cJSON_AddStringToObject(e, "message", error);
        cJSON_AddStringToObject(e, "type", "upstream_error");
        cJSON_AddStringToObject(e, "code", "stream_broken");
    } else {
        /* a chunk without choices (like the usage chunk): clients skip it */
        cJSON_AddStringToObject(ev, "id", d->id);
        cJSON_AddStringToObject(ev, "object", "chat.completion.chunk");
        cJSON_AddNumberToObject(ev, "created", (double)(cairn_now_ns() / 1000000000));
        cJSON_AddStringToObject(ev, "model", d->model ? d->model : "");
        cJSON_AddArrayToObject(ev, "choices");
    }
    cJSON_AddItemToObject(ev, "cairn", r);
    char *s = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_status st = write_inner(d, "data: ", 6);
    if (st == CAIRN_OK)
        st = write_inner(d, s, strlen(s));
    if (st == CAIRN_OK)
        st = write_inner(d, "\n\n", 2);
    cJSON_free(s);
    if (st == CAIRN_OK && done && !error)
        st = write_inner(d, "data: [DONE]\n\n", 14);
    return st;
}

/* An answer the gateway writes itself (refusal, every route failed). */
static cairn_status deco_error(deco *d, int status, const char *code, const char *msg)
{
    d->json = true;
    if (!d->started) {
        d->started = true;
        d->status = status;
        d->info.rule = d->rule;
        if (d->inner->begin(d->inner->ctx, status, "application/json", &d->info) != CAIRN_OK) {
            d->inner_failed = true;
            return CAIRN_ERR_INTERRUPTED;
        }
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(j, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", "cairn_gateway");
    cJSON_AddStringToObject(e, "code", code);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_buf_reset(&d->body);
    cairn_status st = cairn_buf_puts(&d->body, s);
    cJSON_free(s);
    CAIRN_TRY(st);
    return deco_finish(d, true, NULL);
}

/* ---- the request ---- */

typedef struct plan {
    gw_policy policy;
    int up;                     /* upstream index or -1 */
    char source[96];            /* where the policy came from */
} plan;

static bool model_matches(const char *pattern, const char *model)
{
    return fnmatch(pattern, model, 0) == 0;
}

static int upstream_for_model(const gw_config *c, const char *model)
{
    if (model)
        for (size_t i = 0; i < c->n_up; i++)
            for (size_t j = 0; j < c->up[i].n_models; j++)
                if (!strcmp(c->up[i].models[j], model))
                    return (int)i;
    return c->default_upstream;
}

/* Text bytes a tokenizer can at most turn into tokens (byte-level BPE makes
 * at most one token per byte), plus 4 tokens of chat markup per message: an
 * upper bound of the prompt tokens, which budgets reserve before sending. */
static int64_t prompt_bound(const cJSON *j, int *n_messages)
{
    int64_t n = 0;
    if (cJSON_IsString(j))
        return (int64_t)strlen(j->valuestring);
    if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, j)
        {
            if (it->string && (!strcmp(it->string, "role") || !strcmp(it->string, "type")))
                continue;
            n += prompt_bound(it, NULL);
        }
    }
    if (n_messages && cJSON_IsArray(j))
        *n_messages = cJSON_GetArraySize(j);
    return n;
}

/* Redact every string value except structural ones (model, role, type). */
static cairn_status redact_tree(gw *g, cJSON *j, int *per_rule)
{
    cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        if (it->string && (!strcmp(it->string, "model") || !strcmp(it->string, "role") || !strcmp(it->string, "type")))
            continue;
        if (cJSON_IsString(it)) {
            char *out;
            size_t len;
            CAIRN_TRY(gw_redact_each(&g->cfg, it->valuestring, strlen(it->valuestring), &out, &len, per_rule));
            char *set = cJSON_SetValuestring(it, out);
            cairn_free(out);
            if (!set)
                return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        } else if (cJSON_IsArray(it) || cJSON_IsObject(it)) {
            CAIRN_TRY(redact_tree(g, it, per_rule));
        }
    }
    return CAIRN_OK;
}

typedef struct req_ctx {
    gw *g;
    const gw_request *req;
    cJSON *j;                   /* the parsed request (modified for upstream) */
    const char *model;          /* the requested model (model_buf; j's copy is replaced) */
    char model_buf[256];
    bool stream;
    int64_t max_out;            /* requested completion tokens, 0 = none */
    int redactions;
    int per_rule[GW_MAX_REDACT];
    bool redacted;
    int64_t bound;              /* prompt token bound of the redacted request */
    char *up_body;              /* the redacted request as sent */
    size_t up_len;
} req_ctx;

static cairn_status prepare_upstream(req_ctx *r)
{
    if (r->redacted)
        return CAIRN_OK;
    gw *g = r->g;
    /* cairn's own fields never leave */
    for (cJSON *it = r->j->child; it;) {
        cJSON *next = it->next;
        if (it->string && !strncmp(it->string, "cairn", 5))
            cJSON_Delete(cJSON_DetachItemViaPointer(r->j, it));
        it = next;
    }
    if (g->cfg.n_redact)
        CAIRN_TRY(redact_tree(g, r->j, r->per_rule));
    for (size_t i = 0; i < g->cfg.n_redact; i++)
        r->redactions += r->per_rule[i];
    int nm = 0;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(r->j, r->req->endpoint == GW_EP_CHAT ? "messages" : "prompt");
    r->bound = prompt_bound(msgs, &nm);
    if (r->req->endpoint == GW_EP_CHAT)
        r->bound += 4 * (int64_t)nm;
    r->redacted = true;
    return CAIRN_OK;
}

/* The body for upstream u with max_tokens = max_out. */
static cairn_status upstream_body(req_ctx *r, const gw_upstream_cfg *u, int64_t max_out)
{
    cJSON *j = r->j;
    const char *want = r->model;
    bool served = u->n_models == 0;
    for (size_t i = 0; want && i < u->n_models; i++)
        served |= !strcmp(u->models[i], want);
    if (!served || !want) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "model");
        cJSON_AddStringToObject(j, "model", u->n_models ? u->models[0] : "default");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(j, "max_tokens");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "max_completion_tokens");
    cJSON_AddNumberToObject(j, "max_tokens", (double)max_out);
    if (r->stream) {
        cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
        if (!cJSON_IsObject(so)) {
            cJSON_DeleteItemFromObjectCaseSensitive(j, "stream_options");
            so = cJSON_AddObjectToObject(j, "stream_options");
        }
        if (so) {
            cJSON_DeleteItemFromObjectCaseSensitive(so, "include_usage");
            cJSON_AddTrueToObject(so, "include_usage");
        }
    }
    cJSON_free(r->up_body);
    r->up_body = cJSON_PrintUnformatted(j);
    if (!r->up_body)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    r->up_len = strlen(r->up_body);
    return CAIRN_OK;
}

typedef struct attempt_out {
    gw_fail fail;
    char why[256];
    int64_t up_in, up_out, cost_nano;
    int64_t tok_in, tok_out;
    int attempts;
    bool answered;
} attempt_out;

/* Admission under the budget (g->mu held): reserve and clamp max_out. */
static gw_fail budget_admit(gw *g, int ui, int64_t bound, int64_t *max_out, char *why, size_t wn)
{
    const gw_upstream_cfg *u = &g->cfg.up[ui];
    gw_up_state *s = &g->up[ui];
    int64_t out = *max_out;
    if (u->budget_tokens) {
        int64_t rem = u->budget_tokens - s->used_tokens - s->resv_tokens;
        if (rem < bound + 1) {
            snprintf(why, wn, "upstream %s token budget spent (%lld of %lld today)", u->name,
                     (long long)(s->used_tokens + s->resv_tokens), (long long)u->budget_tokens);
            return GW_FAIL_BUDGET;
        }
        out = CAIRN_MIN(out, rem - bound);
    }
    if (u->budget_nano) {
        int64_t rem = u->budget_nano - s->used_nano - s->resv_nano;
        int64_t cin = bound * u->price_in_nano;
        if (rem < cin + u->price_out_nano || (u->price_out_nano == 0 && rem < cin)) {
            snprintf(why, wn, "upstream %s money budget spent (%.6f of %.6f today)", u->name,
                     (double)(s->used_nano + s->resv_nano) / 1e9, (double)u->budget_nano / 1e9);
            return GW_FAIL_BUDGET;
        }
        if (u->price_out_nano)
            out = CAIRN_MIN(out, (rem - cin) / u->price_out_nano);
    }
    if (out < 1) {
        snprintf(why, wn, "upstream %s budget leaves no room for an answer", u->name);
        return GW_FAIL_BUDGET;
    }
    *max_out = out;
    s->resv_tokens += bound + out;
    s->resv_nano += bound * u->price_in_nano + out * u->price_out_nano;
    return GW_FAIL_NONE;
}

static void note_latency(gw_up_state *s, double sec)
{
    s->lat_count++;
    s->lat_sum += sec;
    size_t b = 0;
    while (b < GW_LAT_BUCKETS && sec > gw_lat_bounds[b])
        b++;
    s->lat_bucket[b]++;
}

static void try_upstream(req_ctx *r, int ui, deco *d, attempt_out *ao)
{
    gw *g = r->g;
    const gw_upstream_cfg *u = &g->cfg.up[ui];
    gw_up_state *s = &g->up[ui];
    int64_t now_ns = cairn_mono_ns();
    if (prepare_upstream(r) != CAIRN_OK) {
        ao->fail = GW_FAIL_ERROR;
        snprintf(ao->why, sizeof ao->why, "preparing the request: %s", cairn_last_error());
        return;
    }
    int64_t max_out = r->max_out > 0 ? r->max_out : u->max_tokens;
    int64_t resv_t = 0, resv_n = 0;
    lock(g);
    gw_fail f = GW_FAIL_NONE;
    if (s->open_until_ns) {
        if (now_ns < s->open_until_ns || s->trial) {
            f = GW_FAIL_BREAKER;
            snprintf(ao->why, sizeof ao->why, "upstream %s circuit open (%d failures in a row)", u->name, s->consec_fail);
        } else {
            s->trial = true;    /* half-open: this request is the trial */
        }
    }
    if (f == GW_FAIL_NONE && gw_budget_sync(g, gw_clock_now(g)) != CAIRN_OK) {
        f = GW_FAIL_ERROR;
        snprintf(ao->why, sizeof ao->why, "%s", cairn_last_error());
    }
    if (f == GW_FAIL_NONE) {
        int64_t t0 = s->resv_tokens, n0 = s->resv_nano;
        f = budget_admit(g, ui, r->bound, &max_out, ao->why, sizeof ao->why);
        resv_t = s->resv_tokens - t0;
        resv_n = s->resv_nano - n0;
        if (f == GW_FAIL_BUDGET)
            s->budget_stops++;
    }
    unlock(g);
    if (f != GW_FAIL_NONE) {
        ao->fail = f;
        return;
    }
    gw_conn *conn = NULL;
    if (upstream_body(r, u, max_out) != CAIRN_OK || !(conn = conn_get(g))) {
        ao->fail = GW_FAIL_ERROR;
        snprintf(ao->why, sizeof ao->why, "out of memory");
    }
    d->info.route = "upstream";
    d->info.upstream = u->name;
    gw_sink sink = {d, deco_begin, deco_write};
    gw_call call;
    memset(&call, 0, sizeof call);
    call.up = u;
    call.ep = r->req->endpoint;
    call.body = r->up_body;
    call.body_len = r->up_len;
    call.stream = r->stream;
    call.sink = &sink;
    call.info = &d->info;
    int64_t backoff = u->backoff_ms;
    for (int k = 0; conn && k <= u->retries; k++) {
        int64_t a0 = cairn_mono_ns();
        gw_upstream_call(conn, &call);
        ao->attempts++;
        double sec = (double)(cairn_mono_ns() - a0) / 1e9;
        lock(g);
        s->requests++;
        note_latency(s, sec);
        if (call.fail == GW_FAIL_NONE) {
            s->ok++;
            s->last_ok_s = gw_clock_now(g);
        } else {
            s->errors[call.fail]++;
            snprintf(s->last_error, sizeof s->last_error, "%s: %.200s", gw_fail_name(call.fail), call.err);
            s->last_error_s = gw_clock_now(g);
        }
        unlock(g);
        bool again = !call.started && (call.fail == GW_FAIL_ERROR || call.fail == GW_FAIL_HTTP_5XX) && k < u->retries;
        if (!again)
            break;
        usleep((useconds_t)(backoff * 1000));
        backoff *= 2;
    }
    if (conn)
        conn_put(g, conn);
    if (conn) {
        ao->fail = call.fail;
        if (call.err[0])
            snprintf(ao->why, sizeof ao->why, "upstream %.40s: %.200s", u->name, call.err);
    }
    ao->answered = call.started;
    /* what the upstream consumed: its report, else our bound / the events */
    if (call.started) {
        ao->up_in = call.usage_seen ? call.usage_in : r->bound;
        ao->up_out = call.usage_seen ? call.usage_out : r->stream ? (int64_t)call.events : max_out;
        ao->cost_nano = ao->up_in * u->price_in_nano + ao->up_out * u->price_out_nano;
        ao->tok_in = ao->up_in;
        ao->tok_out = ao->up_out;
    }
    lock(g);
    s->resv_tokens -= resv_t;
    s->resv_nano -= resv_n;
    /* the breaker counts requests (after retries), not attempts; an answer
     * the upstream gave (even a 4xx) means it is up */
    bool failed = ao->fail != GW_FAIL_NONE && ao->fail != GW_FAIL_NO_KEY;
    if (failed) {
        s->consec_fail++;
        if (s->trial || s->consec_fail >= u->breaker_failures) {
            s->open_until_ns = cairn_mono_ns() + u->breaker_cooldown_ms * 1000000;
            s->opens++;
        }
    } else if (ao->fail == GW_FAIL_NONE) {
        s->consec_fail = 0;
        s->open_until_ns = 0;
    }
    s->trial = false;
    unlock(g);
}

static void try_local(req_ctx *r, const gw_local *local, deco *d, attempt_out *ao)
{
    d->info.route = "local";
    d->info.upstream = NULL;
    ao->attempts++;
    if (!local || !local->answer) {
        ao->fail = GW_FAIL_ERROR;
        snprintf(ao->why, sizeof ao->why, "no local model is loaded");
        return;
    }
    gw_sink sink = {d, deco_begin, deco_write};
    int64_t deadline = cairn_mono_ns() + r->g->cfg.local_timeout_ms * 1000000;
    int64_t in = 0, out = 0;
    d->info.rule = d->rule;
    gw_fail f = local->answer(local->ctx, r->req, deadline, &d->info, &sink, &in, &out);
    ao->answered = d->started;
    ao->fail = d->started ? (f == GW_FAIL_NONE ? GW_FAIL_NONE : GW_FAIL_BROKEN) : f;
    if (!d->started && f == GW_FAIL_NONE) {
        ao->fail = GW_FAIL_ERROR;   /* said yes but wrote nothing */
        snprintf(ao->why, sizeof ao->why, "local model gave no answer");
    } else if (f != GW_FAIL_NONE) {
        const char *e = cairn_last_error();
        snprintf(ao->why, sizeof ao->why, "local %s%s%s", gw_fail_name(f), *e ? ": " : "", e);
    }
    ao->tok_in = in;
    ao->tok_out = out;
}

static int fail_status(gw_fail f, bool upstream)
{
    switch (f) {
    case GW_FAIL_TIMEOUT: return 504;
    case GW_FAIL_OVERLOAD: return 503;
    case GW_FAIL_TOO_LONG: return 400;
    case GW_FAIL_HTTP_429: return 429;
    case GW_FAIL_BUDGET: return 429;
    case GW_FAIL_BREAKER: return 503;
    default: return upstream ? 502 : 500;
    }
}

static void append(char *dst, size_t cap, const char *fmt, ...) CAIRN_PRINTF(3, 4);
static void append(char *dst, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(dst);
    if (n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst + n, cap - n, fmt, ap);
    va_end(ap);
}

static void write_audit(gw *g, const gw_request *req, req_ctx *r, deco *d, gw_result *res, const attempt_out *up, int ui,
                        const char *error, const char *id)
{
    cJSON *a = cJSON_CreateObject();
    if (!a)
        return;
    lock(g);
    int64_t now = gw_clock_now(g);
    cJSON_AddNumberToObject(a, "ts", (double)now);
    cJSON_AddStringToObject(a, "id", id);
    cJSON_AddStringToObject(a, "endpoint", req->endpoint == GW_EP_CHAT ? "chat/completions" : "completions");
    if (r->model)
        cJSON_AddStringToObject(a, "model", r->model);
    cJSON_AddStringToObject(a, "policy", res->policy);
    cJSON_AddStringToObject(a, "route", res->route);
    cJSON_AddStringToObject(a, "rule", res->rule);
    if (ui >= 0 && up->attempts)
        cJSON_AddStringToObject(a, "upstream", g->cfg.up[ui].name);
    else
        cJSON_AddNullToObject(a, "upstream");
    cJSON_AddBoolToObject(a, "fallback", res->fallback);
    cJSON_AddNumberToObject(a, "status", res->http_status);
    cJSON_AddBoolToObject(a, "stream", r->stream);
    cJSON_AddBoolToObject(a, "grounded", req->grounded);
    cJSON_AddNumberToObject(a, "attempts", res->attempts);
    cJSON_AddNumberToObject(a, "redactions", res->redactions);
    cJSON_AddNumberToObject(a, "tokens_in", (double)res->tokens_in);
    cJSON_AddNumberToObject(a, "tokens_out", (double)res->tokens_out);
    cJSON_AddNumberToObject(a, "up_tokens_in", (double)up->up_in);
    cJSON_AddNumberToObject(a, "up_tokens_out", (double)up->up_out);
    cJSON_AddNumberToObject(a, "cost_nano", (double)up->cost_nano);
    cJSON_AddNumberToObject(a, "latency_ms", (double)(res->latency_ns / 1000) / 1000.0);
    if (error)
        cJSON_AddStringToObject(a, "error", error);
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    char *content = NULL;
    if (g->cfg.audit_content && r->redacted) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", id);
        cJSON_AddItemToObject(c, "request", cJSON_Duplicate(r->j, 1));
        content = cJSON_PrintUnformatted(c);
        cJSON_Delete(c);
    }
    if (s && gw_budget_sync(g, now) == CAIRN_OK) {
        size_t n = strlen(s);
        char *line = cairn_malloc(n + 2);
        size_t cn = content ? strlen(content) : 0;
        char *cline = content ? cairn_malloc(cn + 2) : NULL;
        if (cline) {
            memcpy(cline, content, cn);
            cline[cn] = '\n';
        }
        if (line) {
            memcpy(line, s, n);
            line[n] = '\n';
            if (gw_audit_append(g, line, n + 1, cline, cline ? cn + 1 : 0) != CAIRN_OK)
                CAIRN_WARN("gateway: %s", cairn_last_error());
            gw_budget_sync(g, now);     /* count our own line now */
        }
        cairn_free(line);
        cairn_free(cline);
    } else if (s) {
        CAIRN_WARN("gateway: %s", cairn_last_error());
    }
    unlock(g);
    cJSON_free(s);
    cJSON_free(content);
    (void)d;
}

cairn_status gw_handle(gw *g, const gw_request *req, const gw_local *local, const gw_sink *sink, gw_result *res)
{
    int64_t t0 = cairn_mono_ns();
    gw_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    if (req->body_len > GW_MAX_BODY_BYTES)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "request larger than %zu bytes", GW_MAX_BODY_BYTES);
    req_ctx r;
    memset(&r, 0, sizeof r);
    r.g = g;
    r.req = req;
    r.j = cJSON_ParseWithLength(req->body, req->body_len);
    if (!cJSON_IsObject(r.j)) {
        cJSON_Delete(r.j);
        return cairn_fail(CAIRN_ERR_INVALID, "the request body is not a JSON object");
    }
    cJSON *m = cJSON_GetObjectItemCaseSensitive(r.j, "model");
    if (cJSON_IsString(m)) {
        snprintf(r.model_buf, sizeof r.model_buf, "%s", m->valuestring);
        r.model = r.model_buf;
    }
    r.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.j, "stream"));
    cJSON *mt = cJSON_GetObjectItemCaseSensitive(r.j, "max_completion_tokens");
    if (!cJSON_IsNumber(mt))
        mt = cJSON_GetObjectItemCaseSensitive(r.j, "max_tokens");
    if (cJSON_IsNumber(mt) && mt->valuedouble >= 1 && mt->valuedouble < 1e9)
        r.max_out = (int64_t)mt->valuedouble;

    char id[64];
    lock(g);
    uint64_t seq = ++g->seq;
    unlock(g);
    if (req->request_id)
        snprintf(id, sizeof id, "%s", req->request_id);
    else
        snprintf(id, sizeof id, "gw-%llx-%llu", (unsigned long long)(cairn_now_ns() / 1000), (unsigned long long)seq);

    deco d;
    memset(&d, 0, sizeof d);
    d.g = g;
    d.inner = sink;
    d.t0 = t0;
    d.id = id;
    d.model = r.model;
    cairn_buf_init(&d.body, GW_MAX_BODY_BYTES);
    d.info.rule = d.rule;

    /* 1. the policy */
    plan p = {g->cfg.policy, g->cfg.default_upstream, "store default"};
    const char *ovr = req->policy_header && *req->policy_header ? req->policy_header : NULL;
    const char *ovr_src = "header X-Cairn-Route-Policy";
    cJSON *bf = cJSON_GetObjectItemCaseSensitive(r.j, "cairn_route");
    if (!ovr && cJSON_IsString(bf)) {
        ovr = bf->valuestring;
        ovr_src = "request field cairn_route";
    }
    const char *err_code = NULL;
    char err_msg[512] = "";
    int err_status = 0;
    if (ovr) {
        gw_policy op;
        if (!gw_policy_parse(ovr, &op)) {
            err_status = 400;
            err_code = "invalid_route";
            snprintf(err_msg, sizeof err_msg, "%s: '%.64s' is not local-only, local-first, cloud-first, cloud-only or model-map",
                     ovr_src, ovr);
        } else if (!g->cfg.allow_override && op != g->cfg.policy) {
            err_status = 403;
            err_code = "route_override_disabled";
            snprintf(err_msg, sizeof err_msg, "%s asks for %s, but [gateway] allow_override = false", ovr_src, gw_policy_name(op));
        } else {
            p.policy = op;
            snprintf(p.source, sizeof p.source, "%s", ovr_src);
        }
    }
    if (!err_code && p.policy == GW_POLICY_MODEL_MAP) {
        const gw_map_entry *hit = NULL;
        for (size_t i = 0; r.model && i < g->cfg.n_map && !hit; i++)
            if (model_matches(g->cfg.map[i].model, r.model))
                hit = &g->cfg.map[i];
        if (hit) {
            p.policy = hit->policy;
            p.up = hit->upstream >= 0 ? hit->upstream : upstream_for_model(&g->cfg, r.model);
            snprintf(p.source, sizeof p.source, "model-map %.40s", hit->model);
        } else {
            p.policy = GW_POLICY_LOCAL_ONLY;
            snprintf(p.source, sizeof p.source, "model-map: no entry for '%.40s'", r.model ? r.model : "");
        }
    } else if (!err_code && p.policy != GW_POLICY_LOCAL_ONLY) {
        p.up = upstream_for_model(&g->cfg, r.model);
    }
    if (!err_code && p.policy != GW_POLICY_LOCAL_ONLY && p.up < 0) {
        err_status = 400;
        err_code = "no_upstream";
        snprintf(err_msg, sizeof err_msg, "policy %s (%s) needs an upstream, and none is configured", gw_policy_name(p.policy),
                 p.source);
    }
    snprintf(d.rule, sizeof d.rule, "%s: %s", p.source, gw_policy_name(p.policy));
    d.info.policy = gw_policy_name(p.policy);

    /* 2. privacy: a grounded request with a private chunk stays home */
    bool refused_private = false;
    if (!err_code && req->grounded && p.policy != GW_POLICY_LOCAL_ONLY) {
        for (size_t i = 0; i < req->n_chunks; i++)
            if (gw_chunk_private(&g->cfg, &req->chunks[i])) {
                const gw_chunk_ref *c = &req->chunks[i];
                if (p.policy == GW_POLICY_CLOUD_ONLY || g->cfg.on_private == GW_PRIVATE_REFUSE) {
                    err_status = 403;
                    err_code = "private_context";
                    refused_private = true;
                    snprintf(err_msg, sizeof err_msg,
                             "refused: the context holds private chunk %lld of %.200s, and %s never sends private context upstream",
                             (long long)c->chunk_id, c->path ? c->path : "?",
                             p.policy == GW_POLICY_CLOUD_ONLY ? "a cloud-only route" : "[privacy] on_private = refuse");
                    append(d.rule, sizeof d.rule, "; privacy: chunk %lld is private -> refused", (long long)c->chunk_id);
                } else {
                    append(d.rule, sizeof d.rule, "; privacy: chunk %lld of %.80s is private -> local only",
                           (long long)c->chunk_id, c->path ? c->path : "?");
                    p.policy = GW_POLICY_LOCAL_ONLY;
                }
                break;
            }
    }

    /* 3. the routes, in order */
    attempt_out up_ao, lo_ao;
    memset(&up_ao, 0, sizeof up_ao);
    memset(&lo_ao, 0, sizeof lo_ao);
    bool refused = err_code != NULL || refused_private;
    const char *final_error = NULL;
    gw_fail last_fail = GW_FAIL_NONE;
    bool last_up = false;
    char last_why[256] = "";
    cairn_status st = CAIRN_OK;
    if (!err_code) {
        int steps[2], n = 0;        /* 0 = local, 1 = upstream */
        switch (p.policy) {
        case GW_POLICY_LOCAL_FIRST: steps[n++] = 0; steps[n++] = 1; break;
        case GW_POLICY_CLOUD_FIRST: steps[n++] = 1; steps[n++] = 0; break;
        case GW_POLICY_CLOUD_ONLY: steps[n++] = 1; break;
        default: steps[n++] = 0; break;
        }
        for (int i = 0; i < n; i++) {
            attempt_out *ao = steps[i] ? &up_ao : &lo_ao;
            if (steps[i])
                try_upstream(&r, p.up, &d, ao);
            else
                try_local(&r, local, &d, ao);
            last_fail = ao->fail;
            last_up = steps[i] == 1;
            snprintf(last_why, sizeof last_why, "%s", ao->why);
            if (ao->fail == GW_FAIL_NONE || ao->fail == GW_FAIL_BROKEN || d.started)
                break;
            if (i + 1 < n) {
                append(d.rule, sizeof d.rule, "; %s %s -> %s", steps[i] ? "upstream" : "local", gw_fail_name(ao->fail),
                       steps[i + 1] ? "upstream" : "local");
                d.info.fallback = true;
            }
        }
        if (last_fail == GW_FAIL_NONE && d.started) {
            st = deco_finish(&d, true, NULL);
        } else if (last_fail == GW_FAIL_BROKEN) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s broke the stream after part of the answer: %.300s", last_up ? "the upstream" : "the local model",
                     last_why);
            append(d.rule, sizeof d.rule, "; stream broken");
            final_error = last_why;
            st = deco_finish(&d, false, msg);
        } else if (!d.started) {
            err_status = fail_status(last_fail, last_up);
            err_code = gw_fail_name(last_fail);
            snprintf(err_msg, sizeof err_msg, "no route could answer (%.240s): %.240s", d.rule, last_why);
            if (last_fail == GW_FAIL_BUDGET)
                append(d.rule, sizeof d.rule, "; budget stop");
        }
    }
    if (err_code) {
        /* refused: a rule said no (privacy, override, no upstream, budget);
         * error: every route that was allowed failed */
        d.info.route = refused || last_fail == GW_FAIL_BUDGET ? "refused" : "error";
        d.info.upstream = NULL;
        final_error = err_msg;
        st = deco_error(&d, err_status, err_code, err_msg);
    }

    /* 4. result, audit, counters */
    snprintf(res->route, sizeof res->route, "%s", d.info.route ? d.info.route : "error");
    snprintf(res->upstream, sizeof res->upstream, "%s", d.info.upstream ? d.info.upstream : "");
    snprintf(res->policy, sizeof res->policy, "%s", d.info.policy);   /* as chosen, before privacy */
    snprintf(res->rule, sizeof res->rule, "%s", d.rule);
    res->fallback = d.info.fallback;
    res->http_status = d.status;
    const attempt_out *won = d.info.upstream ? &up_ao : &lo_ao;
    res->tokens_in = won->tok_in;
    res->tokens_out = won->tok_out;
    res->cost_nano = up_ao.cost_nano;
    res->redactions = r.redactions;
    res->attempts = up_ao.attempts + lo_ao.attempts;
    res->latency_ns = cairn_mono_ns() - t0;
    write_audit(g, req, &r, &d, res, &up_ao, up_ao.attempts ? p.up : -1, final_error, id);
    lock(g);
    int ri = !strcmp(res->route, "local") ? 0 : !strcmp(res->route, "upstream") ? 1 : !strcmp(res->route, "refused") ? 2 : 3;
    g->routes[ri]++;
    if (res->fallback)
        g->fallbacks++;
    if (refused_private)
        g->refusals_private++;
    else if (ri == 2 && last_fail == GW_FAIL_BUDGET)
        g->refusals_budget++;
    else if (ri == 2)
        g->refusals_other++;
    if (last_fail == GW_FAIL_BROKEN)
        g->broken++;
    for (size_t i = 0; i < g->cfg.n_redact; i++)
        g->redactions[i] += (uint64_t)r.per_rule[i];
    unlock(g);

    cairn_buf_free(&d.body);
    cJSON_free(r.up_body);
    cJSON_Delete(r.j);
    return st;
}

/* The test switch for the budget day (docs/gateway.md). */
int64_t gw_env_clock(void *ctx)
{
    (void)ctx;
    const char *v = getenv("CAIRN_GATEWAY_NOW");
    char buf[32] = "";
    if (v && *v == '@') {
        FILE *f = fopen(v + 1, "r");
        if (f) {
            if (!fgets(buf, sizeof buf, f))
                buf[0] = 0;
            fclose(f);
        }
        v = buf;
    }
    return v && *v ? strtoll(v, NULL, 10) : cairn_now_ns() / 1000000000;
}

/* ---- a local answerer over HTTP ---- */

typedef struct hold_sink {
    const gw_sink *inner;
    int status;
    char ctype[64];
    bool held, passed;
    cairn_buf body;
} hold_sink;

/* Answers (200) pass at once (streams stream); errors are held until the
 * whole body is known, so they can still become a fall-over. */
static cairn_status hold_begin(void *ctx, int status, const char *ctype, const gw_route_info *info)
{
    hold_sink *h = ctx;
    h->status = status;
    snprintf(h->ctype, sizeof h->ctype, "%s", ctype);
    if (status >= 300) {
        h->held = true;
        return CAIRN_OK;
    }
    h->passed = true;
    return h->inner->begin(h->inner->ctx, status, ctype, info);
}

static cairn_status hold_write(void *ctx, const char *p, size_t n)
{
    hold_sink *h = ctx;
    if (h->held)
        return cairn_buf_append(&h->body, p, n);
    return h->inner->write(h->inner->ctx, p, n);
}

gw_fail gw_forward_local(gw *g, gw_upstream_cfg *u, const gw_request *req, int64_t deadline_ns, const gw_route_info *info,
                         const gw_sink *sink, int64_t *usage_in, int64_t *usage_out)
{
    int64_t left = (deadline_ns - cairn_mono_ns()) / 1000000;
    if (left < 1) {
        cairn_fail(CAIRN_ERR_INTERRUPTED, "no time left for the local model");
        return GW_FAIL_TIMEOUT;
    }
    u->timeout_ms = left;
    if (!u->idle_ms)
        u->idle_ms = left;
    hold_sink h = {.inner = sink};
    cairn_buf_init(&h.body, GW_MAX_BODY_BYTES);
    gw_sink hs = {&h, hold_begin, hold_write};
    gw_call call;
    memset(&call, 0, sizeof call);
    call.up = u;
    call.ep = req->endpoint;
    call.body = req->body;
    call.body_len = req->body_len;
    call.stream = strstr(req->body, "\"stream\":true") != NULL;
    call.sink = &hs;
    call.info = info;
    gw_conn *conn = conn_get(g);
    if (!conn) {
        cairn_buf_free(&h.body);
        cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        return GW_FAIL_ERROR;
    }
    /* call.stream only sets the Accept header: whether the answer is a
     * stream is what its content type says */
    gw_upstream_call(conn, &call);
    conn_put(g, conn);
    gw_fail f = call.fail;
    if (f == GW_FAIL_NONE && h.held) {
        const char *b = h.body.data ? h.body.data : "";
        if (h.status == 503 || h.status == 429)
            f = GW_FAIL_OVERLOAD;
        else if (h.status == 400 && strstr(b, "context_length_exceeded"))
            f = GW_FAIL_TOO_LONG;
        else if (h.status == 404)
            f = GW_FAIL_ERROR;
        else if (sink->begin(sink->ctx, h.status, h.ctype, info) != CAIRN_OK ||
                 sink->write(sink->ctx, b, h.body.len) != CAIRN_OK)
            f = GW_FAIL_NONE;   /* the client left; nothing more to do */
        if (f != GW_FAIL_NONE)
            cairn_fail(CAIRN_ERR_IO, "local HTTP %d: %.200s", h.status, b);
    } else if (f == GW_FAIL_HTTP_429) {
        f = GW_FAIL_OVERLOAD;
        cairn_fail(CAIRN_ERR_BUSY, "local queue full (HTTP 429)");
    } else if (f == GW_FAIL_HTTP_5XX || f == GW_FAIL_NO_KEY) {
        f = GW_FAIL_ERROR;
        cairn_fail(CAIRN_ERR_IO, "local: %s", call.err);
    } else if (f != GW_FAIL_NONE) {
        cairn_fail(CAIRN_ERR_IO, "local: %s", call.err);
    }
    if (call.done_seen && f == GW_FAIL_NONE)
        sink->write(sink->ctx, "data: [DONE]\n\n", 14);
    if (usage_in)
        *usage_in = call.usage_in;
    if (usage_out)
        *usage_out = call.usage_out;
    cairn_buf_free(&h.body);
    return f;
}

/* ---- /metrics and status ---- */

cairn_status gw_metrics(gw *g, cairn_buf *o)
{
    static const char *rn[] = {"local", "upstream", "refused", "error"};
    cairn_status st = CAIRN_OK;
    lock(g);
    if (g->cfg.n_up)
        gw_budget_sync(g, gw_clock_now(g));
#define P(...) do { if (st == CAIRN_OK) st = cairn_buf_printf(o, __VA_ARGS__); } while (0)
    P("# TYPE cairn_gateway_requests_total counter\n");
    for (int i = 0; i < 4; i++)
        P("cairn_gateway_requests_total{route=\"%s\"} %llu\n", rn[i], (unsigned long long)g->routes[i]);
    P("# TYPE cairn_gateway_fallbacks_total counter\ncairn_gateway_fallbacks_total %llu\n", (unsigned long long)g->fallbacks);
    P("# TYPE cairn_gateway_refusals_total counter\n");
    P("cairn_gateway_refusals_total{reason=\"private\"} %llu\n", (unsigned long long)g->refusals_private);
    P("cairn_gateway_refusals_total{reason=\"budget\"} %llu\n", (unsigned long long)g->refusals_budget);
    P("cairn_gateway_refusals_total{reason=\"other\"} %llu\n", (unsigned long long)g->refusals_other);
    P("# TYPE cairn_gateway_streams_broken_total counter\ncairn_gateway_streams_broken_total %llu\n", (unsigned long long)g->broken);
    P("# TYPE cairn_gateway_redactions_total counter\n");
    for (size_t i = 0; i < g->cfg.n_redact; i++)
        P("cairn_gateway_redactions_total{rule=\"%s\"} %llu\n", g->cfg.redact[i].name, (unsigned long long)g->redactions[i]);
    P("# TYPE cairn_gateway_budget_stops_total counter\n");
    for (size_t i = 0; i < g->cfg.n_up; i++)
        P("cairn_gateway_budget_stops_total{upstream=\"%s\"} %llu\n", g->cfg.up[i].name, (unsigned long long)g->up[i].budget_stops);
    P("# TYPE cairn_gateway_upstream_requests_total counter\n");
    for (size_t i = 0; i < g->cfg.n_up; i++)
        P("cairn_gateway_upstream_requests_total{upstream=\"%s\"} %llu\n", g->cfg.up[i].name, (unsigned long long)g->up[i].requests);
    P("# TYPE cairn_gateway_upstream_errors_total counter\n");
    for (size_t i = 0; i < g->cfg.n_up; i++)
        for (int f = 1; f < GW_FAIL_COUNT; f++)
            if (g->up[i].errors[f])
                P("cairn_gateway_upstream_errors_total{upstream=\"%s\",kind=\"%s\"} %llu\n", g->cfg.up[i].name, gw_fail_name((gw_fail)f),
                  (unsigned long long)g->up[i].errors[f]);
    P("# TYPE cairn_gateway_upstream_up gauge\n");
    int64_t now = cairn_mono_ns();
    for (size_t i = 0; i < g->cfg.n_up; i++)
        P("cairn_gateway_upstream_up{upstream=\"%s\"} %d\n", g->cfg.up[i].name,
          g->up[i].open_until_ns && now < g->up[i].open_until_ns ? 0 : 1);
    P("# TYPE cairn_gateway_budget_tokens_used gauge\n");
    for (size_t i = 0; i < g->cfg.n_up; i++)
        P("cairn_gateway_budget_tokens_used{upstream=\"%s\"} %lld\n", g->cfg.up[i].name, (long long)g->up[i].used_tokens);
    P("# TYPE cairn_gateway_budget_money_used gauge\n");
    for (size_t i = 0; i < g->cfg.n_up; i++)
        P("cairn_gateway_budget_money_used{upstream=\"%s\"} %.9f\n", g->cfg.up[i].name, (double)g->up[i].used_nano / 1e9);
    P("# TYPE cairn_gateway_upstream_latency_seconds histogram\n");
    for (size_t i = 0; i < g->cfg.n_up; i++) {
        const gw_up_state *s = &g->up[i];
        uint64_t cum = 0;
        for (int b = 0; b < GW_LAT_BUCKETS; b++) {
            cum += s->lat_bucket[b];
            P("cairn_gateway_upstream_latency_seconds_bucket{upstream=\"%s\",le=\"%g\"} %llu\n", g->cfg.up[i].name, gw_lat_bounds[b],
              (unsigned long long)cum);
        }
        P("cairn_gateway_upstream_latency_seconds_bucket{upstream=\"%s\",le=\"+Inf\"} %llu\n", g->cfg.up[i].name,
          (unsigned long long)s->lat_count);
        P("cairn_gateway_upstream_latency_seconds_sum{upstream=\"%s\"} %.6f\n", g->cfg.up[i].name, s->lat_sum);
        P("cairn_gateway_upstream_latency_seconds_count{upstream=\"%s\"} %llu\n", g->cfg.up[i].name, (unsigned long long)s->lat_count);
    }
#undef P
    unlock(g);
    return st;
}

cairn_status gw_status_json(gw *g, char **out)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    lock(g);
    if (g->cfg.n_up)
        gw_budget_sync(g, gw_clock_now(g));
    cJSON_AddStringToObject(j, "policy", gw_policy_name(g->cfg.policy));
    cJSON *ups = cJSON_AddArrayToObject(j, "upstreams");
    int64_t now = cairn_mono_ns();
    for (size_t i = 0; i < g->cfg.n_up; i++) {
        const gw_upstream_cfg *u = &g->cfg.up[i];
        const gw_up_state *s = &g->up[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(ups, o);
        cJSON_AddStringToObject(o, "name", u->name);
        cJSON_AddStringToObject(o, "url", u->base_url);
        bool open = s->open_until_ns && now < s->open_until_ns;
        cJSON_AddStringToObject(o, "state", open ? "open" : s->open_until_ns ? "half-open" : "up");
        cJSON_AddNumberToObject(o, "consecutive_failures", s->consec_fail);
        cJSON_AddNumberToObject(o, "requests", (double)s->requests);
        cJSON_AddNumberToObject(o, "ok", (double)s->ok);
        uint64_t errs = 0;
        for (int f = 1; f < GW_FAIL_COUNT; f++)
            errs += s->errors[f];
        cJSON_AddNumberToObject(o, "errors", (double)errs);
        cJSON_AddStringToObject(o, "last_error", s->last_error);
        cJSON_AddNumberToObject(o, "latency_ms_mean", s->lat_count ? s->lat_sum * 1000 / (double)s->lat_count : 0);
        cJSON_AddNumberToObject(o, "tokens_used_today", (double)s->used_tokens);
        cJSON_AddNumberToObject(o, "tokens_budget", (double)u->budget_tokens);
        cJSON_AddNumberToObject(o, "money_used_today", (double)s->used_nano / 1e9);
        cJSON_AddNumberToObject(o, "money_budget", (double)u->budget_nano / 1e9);
        cJSON_AddNumberToObject(o, "budget_stops", (double)s->budget_stops);
        cJSON_AddStringToObject(o, "key_env", u->key_env ? u->key_env : "");
        cJSON_AddBoolToObject(o, "key_set", !u->key_env || (getenv(u->key_env) && *getenv(u->key_env)));
    }
    unlock(g);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    *out = cairn_strdup(s);
    cJSON_free(s);
    return *out ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
}
