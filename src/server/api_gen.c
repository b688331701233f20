/*
 * api_gen.c — generation endpoints: POST /v1/chat/completions and
 * POST /v1/completions (OpenAI shapes, streaming with server-sent events),
 * GET /v1/models, and srv_route_chat, the one place that decides who
 * answers a generation request.
 *
 * A request is parsed and checked completely before it is queued: unknown
 * fields are ignored (as OpenAI's clients add new ones), known fields of
 * the wrong type or range are a 400 naming the field. The prompt is
 * tokenized here, in the connection's thread; a prompt that does not fit
 * the context is a 400 context_length_exceeded — never cut.
 *
 * Streams (SSE): one `data: {chunk}\n\n` event per piece of final text, a
 * last chunk with finish_reason, a usage chunk when
 * stream_options.include_usage, then `data: [DONE]`. The stream callback
 * blocks in the connection's thread on the request's eventfd and the
 * client's socket: a client that hangs up cancels its request at once.
 */
#include "server/server_int.h"
#include "server/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MESSAGES 1024
#define WAIT_MS 1000

srv_route srv_route_chat(cairn_server *S, const char *model, const cJSON *req)
{
    (void)req;
    if (S->eng && model && !strcmp(model, engine_model_id(S->eng)))
        return (srv_route){SRV_ROUTE_LOCAL, engine_model_id(S->eng)};
    if (S->eng && S->stores && model && !strcmp(model, "cairn-rag"))
        return (srv_route){SRV_ROUTE_RAG, "cairn-rag"};
    return (srv_route){SRV_ROUTE_NONE, NULL};
}

enum MHD_Result api_models(http_req *r)
{
    cairn_server *S = r->S;
    cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "data");
    cJSON_AddStringToObject(j, "object", "list");
    const char *ids[4] = {0};
    int n = 0;
    if (S->eng) {
        ids[n++] = engine_model_id(S->eng);
        if (S->stores)
            ids[n++] = "cairn-rag";
    }
    if (S->emb)
        ids[n++] = S->embed_id;
    if (S->rerank)
        ids[n++] = S->rerank_id;
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", ids[i]);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "cairn");
        cJSON_AddItemToArray(a, m);
    }
    return reply_json(r, 200, j);
}

/* ---- request parsing ---- */

typedef struct gen_req {
    bool chat, stream, include_usage;
    bool ask;                     /* POST /v1/ask: {answer, sources} instead of a chat.completion */
    double retrieval_ms;
    const char *model;
    srv_route route;
    int max_tokens;               /* 0: not given */
    engine_params ep;
    const char *stop[ENGINE_MAX_STOP];
    int32_t *ids;
} gen_req;

/* Optional number field in [lo, hi]; false after queuing a 400. */
static bool num_field(http_req *r, const cJSON *j, const char *name, double lo, double hi, double *out, bool *given,
                      enum MHD_Result *ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (given)
        *given = false;
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) {
        *ret = reply_error(r, 400, "invalid_value", name, "'%s' must be a number in [%g, %g]", name, lo, hi);
        return false;
    }
    *out = v->valuedouble;
    if (given)
        *given = true;
    return true;
}

/* The text of a message's content: a string, or an array of {type:"text", text} parts. */
static bool content_text(const cJSON *c, cairn_buf *b)
{
    if (cJSON_IsString(c))
        return cairn_buf_puts(b, c->valuestring) == CAIRN_OK;
    if (cJSON_IsNull(c))
        return true;
    if (!cJSON_IsArray(c))
        return false;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type"), *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "text") || !cJSON_IsString(x))
            return false;
        if (cairn_buf_puts(b, x->valuestring) != CAIRN_OK)
            return false;
    }
    return true;
}

/* Parse the fields both endpoints share, then the prompt; tokenize.
 * false after queuing an error. */
