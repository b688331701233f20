/* rag_json.c — the answer as one JSON object (the shape is documented in
 * rag.h and docs/answers.md; `cairn ask --json` and POST /v1/ask share it). */
#include "rag/rag.h"

#include <time.h>

static void iso_time(int64_t ns, char *out, size_t n)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    if (ns <= 0 || !gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        out[0] = '\0';
}

static cJSON *ids_array(const int64_t *ids, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)ids[i]));
    return a;
}

static const char *stop_name(gen_stop s)
{
    switch (s) {
    case GEN_STOP_LENGTH: return "length";
    case GEN_STOP_EOG: return "eog";
    case GEN_STOP_STRING: return "stop";
    case GEN_STOP_CALLBACK: return "callback";
    case GEN_STOP_CONTEXT: return "context";
    }
    return "?";
}

cJSON *rag_answer_json(const char *question, const rag_context *ctx, const rag_answer *a, int64_t now_ns)
{
    if (!now_ns)
        now_ns = cairn_now_ns();
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "question", question ? question : "");
    cJSON_AddStringToObject(j, "answer", a->text ? a->text : "");
    cJSON_AddStringToObject(j, "kind", a->kind == RAG_GENERATED ? "generated" : "extractive");
    if (a->kind == RAG_GENERATED)
        cJSON_AddStringToObject(j, "stop", stop_name(a->stop));
    cJSON *cit = cJSON_AddArrayToObject(j, "citations");
    for (size_t i = 0; cit && i < a->n_cited; i++) {
        const rag_passage *p = rag_context_find(ctx, a->cited[i]);
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddItemToArray(cit, o);
        cJSON_AddNumberToObject(o, "marker", a->cited[i]);
        if (!p)
            continue;       /* a marker of an earlier chat turn: its passage is in that turn's sources */
        cJSON_AddNumberToObject(o, "doc_id", (double)p->doc_id);
        cJSON_AddItemToObject(o, "chunk_ids", ids_array(p->chunk_ids, p->n_chunks));
        cJSON_AddStringToObject(o, "path", p->path);
        cJSON_AddStringToObject(o, "heading_path", p->heading_path);
        cJSON_AddNumberToObject(o, "page", p->page);
    }
    cJSON *src = cJSON_AddArrayToObject(j, "sources");
    for (size_t i = 0; src && ctx && i < ctx->n; i++) {
        const rag_passage *p = &ctx->p[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddItemToArray(src, o);
        char ts[40];
        iso_time(p->ingested_at_ns, ts, sizeof ts);
        cJSON_AddNumberToObject(o, "marker", p->marker);
        cJSON_AddNumberToObject(o, "doc_id", (double)p->doc_id);
        cJSON_AddItemToObject(o, "chunk_ids", ids_array(p->chunk_ids, p->n_chunks));
        cJSON_AddStringToObject(o, "path", p->path);
        cJSON_AddStringToObject(o, "key", p->rkey);
        if (p->title)
            cJSON_AddStringToObject(o, "title", p->title);
        else
            cJSON_AddNullToObject(o, "title");
        cJSON_AddStringToObject(o, "heading_path", p->heading_path);
        cJSON_AddNumberToObject(o, "page", p->page);
        cJSON_AddNumberToObject(o, "rank", p->best_rank + 1);
        cJSON_AddNumberToObject(o, "score", p->best_score);
        cJSON_AddNumberToObject(o, "tokens", (double)p->ntokens);
        cJSON_AddStringToObject(o, "ingested_at", ts);
        cJSON_AddNumberToObject(o, "age_s", (double)((now_ns - p->ingested_at_ns) / 1000000000LL));
        cJSON_AddBoolToObject(o, "stale", p->stale == RAG_CHANGED || p->stale == RAG_MISSING);
        cJSON_AddStringToObject(o, "staleness", rag_staleness_name(p->stale));
    }
    cJSON_AddNumberToObject(j, "dropped_citations", (double)a->dropped_citations);
    cJSON_AddBoolToObject(j, "stale", a->stale);
    cJSON_AddNumberToObject(j, "stale_sources", ctx ? (double)ctx->n_stale : 0);
    cJSON_AddNumberToObject(j, "context_tokens", ctx ? (double)ctx->n_tokens : 0);
    cJSON_AddNumberToObject(j, "chunks_retrieved", ctx ? (double)ctx->n_hits : 0);
    cJSON_AddNumberToObject(j, "chunks_cut", ctx ? (double)ctx->n_cut : 0);
    cJSON *t = cJSON_AddObjectToObject(j, "timings");
    if (t) {
        cJSON_AddNumberToObject(t, "retrieval_ms", a->t.retrieval_ms);
        cJSON_AddNumberToObject(t, "context_ms", a->t.context_ms);
        cJSON_AddNumberToObject(t, "prompt_tokens", a->t.prompt_tokens);
        cJSON_AddNumberToObject(t, "reused_tokens", a->t.reused_tokens);
        cJSON_AddNumberToObject(t, "prompt_ms", a->t.prompt_ms);
        cJSON_AddNumberToObject(t, "ttft_ms", a->t.ttft_ms);
        cJSON_AddNumberToObject(t, "gen_tokens", a->t.gen_tokens);
        cJSON_AddNumberToObject(t, "tokens_per_s", a->t.tokens_per_s);
        cJSON_AddNumberToObject(t, "total_ms", a->t.total_ms);
    }
    return j;
}
