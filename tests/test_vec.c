/*
 * test_vec.c — the vector index: SIMD kernels against their scalar
 * references; HNSW recall@10 against the exact scan on clustered generated
 * data, unfiltered and with filters matching 50%, 1% and 0.1%, after
 * inserts, deletes and compaction (with floors that fail when the graph
 * degrades); strict filters (never fewer than k, never a disallowed id);
 * persistence (round trip, corrupt, truncated, foreign files); allocation
 * failures.
 */
#include "index/vec.h"
#include "kernels/quant.h"
#include "t.h"
#include <stdint.h>

#define DIM 48
#define K 10
#ifndef NOISE
#define NOISE 0.25f
#endif

/* Recall floors: measured values are printed; a change that drops below
 * these is a regression, not noise (the data and the build are seeded). */
#define FLOOR_UNFILTERED 0.92
#define FLOOR_FILTERED 0.95

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static float frand(void) { return (float)((rnd() >> 11) * (1.0 / 9007199254740992.0)); }
static float gauss(void)
{
    float u = frand() + 1e-7f, v = frand();
    return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v);
}

static void normalize(float *v, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)v[i] * v[i];
    float inv = s > 0 ? (float)(1 / sqrt(s)) : 0;
    for (int i = 0; i < d; i++)
        v[i] *= inv;
}

/* Clustered data: centres on the sphere, points = centre + noise, normalised. */
static float *clustered(size_t n, int d, int nclusters, float noise, float *centres)
{
    float *v = malloc(n * d * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + (rnd() % nclusters) * d;
        for (int j = 0; j < d; j++)
            v[i * d + j] = c[j] + noise * gauss();
        normalize(v + i * d, d);
    }
    return v;
}

static float *make_centres(int nc, int d)
{
    float *c = malloc(nc * d * sizeof *c);
    for (int i = 0; i < nc; i++) {
        for (int j = 0; j < d; j++)
            c[i * d + j] = gauss();
        normalize(c + i * d, d);
    }
    return c;
}

static void test_kernels(void)
{
    for (size_t n = 1; n <= 300; n += (n < 40 ? 1 : 37)) {
        float a[300], b[300];
        int8_t qa[320], qb[320];
        for (size_t i = 0; i < n; i++) {
            a[i] = gauss();
            b[i] = gauss();
        }
        float r = vec_dot_f32_ref(a, b, n), s = vec_dot_f32_avx2(a, b, n);
        double mag = 0;
        for (size_t i = 0; i < n; i++)
            mag += fabs((double)a[i] * b[i]);
        CHECKF(fabs(r - s) <= 1e-5 * mag + 1e-6, "f32 n=%zu ref %g avx2 %g", n, r, s);
        size_t dp = (n + 31) / 32 * 32;
        float sa = vec_quantize_i8(a, n, qa, dp), sb = vec_quantize_i8(b, n, qb, dp);
        CHECK_EQ_INT(vec_dot_i8_ref(qa, qb, dp), vec_dot_i8_avx2(qa, qb, dp));
        CHECK_EQ_INT(vec_dot_i8_ref(qa, qb, n), vec_dot_i8_avx2(qa, qb, n));   /* scalar tail */
        /* quantization error: each component within half a step */
        for (size_t i = 0; i < n; i++)
            CHECK(fabsf(qa[i] * sa - a[i]) <= sa * 0.5f + 1e-6f);
        for (size_t i = n; i < dp; i++)
            CHECK(qa[i] == 0 && qb[i] == 0);
        CHECK(sb > 0);
    }
    /* extremes: all +-127 cannot overflow the int16 pair sums */
    int8_t x[64], y[64];
    for (int i = 0; i < 64; i++) {
        x[i] = (i & 1) ? -127 : 127;
        y[i] = (i & 2) ? -127 : 127;
    }
    CHECK_EQ_INT(vec_dot_i8_ref(x, y, 64), vec_dot_i8_avx2(x, y, 64));
    for (int i = 0; i < 64; i++)
        y[i] = x[i];
    CHECK_EQ_INT(vec_dot_i8_avx2(x, y, 64), 64 * 127 * 127);
    float z[8] = {0};
    int8_t qz[32];
    CHECK(vec_quantize_i8(z, 8, qz, 32) == 0);
}

/* Reference top-k by brute force in double precision over the allowed
 * live set (the test's own code, not the index's exact path). */
