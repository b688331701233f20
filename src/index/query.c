/*
 * query.c — top-k BM25 retrieval: MaxScore with block-max bounds, a direct
 * scorer for tiny allowed sets, and the exhaustive reference.
 *
 * MaxScore (Turtle & Flood): query terms are sorted by their score upper
 * bound; the longest prefix whose bounds sum to at most the current k-th
 * score (theta) is "non-essential": a document matching only those terms
 * cannot enter the top k, so candidates come from the essential lists only.
 * Each candidate is completed with the non-essential terms in decreasing
 * bound order, stopping as soon as score + remaining bounds <= theta. Before
 * decoding a non-essential block, its own (max tf, min doclen) bound is
 * tried first (block-max), which skips most decodes.
 *
 * Safety: bounds are computed with the same float expression as scores and
 * the BM25 tf part is monotone, so each bound is >= every score it covers;
 * bounds are further inflated by 1e-5 relative to absorb summation order.
 * Documents are visited in ascending chunk id and a tie never displaces an
 * earlier document, so pruning with "<= theta" is exact for the (score desc,
 * id asc) order.
 *
 * Cost: postings decoded ~ essential lists + touched non-essential blocks;
 * per-candidate work O(terms).
 */
#include "index/bm25.h"
#include "index/segment.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

seg *const *bm25__segs(const bm25_index *ix, size_t *n);
const uint64_t *bm25__dead(const bm25_index *ix, uint64_t *nbits);
void bm25__stats(const bm25_index *ix, uint64_t *n_docs, uint64_t *total_len);

#define END UINT32_MAX
#define MAX_QTERMS 1024

/* ---- query objects ---- */

void bm25_query_free(bm25_query *q)
{
    for (size_t i = 0; i < q->n; i++)
        cairn_free(q->terms[i].term);
    cairn_free(q->terms);
    memset(q, 0, sizeof *q);
}

cairn_status bm25_query_add(bm25_query *q, const char *term, size_t len, float weight)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->terms[i].len == len && !memcmp(q->terms[i].term, term, len)) {
            q->terms[i].weight += weight;
            return CAIRN_OK;
        }
    if (q->n >= MAX_QTERMS)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "query has more than %d distinct terms", MAX_QTERMS);
    if (q->n == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 16;
        bm25_qterm *t = cairn_reallocarray(q->terms, nc, sizeof *t);
        if (!t)
            return cairn_fail(CAIRN_ERR_NOMEM, "query: out of memory");
        q->terms = t;
        q->cap = nc;
    }
    char *s = cairn_strndup(term, len);
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "query: out of memory");
    q->terms[q->n++] = (bm25_qterm){s, len, weight};
    return CAIRN_OK;
}

static cairn_status q_on_term(void *ctx, const char *t, size_t len, uint32_t pos, size_t s, size_t e)
{
    return bm25_query_add(ctx, t, len, 1.0f);
}

cairn_status bm25_query_parse(bm25_query *q, text_analyzer *a, const char *text, size_t len)
{
    return text_analyze(a, text, len, q_on_term, q);
}

/* ---- shared scoring pieces ---- */

typedef struct scorer {
    float kb0, kb1;     /* norm(dl) = kb0 + kb1 * dl */
} scorer;

static inline float tf_part(float w, uint32_t tf, float norm)
{
    return w * (float)tf / ((float)tf + norm);
}

static inline float norm_of(const scorer *sc, uint32_t dl)
{
    return sc->kb0 + sc->kb1 * (float)dl;
}

typedef struct qstat {
    const bm25_qterm *qt;
    float w;            /* qweight * idf * (k1 + 1) */
} qstat;

