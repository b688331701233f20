/* hybrid.c — search modes, fusion of BM25 and dense lists, reranking. */
#include "search/hybrid.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

cairn_status search_mode_parse(const char *s, search_mode *out)
{
    if (!strcmp(s, "bm25"))
        *out = SEARCH_MODE_BM25;
    else if (!strcmp(s, "dense"))
        *out = SEARCH_MODE_DENSE;
    else if (!strcmp(s, "hybrid"))
        *out = SEARCH_MODE_HYBRID;
    else
        return cairn_fail(CAIRN_ERR_INVALID, "unknown search mode '%s' (bm25, dense or hybrid)", s);
    return CAIRN_OK;
}

cairn_status fuse_method_parse(const char *s, fuse_method *out)
{
    if (!strcmp(s, "rrf"))
        *out = FUSE_RRF;
    else if (!strcmp(s, "weighted"))
        *out = FUSE_WEIGHTED;
    else
        return cairn_fail(CAIRN_ERR_INVALID, "unknown fusion '%s' (rrf or weighted)", s);
    return CAIRN_OK;
}

const char *search_mode_name(search_mode m)
{
    return m == SEARCH_MODE_DENSE ? "dense" : m == SEARCH_MODE_HYBRID ? "hybrid" : "bm25";
}

/* Chosen with cairn eval over ../shared/data/ir and SQuAD with the
 * glove-bert embedder (docs/vectors.md): the weighted sum with a small
 * dense share was the best fusion, and the only one that kept nDCG@10 at
 * BM25's level (RRF at w 0.5 lost 0.22 on average). */
void fuse_opts_default(fuse_opts *o)
{
    o->method = FUSE_WEIGHTED;
    o->rrf_k = 60;
    o->dense_weight = -1;
}

float fuse_weight(const fuse_opts *o)
{
    return o->dense_weight >= 0 ? o->dense_weight : o->method == FUSE_RRF ? 0.5f : 0.05f;
}

void hybrid_opts_default(hybrid_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = SEARCH_MODE_BM25;
    fuse_opts_default(&o->fuse);
    o->depth = 100;
    o->rerank_top = 20;
}

static cairn_status cfg_num(const store_config *c, const char *key, double lo, double hi, double *v)
{
    const char *s = store_config_get(c, "search", key);
    if (!s)
        return CAIRN_OK;
    char *e;
    double x = strtod(s, &e);
    if (e == s || *e || !(x >= lo && x <= hi))
        return cairn_fail(CAIRN_ERR_INVALID, "config [search] %s = %s: expected a number in [%g, %g]", key, s, lo, hi);
    *v = x;
    return CAIRN_OK;
}

cairn_status hybrid_opts_from_config(const store_config *c, hybrid_opts *o)
{
    const char *f = store_config_get(c, "search", "fusion");
    if (f && fuse_method_parse(f, &o->fuse.method) != CAIRN_OK)
        return cairn_fail_wrap(CAIRN_ERR_INVALID, "config [search] fusion");
    double k = o->fuse.rrf_k, w = o->fuse.dense_weight, d = (double)o->depth;
    CAIRN_TRY(cfg_num(c, "rrf_k", 0, 100000, &k));
    CAIRN_TRY(cfg_num(c, "dense_weight", 0, 1, &w));
    CAIRN_TRY(cfg_num(c, "depth", 1, 10000, &d));
    o->fuse.rrf_k = (float)k;
    o->fuse.dense_weight = (float)w;
    o->depth = (size_t)d;
    return CAIRN_OK;
}

typedef struct fz {
    uint64_t id;
    float score;
    uint32_t first;     /* position of first appearance: a's ranks, then b's */
} fz;

static int fz_cmp(const void *x, const void *y)
{
    const fz *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->first > b->first) - (a->first < b->first);
}

static int id_cmp(const void *x, const void *y)
{
    const fz *a = x, *b = y;
    return (a->id > b->id) - (a->id < b->id);
}

static void minmax(const fuse_item *l, size_t n, float *lo, float *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        *lo = fminf(*lo, l[i].score);
        *hi = fmaxf(*hi, l[i].score);
    }
}

