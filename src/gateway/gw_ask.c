/*
 * gw_ask.c — `cairn ask` through the gateway: a grounded request.
 *
 * The context is built first (rag_retrieve + rag_context_build, the same
 * options as the rag_chat), so the privacy rule sees every chunk that would
 * go into the prompt before anything is sent. The upstream gets an OpenAI
 * chat request: the system prompt, then the user message with the numbered
 * passages and the question (rag_user_message); its answer passes the same
 * citation checker as a local one. The local answerer is rag_chat_ask
 * itself (which retrieves again: same query, same store, same passages).
 */
#include "gateway/gw_ask.h"
#include "store/store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ask_local {
    rag_chat *chat;
    const char *question;
    rag_text_fn on_text;
    void *ud;
    rag_answer *out;
    bool answered;
    const gw_sink *sink;
} ask_local;

static bool local_text(void *ud, const char *t, size_t n)
{
    ask_local *l = ud;
    return l->sink->write(l->sink->ctx, t, n) == CAIRN_OK;
}

static gw_fail local_answer(void *ctx, const gw_request *req, int64_t deadline, const gw_route_info *info,
                            const gw_sink *sink, int64_t *in, int64_t *out)
{
    ask_local *l = ctx;
    (void)req;
    (void)deadline;     /* one local question is not queued: it starts at once */
    l->sink = sink;
    if (sink->begin(sink->ctx, 200, "text/x-cairn-answer", info) != CAIRN_OK)
        return GW_FAIL_NONE;
    cairn_status st = rag_chat_ask(l->chat, l->question, local_text, l, l->out);
    if (st != CAIRN_OK) {
        /* began already: the answer is broken, and the caller reports st */
        return GW_FAIL_ERROR;
    }
    l->answered = true;
    *in = l->out->t.prompt_tokens;
    *out = l->out->t.gen_tokens;
    return GW_FAIL_NONE;
}

typedef struct ask_sink {
    int status;
    bool is_json;
    cairn_buf body;
    rag_text_fn on_text;
    void *ud;
} ask_sink;

static cairn_status sink_begin(void *ctx, int status, const char *ctype, const gw_route_info *info)
{
    ask_sink *s = ctx;
    (void)info;
    s->status = status;
    s->is_json = !strncmp(ctype, "application/json", 16);
    return CAIRN_OK;
}

static cairn_status sink_write(void *ctx, const char *p, size_t n)
{
    ask_sink *s = ctx;
    if (s->is_json)
        return cairn_buf_append(&s->body, p, n);
    if (s->on_text && !s->on_text(s->ud, p, n))
        return CAIRN_ERR_INTERRUPTED;
    return CAIRN_OK;
}

int gw_doc_private_tag(store *s, int64_t doc_id)
{
    meta_list m = {0};
    if (store_doc_meta(s, doc_id, &m) != CAIRN_OK)
        return 1;   /* cannot tell: treat as private (fail closed) */
    int tag = -1;
    const meta_value *v = meta_get(&m, "private");
    if (v) {
        if (v->type == META_BOOL || v->type == META_NUMBER)
            tag = v->n != 0;
        else if (v->type == META_STRING && v->s)
            tag = !strcmp(v->s, "true") || !strcmp(v->s, "yes") || !strcmp(v->s, "1");
        else
            tag = 1;
    }
    meta_list_free(&m);
    return tag;
}