/* Weights for the query's terms; returns how many have df > 0. */
static size_t prepare(const bm25_index *ix, const bm25_query *q, const bm25_params *p, scorer *sc, qstat *qs)
{
    /* N and avgdl count tombstoned chunks like df does (until a merge drops
     * them): with df <= N every idf is positive, which MaxScore's bounds
     * rely on. */
    uint64_t n_all, len_all;
    bm25__stats(ix, &n_all, &len_all);
    double N = (double)n_all;
    double avgdl = N > 0 ? (double)len_all / N : 1.0;
    if (avgdl <= 0)
        avgdl = 1.0;
    sc->kb0 = p->k1 * (1.0f - p->b);
    sc->kb1 = (float)(p->k1 * p->b / avgdl);
    size_t n = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (q->terms[i].weight <= 0)
            continue;
        uint64_t df = bm25_df(ix, q->terms[i].term, q->terms[i].len);
        if (df == 0)
            continue;
        double idf = log(1.0 + (N - (double)df + 0.5) / ((double)df + 0.5));
        if (!(idf > 0))
            continue;   /* cannot happen with df <= N; never let a weight go negative */
        qs[n].qt = &q->terms[i];
        qs[n].w = (float)(q->terms[i].weight * idf * (p->k1 + 1.0));
        n++;
    }
    return n;
}

/* ---- top-k heap: heap[0] is the worst kept hit ---- */

typedef struct topk {
    bm25_hit *h;
    size_t n, k;
} topk;

static inline bool worse(const bm25_hit *a, const bm25_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->chunk_id > b->chunk_id);
}

static void heap_push(topk *t, uint64_t id, float score)
{
    bm25_hit x = {id, score};
    if (t->n < t->k) {
        size_t i = t->n++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!worse(&x, &t->h[p]))
                break;
            t->h[i] = t->h[p];
            i = p;
        }
        t->h[i] = x;
        return;
    }
    if (!worse(&t->h[0], &x))
        return;
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const bm25_hit *best = &x;
        if (l < t->n && worse(&t->h[l], best))
            m = l, best = &t->h[l];
        if (r < t->n && worse(&t->h[r], best))
            m = r;
        if (m == i)
            break;
        t->h[i] = t->h[m];
        i = m;
    }
    t->h[i] = x;
}

static inline float theta_of(const topk *t)
{
    return t->n < t->k ? -1.0f : t->h[0].score;
}

static int cmp_hits(const void *a, const void *b)
{
    const bm25_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->chunk_id < y->chunk_id ? -1 : x->chunk_id > y->chunk_id;
}

/* ---- filters: allowed set and tombstones ---- */

typedef struct filt {
    const uint64_t *allow;  /* NULL = all */
    uint64_t allow_nbits;
    const uint64_t *dead;   /* NULL = none */
    uint64_t dead_nbits;
} filt;

static inline bool bit(const uint64_t *b, uint64_t nbits, uint64_t id)
{
    return id < nbits && (b[id >> 6] >> (id & 63)) & 1;
}

static inline bool ok(const filt *f, uint64_t id)
{
    if (f->allow && !bit(f->allow, f->allow_nbits, id))
        return false;
    return !f->dead || !bit(f->dead, f->dead_nbits, id);
}

/* Smallest allowed, live id >= id (UINT64_MAX if none); needs f->allow. */
static uint64_t next_ok(const filt *f, uint64_t id)
{
    while (id < f->allow_nbits) {
        uint64_t w = f->allow[id >> 6] >> (id & 63);
        if (!w) {
            id = (id | 63) + 1;
            continue;
        }
        id += (uint64_t)__builtin_ctzll(w);
        if (!f->dead || !bit(f->dead, f->dead_nbits, id))
            return id;
        id++;
    }
    return UINT64_MAX;
}

/* ---- posting cursors ---- */

typedef struct cursor {
    const seg *s;
    uint32_t b0, nb;        /* term's first block, block count */
    uint32_t bi;            /* current block (relative) */
    uint32_t sbi;           /* shallow block (relative, >= bi) */
    uint32_t n, i;          /* decoded postings in block, position */
    uint32_t doc;           /* current local doc or END */
    float w, ub;
    uint32_t docs[SEG_BLOCK], tfs[SEG_BLOCK];
} cursor;

typedef struct run {
    const scorer *sc;
    uint64_t decoded;
    bool corrupt;
    const seg *bad;
} run;

static void cur_decode(run *r, cursor *c)
{
    uint32_t prev = c->bi ? c->s->blocks[c->b0 + c->bi - 1].last_doc : UINT32_MAX;
    c->n = seg_decode_block(c->s, c->b0 + c->bi, prev, c->docs, c->tfs);
    c->i = 0;
    r->decoded += c->n;
    if (c->n == 0) {
        r->corrupt = true;
        r->bad = c->s;
        c->doc = END;
        c->bi = c->nb;
        return;
    }
    c->doc = c->docs[0];
}

