/* evaluate.c — the `cairn eval` driver: run judged queries, aggregate chunk
 * hits to documents, optional RM3-style feedback, metrics, TREC run file. */
#include "search/eval.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void eval_options_default(eval_options *o)
{
    memset(o, 0, sizeof *o);
    o->k = 10;
    o->k_recall = 100;
    o->depth = 1000;
    bm25_params_default(&o->params);
    o->title_weight = 2;
    o->agg = EVAL_AGG_DOC;     /* chosen by measurement: docs/eval.md */
    o->agg_weight = -1;         /* per mode: maxsum 0.1, doc 0 */
    text_config_default(&o->analyzer);
    o->fb_docs = 0;
    o->fb_terms = 10;
    o->fb_orig_weight = 0.5f;
    o->run_tag = "cairn";
    o->mode = SEARCH_MODE_BM25;
    fuse_opts_default(&o->fuse);
    o->embed_threads = 1;
}

/* ---- queries ---- */

typedef struct qlist {
    char **id, **text;
    size_t n, cap;
    const eval_qrels *qrels;
} qlist;

static cairn_status on_query(void *ctx, const beir_record *r)
{
    qlist *q = ctx;
    if (!eval_qrels_has_query(q->qrels, r->id))
        return CAIRN_OK;
    if (q->n == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 256;
        char **a = cairn_reallocarray(q->id, nc, sizeof *a);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "queries: out of memory");
        q->id = a;
        a = cairn_reallocarray(q->text, nc, sizeof *a);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "queries: out of memory");
        q->text = a;
        q->cap = nc;
    }
    q->id[q->n] = cairn_strdup(r->id);
    q->text[q->n] = cairn_strdup(r->text);
    q->n++;
    if (!q->id[q->n - 1] || !q->text[q->n - 1])
        return cairn_fail(CAIRN_ERR_NOMEM, "queries: out of memory");
    return CAIRN_OK;
}

static void qlist_free(qlist *q)
{
    for (size_t i = 0; i < q->n; i++) {
        cairn_free(q->id[i]);
        cairn_free(q->text[i]);
    }
    cairn_free(q->id);
    cairn_free(q->text);
}

/* ---- feedback: a small term -> weight map ---- */

typedef struct fb_entry { char term[TEXT_MAX_TERM + 1]; uint8_t len; float w; float tf; } fb_entry;
typedef struct fb_map { fb_entry *e; uint32_t cap, n; uint32_t *touched; } fb_map;

static fb_entry *fb_get(fb_map *m, const char *t, size_t len)
{
    if (len > TEXT_MAX_TERM)
        return NULL;
    uint32_t i = (uint32_t)cairn_hash64(t, len) & (m->cap - 1);
    for (; m->e[i].len; i = (i + 1) & (m->cap - 1))
        if (m->e[i].len == len && !memcmp(m->e[i].term, t, len))
            return &m->e[i];
    if (m->n * 2 >= m->cap)
        return NULL;    /* full: ignore further terms */
    memcpy(m->e[i].term, t, len);
    m->e[i].len = (uint8_t)len;
    m->e[i].w = m->e[i].tf = 0;
    m->touched[m->n++] = i;
    return &m->e[i];
}

static void fb_clear(fb_map *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        m->e[m->touched[i]].len = 0;
    m->n = 0;
}

typedef struct fb_doc_ctx { fb_map *m; uint32_t len; } fb_doc_ctx;

static cairn_status fb_on_term(void *ctx, const char *t, size_t len, uint32_t pos, size_t s, size_t e)
{
    fb_doc_ctx *c = ctx;
    fb_entry *x = fb_get(c->m, t, len);
    if (x)
        x->tf += 1;
    c->len++;
    return CAIRN_OK;
}

static int cmp_fb(const void *a, const void *b)
{
    const fb_entry *x = *(fb_entry *const *)a, *y = *(fb_entry *const *)b;
    if (x->w != y->w)
        return x->w > y->w ? -1 : 1;
    return memcmp(x->term, y->term, x->len < y->len ? x->len : y->len);
}