typedef struct ref_hit { uint64_t id; double s; } ref_hit;
static int ref_cmp(const void *a, const void *b)
{
    const ref_hit *x = a, *y = b;
    return x->s > y->s ? -1 : x->s < y->s ? 1 : (x->id > y->id) - (x->id < y->id);
}

typedef struct dataset {
    size_t n;
    float *v;           /* vector of id i at v + i*DIM (ids 1..n -> row id-1) */
    bool *live;
} dataset;

static bool allowed_has(const bm25_allowed *a, uint64_t id)
{
    return !a || (id < a->nbits && (a->bits[id >> 6] >> (id & 63)) & 1);
}

static size_t ref_topk(const dataset *ds, const float *q, const bm25_allowed *a, size_t k, ref_hit *out)
{
    ref_hit *all = malloc(ds->n * sizeof *all);
    size_t m = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (!ds->live[i] || !allowed_has(a, i + 1))
            continue;
        double s = 0;
        for (int j = 0; j < DIM; j++)
            s += (double)q[j] * ds->v[i * DIM + j];
        all[m++] = (ref_hit){i + 1, s};
    }
    qsort(all, m, sizeof *all, ref_cmp);
    size_t r = m < k ? m : k;
    memcpy(out, all, r * sizeof *out);
    free(all);
    return r;
}

/* Recall@K of graph search over nq queries; also checks the strict-filter
 * contract on every query (full k, only allowed live ids, exact path equal
 * to the reference). */
static double recall(vec_index *ix, const dataset *ds, const float *qs, int nq, const bm25_allowed *a,
                     vec_search_mode mode, int *n_exact)
{
    double hit = 0, tot = 0;
    *n_exact = 0;
    for (int qi = 0; qi < nq; qi++) {
        const float *q = qs + qi * DIM;
        ref_hit ref[K];
        size_t nref = ref_topk(ds, q, a, K, ref);
        vec_hit out[K];
        size_t n = 0;
        vec_search_stats st;
        vec_search_opts o = {.allowed = a, .mode = mode};
        CHECK_OK(vec_index_search(ix, q, K, &o, out, &n, &st));
        CHECK_EQ_INT(n, nref);
        *n_exact += st.exact;
        for (size_t i = 0; i < n; i++) {
            CHECK(allowed_has(a, out[i].id));
            CHECK(out[i].id >= 1 && out[i].id <= ds->n && ds->live[out[i].id - 1]);
            if (i)
                CHECK(out[i - 1].score >= out[i].score);
        }
        if (st.exact) {
            /* the exact path is exact: same ids as the reference (scores
             * within float rounding; ties are not expected in random data) */
            for (size_t i = 0; i < n; i++)
                CHECKF(out[i].id == ref[i].id || fabs(out[i].score - ref[i].s) < 1e-5, "exact rank %zu", i);
        }
        for (size_t i = 0; i < nref; i++) {
            tot++;
            for (size_t j = 0; j < n; j++)
                if (out[j].id == ref[i].id) {
                    hit++;
                    break;
                }
        }
    }
    return tot ? hit / tot : 1;
}

typedef struct bits { uint64_t *w; bm25_allowed a; } bits;
static void bits_random(bits *b, size_t n, double frac)
{
    size_t words = (n + 1 + 63) / 64;
    b->w = calloc(words, 8);
    for (size_t id = 1; id <= n; id++)
        if (frand() < frac)
            b->w[id >> 6] |= 1ull << (id & 63);
    b->a = (bm25_allowed){b->w, n + 1};
}