static inline float block_ub(const run *r, const cursor *c, uint32_t b)
{
    const seg_block *bl = &c->s->blocks[c->b0 + b];
    return tf_part(c->w, bl->max_tf, norm_of(r->sc, bl->min_dl)) * 1.00001f + 1e-6f;
}

static void cur_init(run *r, cursor *c, const seg *s, int64_t t, float w)
{
    c->s = s;
    c->b0 = s->terms[t].first_block;
    c->nb = s->terms[t].n_blocks;
    c->bi = c->sbi = 0;
    c->w = w;
    c->ub = 0;
    for (uint32_t b = 0; b < c->nb; b++) {
        float u = block_ub(r, c, b);
        if (u > c->ub)
            c->ub = u;
    }
    cur_decode(r, c);
}

static inline void cur_next(run *r, cursor *c)
{
    if (++c->i < c->n) {
        c->doc = c->docs[c->i];
        return;
    }
    if (++c->bi >= c->nb) {
        c->doc = END;
        return;
    }
    if (c->sbi < c->bi)
        c->sbi = c->bi;
    cur_decode(r, c);
}

/* Block (relative) whose range may hold `target`, without decoding; nb = past the end. */
static inline uint32_t cur_shallow(cursor *c, uint32_t target)
{
    if (c->sbi < c->bi)
        c->sbi = c->bi;
    const seg_block *bl = c->s->blocks + c->b0;
    if (c->sbi < c->nb && bl[c->sbi].last_doc >= target)
        return c->sbi;
    /* gallop then binary search */
    uint32_t lo = c->sbi, step = 1, hi = lo;
    while (hi < c->nb && bl[hi].last_doc < target) {
        lo = hi;
        hi += step;
        step *= 2;
    }
    if (hi > c->nb)
        hi = c->nb;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (bl[mid].last_doc < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    c->sbi = lo;
    return lo;
}

static void cur_seek(run *r, cursor *c, uint32_t target)
{
    if (c->doc >= target)
        return;
    if (c->docs[c->n - 1] < target) {
        uint32_t b = cur_shallow(c, target);
        if (b >= c->nb) {
            c->doc = END;
            c->bi = c->nb;
            return;
        }
        c->bi = b;
        cur_decode(r, c);
        if (c->doc == END)
            return;
    }
    while (c->docs[c->i] < target)
        c->i++;
    c->doc = c->docs[c->i];
}

static int cmp_ub(const void *a, const void *b)
{
    const cursor *x = *(cursor *const *)a, *y = *(cursor *const *)b;
    return x->ub < y->ub ? -1 : x->ub > y->ub;
}

static void maxscore_segment(run *r, const seg *s, cursor **c, size_t m, const filt *f, topk *t, uint64_t *cands)
{
    qsort(c, m, sizeof *c, cmp_ub);
    float prefix[MAX_QTERMS];
    float acc = 0;
    for (size_t j = 0; j < m; j++)
        prefix[j] = acc += c[j]->ub;
    float theta = theta_of(t);
    size_t e = 0;
    while (e < m && prefix[e] <= theta)
        e++;
    const uint64_t base = s->h.base;
    const bool filtered = f->allow || f->dead;
    while (e < m) {
        uint32_t d = END;
        for (size_t j = e; j < m; j++)
            if (c[j]->doc < d)
                d = c[j]->doc;
        if (d == END)
            break;
        if (filtered && !ok(f, base + d)) {
            uint64_t nd = d + 1;
            if (f->allow) {
                uint64_t g = next_ok(f, base + d + 1);
                nd = g == UINT64_MAX || g - base >= END ? END : g - base;
            }
            for (size_t j = e; j < m; j++)
                if (nd == END) {
                    c[j]->doc = END;
                } else {
                    cur_seek(r, c[j], (uint32_t)nd);
                }
            continue;
        }
        (*cands)++;
        float norm = norm_of(r->sc, s->doclen[d]);
        float sc = 0;
        for (size_t j = e; j < m; j++)
            if (c[j]->doc == d) {
                sc += tf_part(c[j]->w, c[j]->tfs[c[j]->i], norm);
                cur_next(r, c[j]);
            }
        bool pruned = false;
        for (size_t jj = e; jj-- > 0;) {
            if (sc + prefix[jj] <= theta) {
                pruned = true;
                break;
            }
            cursor *cj = c[jj];
            if (cj->doc > d)
                continue;   /* already past d (or done): no posting for d */
            uint32_t b = cur_shallow(cj, d);
            if (b >= cj->nb)
                continue;
            float rest = jj ? prefix[jj - 1] : 0;
            if (sc + block_ub(r, cj, b) + rest <= theta) {
                pruned = true;
                break;
            }
            cur_seek(r, cj, d);
            if (cj->doc == d)
                sc += tf_part(cj->w, cj->tfs[cj->i], norm);
        }
        if (pruned || sc <= theta)
            continue;
        heap_push(t, base + d, sc);
        float nt = theta_of(t);
        if (nt > theta) {
            theta = nt;
            while (e < m && prefix[e] <= theta)
                e++;
        }
    }
}

static void direct_segment(run *r, const seg *s, cursor **c, size_t m, const filt *f, topk *t, uint64_t *cands)
{
    float ubsum = 0;
    for (size_t j = 0; j < m; j++)
        ubsum += c[j]->ub;
    const uint64_t base = s->h.base;
    for (uint64_t id = next_ok(f, base); id != UINT64_MAX && id <= s->h.max_chunk; id = next_ok(f, id + 1)) {
        float theta = theta_of(t);
        if (ubsum <= theta)
            return;
        uint32_t d = (uint32_t)(id - base);
        if (s->doclen[d] == SEG_ABSENT)
            continue;
        (*cands)++;
        float norm = norm_of(r->sc, s->doclen[d]);
        float sc = 0;
        bool any = false;
        for (size_t j = 0; j < m; j++) {
            cur_seek(r, c[j], d);
            if (c[j]->doc == d) {
                sc += tf_part(c[j]->w, c[j]->tfs[c[j]->i], norm);
                any = true;
            }
        }
        if (any && sc > theta)
            heap_push(t, id, sc);
    }
}

static cairn_status search(const bm25_index *ix, const bm25_query *q, const bm25_params *p,
                           const bm25_allowed *allowed, size_t k, bm25_hit *out, size_t *n_out,
                           bm25_search_stats *stats, bool exhaustive)
{
    *n_out = 0;
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (k == 0 || q->n == 0 || bm25_n_docs(ix) == 0)
        return CAIRN_OK;
    if (q->n > MAX_QTERMS)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "query has too many terms");
    qstat qs[MAX_QTERMS];
    scorer sc;
    size_t nq = prepare(ix, q, p, &sc, qs);
    if (nq == 0)
        return CAIRN_OK;
    size_t n_segs;
    seg *const *segs = bm25__segs(ix, &n_segs);
    filt f = {0};
    if (allowed) {
        f.allow = allowed->bits;
        f.allow_nbits = allowed->bits ? allowed->nbits : 0;
        if (!f.allow) {
            static const uint64_t none = 0;     /* an empty set */
            f.allow = &none;
            f.allow_nbits = 0;
        }
    }
    f.dead = bm25__dead(ix, &f.dead_nbits);
    topk t = {out, 0, k};
    run r = {.sc = &sc};
    cursor *cur = cairn_calloc(nq, sizeof *cur);
    cursor **cp = cairn_calloc(nq, sizeof *cp);
    float *acc = NULL;
    uint8_t *hit = NULL;
    cairn_status st = CAIRN_OK;
    if (!cur || !cp) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
        goto done;
    }
    /* Direct scoring when the allowed set is much smaller than the postings. */
    bool direct = false;
    if (f.allow && !exhaustive) {
        uint64_t allowed_n = 0, postings = 0;
        for (uint64_t i = 0; i < (f.allow_nbits + 63) / 64; i++)
            allowed_n += (uint64_t)__builtin_popcountll(f.allow[i]);
        for (size_t i = 0; i < nq; i++)
            postings += bm25_df(ix, qs[i].qt->term, qs[i].qt->len);
        direct = allowed_n * nq * 8 < postings;
    }
    if (stats)
        stats->direct = direct;
    for (size_t si = 0; si < n_segs && st == CAIRN_OK; si++) {
        const seg *s = segs[si];
        size_t m = 0;
        if (exhaustive) {
            acc = cairn_calloc(s->h.n_span ? s->h.n_span : 1, sizeof *acc);
            hit = cairn_calloc(s->h.n_span ? s->h.n_span : 1, 1);
            if (!acc || !hit) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
                break;
            }
        }
        for (size_t i = 0; i < nq; i++) {
            int64_t tid = seg_find(s, qs[i].qt->term, qs[i].qt->len);
            if (tid < 0)
                continue;
            if (exhaustive) {
                seg_postings it;
                seg_postings_init(&it, s, tid);
                for (uint32_t n;;) {
                    if (seg_postings_next(&it, cur[0].docs, cur[0].tfs, &n) != CAIRN_OK) {
                        r.corrupt = true;
                        r.bad = s;
                        break;
                    }
                    if (n == 0)
                        break;
                    for (uint32_t j = 0; j < n; j++) {
                        uint32_t d = cur[0].docs[j];
                        acc[d] += tf_part(qs[i].w, cur[0].tfs[j], norm_of(&sc, s->doclen[d]));
                        hit[d] = 1;
                    }
                }
                continue;
            }
            cur_init(&r, &cur[m], s, tid, qs[i].w);
            cp[m] = &cur[m];
            m++;
        }
        if (exhaustive) {
            for (uint32_t d = 0; d < s->h.n_span; d++)
                if (hit[d] && ok(&f, s->h.base + d))
                    heap_push(&t, s->h.base + d, acc[d]);
            cairn_free(acc);
            cairn_free(hit);
            acc = NULL;
            hit = NULL;
        } else if (m > 0) {
            uint64_t cands = 0;
            if (direct)
                direct_segment(&r, s, cp, m, &f, &t, &cands);
            else
                maxscore_segment(&r, s, cp, m, &f, &t, &cands);
            if (stats)
                stats->candidates += cands;
        }
        if (r.corrupt)
            st = cairn_fail(CAIRN_ERR_CORRUPT, "%s: corrupt postings; delete the index directory to rebuild it",
                            r.bad->path);
    }