static bool parse_gen(http_req *r, const cJSON *j, gen_req *g, enum MHD_Result *ret)
{
    cairn_server *S = r->S;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (g->ask) {                                  /* /v1/ask: always grounded */
        g->model = "cairn-rag";
    } else if (!cJSON_IsString(v)) {
        *ret = reply_error(r, 400, "missing_model", "model", "'model' is required (GET /v1/models lists them)");
        return false;
    } else {
        g->model = v->valuestring;
    }
    g->route = srv_route_chat(S, g->model, j);
    if (g->route.kind == SRV_ROUTE_NONE) {
        *ret = reply_error(r, 404, "model_not_found", "model", "the model '%s' does not exist", g->model);
        return false;
    }
    if (!g->chat && g->route.kind == SRV_ROUTE_RAG) {
        *ret = reply_error(r, 400, "invalid_value", "model", "'cairn-rag' answers chat completions only");
        return false;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "stream");
    if (v && !cJSON_IsNull(v) && !cJSON_IsBool(v)) {
        *ret = reply_error(r, 400, "invalid_type", "stream", "'stream' must be a boolean");
        return false;
    }
    g->stream = cJSON_IsTrue(v);
    v = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
    if (v && !cJSON_IsNull(v)) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(v, "include_usage");
        if (!cJSON_IsObject(v) || (u && !cJSON_IsBool(u))) {
            *ret = reply_error(r, 400, "invalid_type", "stream_options", "'stream_options.include_usage' must be a boolean");
            return false;
        }
        g->include_usage = cJSON_IsTrue(u);
    }
    int ctx = engine_n_ctx(S->eng);
    int cap = S->o.max_tokens > 0 ? CAIRN_MIN(S->o.max_tokens, ctx) : ctx;
    double d, temp = 1.0, top_p = 1.0, seed = 0, nn = 1, pres = 0, freq = 0;
    bool given, seed_given;
    const char *mt = g->chat && cJSON_GetObjectItemCaseSensitive(j, "max_completion_tokens") ? "max_completion_tokens"
                                                                                               : "max_tokens";
    if (!num_field(r, j, mt, 1, cap, &d, &given, ret) || !num_field(r, j, "temperature", 0, 2, &temp, NULL, ret) ||
        !num_field(r, j, "top_p", 0, 1, &top_p, NULL, ret) ||
        !num_field(r, j, "seed", -9.2e18, 9.2e18, &seed, &seed_given, ret) ||
        !num_field(r, j, "n", 1, 1, &nn, NULL, ret) ||
        !num_field(r, j, "presence_penalty", -2, 2, &pres, NULL, ret) ||
        !num_field(r, j, "frequency_penalty", 0, 0, &freq, NULL, ret))
        return false;
    if (given) {
        if (d != floor(d)) {
            *ret = reply_error(r, 400, "invalid_value", mt, "'%s' must be an integer", mt);
            return false;
        }
        g->max_tokens = (int)d;
    }
    sampler_params sp = sampler_params_default();
    sp.temp = (float)temp;
    sp.top_p = top_p <= 0 ? 1e-6f : (float)top_p;   /* top_p 0: the most likely token only */
    sp.top_k = 0;
    sp.min_p = 0;
    sp.presence_penalty = (float)pres;
    sp.penalty_last_n = pres != 0 ? 64 : 0;
    sp.seed = seed_given ? (uint64_t)(int64_t)seed : (uint64_t)cairn_now_ns() ^ atomic_fetch_add(&S->next_id, 1);
    g->ep.sp = sp;
    v = cJSON_GetObjectItemCaseSensitive(j, "echo");
    if (cJSON_IsTrue(v)) {
        *ret = reply_error(r, 400, "unsupported", "echo", "'echo' is not supported");
        return false;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "stop");
    if (cJSON_IsString(v)) {
        g->stop[g->ep.n_stop++] = v->valuestring;
    } else if (cJSON_IsArray(v)) {
        const cJSON *s;
        cJSON_ArrayForEach(s, v) {
            if (!cJSON_IsString(s) || g->ep.n_stop == ENGINE_MAX_STOP || !*s->valuestring ||
                strlen(s->valuestring) > ENGINE_MAX_STOP_BYTES) {
                *ret = reply_error(r, 400, "invalid_value", "stop", "'stop': at most %d non-empty strings of at most %d bytes",
                                   ENGINE_MAX_STOP, ENGINE_MAX_STOP_BYTES);
                return false;
            }
            g->stop[g->ep.n_stop++] = s->valuestring;
        }
    } else if (v && !cJSON_IsNull(v)) {
        *ret = reply_error(r, 400, "invalid_type", "stop", "'stop' must be a string or an array of strings");
        return false;
    }
    if (g->ep.n_stop == 1 && (!*g->stop[0] || strlen(g->stop[0]) > ENGINE_MAX_STOP_BYTES)) {
        *ret = reply_error(r, 400, "invalid_value", "stop", "'stop' strings must be 1..%d bytes", ENGINE_MAX_STOP_BYTES);
        return false;
    }
    g->ep.stop = g->stop;
    return true;
}

