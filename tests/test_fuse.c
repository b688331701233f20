/*
 * test_fuse.c — fusion of a BM25 and a dense ranked list (search/hybrid.h):
 * RRF and the normalized weighted sum against a direct evaluation of their
 * formulas over random lists with overlaps; edge cases (empty lists, equal
 * scores, one list only); allocation failures.
 */
#include "search/hybrid.h"
#include "t.h"

static uint64_t rs = 12345;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* the formula for one id, straight from the definitions */
static double ref_score(uint64_t id, const fuse_item *a, size_t na, const fuse_item *b, size_t nb, const fuse_opts *o)
{
    double s = 0, w = fuse_weight(o);
    double alo = 1e30, ahi = -1e30, blo = 1e30, bhi = -1e30;
    for (size_t i = 0; i < na; i++) alo = fmin(alo, a[i].score), ahi = fmax(ahi, a[i].score);
    for (size_t i = 0; i < nb; i++) blo = fmin(blo, b[i].score), bhi = fmax(bhi, b[i].score);
    for (size_t i = 0; i < na; i++)
        if (a[i].id == id)
            s += o->method == FUSE_RRF ? 2 * (1 - w) / (o->rrf_k + i + 1)
                                       : (1 - w) * (ahi > alo ? (a[i].score - alo) / (ahi - alo) : 1);
    for (size_t i = 0; i < nb; i++)
        if (b[i].id == id)
            s += o->method == FUSE_RRF ? 2 * w / (o->rrf_k + i + 1)
                                       : w * (bhi > blo ? (b[i].score - blo) / (bhi - blo) : 1);
    return s;
}

static size_t make_list(fuse_item *l, size_t n, uint64_t idspace, float base)
{
    size_t m = 0;
    float s = base;
    while (m < n) {
        uint64_t id = rnd() % idspace;
        bool dup = false;
        for (size_t j = 0; j < m; j++)
            dup |= l[j].id == id;
        if (dup)
            continue;
        s -= (float)(rnd() % 1000) / 997.0f + 0.001f;
        l[m++] = (fuse_item){id, s};
    }
    return m;
}

static void test_random(void)
{
    for (int it = 0; it < 400; it++) {
        fuse_item a[60], b[60], out[120];
        size_t na = make_list(a, rnd() % 60, 100, 30), nb = make_list(b, rnd() % 60, 100, 1);
        fuse_opts o;
        fuse_opts_default(&o);
        o.method = it & 1 ? FUSE_WEIGHTED : FUSE_RRF;
        o.rrf_k = (float)(rnd() % 100);
        o.dense_weight = it % 7 == 0 ? -1 : (float)(rnd() % 11) / 10;
        size_t n;
        CHECK_OK(fuse_lists(a, na, b, nb, &o, out, &n));
        /* every id of either list exactly once */
        size_t distinct = 0;
        for (size_t i = 0; i < na + nb; i++) {
            uint64_t id = i < na ? a[i].id : b[i - na].id;
            bool seen = false;
            for (size_t j = 0; j < i; j++)
                seen |= (j < na ? a[j].id : b[j - na].id) == id;
            distinct += !seen;
        }
        CHECK_EQ_INT(n, distinct);
        for (size_t i = 0; i < n; i++) {
            CHECK_NEAR(out[i].score, ref_score(out[i].id, a, na, b, nb, &o), 1e-5);
            if (i)
                CHECK(out[i - 1].score >= out[i].score);
            for (size_t j = 0; j < i; j++)
                CHECK(out[j].id != out[i].id);
        }
    }
}

static void test_edges(void)
{
    fuse_opts o;
    fuse_opts_default(&o);
    CHECK(o.method == FUSE_WEIGHTED && fuse_weight(&o) == 0.05f);
    o.method = FUSE_RRF;
    CHECK(fuse_weight(&o) == 0.5f);
    fuse_item out[8];
    size_t n = 99;
    CHECK_OK(fuse_lists(NULL, 0, NULL, 0, &o, out, &n));
    CHECK_EQ_INT(n, 0);
    fuse_item a[3] = {{7, 3}, {5, 2}, {9, 1}};
    /* one list only keeps its order */
    CHECK_OK(fuse_lists(a, 3, NULL, 0, &o, out, &n));
    CHECK(n == 3 && out[0].id == 7 && out[1].id == 5 && out[2].id == 9);
    /* an item in both lists beats items in one (RRF, equal weights) */
    fuse_item b[3] = {{9, 0.9f}, {1, 0.8f}, {2, 0.7f}};
    CHECK_OK(fuse_lists(a, 3, b, 3, &o, out, &n));
    CHECK(n == 5 && out[0].id == 9);
    /* equal fused scores: the BM25 list's order first */
    fuse_item c[1] = {{4, 1}};
    fuse_item d[1] = {{8, 1}};
    CHECK_OK(fuse_lists(c, 1, d, 1, &o, out, &n));
    CHECK(n == 2 && out[0].id == 4 && out[1].id == 8);
    /* weight 0: dense contributes nothing in the weighted sum */
    o.method = FUSE_WEIGHTED;
    o.dense_weight = 0;
    CHECK_OK(fuse_lists(a, 3, b, 3, &o, out, &n));
    CHECK(out[0].id == 7 && out[0].score == 1.0f);
    search_mode m;
    fuse_method f;
    CHECK(search_mode_parse("dense", &m) == CAIRN_OK && m == SEARCH_MODE_DENSE);
    CHECK(search_mode_parse("vector", &m) == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), "bm25, dense or hybrid") != NULL);
    CHECK(fuse_method_parse("weighted", &f) == CAIRN_OK && f == FUSE_WEIGHTED);
    CHECK(fuse_method_parse("sum", &f) == CAIRN_ERR_INVALID);
}

static void test_alloc(void)
{
    fuse_item a[3] = {{7, 3}, {5, 2}, {9, 1}}, out[6];
    fuse_opts o;
    fuse_opts_default(&o);
    size_t n;
    cairn_alloc_fail_after(0, false);
    CHECK(fuse_lists(a, 3, a, 3, &o, out, &n) == CAIRN_ERR_NOMEM);
    cairn_alloc_fail_after(-1, false);
}

int main(void)
{
    RUN(test_random);
    RUN(test_edges);
    RUN(test_alloc);
    return t_done();
}