/* RM3: expansion weights from the top fb chunks, mixed with the query. */
static cairn_status rm3(const eval_corpus *c, text_analyzer *an, fb_map *acc, fb_map *doc, const bm25_hit *hits,
                        size_t n_hits, const eval_options *o, bm25_query *q)
{
    size_t nf = CAIRN_MIN(n_hits, o->fb_docs);
    if (nf == 0)
        return CAIRN_OK;
    double zs = 0;
    for (size_t i = 0; i < nf; i++)
        zs += hits[i].score;
    fb_clear(acc);
    for (size_t i = 0; i < nf; i++) {
        const char *text;
        size_t len;
        CAIRN_TRY(c->chunk_text(c->ctx, hits[i].chunk_id, &text, &len));
        fb_clear(doc);
        fb_doc_ctx dc = {doc, 0};
        CAIRN_TRY(text_analyze(an, text, len, fb_on_term, &dc));
        if (dc.len == 0)
            continue;
        float pd = (float)(hits[i].score / zs);
        for (uint32_t j = 0; j < doc->n; j++) {
            fb_entry *e = &doc->e[doc->touched[j]];
            fb_entry *a = fb_get(acc, e->term, e->len);
            if (a)
                a->w += pd * e->tf / (float)dc.len;
        }
    }
    fb_entry **sorted = cairn_calloc(acc->n ? acc->n : 1, sizeof *sorted);
    if (!sorted)
        return cairn_fail(CAIRN_ERR_NOMEM, "feedback: out of memory");
    for (uint32_t j = 0; j < acc->n; j++)
        sorted[j] = &acc->e[acc->touched[j]];
    qsort(sorted, acc->n, sizeof *sorted, cmp_fb);
    size_t nt = CAIRN_MIN((size_t)acc->n, o->fb_terms);
    double zt = 0, zq = 0;
    for (size_t j = 0; j < nt; j++)
        zt += sorted[j]->w;
    for (size_t j = 0; j < q->n; j++)
        zq += q->terms[j].weight;
    float a = o->fb_orig_weight;
    for (size_t j = 0; j < q->n; j++)
        q->terms[j].weight = (float)(a * q->terms[j].weight / zq);
    cairn_status st = CAIRN_OK;
    for (size_t j = 0; j < nt && st == CAIRN_OK && zt > 0; j++)
        st = bm25_query_add(q, sorted[j]->term, sorted[j]->len, (float)((1 - a) * sorted[j]->w / zt));
    cairn_free(sorted);
    return st;
}