done:
    cairn_free(cur);
    cairn_free(cp);
    cairn_free(acc);
    cairn_free(hit);
    if (stats)
        stats->postings_decoded = r.decoded;
    if (st != CAIRN_OK)
        return st;
    qsort(out, t.n, sizeof *out, cmp_hits);
    *n_out = t.n;
    return CAIRN_OK;
}

cairn_status bm25_search(const bm25_index *ix, const bm25_query *q, const bm25_params *p,
                         const bm25_allowed *allowed, size_t k, bm25_hit *out, size_t *n_out,
                         bm25_search_stats *stats)
{
    return search(ix, q, p, allowed, k, out, n_out, stats, false);
}

cairn_status bm25_search_exhaustive(const bm25_index *ix, const bm25_query *q, const bm25_params *p,
                                    const bm25_allowed *allowed, size_t k, bm25_hit *out, size_t *n_out)
{
    return search(ix, q, p, allowed, k, out, n_out, NULL, true);
}

/* ---- document-level ("grouped") scoring ---- */

struct bm25_groups {
    const int32_t *of;      /* chunk id -> group, -1 = none (borrowed) */
    uint64_t n_ids;
    uint32_t n;             /* groups */
    uint64_t *len;          /* [n] summed live chunk lengths */
    uint64_t n_live;        /* groups with a live chunk */
    double avg_len;
    /* scratch, reused across queries */
    float *tf, *score, *best;
    uint64_t *best_chunk;
    uint32_t *touched, *term_touched;
    uint8_t *seen;
};