static void test_recall(void)
{
    const size_t N = 12000, EXTRA = 3000;
    const int NQ = 150;
    float *cent = make_centres(60, DIM);
    dataset ds = {.n = N + EXTRA};
    ds.v = clustered(ds.n, DIM, 60, NOISE, cent);
    ds.live = calloc(ds.n, 1);
    float *qs = clustered(NQ, DIM, 60, NOISE, cent);
    vec_index *ix;
    vec_params p;
    vec_params_default(&p);
    CHECK_OK(vec_index_new(DIM, &p, &ix));
    for (size_t i = 0; i < N; i++) {
        CHECK_OK(vec_index_add(ix, i + 1, ds.v + i * DIM));
        ds.live[i] = true;
    }
    CHECK_EQ_INT(vec_index_count(ix), N);
    int ne;
    double r = recall(ix, &ds, qs, NQ, NULL, VEC_SEARCH_GRAPH, &ne);
    fprintf(stderr, "  recall@10 unfiltered %.4f\n", r);
    CHECK(r >= FLOOR_UNFILTERED);
    CHECK_EQ_INT(ne, 0);
    /* filters */
    double fr[3] = {0.5, 0.01, 0.001};
    for (int f = 0; f < 3; f++) {
        bits b;
        bits_random(&b, ds.n, fr[f]);
        double ra = recall(ix, &ds, qs, NQ, &b.a, VEC_SEARCH_AUTO, &ne);
        int na = ne;
        double rg = recall(ix, &ds, qs, NQ, &b.a, VEC_SEARCH_GRAPH, &ne);
        fprintf(stderr, "  filter %.1f%%: recall@10 auto %.4f (%d/%d exact), forced graph %.4f (%d fell back)\n",
                fr[f] * 100, ra, na, NQ, rg, ne);
        ne = na;
        CHECK(ra >= FLOOR_FILTERED);
        if (f == 0)
            CHECK(rg >= FLOOR_FILTERED);
        if (f >= 1)
            CHECK_EQ_INT(ne, NQ);    /* selective filters take the exact scan */
        free(b.w);
    }
    /* deletes: 30% tombstoned */
    for (size_t i = 0; i < N; i++) {
        if (frand() < 0.3) {
            bool found;
            CHECK_OK(vec_index_delete(ix, i + 1, &found));
            CHECK(found);
            ds.live[i] = false;
        }
    }
    bool found = true;
    CHECK_OK(vec_index_delete(ix, 1u << 30, &found));
    CHECK(!found);
    r = recall(ix, &ds, qs, NQ, NULL, VEC_SEARCH_GRAPH, &ne);
    fprintf(stderr, "  recall@10 after 30%% deletes %.4f\n", r);
    CHECK(r >= FLOOR_UNFILTERED);
    /* inserts after deletes */
    for (size_t i = N; i < N + EXTRA; i++) {
        CHECK_OK(vec_index_add(ix, i + 1, ds.v + i * DIM));
        ds.live[i] = true;
    }
    r = recall(ix, &ds, qs, NQ, NULL, VEC_SEARCH_GRAPH, &ne);
    fprintf(stderr, "  recall@10 after inserts %.4f\n", r);
    CHECK(r >= FLOOR_UNFILTERED);
    bits b;
    bits_random(&b, ds.n, 0.5);
    r = recall(ix, &ds, qs, NQ, &b.a, VEC_SEARCH_AUTO, &ne);
    fprintf(stderr, "  recall@10 50%% filter with tombstones %.4f\n", r);
    CHECK(r >= FLOOR_FILTERED);
    /* compaction */
    uint64_t live = vec_index_count(ix);
    CHECK(vec_index_dead_ratio(ix) > 0.2);
    CHECK_OK(vec_index_compact(ix));
    CHECK_EQ_INT(vec_index_count(ix), live);
    CHECK_EQ_INT(vec_index_nodes(ix), live);
    CHECK(vec_index_dead_ratio(ix) == 0);
    r = recall(ix, &ds, qs, NQ, NULL, VEC_SEARCH_GRAPH, &ne);
    fprintf(stderr, "  recall@10 after compaction %.4f\n", r);
    CHECK(r >= FLOOR_UNFILTERED);
    r = recall(ix, &ds, qs, NQ, &b.a, VEC_SEARCH_AUTO, &ne);
    CHECK(r >= FLOOR_FILTERED);
    free(b.w);
    /* an id live twice is refused; a deleted id can come back */
    CHECK(vec_index_add(ix, N + 1, ds.v) == CAIRN_ERR_INVALID);
    float bad[DIM] = {0};
    bad[3] = NAN;
    CHECK(vec_index_add(ix, 999999, bad) == CAIRN_ERR_INVALID);
    CHECK(vec_index_search(ix, bad, K, NULL, NULL, &(size_t){0}, NULL) == CAIRN_ERR_INVALID);
    /* memory target: search structures <= 1.2 bytes per dimension + graph */
    uint64_t vb, gb, fb;
    vec_index_memory(ix, &vb, &gb, &fb);
    double per_dim = (double)vb / vec_index_nodes(ix) / DIM;
    fprintf(stderr, "  memory: %.3f bytes/dim/vector + graph %.1f bytes/vector (dim %d)\n", per_dim,
            (double)gb / vec_index_nodes(ix), DIM);
    CHECK(per_dim <= 1.2);
    vec_index_free(ix);
    free(cent);
    free(ds.v);
    free(ds.live);
    free(qs);
}