/* Tokenize the prompt and check it against the context. */
static bool tokenize_gen(http_req *r, gen_req *g, const chat_msg *msgs, int n_msgs, const char *text,
                         enum MHD_Result *ret)
{
    cairn_server *S = r->S;
    int ctx = engine_n_ctx(S->eng);
    int max_prompt = S->o.max_prompt_tokens > 0 ? CAIRN_MIN(S->o.max_prompt_tokens, ctx - 1) : ctx - 1;
    int n = 0;
    cairn_status st = msgs ? engine_tokenize_chat(S->eng, msgs, n_msgs, max_prompt, &g->ids, &n)
                           : engine_tokenize_text(S->eng, text, strlen(text), max_prompt, &g->ids, &n);
    if (st == CAIRN_ERR_TOO_LARGE) {
        *ret = reply_error(r, 400, "context_length_exceeded", g->chat ? "messages" : "prompt",
                           "the prompt is %d tokens; at most %d fit (this model's context is %d tokens per request)",
                           n, max_prompt, ctx);
        return false;
    }
    if (st != CAIRN_OK) {
        *ret = reply_status(r, st, "the prompt");
        return false;
    }
    if (n == 0) {
        *ret = reply_error(r, 400, "invalid_value", "prompt", "the prompt is empty");
        return false;
    }
    if (g->max_tokens && n + g->max_tokens > ctx) {
        *ret = reply_error(r, 400, "context_length_exceeded", "max_tokens",
                           "this model's context is %d tokens, but %d were requested (%d in the prompt, %d to generate)",
                           ctx, n + g->max_tokens, n, g->max_tokens);
        return false;
    }
    int cap = S->o.max_tokens > 0 ? S->o.max_tokens : ctx;
    g->ep.prompt = g->ids;
    g->ep.n_prompt = n;
    g->ep.max_tokens = g->max_tokens ? g->max_tokens : CAIRN_MIN(cap, ctx - n);
    return true;
}

/* ---- responses ---- */

static const char *finish_name(engine_finish f)
{
    return f == ENGINE_LENGTH ? "length" : "stop";
}

static cJSON *usage_json(const engine_poll *p)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", p->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", p->n_completion);
    cJSON_AddNumberToObject(u, "total_tokens", p->n_prompt + p->n_completion);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", p->n_cached);
    return u;
}

/* The envelope every response and chunk shares. */
static cJSON *envelope(const char *id, const char *object, int64_t created, const char *model)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", id);
    cJSON_AddStringToObject(j, "object", object);
    cJSON_AddNumberToObject(j, "created", (double)created);
    cJSON_AddStringToObject(j, "model", model);
    cJSON_AddStringToObject(j, "system_fingerprint", "cairn-" CAIRN_VERSION);
    return j;
}

/* A choice: chat message/delta or completion text. */
static cJSON *choice_json(bool chat, bool delta, const char *text, bool first, const char *finish)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        cJSON *m = cJSON_AddObjectToObject(c, delta ? "delta" : "message");
        if (!delta || first)
            cJSON_AddStringToObject(m, "role", "assistant");
        if (text)
            cJSON_AddStringToObject(m, "content", text);
    } else {
        cJSON_AddStringToObject(c, "text", text ? text : "");
    }
    cJSON_AddNullToObject(c, "logprobs");
    if (finish)
        cJSON_AddStringToObject(c, "finish_reason", finish);
    else
        cJSON_AddNullToObject(c, "finish_reason");
    return c;
}

