/* test_sampling.c — sampler: greedy, top-k/top-p/min-p, temperature, penalties, seeding. */
#include "infer/sample.h"
#include "t.h"

#define NV 8

static sampler_params greedy(void)
{
    sampler_params p = sampler_params_default();
    p.temp = 0;
    return p;
}

static int32_t sample_once(const sampler_params *p, const float *logits_in, int n)
{
    cairn_sampler *s;
    float l[64];
    memcpy(l, logits_in, (size_t)n * sizeof *l);
    if (sampler_new(p, n, &s) != CAIRN_OK)
        return -1;
    int32_t id = sampler_sample(s, l);
    sampler_free(s);
    return id;
}

static void test_greedy(void)
{
    float l[NV] = {0.1f, 2.0f, -1.0f, 3.5f, 3.5f, 0.0f, 1.0f, -5.0f};
    sampler_params p = greedy();
    CHECK_EQ_INT(sample_once(&p, l, NV), 3);   /* tie: lowest id */
    /* top_k = 1 at any temperature is greedy too */
    p = sampler_params_default();
    p.top_k = 1;
    p.temp = 5.0f;
    for (uint64_t seed = 0; seed < 20; seed++) {
        p.seed = seed;
        CHECK_EQ_INT(sample_once(&p, l, NV), 3);
    }
}

/* Empirical frequencies at temp 1 with every filter off follow softmax. */
static void test_distribution(void)
{
    float l[4] = {0.0f, 1.0f, 2.0f, -1.0f};
    double z = 0, pr[4];
    for (int i = 0; i < 4; i++) z += exp(l[i]);
    for (int i = 0; i < 4; i++) pr[i] = exp(l[i]) / z;
    sampler_params p = sampler_params_default();
    p.temp = 1.0f, p.top_k = 0, p.top_p = 1.0f, p.min_p = 0.0f, p.seed = 7;
    cairn_sampler *s;
    CHECK_OK(sampler_new(&p, 4, &s));
    int cnt[4] = {0};
    const int N = 40000;
    for (int i = 0; i < N; i++) {
        float c[4];
        memcpy(c, l, sizeof c);
        int32_t id = sampler_sample(s, c);
        CHECK(id >= 0 && id < 4);
        if (id >= 0 && id < 4) cnt[id]++;
    }
    for (int i = 0; i < 4; i++) {
        double sd = sqrt(pr[i] * (1 - pr[i]) / N);
        CHECKF(fabs(cnt[i] / (double)N - pr[i]) < 5 * sd, "id %d: %g vs %g", i, cnt[i] / (double)N, pr[i]);
    }
    sampler_free(s);

    /* temperature 0.5 sharpens: p ~ exp(2 l) */
    p.temp = 0.5f;
    CHECK_OK(sampler_new(&p, 4, &s));
    memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < N; i++) {
        float c[4];
        memcpy(c, l, sizeof c);
        cnt[sampler_sample(s, c)]++;
    }
    z = 0;
    for (int i = 0; i < 4; i++) z += exp(2 * l[i]);
    double p2 = exp(2 * l[2]) / z;
    CHECKF(fabs(cnt[2] / (double)N - p2) < 5 * sqrt(p2 * (1 - p2) / N), "%g vs %g", cnt[2] / (double)N, p2);
    sampler_free(s);
}