void bm25_groups_free(bm25_groups *g)
{
    if (!g)
        return;
    cairn_free(g->len);
    cairn_free(g->tf);
    cairn_free(g->score);
    cairn_free(g->best);
    cairn_free(g->best_chunk);
    cairn_free(g->touched);
    cairn_free(g->term_touched);
    cairn_free(g->seen);
    cairn_free(g);
}

cairn_status bm25_groups_new(const bm25_index *ix, const int32_t *of, uint64_t n_ids, uint32_t n_groups,
                             bm25_groups **out)
{
    *out = NULL;
    bm25_groups *g = cairn_calloc(1, sizeof *g);
    if (!g)
        return cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    size_t n = n_groups ? n_groups : 1;
    g->of = of;
    g->n_ids = n_ids;
    g->n = n_groups;
    g->len = cairn_calloc(n, sizeof *g->len);
    g->tf = cairn_calloc(n, sizeof *g->tf);
    g->score = cairn_calloc(n, sizeof *g->score);
    g->best = cairn_calloc(n, sizeof *g->best);
    g->best_chunk = cairn_calloc(n, sizeof *g->best_chunk);
    g->touched = cairn_calloc(n, sizeof *g->touched);
    g->term_touched = cairn_calloc(n, sizeof *g->term_touched);
    g->seen = cairn_calloc(n, 1);
    if (!g->len || !g->tf || !g->score || !g->best || !g->best_chunk || !g->touched || !g->term_touched || !g->seen) {
        bm25_groups_free(g);
        return cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    }
    uint64_t total = 0;
    for (uint64_t id = 0; id < n_ids; id++) {
        int32_t d = of[id];
        if (d < 0 || (uint32_t)d >= n_groups)
            continue;
        uint32_t dl = bm25_doclen(ix, id);
        if (dl == 0 && !bm25_is_live(ix, id))
            continue;
        if (!g->seen[d]) {
            g->seen[d] = 1;
            g->n_live++;
        }
        g->len[d] += dl;
        total += dl;
    }
    memset(g->seen, 0, n);
    g->avg_len = g->n_live ? (double)total / (double)g->n_live : 1.0;
    if (g->avg_len <= 0)
        g->avg_len = 1.0;
    *out = g;
    return CAIRN_OK;
}