/* Extra response fields of a grounded answer (sources); NULL otherwise. */
typedef struct gen_extra { cJSON *sources; } gen_extra;

typedef struct stream_ctx {
    cairn_server *S;
    engine_req *er;
    int sock;
    bool chat, include_usage, first, ended, failed;
    char id[48], model[256];
    int64_t created;
    cairn_buf out;            /* SSE bytes not yet handed to MHD */
    size_t off;
    cairn_buf text;
    cJSON *sources;           /* sent in the last chunk (cairn-rag) */
    int64_t t_submit;
    int drop_after, events;   /* test switch (srv_gateway.c): cut after drop_after events */
} stream_ctx;

static void sse_json(stream_ctx *x, cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) {
        x->failed = true;
        return;
    }
    if (x->drop_after && ++x->events > x->drop_after) {
        x->failed = true;       /* the test switch: the connection drops mid-stream */
        cJSON_free(s);
        return;
    }
    if (cairn_buf_puts(&x->out, "data: ") != CAIRN_OK || cairn_buf_puts(&x->out, s) != CAIRN_OK ||
        cairn_buf_puts(&x->out, "\n\n") != CAIRN_OK)
        x->failed = true;
    cJSON_free(s);
}

static cJSON *chunk(stream_ctx *x, const char *text, const char *finish)
{
    cJSON *j = envelope(x->id, x->chat ? "chat.completion.chunk" : "text_completion", x->created, x->model);
    cJSON *a = cJSON_AddArrayToObject(j, "choices");
    cJSON_AddItemToArray(a, choice_json(x->chat, true, text, x->first, finish));
    x->first = false;
    if (x->include_usage)
        cJSON_AddNullToObject(j, "usage");
    return j;
}