/* Filters smaller than k: every allowed live vector, nothing else. */
static void test_tiny_filter(void)
{
    float *cent = make_centres(10, DIM);
    dataset ds = {.n = 2000};
    ds.v = clustered(ds.n, DIM, 10, 0.3f, cent);
    ds.live = calloc(ds.n, 1);
    vec_index *ix;
    CHECK_OK(vec_index_new(DIM, NULL, &ix));
    for (size_t i = 0; i < ds.n; i++) {
        CHECK_OK(vec_index_add(ix, i + 1, ds.v + i * DIM));
        ds.live[i] = true;
    }
    uint64_t w[(2001 + 63) / 64] = {0};
    uint64_t ids[] = {5, 77, 1999};
    for (int i = 0; i < 3; i++)
        w[ids[i] >> 6] |= 1ull << (ids[i] & 63);
    bm25_allowed a = {w, 2001};
    for (int mode = 0; mode < 3; mode++) {
        vec_hit out[K];
        size_t n;
        vec_search_opts o = {.allowed = &a, .mode = (vec_search_mode)mode};
        CHECK_OK(vec_index_search(ix, ds.v, K, &o, out, &n, NULL));
        CHECK_EQ_INT(n, 3);
        for (size_t i = 0; i < n; i++)
            CHECK(out[i].id == 5 || out[i].id == 77 || out[i].id == 1999);
    }
    /* delete one of them: two remain */
    CHECK_OK(vec_index_delete(ix, 77, NULL));
    vec_hit out[K];
    size_t n;
    vec_search_opts o = {.allowed = &a, .mode = VEC_SEARCH_GRAPH};
    CHECK_OK(vec_index_search(ix, ds.v, K, &o, out, &n, NULL));
    CHECK_EQ_INT(n, 2);
    /* empty allowed set */
    uint64_t none[1] = {0};
    bm25_allowed e = {none, 64};
    o.allowed = &e;
    CHECK_OK(vec_index_search(ix, ds.v, K, &o, out, &n, NULL));
    CHECK_EQ_INT(n, 0);
    vec_index_free(ix);
    free(cent);
    free(ds.v);
    free(ds.live);
}

static void search_ids(vec_index *ix, const float *q, vec_hit *out, size_t *n)
{
    vec_search_opts o = {.mode = VEC_SEARCH_GRAPH};
    CHECK_OK(vec_index_search(ix, q, K, &o, out, n, NULL));
}