/* top-k, top-p and min-p never return a token outside their set. */
static void test_filters(void)
{
    float l[NV] = {5.0f, 4.9f, 4.8f, 1.0f, 0.5f, 0.0f, -1.0f, -2.0f};
    sampler_params p = sampler_params_default();
    p.temp = 3.0f, p.top_p = 1.0f, p.min_p = 0.0f;
    p.top_k = 3;
    for (uint64_t seed = 0; seed < 300; seed++) {
        p.seed = seed;
        int32_t id = sample_once(&p, l, NV);
        CHECKF(id >= 0 && id <= 2, "top-k 3 gave %d", id);
    }
    /* top-p: probs (temp 1) of ids 0,1,2 are ~0.36, 0.33, 0.30; p = 0.5 keeps two */
    p.top_k = 0, p.top_p = 0.5f;
    bool seen[NV] = {0};
    for (uint64_t seed = 0; seed < 300; seed++) {
        p.seed = seed;
        int32_t id = sample_once(&p, l, NV);
        CHECKF(id == 0 || id == 1, "top-p gave %d", id);
        if (id >= 0 && id < NV) seen[id] = true;
    }
    CHECK(seen[0] && seen[1]);
    /* min-p 0.5: exp(1-5) relative is far below half, so only 0, 1, 2 survive */
    p.top_p = 1.0f, p.min_p = 0.5f;
    memset(seen, 0, sizeof seen);
    for (uint64_t seed = 0; seed < 300; seed++) {
        p.seed = seed;
        int32_t id = sample_once(&p, l, NV);
        CHECKF(id >= 0 && id <= 2, "min-p gave %d", id);
        if (id >= 0 && id < NV) seen[id] = true;
    }
    CHECK(seen[0] && seen[1] && seen[2]);
}

static void test_seed(void)
{
    float l[NV] = {1, 1, 1, 1, 1, 1, 1, 1};
    sampler_params p = sampler_params_default();
    p.temp = 1.0f, p.top_k = 0, p.top_p = 1.0f, p.min_p = 0;
    cairn_sampler *a, *b, *c;
    p.seed = 99;
    CHECK_OK(sampler_new(&p, NV, &a));
    CHECK_OK(sampler_new(&p, NV, &b));
    p.seed = 100;
    CHECK_OK(sampler_new(&p, NV, &c));
    int same_ab = 0, same_ac = 0;
    int32_t first[32];
    for (int i = 0; i < 32; i++) {
        float x[NV], y[NV], z[NV];
        memcpy(x, l, sizeof x); memcpy(y, l, sizeof y); memcpy(z, l, sizeof z);
        int32_t ia = sampler_sample(a, x), ib = sampler_sample(b, y), ic = sampler_sample(c, z);
        first[i] = ia;
        same_ab += ia == ib;
        same_ac += ia == ic;
    }
    CHECK_EQ_INT(same_ab, 32);
    CHECK(same_ac < 16);  /* expected 4 of 32 by chance */
    /* reset replays the same sequence */
    sampler_reset(a);
    int replay = 0;
    for (int i = 0; i < 32; i++) {
        float x[NV];
        memcpy(x, l, sizeof x);
        replay += sampler_sample(a, x) == first[i];
    }
    CHECK_EQ_INT(replay, 32);
    sampler_free(a); sampler_free(b); sampler_free(c);

    /* the PRNG is uniform enough: mean of 1e5 draws ~ 0.5, all in [0, 1) */
    cairn_rng r;
    rng_seed(&r, 1);
    double sum = 0;
    bool in = true;
    for (int i = 0; i < 100000; i++) {
        double u = rng_uniform(&r);
        in = in && u >= 0 && u < 1;
        sum += u;
    }
    CHECK(in);
    CHECK_NEAR(sum / 100000, 0.5, 0.005);
}