/* Turn engine news into SSE events; returns false when the stream is over. */
static void stream_pump(stream_ctx *x)
{
    engine_poll p;
    cairn_buf_reset(&x->text);
    if (engine_req_take(x->er, &x->text, &p) != CAIRN_OK) {
        x->failed = true;
        return;
    }
    if (x->text.len)
        sse_json(x, chunk(x, x->text.data, NULL));
    if (!p.done)
        return;
    if (p.finish == ENGINE_FAILED || p.finish == ENGINE_CANCELLED) {
        cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
        cJSON_AddStringToObject(e, "message", p.finish == ENGINE_FAILED ? p.error : "cancelled");
        cJSON_AddStringToObject(e, "type", "server_error");
        cJSON_AddNullToObject(e, "param");
        cJSON_AddNullToObject(e, "code");
        sse_json(x, j);
    } else {
        cJSON *j = chunk(x, x->chat ? NULL : "", finish_name(p.finish));
        if (x->sources) {
            cJSON_AddItemToObject(j, "sources", x->sources);
            x->sources = NULL;
        }
        sse_json(x, j);
        if (x->include_usage) {
            cJSON *u = envelope(x->id, x->chat ? "chat.completion.chunk" : "text_completion", x->created, x->model);
            cJSON_AddArrayToObject(u, "choices");
            cJSON_AddItemToObject(u, "usage", usage_json(&p));
            sse_json(x, u);
        }
        metrics_tokens(x->S->metrics, (uint64_t)p.n_prompt, (uint64_t)p.n_completion, (uint64_t)p.n_cached, true);
    }
    if (cairn_buf_puts(&x->out, "data: [DONE]\n\n") != CAIRN_OK)
        x->failed = true;
    x->ended = true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_ctx *x = cls;
    for (;;) {
        if (x->off < x->out.len) {
            size_t n = CAIRN_MIN(max, x->out.len - x->off);
            memcpy(buf, x->out.data + x->off, n);
            x->off += n;
            if (x->off == x->out.len) {
                cairn_buf_reset(&x->out);
                x->off = 0;
            }
            return (ssize_t)n;
        }
        if (x->failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (x->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        stream_pump(x);
        if (x->out.len || x->ended || x->failed)
            continue;
        if (!wait_or_hangup(engine_req_fd(x->er), x->sock, WAIT_MS)) {
            engine_req_cancel(x->er);       /* the client left: its slot is freed before the next step */
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_free(void *cls)
{
    stream_ctx *x = cls;
    engine_req_cancel(x->er);                /* no-op once done */
    engine_req_release(x->er);
    cairn_buf_free(&x->out);
    cairn_buf_free(&x->text);
    cJSON_Delete(x->sources);
    cairn_free(x);
}

/* Run a parsed request: stream it, or wait for it and answer once. Takes
 * `sources` (may be NULL). */
enum MHD_Result gen_run(http_req *r, gen_req *g, cJSON *sources);

enum MHD_Result gen_run(http_req *r, gen_req *g, cJSON *sources)
{
    cairn_server *S = r->S;
    engine_req *er = NULL;
    cairn_status st = engine_submit(S->eng, &g->ep, &er);
    if (st == CAIRN_ERR_BUSY) {
        cJSON_Delete(sources);
        return reply_error(r, 429, "queue_full", NULL, "%s; retry later", cairn_last_error());
    }
    if (st != CAIRN_OK) {
        cJSON_Delete(sources);
        return st == CAIRN_ERR_TOO_LARGE ? reply_error(r, 400, "context_length_exceeded", NULL, "%s", cairn_last_error())
                                         : reply_status(r, st, "generation");
    }
    char id[48];
    srv_new_id(S, g->chat ? "chatcmpl" : "cmpl", id, sizeof id);
    int64_t created = (int64_t)time(NULL);
    int sock = req_socket(r);
    if (g->stream) {
        stream_ctx *x = cairn_calloc(1, sizeof *x);
        if (!x) {
            engine_req_cancel(er);
            engine_req_release(er);
            cJSON_Delete(sources);
            return reply_error(r, 500, NULL, NULL, "out of memory");
        }
        *x = (stream_ctx){.S = S, .er = er, .sock = sock, .chat = g->chat, .include_usage = g->include_usage,
                          .first = true, .created = created, .sources = sources};
        snprintf(x->id, sizeof x->id, "%s", id);
        snprintf(x->model, sizeof x->model, "%s", g->model);
        x->drop_after = r->drop_after;
        cairn_buf_init(&x->out, 0);
        cairn_buf_init(&x->text, 0);
        if (g->chat)                            /* the role arrives first, as OpenAI sends it */
            sse_json(x, chunk(x, "", NULL));
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, x, stream_free);
        if (!resp) {
            stream_free(x);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        return reply_queue(r, 200, resp);
    }
    cairn_buf text;
    cairn_buf_init(&text, 0);
    engine_poll p;
    for (;;) {
        if (engine_req_take(er, &text, &p) != CAIRN_OK) {
            engine_req_cancel(er);
            engine_req_release(er);
            cairn_buf_free(&text);
            cJSON_Delete(sources);
            return reply_error(r, 500, NULL, NULL, "out of memory");
        }
        if (p.done)
            break;
        if (!wait_or_hangup(engine_req_fd(er), sock, WAIT_MS)) {
            engine_req_cancel(er);
            engine_req_release(er);
            cairn_buf_free(&text);
            cJSON_Delete(sources);
            return MHD_NO;                      /* nobody to answer */
        }
    }
    engine_req_release(er);
    if (p.finish == ENGINE_FAILED || p.finish == ENGINE_CANCELLED) {
        cairn_buf_free(&text);
        cJSON_Delete(sources);
        return reply_error(r, 500, NULL, NULL, "generation failed: %s", p.error);
    }
    metrics_tokens(S->metrics, (uint64_t)p.n_prompt, (uint64_t)p.n_completion, (uint64_t)p.n_cached, true);
    if (g->ask) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", id);
        cJSON_AddStringToObject(j, "object", "answer");
        cJSON_AddStringToObject(j, "kind", "generated");
        cJSON_AddStringToObject(j, "answer", text.data ? text.data : "");
        cJSON_AddStringToObject(j, "finish_reason", finish_name(p.finish));
        cJSON_AddItemToObject(j, "sources", sources ? sources : cJSON_CreateArray());
        cJSON_AddItemToObject(j, "usage", usage_json(&p));
        cJSON *t = cJSON_AddObjectToObject(j, "timings");
        cJSON_AddNumberToObject(t, "retrieval_ms", g->retrieval_ms);
        cJSON_AddNumberToObject(t, "first_token_ms", p.first_token_ns / 1e6);
        cJSON_AddNumberToObject(t, "total_ms", p.total_ns / 1e6);
        cairn_buf_free(&text);
        return reply_json(r, 200, j);
    }
    cJSON *j = envelope(id, g->chat ? "chat.completion" : "text_completion", created, g->model);
    cJSON *a = cJSON_AddArrayToObject(j, "choices");
    cJSON_AddItemToArray(a, choice_json(g->chat, false, text.data ? text.data : "", true, finish_name(p.finish)));
    cJSON_AddItemToObject(j, "usage", usage_json(&p));
    if (sources)
        cJSON_AddItemToObject(j, "sources", sources);
    cJSON *t = cJSON_AddObjectToObject(j, "timings");
    cJSON_AddNumberToObject(t, "queued_ms", p.queued_ns / 1e6);
    cJSON_AddNumberToObject(t, "first_token_ms", p.first_token_ns / 1e6);
    cJSON_AddNumberToObject(t, "total_ms", p.total_ns / 1e6);
    cairn_buf_free(&text);
    return reply_json(r, 200, j);
}


enum MHD_Result api_chat(http_req *r)
{
    enum MHD_Result fret;
    if (srv_fault(r, &fret, &r->drop_after))
        return fret;
    if (r->S->gw && !srv_gateway_internal(r))
        return srv_gateway_handle(r, GW_EP_CHAT);
    if (!r->S->eng)
        return reply_error(r, 404, "model_not_found", "model", "this server has no chat model (cairn serve -m MODEL)");
    enum MHD_Result ret = MHD_YES;
    cJSON *j = body_json(r, &ret);
    if (!j)
        return ret;
    gen_req g = {.chat = true};
    chat_msg *msgs = NULL;
    cairn_buf arena;
    cairn_buf_init(&arena, 0);
    cJSON *sources = NULL;
    if (!parse_gen(r, j, &g, &ret))
        goto out;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "messages"), *it;
    int n = cJSON_GetArraySize(m);
    if (!cJSON_IsArray(m) || n < 1 || n > MAX_MESSAGES) {
        ret = reply_error(r, 400, "invalid_value", "messages", "'messages' must be an array of 1..%d messages", MAX_MESSAGES);
        goto out;
    }
    msgs = cairn_calloc((size_t)n, sizeof *msgs);
    /* the texts are gathered first, then pointed to (the arena does not move afterwards) */
    size_t *offs = cairn_calloc((size_t)n, sizeof *offs);
    if (!msgs || !offs) {
        cairn_free(offs);
        ret = reply_error(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    int i = 0;
    cJSON_ArrayForEach(it, m) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        const char *rs = cJSON_IsString(role) ? role->valuestring : "";
        if (!strcmp(rs, "developer"))
            rs = "system";
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant")) {
            cairn_free(offs);
            ret = reply_error(r, 400, "invalid_value", "messages", "messages[%d]: role must be system, user or assistant", i);
            goto out;
        }
        offs[i] = arena.len;
        if (!content_text(content, &arena) || cairn_buf_putc(&arena, '\0') != CAIRN_OK) {
            cairn_free(offs);
            ret = reply_error(r, 400, "invalid_value", "messages", "messages[%d]: content must be text", i);
            goto out;
        }
        msgs[i].role = rs;
        i++;
    }
    for (i = 0; i < n; i++)
        msgs[i].content = arena.data + offs[i];
    cairn_free(offs);
    if (g.route.kind == SRV_ROUTE_RAG) {
        sources = rag_prepare(r, j, &msgs, &n, &arena, &ret);
        if (!sources)
            goto out;
    }
    if (!tokenize_gen(r, &g, msgs, n, NULL, &ret))
        goto out;
    ret = gen_run(r, &g, sources);
    sources = NULL;
out:
    cJSON_Delete(sources);
    cairn_free(g.ids);
    cairn_free(msgs);
    cairn_buf_free(&arena);
    cJSON_Delete(j);
    return ret;
}

enum MHD_Result api_completions(http_req *r)
{
    enum MHD_Result fret;
    if (srv_fault(r, &fret, &r->drop_after))
        return fret;
    if (r->S->gw && !srv_gateway_internal(r))
        return srv_gateway_handle(r, GW_EP_COMPLETIONS);
    if (!r->S->eng)
        return reply_error(r, 404, "model_not_found", "model", "this server has no model (cairn serve -m MODEL)");
    enum MHD_Result ret = MHD_YES;
    cJSON *j = body_json(r, &ret);
    if (!j)
        return ret;
    gen_req g = {.chat = false};
    if (!parse_gen(r, j, &g, &ret))
        goto out;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(cJSON_GetArrayItem(p, 0)))
        p = cJSON_GetArrayItem(p, 0);
    if (!cJSON_IsString(p)) {
        ret = reply_error(r, 400, "invalid_value", "prompt", "'prompt' must be a string (or an array of one string)");
        goto out;
    }
    if (!tokenize_gen(r, &g, NULL, 0, p->valuestring, &ret))
        goto out;
    ret = gen_run(r, &g, NULL);
out:
    cairn_free(g.ids);
    cJSON_Delete(j);
    return ret;
}

/* POST /v1/ask {question, filter?, k?, stream?, max_tokens?, temperature?, ...}:
 * a grounded answer with its sources (the same retrieval as cairn-rag). */
enum MHD_Result ask_extractive(http_req *r, const cJSON *body, const char *question);

enum MHD_Result api_ask(http_req *r)
{
    cairn_server *S = r->S;
    if (!S->stores)
        return reply_error(r, 404, "no_store", NULL, "POST /v1/ask needs a store (run the server inside one, or --db DIR)");
    enum MHD_Result ret = MHD_YES;
    cJSON *j = body_json(r, &ret);
    if (!j)
        return ret;
    if (!S->eng) {                    /* no model: the best sentences, with their markers */
        const cJSON *qq = cJSON_GetObjectItemCaseSensitive(j, "question");
        ret = cJSON_IsString(qq) && *qq->valuestring
                  ? ask_extractive(r, j, qq->valuestring)
                  : reply_error(r, 400, "missing_field", "question", "'question' is required (a non-empty string)");
        cJSON_Delete(j);
        return ret;
    }
    gen_req g = {.chat = true, .ask = true};
    chat_msg *msgs = NULL;
    cairn_buf arena;
    cairn_buf_init(&arena, 0);
    cJSON *sources = NULL;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "question");
    if (!cJSON_IsString(q) || !*q->valuestring) {
        ret = reply_error(r, 400, "missing_field", "question", "'question' is required (a non-empty string)");
        goto out;
    }
    if (!parse_gen(r, j, &g, &ret))
        goto out;
    int n = 1;
    msgs = cairn_calloc(1, sizeof *msgs);
    if (!msgs || cairn_buf_puts(&arena, q->valuestring) != CAIRN_OK || cairn_buf_putc(&arena, '\0') != CAIRN_OK) {
        ret = reply_error(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    msgs[0] = (chat_msg){"user", arena.data};
    int64_t t0 = cairn_mono_ns();
    sources = rag_prepare(r, j, &msgs, &n, &arena, &ret);
    g.retrieval_ms = (double)(cairn_mono_ns() - t0) / 1e6;   /* retrieval + context */
    if (!sources)
        goto out;
    if (!tokenize_gen(r, &g, msgs, n, NULL, &ret))
        goto out;
    ret = gen_run(r, &g, sources);
    sources = NULL;
out:
    cJSON_Delete(sources);
    cairn_free(g.ids);
    cairn_free(msgs);
    cairn_buf_free(&arena);
    cJSON_Delete(j);
    return ret;
}