static void test_persist(void)
{
    const char *dir = t_tmpdir("test_vec");
    char path[1200], cmd[2600];
    snprintf(path, sizeof path, "%s/vectors.idx", dir);
    float *cent = make_centres(20, DIM);
    const size_t n = 3000;
    float *v = clustered(n, DIM, 20, 0.3f, cent);
    vec_index *ix, *lx;
    vec_file_info info = {.hwm = 3000, .del_hwm = 17}, got;
    snprintf(info.model, sizeof info.model, "glove-bert:1234");
    CHECK(vec_index_load(path, &lx, &got) == CAIRN_ERR_NOT_FOUND);
    CHECK_OK(vec_index_new(DIM, NULL, &ix));
    for (size_t i = 0; i < n; i++)
        CHECK_OK(vec_index_add(ix, i + 100, v + i * DIM));
    for (size_t i = 0; i < n; i += 7)
        CHECK_OK(vec_index_delete(ix, i + 100, NULL));
    CHECK_OK(vec_index_save(ix, path, &info));
    CHECK_OK(vec_index_load(path, &lx, &got));
    CHECK_EQ_INT(got.hwm, 3000);
    CHECK_EQ_INT(got.del_hwm, 17);
    CHECK_EQ_STR(got.model, "glove-bert:1234");
    CHECK_EQ_INT(vec_index_count(lx), vec_index_count(ix));
    CHECK(vec_index_file_bytes(lx) > n * DIM * 4);
    for (int qi = 0; qi < 20; qi++) {
        vec_hit a[K], b[K];
        size_t na, nb;
        search_ids(ix, v + qi * 31 * DIM, a, &na);
        search_ids(lx, v + qi * 31 * DIM, b, &nb);
        CHECK_EQ_INT(na, nb);
        for (size_t i = 0; i < na && i < nb; i++)
            CHECK(a[i].id == b[i].id && a[i].score == b[i].score);
    }
    /* a loaded (mapped) index takes inserts and deletes (copied to the heap) */
    CHECK(!vec_index_contains(lx, 100));
    CHECK(vec_index_contains(lx, 101));
    CHECK_OK(vec_index_delete(lx, 101, NULL));
    CHECK_OK(vec_index_add(lx, 100000, v));
    vec_hit h[K];
    size_t nh;
    search_ids(lx, v, h, &nh);
    CHECK(nh == K && h[0].id == 100000);
    CHECK_OK(vec_index_save(lx, path, &info));
    vec_index_free(lx);
    CHECK_OK(vec_index_load(path, &lx, &got));
    CHECK(vec_index_contains(lx, 100000) && !vec_index_contains(lx, 101));
    vec_index_free(lx);

    /* damage: a flipped byte in each region, a truncation, a foreign file */
    char *data;
    size_t len;
    CHECK_OK(cairn_file_read_all(path, 1u << 30, &data, &len));
    size_t offs[] = {12, 300, len / 3, len / 2, len - 20, len - 3};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(offs); i++) {
        data[offs[i]] ^= 0x5a;
        CHECK_OK(cairn_file_write_atomic(path, data, len));
        CHECKF(vec_index_load(path, &lx, &got) == CAIRN_ERR_CORRUPT, "flip at %zu", offs[i]);
        CHECK(strstr(cairn_last_error(), "vector index") != NULL);
        data[offs[i]] ^= 0x5a;
    }
    CHECK_OK(cairn_file_write_atomic(path, data, len - 1000));
    CHECK(vec_index_load(path, &lx, &got) == CAIRN_ERR_CORRUPT);
    CHECK(strstr(cairn_last_error(), "truncated") != NULL);
    CHECK_OK(cairn_file_write_atomic(path, data, 100));
    CHECK(vec_index_load(path, &lx, &got) == CAIRN_ERR_CORRUPT);
    CHECK_OK(cairn_file_write_atomic(path, "hello world, not an index at all........................", 50));
    CHECK(vec_index_load(path, &lx, &got) == CAIRN_ERR_CORRUPT);
    CHECK_OK(cairn_file_write_atomic(path, data, len));
    CHECK_OK(vec_index_load(path, &lx, &got));
    vec_index_free(lx);
    /* a damaged graph with a valid checksum is still caught (link out of range) */
    cairn_free(data);
    vec_index_free(ix);
    free(cent);
    free(v);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_alloc_failures(void)
{
    float *cent = make_centres(4, DIM);
    float *v = clustered(300, DIM, 4, 0.3f, cent);
    const char *dir = t_tmpdir("test_vec_alloc");
    char path[1200];
    snprintf(path, sizeof path, "%s/v.idx", dir);
    int fails = 0;
    for (long nth = 0; nth < 400; nth++) {
        vec_index *ix = NULL;
        cairn_alloc_fail_after(nth, false);
        cairn_status st = vec_index_new(DIM, NULL, &ix);
        for (size_t i = 0; st == CAIRN_OK && i < 300; i++)
            st = vec_index_add(ix, i + 1, v + i * DIM);
        if (st == CAIRN_OK)
            st = vec_index_delete(ix, 5, NULL);
        if (st == CAIRN_OK)
            st = vec_index_compact(ix);
        vec_hit h[K];
        size_t nh;
        if (st == CAIRN_OK)
            st = vec_index_search(ix, v, K, NULL, h, &nh, NULL);
        if (st == CAIRN_OK)
            st = vec_index_save(ix, path, NULL);
        vec_index *lx = NULL;
        if (st == CAIRN_OK)
            st = vec_index_load(path, &lx, NULL);
        cairn_alloc_fail_after(-1, false);
        CHECK(st == CAIRN_OK || st == CAIRN_ERR_NOMEM);
        if (st != CAIRN_OK)
            fails++;
        /* whatever failed, the index still answers (consistent) */
        if (ix) {
            st = vec_index_search(ix, v, K, NULL, h, &nh, NULL);
            CHECK_OK(st);
        }
        vec_index_free(lx);
        vec_index_free(ix);
        if (nth > 10 && !cairn_alloc_injected_failures())
            break;
    }
    CHECK(fails > 10);
    free(cent);
    free(v);
}

int main(void)
{
    fprintf(stderr, "kernels: %s\n", kernels_level_name(kernels_selected()));
    RUN(test_kernels);
    RUN(test_recall);
    RUN(test_tiny_filter);
    RUN(test_persist);
    RUN(test_alloc_failures);
    return t_done();
}