cairn_status gw_ask(gw *g, const gw_ask_opts *o, const char *question, rag_text_fn on_text, void *ud, gw_ask_result *r)
{
    memset(r, 0, sizeof *r);
    rag_query q = {.text = question, .where = o->where, .k = o->k ? o->k : 8, .mode = o->mode};
    search_results hits;
    memset(&hits, 0, sizeof hits);
    CAIRN_TRY(rag_retrieve(o->s, o->e, &q, &hits));
    rag_context_opts co = {.budget_tokens = o->budget, .tok = o->tok};
    cairn_status st = rag_context_build(o->s, &hits, &co, &r->ctx);
    search_results_free(&hits);
    CAIRN_TRY(st);
    r->have_ctx = true;

    /* every chunk of the context, with its privacy */
    size_t nref = 0;
    for (size_t i = 0; i < r->ctx.n; i++)
        nref += r->ctx.p[i].n_chunks;
    gw_chunk_ref *refs = cairn_calloc(nref ? nref : 1, sizeof *refs);
    if (!refs)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < r->ctx.n; i++) {
        const rag_passage *p = &r->ctx.p[i];
        int tag = gw_doc_private_tag(o->s, p->doc_id);
        for (size_t j = 0; j < p->n_chunks; j++)
            refs[k++] = (gw_chunk_ref){p->path, tag, p->chunk_ids[j]};
    }

    /* the request an upstream would get */
    cairn_buf user;
    cairn_buf_init(&user, 0);
    st = rag_user_message(&r->ctx, question, &user);
    cJSON *req = st == CAIRN_OK ? cJSON_CreateObject() : NULL;
    char *body = NULL;
    if (req) {
        cJSON_AddStringToObject(req, "model", o->model_name ? o->model_name : "cairn-rag");
        cJSON *msgs = cJSON_AddArrayToObject(req, "messages");
        cJSON *sys = cJSON_CreateObject(), *u = cJSON_CreateObject();
        cJSON_AddItemToArray(msgs, sys);
        cJSON_AddItemToArray(msgs, u);
        cJSON_AddStringToObject(sys, "role", "system");
        cJSON_AddStringToObject(sys, "content", o->system ? o->system : rag_default_system_prompt);
        cJSON_AddStringToObject(u, "role", "user");
        cJSON_AddStringToObject(u, "content", user.data ? user.data : question);
        if (o->n_predict)
            cJSON_AddNumberToObject(req, "max_tokens", o->n_predict);
        if (o->policy)
            cJSON_AddStringToObject(req, "cairn_route", o->policy);
        body = cJSON_PrintUnformatted(req);
        cJSON_Delete(req);
    }
    cairn_buf_free(&user);
    if (!body) {
        cairn_free(refs);
        return st != CAIRN_OK ? st : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }

    ask_local lo = {.chat = o->chat, .question = question, .out = &r->answer};
    gw_local local = {&lo, local_answer};
    ask_sink sk = {.on_text = on_text, .ud = ud};
    cairn_buf_init(&sk.body, GW_MAX_BODY_BYTES);
    gw_sink sink = {&sk, sink_begin, sink_write};
    gw_request gr = {.endpoint = GW_EP_CHAT, .body = body, .body_len = strlen(body), .grounded = true,
                     .chunks = refs, .n_chunks = nref};
    st = gw_handle(g, &gr, &local, &sink, &r->res);
    cJSON_free(body);
    cairn_free(refs);
    if (st == CAIRN_OK && lo.answered) {
        r->local = true;
        r->answer_valid = true;
    } else if (st == CAIRN_OK && !strcmp(r->res.route, "upstream") && sk.status == 200) {
        /* the upstream's answer, through the same citation checker */
        cJSON *j = cJSON_ParseWithLength(sk.body.data ? sk.body.data : "", sk.body.len);
        cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
        cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
        cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        const char *text = cJSON_IsString(content) ? content->valuestring : "";
        rag_cite cite;
        char *clean = NULL;
        st = rag_cite_check(&r->ctx, text, strlen(text), &clean, &cite);
        if (st == CAIRN_OK) {
            r->answer.kind = RAG_GENERATED;
            r->answer.text = clean;
            r->answer.len = strlen(clean);
            r->answer.cited = cite.cited;
            r->answer.n_cited = cite.n_cited;
            r->answer.dropped_citations = cite.dropped;
            r->answer.stale = r->ctx.n_stale > 0;
            r->answer.t.prompt_tokens = (int)r->res.tokens_in;
            r->answer.t.gen_tokens = (int)r->res.tokens_out;
            r->answer.t.total_ms = (double)r->res.latency_ns / 1e6;
            cite.cited = NULL;
            rag_cite_free(&cite);
            r->answer_valid = true;
            if (on_text && r->answer.len)
                on_text(ud, r->answer.text, r->answer.len);
        }
        cJSON_Delete(j);
    } else if (st == CAIRN_OK) {
        /* refused, or every route failed: the gateway's error message */
        cJSON *j = cJSON_ParseWithLength(sk.body.data ? sk.body.data : "", sk.body.len);
        cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
        st = cairn_fail(!strcmp(r->res.route, "refused") ? CAIRN_ERR_INVALID : CAIRN_ERR_IO, "%s",
                        cJSON_IsString(m) ? m->valuestring : r->res.rule);
        cJSON_Delete(j);
    }
    cairn_buf_free(&sk.body);
    return st;
}

void gw_ask_result_free(gw_ask_result *r)
{
    if (r->have_ctx)
        rag_context_free(&r->ctx);
    if (r->answer_valid)
        rag_answer_free(&r->answer);
    memset(r, 0, sizeof *r);
}

cairn_status gw_open_store(const store_config *cfg, const char *cairn_dir, const char *file, gw **out)
{
    *out = NULL;
    gw_config c;
    gw_config_init(&c);
    cairn_status st = file ? gw_config_load_file(&c, file) : gw_config_from_ini(&c, cfg);
    if (st != CAIRN_OK) {
        gw_config_free(&c);
        return st;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/gateway", cairn_dir);
    st = gw_open(out, &c, dir);
    gw_config_free(&c);
    if (st == CAIRN_OK && getenv("CAIRN_GATEWAY_NOW"))
        gw_set_clock(*out, gw_env_clock, NULL);
    return st;
}

