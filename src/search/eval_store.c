/* eval_store.c — the store-backed eval corpus: corpus.jsonl goes through the
 * real ingest pipeline (JSONL parser, chunker, store) and the index follows
 * the store as in normal use; documents are the JSONL records (rkey). */
#include "ingest/pipeline.h"
#include "search/eval.h"
#include "search/dense.h"
#include "search/search.h"
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct eval_store {
    store *s;
    bm25_index *ix;
    int32_t *chunk_doc;     /* [max_chunk + 1]: doc index or -1 */
    size_t n_chunk_doc;
    char **ids;             /* doc index -> record id */
    size_t n, cap;
    sqlite3_stmt *text_stmt;
    char *text;             /* last chunk text (for feedback) */
    cairn_embedder *emb;    /* dense / hybrid modes */
    dense_settings dset;
    dense_engine *de;
    vec_hit *vh;
    size_t vh_cap;
};

static cairn_status es_dense(void *ctx, const char *query, size_t k, bm25_hit *out, size_t *n)
{
    eval_store *e = ctx;
    if (k > e->vh_cap) {
        vec_hit *v = cairn_reallocarray(e->vh, k, sizeof *v);
        if (!v)
            return cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
        e->vh = v;
        e->vh_cap = k;
    }
    CAIRN_TRY(dense_search(e->de, query, NULL, k, e->vh, n));
    for (size_t i = 0; i < *n; i++)
        out[i] = (bm25_hit){e->vh[i].id, e->vh[i].score};
    return CAIRN_OK;
}

static int64_t es_chunk_doc(void *ctx, uint64_t id)
{
    eval_store *e = ctx;
    return id < e->n_chunk_doc ? e->chunk_doc[id] : -1;
}

static const char *es_doc_id(void *ctx, int64_t doc) { return ((eval_store *)ctx)->ids[doc]; }

static cairn_status es_text(void *ctx, uint64_t id, const char **text, size_t *len)
{
    eval_store *e = ctx;
    *text = "";
    *len = 0;
    sqlite3_reset(e->text_stmt);
    sqlite3_bind_int64(e->text_stmt, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(e->text_stmt);
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(e->text_stmt, 0);
        cairn_free(e->text);
        e->text = cairn_strdup(t ? t : "");
        if (!e->text)
            return cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
        *text = e->text;
        *len = strlen(e->text);
    } else if (rc != SQLITE_DONE) {
        return cairn_fail(CAIRN_ERR_IO, "eval: reading chunk %llu: %s", (unsigned long long)id,
                          sqlite3_errmsg(store_db(e->s)));
    }
    return CAIRN_OK;
}

void eval_store_free(eval_store *e)
{
    if (!e)
        return;
    if (e->text_stmt)
        sqlite3_finalize(e->text_stmt);
    for (size_t i = 0; i < e->n; i++)
        cairn_free(e->ids[i]);
    cairn_free(e->ids);
    cairn_free(e->chunk_doc);
    cairn_free(e->text);
    dense_close(e->de);
    embedder_free(e->emb);
    cairn_free(e->dset.model);
    cairn_free(e->vh);
    bm25_close(e->ix);
    store_close(e->s);
    cairn_free(e);
}

static cairn_status ingest(eval_store *e, const char *corpus_path, const eval_options *o)
{
    const store_config *cfg = store_get_config(e->s);
    pipe_options po = {0};
    ingest_options_default(&po.ingest);
    po.ingest.max_file_bytes = cfg->max_file_bytes > ((size_t)4 << 30) ? cfg->max_file_bytes : ((size_t)4 << 30);
    po.ingest.max_stream_bytes = cfg->max_stream_bytes;
    po.ingest.max_record_bytes = cfg->max_record_bytes;
    chunk_options_default(&po.chunk);
    po.chunk.max_tokens = o->chunk_tokens ? o->chunk_tokens : cfg->chunk_tokens;
    po.chunk.overlap_tokens = o->chunk_tokens ? o->chunk_overlap : cfg->chunk_overlap;
    CAIRN_TRY(chunk_options_check(&po.chunk));
    CAIRN_TRY(store_next_sync_gen(e->s, &po.sync_gen));
    pipeline *p;
    CAIRN_TRY(pipeline_new(e->s, &po, &p));
    cairn_status st = pipeline_add_path(p, corpus_path);
    if (st == CAIRN_OK)
        st = pipeline_finish(p);
    if (st == CAIRN_OK && pipeline_stats(p)->files_failed + pipeline_stats(p)->files_skipped > 0)
        st = cairn_fail(CAIRN_ERR_INVALID, "%s: could not be ingested as JSONL records", corpus_path);
    pipeline_free(p);
    return st;
}