cairn_status fuse_lists(const fuse_item *a, size_t na, const fuse_item *b, size_t nb, const fuse_opts *o,
                        fuse_item *out, size_t *n_out)
{
    *n_out = 0;
    size_t n = na + nb;
    if (!n)
        return CAIRN_OK;
    fz *z = cairn_calloc(n, sizeof *z);
    if (!z)
        return cairn_fail(CAIRN_ERR_NOMEM, "fusion: out of memory");
    float alo, ahi, blo, bhi;
    minmax(a, na, &alo, &ahi);
    minmax(b, nb, &blo, &bhi);
    float w = fuse_weight(o);
    for (size_t i = 0; i < n; i++) {
        bool in_a = i < na;
        const fuse_item *it = in_a ? &a[i] : &b[i - na];
        size_t rank = in_a ? i + 1 : i - na + 1;
        float s;
        if (o->method == FUSE_RRF) {
            /* weights 2(1 - w) and 2w: w = 0.5 is plain RRF */
            s = 2 * (in_a ? 1 - w : w) / (o->rrf_k + (float)rank);
        } else {
            float lo = in_a ? alo : blo, hi = in_a ? ahi : bhi;
            float norm = hi > lo ? (it->score - lo) / (hi - lo) : 1.0f;
            s = (in_a ? 1 - w : w) * norm;
        }
        z[i] = (fz){it->id, s, (uint32_t)i};
    }
    /* merge duplicates: sort by id, sum, keep the first position */
    qsort(z, n, sizeof *z, id_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && z[m - 1].id == z[i].id) {
            z[m - 1].score += z[i].score;
            if (z[i].first < z[m - 1].first)
                z[m - 1].first = z[i].first;
        } else {
            z[m++] = z[i];
        }
    }
    qsort(z, m, sizeof *z, fz_cmp);
    for (size_t i = 0; i < m; i++)
        out[i] = (fuse_item){z[i].id, z[i].score};
    *n_out = m;
    cairn_free(z);
    return CAIRN_OK;
}