uint64_t bm25_groups_live(const bm25_groups *g) { return g->n_live; }

static int cmp_ghits(const void *a, const void *b)
{
    const bm25_group_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->best_chunk < y->best_chunk ? -1 : x->best_chunk > y->best_chunk;
}

cairn_status bm25_search_groups(const bm25_index *ix, bm25_groups *g, const bm25_query *q, const bm25_params *p,
                                float chunk_weight, const bm25_allowed *allowed, size_t k, bm25_group_hit *out,
                                size_t *n_out)
{
    *n_out = 0;
    if (k == 0 || q->n == 0 || g->n_live == 0)
        return CAIRN_OK;
    if (q->n > MAX_QTERMS)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "query has too many terms");
    /* Chunk-level weights (for the best chunk of each group). */
    qstat qs[MAX_QTERMS];
    scorer sc;
    size_t nq = prepare(ix, q, p, &sc, qs);
    if (nq == 0)
        return CAIRN_OK;
    const double N = (double)g->n_live;
    const float gkb0 = p->k1 * (1.0f - p->b), gkb1 = (float)(p->k1 * p->b / g->avg_len);
    size_t n_segs;
    seg *const *segs = bm25__segs(ix, &n_segs);
    filt f = {0};
    if (allowed) {
        static const uint64_t none = 0;
        f.allow = allowed->bits ? allowed->bits : &none;
        f.allow_nbits = allowed->bits ? allowed->nbits : 0;
    }
    f.dead = bm25__dead(ix, &f.dead_nbits);
    /* Document statistics (tf, length, df, N) count every live chunk; the
     * allowed set decides which documents may be returned (those with an
     * allowed chunk matching the query), as the chunk search keeps N and df
     * global under a filter. */
    filt live = {.dead = f.dead, .dead_nbits = f.dead_nbits};
    uint32_t docs[SEG_BLOCK], tfs[SEG_BLOCK];
    float *cacc = NULL;     /* per chunk of the current segment */
    uint32_t n_touched = 0;
    cairn_status st = CAIRN_OK;
    /* Group scores need each term's group df before they can be added, so
     * terms go outermost; chunk scores accumulate per segment afterwards. */
    for (size_t i = 0; i < nq && st == CAIRN_OK; i++) {
        uint32_t nt = 0;
        for (size_t si = 0; si < n_segs && st == CAIRN_OK; si++) {
            const seg *s = segs[si];
            int64_t tid = seg_find(s, qs[i].qt->term, qs[i].qt->len);
            if (tid < 0)
                continue;
            seg_postings it;
            seg_postings_init(&it, s, tid);
            uint32_t n;
            while ((st = seg_postings_next(&it, docs, tfs, &n)) == CAIRN_OK && n) {
                for (uint32_t j = 0; j < n; j++) {
                    uint64_t id = s->h.base + docs[j];
                    if (id >= g->n_ids || g->of[id] < 0 || (uint32_t)g->of[id] >= g->n || !ok(&live, id))
                        continue;
                    uint32_t d = (uint32_t)g->of[id];
                    if (g->tf[d] == 0)
                        g->term_touched[nt++] = d;
                    g->tf[d] += (float)tfs[j];
                }
            }
        }
        double df = nt;
        double idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
        float w = (float)(qs[i].qt->weight * (idf > 0 ? idf : 0) * (p->k1 + 1.0));
        for (uint32_t j = 0; j < nt; j++) {
            uint32_t d = g->term_touched[j];
            float norm = gkb0 + gkb1 * (float)g->len[d];
            if (!g->seen[d]) {
                g->seen[d] = 1;
                g->touched[n_touched++] = d;
                g->best[d] = 0;
                g->best_chunk[d] = 0;
            }
            g->score[d] += tf_part(w, (uint32_t)g->tf[d], norm);
            g->tf[d] = 0;
        }
    }
    /* Best chunk per group (chunk-level BM25), when it takes part. */
    for (size_t si = 0; si < n_segs && st == CAIRN_OK; si++) {
        const seg *s = segs[si];
        cairn_free(cacc);
        cacc = cairn_calloc(s->h.n_span ? s->h.n_span : 1, sizeof *cacc);
        if (!cacc) {
            st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
            break;
        }
        bool any = false;
        for (size_t i = 0; i < nq && st == CAIRN_OK; i++) {
            int64_t tid = seg_find(s, qs[i].qt->term, qs[i].qt->len);
            if (tid < 0)
                continue;
            any = true;
            seg_postings it;
            seg_postings_init(&it, s, tid);
            uint32_t n;
            while ((st = seg_postings_next(&it, docs, tfs, &n)) == CAIRN_OK && n) {
                for (uint32_t j = 0; j < n; j++)
                    cacc[docs[j]] += tf_part(qs[i].w, tfs[j], norm_of(&sc, s->doclen[docs[j]]));
            }
        }
        if (!any)
            continue;
        for (uint32_t l = 0; l < s->h.n_span; l++) {
            if (cacc[l] <= 0)
                continue;
            uint64_t id = s->h.base + l;
            if (id >= g->n_ids || g->of[id] < 0 || (uint32_t)g->of[id] >= g->n || !ok(&f, id))
                continue;
            uint32_t d = (uint32_t)g->of[id];
            if (cacc[l] > g->best[d] || (cacc[l] == g->best[d] && id < g->best_chunk[d])) {
                g->best[d] = cacc[l];
                g->best_chunk[d] = id;
            }
        }
    }
    cairn_free(cacc);
    /* Top k groups; scratch is reset for the next query. */
    topk t = {NULL, 0, k};
    bm25_hit *heap = cairn_calloc(k, sizeof *heap);
    if (!heap && st == CAIRN_OK)
        st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    t.h = heap;
    for (uint32_t j = 0; j < n_touched; j++) {
        uint32_t d = g->touched[j];
        if (st == CAIRN_OK && g->best_chunk[d])
            heap_push(&t, d, g->score[d] + chunk_weight * g->best[d]);
        g->seen[d] = 0;
        g->score[d] = 0;
    }
    if (st == CAIRN_OK) {
        for (size_t i = 0; i < t.n; i++) {
            uint32_t d = (uint32_t)heap[i].chunk_id;
            out[i] = (bm25_group_hit){d, heap[i].score, g->best_chunk[d]};
        }
        qsort(out, t.n, sizeof *out, cmp_ghits);
        *n_out = t.n;
    }
    cairn_free(heap);
    return st;
}