static void test_penalties(void)
{
    float l[NV] = {3.0f, 2.9f, -1.0f, -1.1f, 0, 0, 0, 0};
    sampler_params p = greedy();
    p.repeat_penalty = 1.5f;
    p.penalty_last_n = 4;
    cairn_sampler *s;
    CHECK_OK(sampler_new(&p, NV, &s));
    float x[NV];
    memcpy(x, l, sizeof x);
    CHECK_EQ_INT(sampler_sample(s, x), 0);
    sampler_accept(s, 0);
    sampler_accept(s, 0);   /* counted once: 3.0 / 1.5 = 2.0 */
    memcpy(x, l, sizeof x);
    CHECK_EQ_INT(sampler_sample(s, x), 1);
    CHECK_NEAR(x[0], 2.0, 1e-6);
    /* negative logits are multiplied */
    sampler_accept(s, 2);
    memcpy(x, l, sizeof x);
    sampler_sample(s, x);
    CHECK_NEAR(x[2], -1.5, 1e-6);
    /* the window forgets: after 4 other tokens id 0 is no longer penalized */
    for (int i = 0; i < 4; i++)
        sampler_accept(s, 5);
    memcpy(x, l, sizeof x);
    CHECK_EQ_INT(sampler_sample(s, x), 0);
    CHECK_NEAR(x[0], 3.0, 1e-6);
    sampler_free(s);

    /* presence penalty subtracts once per distinct token */
    p = greedy();
    p.presence_penalty = 0.5f;
    p.penalty_last_n = 8;
    CHECK_OK(sampler_new(&p, NV, &s));
    sampler_accept(s, 0);
    sampler_accept(s, 0);
    memcpy(x, l, sizeof x);
    CHECK_EQ_INT(sampler_sample(s, x), 1);
    CHECK_NEAR(x[0], 2.5, 1e-6);
    sampler_free(s);
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Without top-k (the path that avoids sorting the vocabulary): every draw
 * lies in the exact nucleus / min-p set computed here by brute force. */
static void test_large_vocab(void)
{
    enum { N = 20000 };
    float *l = cairn_malloc(N * sizeof *l), *sorted = cairn_malloc(N * sizeof *sorted), *x = cairn_malloc(N * sizeof *x);
    for (int i = 0; i < N; i++)
        l[i] = 2.0f * sinf((float)i * 12.9898f) + 0.5f * cosf((float)i * 0.0007f);
    memcpy(sorted, l, N * sizeof *l);
    qsort(sorted, N, sizeof *sorted, cmp_desc);
    double z = 0, cum = 0;
    for (int i = 0; i < N; i++) z += exp(sorted[i] - sorted[0]);
    int nucleus = 0;
    while (nucleus < N && cum < 0.9) cum += exp(sorted[nucleus++] - sorted[0]) / z;
    float top_p_thr = sorted[nucleus - 1], min_p_thr = sorted[0] + logf(0.3f);
    sampler_params p = sampler_params_default();
    p.temp = 1.0f, p.top_k = 0, p.top_p = 0.9f, p.min_p = 0.0f;
    cairn_sampler *s;
    CHECK_OK(sampler_new(&p, N, &s));
    int outside = 0, deep = 0;
    for (int i = 0; i < 120; i++) {
        memcpy(x, l, N * sizeof *l);
        int32_t id = sampler_sample(s, x);
        outside += l[id] < top_p_thr;
        deep += l[id] < sorted[256];     /* beyond the first k tried */
    }
    CHECK_EQ_INT(outside, 0);
    CHECK(deep > 0);
    CHECKF(nucleus > 256, "nucleus %d", nucleus);
    sampler_free(s);
    p.top_p = 1.0f, p.min_p = 0.3f;
    CHECK_OK(sampler_new(&p, N, &s));
    outside = 0;
    for (int i = 0; i < 120; i++) {
        memcpy(x, l, N * sizeof *l);
        outside += l[sampler_sample(s, x)] < min_p_thr;
    }
    CHECK_EQ_INT(outside, 0);
    sampler_free(s);
    cairn_free(l); cairn_free(sorted); cairn_free(x);
}

static void test_invalid(void)
{
    cairn_sampler *s;
    sampler_params p = sampler_params_default();
    CHECK(sampler_new(&p, 0, &s) == CAIRN_ERR_INVALID);
    p.repeat_penalty = 0;
    CHECK(sampler_new(&p, 8, &s) == CAIRN_ERR_INVALID);
    p = sampler_params_default();
    p.temp = NAN;
    CHECK(sampler_new(&p, 8, &s) == CAIRN_ERR_INVALID);
    /* allocation failures are clean */
    p = sampler_params_default();
    for (long n = 0; n < 4; n++) {
        cairn_alloc_fail_after(n, false);
        cairn_status st = sampler_new(&p, 100, &s);
        cairn_alloc_fail_after(-1, false);
        if (st == CAIRN_OK)
            sampler_free(s);
        else
            CHECK(st == CAIRN_ERR_NOMEM && s == NULL);
    }
}

int main(void)
{
    RUN(test_greedy);
    RUN(test_distribution);
    RUN(test_filters);
    RUN(test_seed);
    RUN(test_penalties);
    RUN(test_large_vocab);
    RUN(test_invalid);
    return t_done();
}