static cairn_status map_chunks(eval_store *e)
{
    sqlite3 *db = store_db(e->s);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT MAX(id) FROM chunks", -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "eval: %s", sqlite3_errmsg(db));
    int64_t max_id = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    if (max_id < 0 || max_id > (1ll << 31))
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "eval: chunk ids up to %lld", (long long)max_id);
    e->n_chunk_doc = (size_t)max_id + 1;
    e->chunk_doc = cairn_calloc(e->n_chunk_doc, sizeof *e->chunk_doc);
    if (!e->chunk_doc)
        return cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
    for (size_t i = 0; i < e->n_chunk_doc; i++)
        e->chunk_doc[i] = -1;
    /* Documents by record key; several files would be several corpora, so
     * the key alone names a document. */
    if (sqlite3_prepare_v2(db,
                           "SELECT c.id, d.id, d.rkey FROM chunks c JOIN docs d ON d.id = c.doc_id "
                           "ORDER BY d.id, c.id",
                           -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "eval: %s", sqlite3_errmsg(db));
    cairn_status st = CAIRN_OK;
    int64_t last_doc = -1;
    int rc;
    while (st == CAIRN_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(q, 0), did = sqlite3_column_int64(q, 1);
        const char *key = (const char *)sqlite3_column_text(q, 2);
        if (did != last_doc) {
            if (e->n == e->cap) {
                size_t nc = e->cap ? e->cap * 2 : 1024;
                char **a = cairn_reallocarray(e->ids, nc, sizeof *a);
                if (!a) {
                    st = cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
                    break;
                }
                e->ids = a;
                e->cap = nc;
            }
            if (!(e->ids[e->n] = cairn_strdup(key ? key : ""))) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
                break;
            }
            e->n++;
            last_doc = did;
        }
        if (cid > 0 && (size_t)cid < e->n_chunk_doc)
            e->chunk_doc[cid] = (int32_t)(e->n - 1);
    }
    if (st == CAIRN_OK && rc != SQLITE_DONE)
        st = cairn_fail(CAIRN_ERR_IO, "eval: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    if (st == CAIRN_OK && sqlite3_prepare_v2(db, "SELECT text FROM chunks WHERE id = ?", -1, &e->text_stmt, NULL) != SQLITE_OK)
        st = cairn_fail(CAIRN_ERR_IO, "eval: %s", sqlite3_errmsg(db));
    return st;
}

cairn_status eval_store_build(const char *corpus_path, const char *store_dir, const eval_options *o,
                              eval_store **out, eval_corpus *c)
{
    *out = NULL;
    struct stat sb;
    if (stat(store_dir, &sb) != 0)
        CAIRN_TRY(store_create(store_dir));
    eval_store *e = cairn_calloc(1, sizeof *e);
    if (!e)
        return cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
    cairn_status st = store_open(store_dir, &e->s);
    if (st == CAIRN_OK)
        st = ingest(e, corpus_path, o);
    /* The eval index has its own directory: its settings (flags) may differ
     * from the store's config, which `cairn search` uses. */
    char ixdir[4200];
    snprintf(ixdir, sizeof ixdir, "%s/index-eval", store_dir);
    search_settings set = {.analyzer = o->analyzer, .params = o->params, .title_weight = o->title_weight};
    if (st == CAIRN_OK) {
        /* title weight is not recorded in the index: start fresh each run */
        char cmd[4300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", ixdir);
        if (strchr(ixdir, '\'') || system(cmd) != 0)
            st = cairn_fail(CAIRN_ERR_IO, "%s: cannot clear", ixdir);
    }
    if (st == CAIRN_OK)
        st = search_catch_up_with(e->s, &set, ixdir, NULL);
    bool mismatch;
    if (st == CAIRN_OK)
        st = bm25_open(ixdir, &o->analyzer, &e->ix, &mismatch);
    if (st == CAIRN_OK)
        st = map_chunks(e);
    if (st == CAIRN_OK && o->embed_model) {
        /* embeddings persist in the eval store (vectors.db): a rerun with
         * --db embeds only what changed */
        vec_params_default(&e->dset.params);
        e->dset.threads = o->embed_threads;
        e->dset.batch = 64;
        e->dset.model = cairn_strdup(o->embed_model);
        embed_opts eo = {.n_threads = o->embed_threads};
        if (!e->dset.model)
            st = cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
        if (st == CAIRN_OK)
            st = embedder_load(o->embed_model, &eo, &e->emb);
        if (st == CAIRN_OK)
            st = dense_catch_up(e->s, &e->dset, e->emb, NULL, NULL, NULL);
        if (st == CAIRN_OK)
            st = dense_open_with(e->s, &e->dset, e->emb, &e->de);
    }
    if (st != CAIRN_OK) {
        eval_store_free(e);
        return st;
    }
    memset(c, 0, sizeof *c);
    c->ctx = e;
    c->ix = e->ix;
    c->chunk_doc = es_chunk_doc;
    c->doc_id = es_doc_id;
    c->n_docs = e->n;
    c->chunk_text = es_text;
    if (e->de)
        c->dense = es_dense;
    *out = e;
    return CAIRN_OK;
}