/* ---- the run ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct dhit { int64_t doc; float score; uint64_t best_chunk; } dhit;

static int cmp_dhit(const void *a, const void *b)
{
    const dhit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->best_chunk < y->best_chunk ? -1 : x->best_chunk > y->best_chunk;
}

cairn_status eval_run(const eval_corpus *c, const char *queries_path, const eval_qrels *qrels,
                      const eval_options *o, eval_result *res)
{
    memset(res, 0, sizeof *res);
    qlist ql = {.qrels = qrels};
    cairn_status st = beir_read_jsonl(queries_path, on_query, &ql);
    if (st != CAIRN_OK) {
        qlist_free(&ql);
        return st;
    }
    if (ql.n == 0) {
        qlist_free(&ql);
        return cairn_fail(CAIRN_ERR_INVALID, "%s: no query has judgments", queries_path);
    }
    if (o->mode != SEARCH_MODE_BM25 && !c->dense) {
        qlist_free(&ql);
        return cairn_fail(CAIRN_ERR_INVALID, "eval --mode %s needs an embedding model (--embed-model) and a store "
                                             "corpus (not --direct)", search_mode_name(o->mode));
    }
    FILE *run = NULL;
    if (o->run_path && !(run = fopen(o->run_path, "w"))) {
        qlist_free(&ql);
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot create: %s", o->run_path, strerror(errno));
    }
    text_analyzer *an = NULL;
    size_t kc = o->depth * 2;   /* chunks fetched per query, aggregated to documents */
    bm25_hit *hits = cairn_calloc(kc, sizeof *hits);
    float *dscore = cairn_calloc(c->n_docs + 1, sizeof *dscore);
    uint64_t *dbest = cairn_calloc(c->n_docs + 1, sizeof *dbest);
    dhit *dh = cairn_calloc(kc, sizeof *dh);
    bm25_hit *vh = o->mode != SEARCH_MODE_BM25 ? cairn_calloc(kc, sizeof *vh) : NULL;
    fuse_item *fa = o->mode != SEARCH_MODE_BM25 ? cairn_calloc(kc, sizeof *fa) : NULL;
    fuse_item *fb = o->mode != SEARCH_MODE_BM25 ? cairn_calloc(kc, sizeof *fb) : NULL;
    fuse_item *ff = o->mode != SEARCH_MODE_BM25 ? cairn_calloc(2 * kc, sizeof *ff) : NULL;
    if (o->mode != SEARCH_MODE_BM25 && (!vh || !fa || !fb || !ff))
        st = cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
    const char **ranked = cairn_calloc(o->depth + 1, sizeof *ranked);
    double *lat = cairn_calloc(ql.n, sizeof *lat);
    fb_map acc = {0}, doc = {0};
    acc.cap = doc.cap = 1u << 16;
    acc.e = cairn_calloc(acc.cap, sizeof *acc.e);
    acc.touched = cairn_calloc(acc.cap, sizeof *acc.touched);
    doc.e = cairn_calloc(doc.cap, sizeof *doc.e);
    doc.touched = cairn_calloc(doc.cap, sizeof *doc.touched);
    if (!hits || !dscore || !dbest || !dh || !ranked || !lat || !acc.e || !acc.touched || !doc.e || !doc.touched)
        st = cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
    if (st == CAIRN_OK)
        st = text_analyzer_new(bm25_config(c->ix), &an);
    const float agg_w = o->agg_weight >= 0 ? o->agg_weight : o->agg == EVAL_AGG_MAXSUM ? 0.1f : 0.0f;
    /* Document-level scoring: chunk -> document map over the index's ids. */
    int32_t *of = NULL;
    bm25_groups *groups = NULL;
    bm25_group_hit *gh = NULL;
    if (st == CAIRN_OK && o->agg == EVAL_AGG_DOC) {
        uint64_t n_ids = bm25_hwm(c->ix) + 1;
        of = cairn_calloc(n_ids, sizeof *of);
        gh = cairn_calloc(o->depth, sizeof *gh);
        if (!of || !gh || c->n_docs > INT32_MAX)
            st = cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
        for (uint64_t id = 0; st == CAIRN_OK && id < n_ids; id++) {
            int64_t d = c->chunk_doc(c->ctx, id);
            of[id] = d >= 0 && (size_t)d < c->n_docs ? (int32_t)d : -1;
        }
        if (st == CAIRN_OK)
            st = bm25_groups_new(c->ix, of, n_ids, (uint32_t)c->n_docs, &groups);
    }
    double sum_ndcg = 0, sum_rec = 0, sum_mrr = 0, sum_ap = 0;
    for (size_t qi = 0; qi < ql.n && st == CAIRN_OK; qi++) {
        int64_t t0 = cairn_mono_ns();
        bm25_query q = {0};
        size_t nh = 0;
        st = bm25_query_parse(&q, an, ql.text[qi], strlen(ql.text[qi]));
        if (st == CAIRN_OK && (o->fb_docs || !groups))
            st = bm25_search(c->ix, &q, &o->params, NULL, o->fb_docs ? CAIRN_MAX(o->fb_docs, 1) : kc, hits, &nh, NULL);
        if (st == CAIRN_OK && o->fb_docs) {
            st = rm3(c, an, &acc, &doc, hits, nh, o, &q);
            if (st == CAIRN_OK && !groups)
                st = bm25_search(c->ix, &q, &o->params, NULL, kc, hits, &nh, NULL);
        }
        size_t ng = 0;
        if (st == CAIRN_OK && groups)
            st = bm25_search_groups(c->ix, groups, &q, &o->params, agg_w, NULL, o->depth, gh, &ng);
        bm25_query_free(&q);
        if (st != CAIRN_OK)
            break;
        /* chunks -> documents */
        size_t nd = 0;
        if (groups) {
            for (size_t i = 0; i < ng; i++)
                dh[i] = (dhit){gh[i].group, gh[i].score, gh[i].best_chunk};
            nd = ng;
            nh = 0;
        }
        for (size_t i = 0; i < nh; i++) {
            int64_t d = c->chunk_doc(c->ctx, hits[i].chunk_id);
            if (d < 0 || (size_t)d >= c->n_docs)
                continue;
            if (dbest[d] == 0) {
                dh[nd].doc = d;
                dh[nd].best_chunk = hits[i].chunk_id;
                nd++;
                dbest[d] = hits[i].chunk_id;
                dscore[d] = hits[i].score;
            } else if (o->agg == EVAL_AGG_SUM) {
                dscore[d] += hits[i].score;
            } else if (o->agg == EVAL_AGG_MAXSUM) {
                dscore[d] += agg_w * hits[i].score;     /* hits come best first */
            }
        }
        for (size_t i = 0; !groups && i < nd; i++) {
            dh[i].score = dscore[dh[i].doc];
            dscore[dh[i].doc] = 0;
            dbest[dh[i].doc] = 0;
        }
        if (o->agg == EVAL_AGG_SUM || o->agg == EVAL_AGG_MAXSUM)
            qsort(dh, nd, sizeof *dh, cmp_dhit);
        if (o->mode != SEARCH_MODE_BM25) {
            /* dense: chunks -> documents by the best chunk (hits come best first) */
            size_t nv = 0, nb = 0;
            st = c->dense(c->ctx, ql.text[qi], kc, vh, &nv);
            if (st != CAIRN_OK)
                break;
            for (size_t i = 0; i < nv && nb < o->depth; i++) {
                int64_t d = c->chunk_doc(c->ctx, vh[i].chunk_id);
                if (d < 0 || (size_t)d >= c->n_docs || dbest[d])
                    continue;
                dbest[d] = vh[i].chunk_id;
                fb[nb++] = (fuse_item){(uint64_t)d, vh[i].score};
            }
            for (size_t i = 0; i < nb; i++)
                dbest[fb[i].id] = 0;
            size_t na = CAIRN_MIN(nd, o->depth), nf = 0;
            for (size_t i = 0; i < na; i++)
                fa[i] = (fuse_item){(uint64_t)dh[i].doc, dh[i].score};
            if (o->mode == SEARCH_MODE_HYBRID) {
                st = fuse_lists(fa, na, fb, nb, &o->fuse, ff, &nf);
                if (st != CAIRN_OK)
                    break;
            } else {
                memcpy(ff, fb, nb * sizeof *ff);
                nf = nb;
            }
            nd = 0;
            for (size_t i = 0; i < nf; i++)
                dh[nd++] = (dhit){(int64_t)ff[i].id, ff[i].score, 0};
        }
        size_t nr = CAIRN_MIN(nd, o->depth);
        for (size_t i = 0; i < nr; i++)
            ranked[i] = c->doc_id(c->ctx, dh[i].doc);
        lat[qi] = (double)(cairn_mono_ns() - t0) / 1e6;
        eval_scores sc;
        eval_score(qrels, ql.id[qi], ranked, nr, o->k, o->k_recall, o->k, &sc);
        sum_ndcg += sc.ndcg;
        sum_rec += sc.recall;
        sum_mrr += sc.mrr;
        sum_ap += sc.ap;
        for (size_t i = 0; run && i < nr; i++)
            fprintf(run, "%s Q0 %s %zu %.6f %s\n", ql.id[qi], ranked[i], i + 1, dh[i].score, o->run_tag);
    }
    if (st == CAIRN_OK) {
        double nq = (double)ql.n;
        res->n_queries = ql.n;
        res->n_docs = c->n_docs;
        res->n_chunks = bm25_n_docs(c->ix);
        res->ndcg = sum_ndcg / nq;
        res->recall = sum_rec / nq;
        res->mrr = sum_mrr / nq;
        res->map = sum_ap / nq;
        double tot = 0;
        for (size_t i = 0; i < ql.n; i++)
            tot += lat[i];
        res->mean_ms = tot / nq;
        qsort(lat, ql.n, sizeof *lat, cmp_double);
        res->p50_ms = lat[(size_t)(0.50 * (nq - 1) + 0.5)];
        res->p99_ms = lat[(size_t)(0.99 * (nq - 1) + 0.5)];
    }
    if (run && fclose(run) != 0 && st == CAIRN_OK)
        st = cairn_fail(CAIRN_ERR_IO, "%s: write failed", o->run_path);
    text_analyzer_free(an);
    bm25_groups_free(groups);
    cairn_free(of);
    cairn_free(gh);
    cairn_free(hits);
    cairn_free(dscore);
    cairn_free(dbest);
    cairn_free(dh);
    cairn_free(vh);
    cairn_free(fa);
    cairn_free(fb);
    cairn_free(ff);
    cairn_free(ranked);
    cairn_free(lat);
    cairn_free(acc.e);
    cairn_free(acc.touched);
    cairn_free(doc.e);
    cairn_free(doc.touched);
    qlist_free(&ql);
    return st;
}