typedef struct rr { float s; size_t i; } rr;
static int rr_cmp(const void *x, const void *y)
{
    const rr *a = x, *b = y;
    if (a->s != b->s)
        return a->s > b->s ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

cairn_status search_rerank(cairn_embedder *reranker, const char *query, search_results *r)
{
    if (r->n == 0)
        return CAIRN_OK;
    const char **docs = cairn_calloc(r->n, sizeof *docs);
    size_t *lens = cairn_calloc(r->n, sizeof *lens);
    float *sc = cairn_calloc(r->n, sizeof *sc);
    rr *ord = cairn_calloc(r->n, sizeof *ord);
    search_result *tmp = cairn_calloc(r->n, sizeof *tmp);
    cairn_status st = CAIRN_OK;
    if (!docs || !lens || !sc || !ord || !tmp)
        st = cairn_fail(CAIRN_ERR_NOMEM, "rerank: out of memory");
    for (size_t i = 0; st == CAIRN_OK && i < r->n; i++) {
        docs[i] = r->r[i].hit.text;
        lens[i] = strlen(docs[i]);
    }
    if (st == CAIRN_OK)
        st = embedder_rerank(reranker, NULL, query, strlen(query), docs, lens, (int)r->n, sc, NULL);
    if (st == CAIRN_OK) {
        for (size_t i = 0; i < r->n; i++)
            ord[i] = (rr){sc[i], i};
        qsort(ord, r->n, sizeof *ord, rr_cmp);
        for (size_t i = 0; i < r->n; i++) {
            tmp[i] = r->r[ord[i].i];
            tmp[i].score = ord[i].s;
        }
        memcpy(r->r, tmp, r->n * sizeof *tmp);
    }
    cairn_free(docs);
    cairn_free(lens);
    cairn_free(sc);
    cairn_free(ord);
    cairn_free(tmp);
    return st;
}

cairn_status search_run_mode(search_engine *e, dense_engine *d, const char *query, const bm25_allowed *allowed,
                             size_t k, const hybrid_opts *o, search_results *out)
{
    memset(out, 0, sizeof *out);
    if (o->mode == SEARCH_MODE_BM25 && !o->reranker)
        return search_run(e, query, allowed, k, out);
    if (o->mode != SEARCH_MODE_BM25 && !d)
        return cairn_fail(CAIRN_ERR_INVALID, "%s search needs the store's embedding model", search_mode_name(o->mode));
    if (k > 100000)
        return cairn_fail(CAIRN_ERR_INVALID, "k = %zu is too large (at most 100000)", k);
    int64_t t0 = cairn_mono_ns();
    size_t want = k + 8;    /* room for chunks deleted since the indexes were read */
    if (o->reranker)
        want = CAIRN_MAX(want, o->rerank_top);
    size_t depth = CAIRN_MAX(o->depth, want);
    fuse_item *a = NULL, *b = NULL, *f = NULL;
    uint64_t *ids = NULL;
    float *scores = NULL;
    size_t na = 0, nb = 0, nf = 0;
    cairn_status st = CAIRN_OK;
    a = cairn_calloc(depth, sizeof *a);
    b = cairn_calloc(depth, sizeof *b);
    f = cairn_calloc(2 * depth, sizeof *f);
    ids = cairn_calloc(2 * depth, sizeof *ids);
    scores = cairn_calloc(2 * depth, sizeof *scores);
    if (!a || !b || !f || !ids || !scores)
        st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    if (st == CAIRN_OK && o->mode != SEARCH_MODE_DENSE) {
        bm25_hit *bh = cairn_calloc(depth, sizeof *bh);
        if (!bh)
            st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
        if (st == CAIRN_OK)
            st = search_bm25_hits(e, query, allowed, o->mode == SEARCH_MODE_BM25 ? want : depth, bh, &na);
        for (size_t i = 0; st == CAIRN_OK && i < na; i++)
            a[i] = (fuse_item){bh[i].chunk_id, bh[i].score};
        cairn_free(bh);
    }
    if (st == CAIRN_OK && o->mode != SEARCH_MODE_BM25) {
        vec_hit *vh = cairn_calloc(depth, sizeof *vh);
        if (!vh)
            st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
        if (st == CAIRN_OK)
            st = dense_search(d, query, allowed, o->mode == SEARCH_MODE_DENSE ? want : depth, vh, &nb);
        for (size_t i = 0; st == CAIRN_OK && i < nb; i++)
            b[i] = (fuse_item){vh[i].id, vh[i].score};
        cairn_free(vh);
    }
    if (st == CAIRN_OK) {
        if (o->mode == SEARCH_MODE_HYBRID) {
            st = fuse_lists(a, na, b, nb, &o->fuse, f, &nf);
        } else {
            const fuse_item *src = o->mode == SEARCH_MODE_DENSE ? b : a;
            nf = o->mode == SEARCH_MODE_DENSE ? nb : na;
            memcpy(f, src, nf * sizeof *f);
        }
    }
    for (size_t i = 0; st == CAIRN_OK && i < nf; i++) {
        ids[i] = f[i].id;
        scores[i] = f[i].score;
    }
    if (st == CAIRN_OK)
        st = search_assemble(e, query, ids, scores, nf, o->reranker ? CAIRN_MAX(k, o->rerank_top) : k, out);
    if (st == CAIRN_OK && o->reranker) {
        /* rescore the fused top N; the rest keep their fused order below them */
        search_results head = *out;
        head.n = CAIRN_MIN(out->n, o->rerank_top);
        st = search_rerank(o->reranker, query, &head);
        while (st == CAIRN_OK && out->n > k) {
            search_result *r = &out->r[--out->n];
            store_hit_free(&r->hit);
            cairn_free(r->snippet);
            cairn_free(r->hl);
        }
    }
    cairn_free(a);
    cairn_free(b);
    cairn_free(f);
    cairn_free(ids);
    cairn_free(scores);
    if (st != CAIRN_OK) {
        search_results_free(out);
        return st;
    }
    out->took_ms = (double)(cairn_mono_ns() - t0) / 1e6;
    return CAIRN_OK;
}