/* ---- the direct corpus: one chunk per record, no store ---- */

struct eval_direct {
    bm25_index *ix;
    char **ids;
    char **texts;       /* title + "\n" + text, for feedback */
    size_t n, cap;
};

typedef struct build_ctx {
    eval_direct *d;
    bm25_writer *w;
    const eval_options *o;
} build_ctx;

static cairn_status on_doc(void *ctx, const beir_record *r)
{
    build_ctx *b = ctx;
    eval_direct *d = b->d;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 1024;
        char **a = cairn_reallocarray(d->ids, nc, sizeof *a);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
        d->ids = a;
        a = cairn_reallocarray(d->texts, nc, sizeof *a);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
        d->texts = a;
        d->cap = nc;
    }
    size_t tl = strlen(r->title), xl = strlen(r->text);
    char *full = cairn_malloc(tl + xl + 2);
    char *id = cairn_strdup(r->id);
    if (!full || !id) {
        cairn_free(full);
        cairn_free(id);
        return cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
    }
    memcpy(full, r->title, tl);
    full[tl] = '\n';
    memcpy(full + tl + 1, r->text, xl + 1);
    d->ids[d->n] = id;
    d->texts[d->n] = full;
    d->n++;
    bm25_field f[2];
    size_t nf;
    if (b->o->title_weight) {
        f[0] = (bm25_field){r->title, tl, b->o->title_weight};
        f[1] = (bm25_field){r->text, xl, 1};
        nf = 2;
    } else {
        f[0] = (bm25_field){full, tl + xl + 1, 1};
        nf = 1;
    }
    return bm25_writer_add(b->w, d->n, f, nf);
}

static int64_t direct_chunk_doc(void *ctx, uint64_t id)
{
    eval_direct *d = ctx;
    return id >= 1 && id <= d->n ? (int64_t)id - 1 : -1;
}

static const char *direct_doc_id(void *ctx, int64_t doc) { return ((eval_direct *)ctx)->ids[doc]; }

static cairn_status direct_text(void *ctx, uint64_t id, const char **text, size_t *len)
{
    eval_direct *d = ctx;
    if (id < 1 || id > d->n) {
        *text = "";
        *len = 0;
        return CAIRN_OK;
    }
    *text = d->texts[id - 1];
    *len = strlen(*text);
    return CAIRN_OK;
}

void eval_direct_free(eval_direct *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        cairn_free(d->ids[i]);
        cairn_free(d->texts[i]);
    }
    cairn_free(d->ids);
    cairn_free(d->texts);
    bm25_close(d->ix);
    cairn_free(d);
}

cairn_status eval_direct_build(const char *corpus_path, const char *index_dir, const eval_options *o,
                               eval_direct **out, eval_corpus *c)
{
    *out = NULL;
    eval_direct *d = cairn_calloc(1, sizeof *d);
    if (!d)
        return cairn_fail(CAIRN_ERR_NOMEM, "eval: out of memory");
    bool mismatch;
    cairn_status st = bm25_open(index_dir, &o->analyzer, &d->ix, &mismatch);
    bm25_writer *w = NULL;
    if (st == CAIRN_OK)
        st = bm25_writer_open(d->ix, &w);
    if (st == CAIRN_OK && (mismatch || bm25_hwm(d->ix) > 0))
        st = bm25_writer_reset(w, &o->analyzer);
    if (st == CAIRN_OK) {
        build_ctx b = {d, w, o};
        st = beir_read_jsonl(corpus_path, on_doc, &b);
    }
    if (st == CAIRN_OK)
        st = bm25_writer_commit(w, d->n, 0);
    bm25_writer_free(w);
    if (st != CAIRN_OK) {
        eval_direct_free(d);
        return st;
    }
    memset(c, 0, sizeof *c);
    c->ctx = d;
    c->ix = d->ix;
    c->chunk_doc = direct_chunk_doc;
    c->doc_id = direct_doc_id;
    c->n_docs = d->n;
    c->chunk_text = direct_text;
    *out = d;
    return CAIRN_OK;
}
